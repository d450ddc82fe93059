"""Central ingest throughput: records per second through the store path.

Included (timed): decoding each batch envelope (zstd + CBOR, edge.sync.envelope)
and laying its records out as JSON rows, storing the batches idempotently in one
transaction per group (SQLite: WAL, synchronous=FULL; PostgreSQL:
synchronous_commit on, JSON bodies) with the contiguous high-water mark, and
encoding the acknowledgements; decoding and storing overlap in two threads, as
in the ingest process. Not included: MQTT (broker hops, PUBACKs), which the sync
benchmarks measure end to end.

Input: ``BATCHES`` batches of 100 lot-like records (schema 2, as a station
encodes them), every batch new. Decoding includes the limits (edge.sync.limits:
the CBOR pre-scan) and validating every record (edge.sync.validate), as ingest
does before storing anything. ``GROUP`` batches share a transaction, as the
ingest groups what has queued up while the previous transaction committed (up
to 64, and at most the broker's in-flight window: 20 with the shipped
mosquitto.conf, since nothing is PUBACKed before it is stored); the
one-batch-per-transaction figure is printed too.

Under a flood of poison (:func:`bench_poison_flood`): the shipped mutual-TLS
mosquitto with its ACL, ``edge central ingest`` as a process (SQLite), one site's
certificate sending ``FLOOD_RATE`` worst-case messages a second for ``FLOOD_S``
seconds (in turn: a zstd bomb, a million-row batch, the costliest refusal within
the caps (5,000 records decoded and validated, the last invalid), U+0000 and lone
surrogate statuses, a -5 g lot, a seq of 2**62), while another site publishes a
batch of 100 lots every ``INNOCENT_EVERY_S``: its publish-to-ack time (p95) and the
ingest process's peak resident memory (VmHWM).
"""

from __future__ import annotations

import os
import queue
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edge.central.core import GroupPlan
from edge.central.pg_store import PgStore
from edge.central.store import CentralStore, open_store, plan_batches
from edge.sync.envelope import Ack, Batch, decode_ack, decode_batch, encode_ack, encode_batch
from edge.sync.validate import validate_batch

SITE = "lai-chau-sin-ho-01"
RECORDS = 100
BATCHES = 300
GROUP = 16
PG_URL = os.environ.get("EDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _lot(seq: int) -> dict[str, Any]:
    t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC) + timedelta(seconds=13 * seq)
    rec: dict[str, Any] = {
        "type": "lot",
        "seq": seq,
        "id": str(uuid.UUID(int=(0x019AB3C2 << 96) | (0x7000 << 64) | (0x8 << 60) | seq)),
        "producer_id": str(uuid.UUID(int=0x019AB3C0_0000_7000_8000_000000000000 + seq % 40)),
        "product_id": str(uuid.UUID(int=0x019AB3C0_0000_7000_9000_000000000000 + seq % 6)),
        "net_g": 500 + (seq * 37) % 20_000,
        "recorded_at": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "boot_id": "5d1c0b7e-8f4a-4c11-9d5e-0a4b2c3d4e5f",
        "uptime_s": round(1000.0 + 13 * seq, 3),
        "clock_synced": True,
    }
    if seq % 4 == 0:
        rec["tare_g"] = 120
        rec["tare_source"] = "scale"
    return rec


def payloads(batches: int = BATCHES, size: int = RECORDS) -> list[bytes]:
    out = []
    for n in range(batches):
        first = n * size + 1
        last = first + size - 1
        records = tuple(_lot(s) for s in range(first, last + 1))
        out.append(
            encode_batch(Batch(SITE, "records", f"records:{first}-{last}:1", first, last, records))
        )
    return out


