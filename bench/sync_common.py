"""What the sync benchmarks share: the site, lots recorded like a collection
point's day, the broker and central ingest on the host end of the metered link
(rigs/netns.py), and running a station program in the station's namespace while
the link's counters are read before and after.

Two ways of counting a station's bytes, both "what the carrier bills" (IP and
TCP headers, TLS, MQTT, keepalives, acknowledgements, retransmissions, both
ways), printed as the method of each figure:

- ``veth``: the station runs in a network namespace of its own and reaches the
  broker over a veth pair; the bytes are the pair's interface counters (IP
  packets, MTU 1,500, one TCP segment a packet, Ethernet headers taken off).
- ``tcp_info``: where namespaces cannot be made, the station runs on loopback
  and the bytes are its link's own meter (edge.sync.usage.LinkMeter: the
  kernel's per-socket TCP_INFO byte counters, retransmissions included, plus
  52 header bytes per segment). Loopback's 64 kB MTU means fewer, larger
  segments than a real link, so headers are under-counted for big batches.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from edge import ids
from edge.config import StationConfig, parse_config
from edge.storage.store import Store
from edge.sync import certs
from rigs.helpers import Broker, BrokerTls, Pki
from rigs.ingest import IngestProcess
from rigs.netns import Counters, HostBroker, VillageLink
from rigs.shaper import Shape, Shaper, ShaperStats

SITE = "lai-chau-sin-ho-01"
"""A site id of a realistic length: it is in every topic."""
CENTRAL = "central:ingest-1"
ROOT = Path(__file__).resolve().parents[1]
BROKER_NAME = "localhost"
"""The name the station checks in the broker's certificate (``tls.server_hostname``)."""


