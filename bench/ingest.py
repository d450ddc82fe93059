"""Central ingest throughput: records per second through the store path.

Included (timed): decoding each batch envelope (zstd + CBOR, edge.sync.envelope)
and laying its records out as JSON rows, storing the batches idempotently in one
transaction per group (SQLite: WAL, synchronous=FULL; PostgreSQL:
synchronous_commit on, JSON bodies) with the contiguous high-water mark, and
encoding the acknowledgements; decoding and storing overlap in two threads, as
in the ingest process. Not included: MQTT (broker hops, PUBACKs), which the sync
benchmarks measure end to end.

Input: ``BATCHES`` batches of 100 lot-like records (schema 2, as a station
encodes them), every batch new. ``GROUP`` batches share a transaction, as the
ingest groups what has queued up while the previous transaction committed (up
to 64, and at most the broker's in-flight window: 20 with the shipped
mosquitto.conf, since nothing is PUBACKed before it is stored); the
one-batch-per-transaction figure is printed too.
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
from edge.sync.envelope import Ack, Batch, decode_batch, encode_ack, encode_batch

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
            ready.put(plan_batches([decode_batch(p) for p in data[i : i + group]]))
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


def bench_ingest() -> None:
    data = payloads()
    bench_sqlite(data)
    bench_postgres(data)


if __name__ == "__main__":
    bench_ingest()