def _proc_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of another local process, 0 if unreadable."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def records_per_s(store: CentralStore, data: list[bytes], group: int) -> tuple[float, float]:
    """(records per second, CPU microseconds per record) through the ingest's two
    stages: a thread decodes and lays out each group while this one stores the
    previous group and encodes its acks. The CPU figure adds this process and the
    PostgreSQL server process (when local), so it barely moves with other load
    on the machine, unlike the wall-clock rate."""
    ready: queue.Queue[GroupPlan | None] = queue.Queue(maxsize=1)

    def decode() -> None:
        for i in range(0, len(data), group):
            batches = [decode_batch(p) for p in data[i : i + group]]
            for b in batches:
                validate_batch(b)
            ready.put(plan_batches(batches))
        ready.put(None)

    server = store.backend_pid() if isinstance(store, PgStore) else None
    cpu0 = time.process_time() + _proc_cpu_s(server)
    t0 = time.perf_counter()
    threading.Thread(target=decode, daemon=True).start()
    stored = 0
    while (plan := ready.get()) is not None:
        for progress in store.store_plan(plan):
            encode_ack(Ack(progress.stream, progress.upto))
            stored += progress.inserted
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() + _proc_cpu_s(server) - cpu0
    if stored != len(data) * RECORDS:
        raise AssertionError(f"stored {stored} records of {len(data) * RECORDS}")
    return stored / elapsed, cpu / stored * 1e6


def _run(open_: Callable[[], CentralStore], data: list[bytes], group: int) -> tuple[float, float]:
    store = open_()
    try:
        return records_per_s(store, data, group)
    finally:
        store.close()


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def bench_sqlite(data: list[bytes]) -> None:
    rates = {}
    for group in (GROUP, 1):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'central.db'}"
            rates[group] = _run(lambda url=url: open_store(url), data, group)  # type: ignore[misc]
    rate, cpu = rates[GROUP]
    print(
        f"ingest_records_per_s_sqlite {rate:.0f}  (target >= 20000; {GROUP} batches of "
        f"{RECORDS} a transaction; decode + store + ack, WAL synchronous=FULL; {_load()})"
    )
    print(f"ingest_cpu_us_per_record_sqlite {cpu:.1f}")
    print(f"ingest_records_per_s_sqlite_1batch {rates[1][0]:.0f}  (one batch a transaction)")


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def bench_postgres(data: list[bytes]) -> None:
    if not _pg_reachable():
        print("ingest_records_per_s_postgres skipped  (no PostgreSQL on 127.0.0.1:5432)")
        return
    import psycopg

    rates = {}
    for group in (GROUP, 1):
        schema = f"central_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"
        try:
            rates[group] = _run(lambda url=url: open_store(url), data, group)  # type: ignore[misc]
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    rate, cpu = rates[GROUP]
    print(
        f"ingest_records_per_s_postgres {rate:.0f}  (target >= 50000; {GROUP} batches of "
        f"{RECORDS} a transaction; decode + store + ack, JSON, synchronous_commit on; {_load()})"
    )
    print(f"ingest_cpu_us_per_record_postgres {cpu:.1f}  (this process + the server process)")
    print(f"ingest_records_per_s_postgres_1batch {rates[1][0]:.0f}  (one batch a transaction)")


FLOOD_RATE = 50
FLOOD_S = 20.0
INNOCENT_EVERY_S = 0.5
FLOOD_EPOCH = "0a1b2c3d4e5f6071"