class SimClock:
    """Wall time and uptime of a station recording a lot every 20-120 s."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start = datetime(2026, 6, 1, 0, 30, tzinfo=UTC)
        self.t = self.start

    def now(self) -> datetime:
        return self.t

    def uptime_s(self) -> float:
        return round(4_000.0 + (self.t - self.start).total_seconds(), 3)

    def tick(self) -> None:
        self.t += timedelta(milliseconds=self.rng.randint(20_000, 120_000))


def record_lots(path: Path, n: int, seed: int) -> int:
    """``n`` records in the station's outbox (30 farmers and 5 products, then lots);
    returns how many."""
    clock = SimClock(seed)
    rng = random.Random(seed)
    with mock.patch.object(ids, "uptime_s", clock.uptime_s):
        store = Store.open(path, SITE, now=clock.now)
        try:
            producers = [store.add_producer(f"Nông dân {i}")["id"] for i in range(30)]
            products = [store.add_product(f"Sản phẩm {i}", 10_000)["id"] for i in range(5)]
            for _ in range(n - len(producers) - len(products)):
                clock.tick()
                record_one_lot(store, rng, producers, products)
        finally:
            store.close()
    return n


def record_one_lot(
    store: Store, rng: random.Random, producers: list[str], products: list[str]
) -> None:
    """A lot of 0.3-60 kg for a random farmer and product, a quarter with a scale tare."""
    tare = rng.random() < 0.25
    store.record_lot(
        rng.choice(producers),
        rng.choice(products),
        rng.randint(300, 60_000),
        "ST,GS,+012.345kg",
        tare_g=rng.choice((100, 120, 250)) if tare else None,
        tare_source="scale" if tare else None,
    )


def station_config(
    db: Path, pki: Pki, host: str, port: int, site: str = SITE, **mqtt: Any
) -> StationConfig:
    """A station with the shipped ``[mqtt]`` defaults but for ``mqtt``, dialling
    ``host:port`` with the site's certificate and checking the broker's name."""
    return parse_config(
        {
            "site": {"id": site, "key_file": str(db.parent / "site.key")},
            "storage": {"path": str(db)},
            "mqtt": {
                "enabled": True,
                "host": host,
                "port": port,
                "tls": {**pki.client(site).as_config(), "server_hostname": BROKER_NAME},
                **mqtt,
            },
        },
        "bench",
    )


def broker_tls_for(pki: Pki, host: str) -> BrokerTls:
    """The broker's certificate naming ``host`` too (central's clients check it)."""
    if host == "127.0.0.1":
        return pki.broker_tls
    cred = certs.issue_broker(pki.ca, [BROKER_NAME, "127.0.0.1", host])
    cert, key = pki.folder / f"broker-{host}.pem", pki.folder / f"broker-{host}.key"
    key.write_bytes(cred.key_pem())
    key.chmod(0o600)
    cert.write_bytes(cred.cert_pem())
    return BrokerTls(pki.ca_file, cert, key, pki.crl_file)


class CentralRig:
    """The shipped mutual-TLS mosquitto on ``host`` (the metered link's host end, or
    127.0.0.1) and, with ``ingest``, ``edge central ingest`` on SQLite behind it."""

    def __init__(self, workdir: Path, pki: Pki, host: str, ingest: bool = True) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.host = host
        tls = broker_tls_for(pki, host)
        broker_dir = workdir / "broker"
        self.broker: Broker = (
            Broker(broker_dir, tls=tls)
            if host == "127.0.0.1"
            else HostBroker(broker_dir, tls, host)
        )
        self.ingest: IngestProcess | None = None
        if ingest:
            central = pki.client(CENTRAL)
            self.ingest = IngestProcess(
                self.broker.port,
                f"sqlite:///{workdir}/central.db",
                CENTRAL,
                "--tls-ca", str(central.ca_file),
                "--tls-cert", str(central.cert_file),
                "--tls-key", str(central.key_file),
            )  # fmt: skip
            url = self.ingest.args.index("--broker") + 1
            self.ingest.args[url] = f"mqtt://{host}:{self.broker.port}"

    def __enter__(self) -> CentralRig:
        self.broker.start()
        if self.ingest is not None:
            self.ingest.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            if self.ingest is not None:
                self.ingest.stop()
        finally:
            self.broker.stop()

    def diagnostics(self) -> str:
        lines = "".join(self.ingest.lines[-15:]) if self.ingest else ""
        return f"\ningest log tail:\n{lines}\nbroker log tail:\n{self.broker.log_tail(15)}"


@dataclass(frozen=True)
class StationRun:
    """What the station programs reported (one result each), and the bytes their
    links carried together."""

    results: list[dict[str, Any]]
    wire_bytes: int
    method: str
    counters: Counters | None

    @property
    def result(self) -> dict[str, Any]:
        return self.results[0]


def run_stations(
    link: VillageLink | None,
    module: str,
    jobs: list[dict[str, Any]],
    workdir: Path,
    timeout: float,
) -> StationRun:
    """Run ``python -m module JOB.json`` for each job side by side, as stations: job i
    in namespace i when there is a ``link`` (bytes from the pairs' counters, read
    before the processes start and after they have exited and their connections
    have closed), else on loopback (bytes from each station's own TCP_INFO meter,
    which the program reports as ``meter_bytes``). A program prints its result as
    one JSON line last."""
    procs = []
    before = link.counters() if link else None
    for i, job in enumerate(jobs):
        job_file = workdir / f"{module.rsplit('.', 1)[-1]}-{i}.json"
        job_file.write_text(json.dumps(job))
        argv = [sys.executable, "-m", module, str(job_file)]
        out_file, err_file = workdir / f"station-{i}.out", workdir / f"station-{i}.err"
        with out_file.open("w") as out, err_file.open("w") as err:
            cmd = link.command(argv, i) if link else argv
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True))
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    results = []
    for i, proc in enumerate(procs):
        if proc.returncode != 0:
            tail = (workdir / f"station-{i}.err").read_text()[-4000:]
            raise RuntimeError(f"{module} (station {i}) failed ({proc.returncode}):\n{tail}")
        lines = (workdir / f"station-{i}.out").read_text().strip().splitlines()
        results.append(json.loads(lines[-1]))
    if link is None or before is None:
        meter = sum(int(r["meter_bytes"]) for r in results)
        return StationRun(results, meter, "tcp_info", None)
    time.sleep(0.5)  # the last FIN and ACK
    counted = link.counters() - before
    return StationRun(results, counted.ip_bytes, "veth", counted)


def run_station(
    link: VillageLink | None, module: str, job: dict[str, Any], workdir: Path, timeout: float
) -> StationRun:
    """One station: :func:`run_stations` with one job."""
    return run_stations(link, module, [job], workdir, timeout)


def drain_metered(
    link: VillageLink | None,
    pki: Pki,
    workdir: Path,
    records: int,
    seed: int,
    *,
    shape: Shape | None = None,
    mode: str = "drain",
    timeout_s: float = 600.0,
    **mqtt: Any,
) -> tuple[StationRun, ShaperStats | None]:
    """A fresh central, ``records`` lots waiting, and the station sending them over
    the metered link (bench/sync_station.py ``mode``): the link worker draining them
    until all are confirmed (``drain``, with ``edge central ingest``), or a common
    gateway's JSON messages (``baseline``, the broker alone). With ``shape`` the
    station dials a shaping proxy on the host end instead of the broker itself."""
    host = link.host if link else "127.0.0.1"
    with CentralRig(workdir, pki, host, ingest=mode == "drain") as rig:
        db = workdir / "station.db"
        record_lots(db, records, seed=seed)
        shaper = None
        if shape is not None:
            shaper = Shaper(rig.broker.port, host, listen_host=host, shape=shape, seed=seed)
            shaper.start()
        try:
            port = shaper.port if shaper else rig.broker.port
            config_file = workdir / "station-config.json"
            config_file.write_text(station_config(db, pki, host, port, **mqtt).model_dump_json())
            job = {"mode": mode, "config": str(config_file), "records": records,
                   "timeout_s": timeout_s}  # fmt: skip
            try:
                run = run_station(link, "bench.sync_station", job, workdir, timeout_s + 60)
            except Exception as exc:
                raise RuntimeError(f"{exc}{rig.diagnostics()}") from None
        finally:
            if shaper is not None:
                shaper.close()
        return run, shaper.stats() if shaper else None