def _worst(site: str) -> list[tuple[str, bytes]]:
    """The flood's messages, (topic kind, payload), sent in turn."""
    from rigs import poison

    return [
        ("records", poison.zstd_bomb()),
        ("records", poison.million_rows(site, FLOOD_EPOCH)),
        ("records", poison.max_work(site, FLOOD_EPOCH)),
        ("status", poison.NUL_STATUS),
        ("status", poison.SURROGATE_STATUS),
        ("records", poison.batch_of(site, 1, 100, FLOOD_EPOCH, s50={"net_g": -5})),
        ("records", poison.huge_seq(site, 2**62, FLOOD_EPOCH)),
    ]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_poison_flood() -> None:
    """``ingest_poison_flood_innocent_ack_ms_p95`` and ``ingest_peak_rss_mb_under_flood``."""
    from rigs.helpers import Broker, Pki
    from rigs.ingest import IngestProcess
    from rigs.mqtt_probe import Probe

    attacker_site, innocent_site = "site-a", "site-b"
    with tempfile.TemporaryDirectory() as tmp:
        pki = Pki(Path(tmp) / "pki")
        broker = Broker(Path(tmp) / "broker", tls=pki.broker_tls)
        broker.start()
        central = pki.client("central:ingest-1")
        ingest = IngestProcess(
            broker.port, f"sqlite:///{tmp}/central.db", "central:ingest-1",
            "--tls-ca", str(central.ca_file), "--tls-cert", str(central.cert_file),
            "--tls-key", str(central.key_file),
        )  # fmt: skip
        probes: list[Probe] = []
        try:
            ingest.start()
            for site in (attacker_site, innocent_site):
                probe = Probe(broker.port, pki.client(site), client_id=site)
                probes.append(probe)
                if not probe.connect().ok:
                    raise RuntimeError(f"{site} could not connect")
            attacker, innocent = probes
            acks: list[tuple[float, int]] = []
            innocent.client.on_message = lambda _c, _u, msg: acks.append(
                (time.perf_counter(), decode_ack(bytes(msg.payload)).upto)
            )
            innocent.subscribe(f"edge/{innocent_site}/ack")
            worst = _worst(attacker_site)
            stop = threading.Event()
            sent = [0]

            def flood() -> None:
                start = time.perf_counter()
                while not stop.is_set():
                    kind, payload = worst[sent[0] % len(worst)]
                    attacker.client.publish(f"edge/{attacker_site}/{kind}", payload, qos=1)
                    sent[0] += 1
                    stop.wait(max(0.0, start + sent[0] / FLOOD_RATE - time.perf_counter()))

            flooder = threading.Thread(target=flood, daemon=True)
            flooder.start()
            published: list[tuple[float, int]] = []
            t_end = time.perf_counter() + FLOOD_S
            seq = 1
            while time.perf_counter() < t_end:
                records = tuple({**_lot(s), "seq": s} for s in range(seq, seq + RECORDS))
                data = encode_batch(
                    Batch(innocent_site, "records", f"records:{seq}-{seq + RECORDS - 1}:1",
                          seq, seq + RECORDS - 1, records, epoch=FLOOD_EPOCH)
                )  # fmt: skip
                published.append((time.perf_counter(), seq + RECORDS - 1))
                innocent.client.publish(f"edge/{innocent_site}/records", data, qos=1)
                seq += RECORDS
                time.sleep(INNOCENT_EVERY_S)
            stop.set()
            flooder.join(10)
            last = published[-1][1]
            deadline = time.perf_counter() + 60
            while max((u for _, u in acks), default=0) < last and time.perf_counter() < deadline:
                time.sleep(0.05)
            assert ingest.proc is not None
            peak = _peak_rss_mb(ingest.proc.pid)
            latencies = []
            for t_pub, upto in published:
                t_ack = next((t for t, u in acks if u >= upto and t >= t_pub), None)
                latencies.append((t_ack - t_pub) * 1000 if t_ack is not None else float("inf"))
            status = ingest.status()
        finally:
            for probe in probes:
                probe.close()
            ingest.stop()
            broker.stop()
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    counts = status["rejected_by_site"].get(attacker_site, {}).get("by_reason", {})
    shown = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(
        f"ingest_poison_flood_innocent_ack_ms_p95 {p95:.0f}  (target <= 2000; {len(published)} "
        f"batches of {RECORDS} lots from one site while another sent {sent[0]} worst-case "
        f"messages at {FLOOD_RATE}/s for {FLOOD_S:.0f} s, TLS mosquitto, SQLite; "
        f"median {latencies[len(latencies) // 2]:.0f} ms; {_load()})"
    )
    print(
        f"ingest_peak_rss_mb_under_flood {peak:.0f}  (target <= 300; VmHWM of the ingest "
        f"process; the attacker's messages: {shown})"
    )


def bench_ingest() -> None:
    data = payloads()
    bench_sqlite(data)
    bench_postgres(data)
    bench_poison_flood()


if __name__ == "__main__":
    bench_ingest()
