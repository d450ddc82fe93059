"""The end-to-end sync rig for the fault tests and the sync benchmarks: the shipped
mutual-TLS mosquitto (with its ACL), the fault proxy between the station and the
broker, the real central ingest (``edge central ingest`` as a subprocess, with a
central certificate, connected to the broker directly), and a real SQLite station
database whose lots the link worker drains.

    station link ──TLS──> FaultProxy ──> mosquitto <──TLS── edge central ingest ──> DB

The link runs in this process (:meth:`SyncRig.link`) or as a process of its own
(:class:`LinkProcess`, ``python -m rigs.sync_support CONFIG.json``) that a test
can SIGKILL. :class:`Storm` drives the faults: lots are recorded in steps, and
after each step one fault hits the link (a cut, a cut after some bytes, a stall)
or the broker (a restart, clean or SIGKILL). The checks (:func:`check_delivery`)
compare central's database with the station's outbox record by record."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge.central.store import CentralStore, open_store
from edge.config import StationConfig, parse_config
from edge.storage.outbox import STREAMS
from edge.storage.store import Store
from edge.sync.downlink import Handler
from edge.sync.link_setup import build_link
from edge.sync.mqtt import MqttSync
from rigs.faultproxy import FaultProxy
from rigs.helpers import Broker, Pki, wait_for
from rigs.ingest import IngestProcess

SITE = "site-a"
CENTRAL = "central:ingest-1"
ROOT = Path(__file__).resolve().parents[1]

FAST_LINK: dict[str, Any] = {
    "batch_max_records": 100,
    "batch_max_age_s": 0.2,
    "ack_timeout_s": 3.0,
    "reconnect_min_s": 0.05,
    "reconnect_max_s": 0.5,
    "keepalive_s": 30,
    "telemetry_every_s": 3600,  # one telemetry record at start: the stream is exercised
}
"""Link settings for tests: small ack time-out and fast back-off, so that faults
cost fractions of a second instead of the field's minutes."""


def station_settings(db: Path, port: int, pki: Pki, site: str = SITE, **mqtt: Any) -> StationConfig:
    """A station whose link dials ``port`` (the proxy) with the site's certificate."""
    return parse_config(
        {
            "site": {"id": site, "key_file": str(db.parent / "site.key")},
            "storage": {"path": str(db)},
            "mqtt": {
                "enabled": True,
                "host": "localhost",
                "port": port,
                "tls": pki.client(site).as_config(),
                **FAST_LINK,
                **mqtt,
            },
        },
        "sync-rig",
    )


# -- the station's side ----------------------------------------------------------------------


class Lots:
    """Records lots through the station's store (lot + print job + outbox row + audit in
    one transaction each), for farmers and products with Vietnamese names."""

    def __init__(self, path: Path, site: str = SITE, seed: int = 5) -> None:
        self.store = Store.open(path, site)
        self.rng = random.Random(seed)
        self.producers = [
            self.store.add_producer(name, village="Nậm Cuổi")["id"]
            for name in ("Vàng A Dơ", "Lò Thị Hương", "Giàng Seo Páo")
        ]
        self.products = [
            self.store.add_product(name, price)["id"]
            for name, price in (("Chè Shan tuyết", 85_000), ("Sâm Lai Châu", 2_500_000))
        ]
        self.recorded = 0

    def record(self, n: int) -> None:
        for _ in range(n):
            tare = self.rng.random() < 0.25
            self.store.record_lot(
                self.rng.choice(self.producers),
                self.rng.choice(self.products),
                self.rng.randint(200, 60_000),
                "ST,GS,+012.345kg",
                tare_g=120 if tare else None,
                tare_source="scale" if tare else None,
            )
        self.recorded += n

    def close(self) -> None:
        self.store.close()


def outbox_statuses(path: Path) -> Counter[str]:
    conn = sqlite3.connect(path)
    try:
        return Counter(s for (s,) in conn.execute("SELECT status FROM outbox"))
    finally:
        conn.close()


def outbox_records(path: Path, stream: str = "records") -> list[dict[str, Any]]:
    """The station's committed records of ``stream`` as central should hold them, by seq."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT kind, seq, body FROM outbox WHERE stream = ? ORDER BY seq", (stream,)
        ).fetchall()
    finally:
        conn.close()
    return [{"type": kind, "seq": seq, **json.loads(body)} for kind, seq, body in rows]


class ChildProcess:
    """A rig's process of its own (``python -m MODULE ARGS...``, its output appended to
    ``log``), started by :meth:`_spawn`, then SIGKILLed (:meth:`kill`) or stopped
    (:meth:`stop`)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, *args: str, what: str) -> None:
        """Start ``python -m *args`` and wait until this start has said ``link started``."""
        mark = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        wait_for(lambda: b"link started" in self.log.read_bytes()[mark:], 20, what)

    def kill(self) -> None:
        """SIGKILL: no offline status, no flush, nothing tidied up."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not ended within 15 s."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None


class LinkProcess(ChildProcess):
    """The station's link worker (edge.sync.link_setup.build_link, as the station wires
    it) in a process of its own over the station's database, to be SIGKILLed."""

    def __init__(self, cfg: StationConfig, workdir: Path) -> None:
        super().__init__(workdir / "link.log")
        self.config_file = workdir / "link-config.json"
        self.config_file.write_text(cfg.model_dump_json())

    def start(self) -> LinkProcess:
        self._spawn("rigs.sync_support", str(self.config_file), what="the link process")
        return self


def run_link(config_file: Path, handlers: Mapping[str, Handler] | None = None) -> None:
    """Run the link of the station configuration ``config_file`` (with the downlink's
    ``handlers``, if any) until SIGTERM; ``link started`` on stdout once it runs."""
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    cfg = parse_config(json.loads(config_file.read_text()), str(config_file))
    store = Store.open(cfg.storage.path, cfg.site.id)
    sync = build_link(cfg, store, handlers=handlers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sync.start()
    print("link started", flush=True)
    stop.wait()
    sync.stop()
    store.close()


# -- the rig ------------------------------------------------------------------------------------


class SyncRig:
    """Broker (shipped TLS config), proxy in front of it, central ingest behind it."""

    def __init__(self, workdir: Path, pki: Pki, central_db: str, site: str = SITE) -> None:
        self.workdir = workdir
        self.site = site
        self.pki = pki
        self.central_db = central_db
        self.station_db = workdir / "station.db"
        self.broker = Broker(workdir / "broker", tls=pki.broker_tls)
        self.proxy = FaultProxy(self.broker.port)
        central = pki.client(CENTRAL)
        self.ingest = IngestProcess(
            self.broker.port,
            central_db,
            CENTRAL,
            "--tls-ca", str(central.ca_file),
            "--tls-cert", str(central.cert_file),
            "--tls-key", str(central.key_file),
        )  # fmt: skip

    def __enter__(self) -> SyncRig:
        self.broker.start()
        self.proxy.start()
        self.ingest.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.ingest.stop()
        finally:
            self.proxy.close()
            self.broker.stop()

    def settings(self, **mqtt: Any) -> StationConfig:
        return station_settings(self.station_db, self.proxy.port, self.pki, self.site, **mqtt)

    @contextmanager
    def link(
        self, handlers: Mapping[str, Handler] | None = None, **mqtt: Any
    ) -> Iterator[MqttSync]:
        """The link worker in this process, on its own connection to the station DB
        (with the downlink's ``handlers``, if any)."""
        store = Store.open(self.station_db, self.site)
        sync = build_link(self.settings(**mqtt), store, handlers=handlers)
        sync.start()
        try:
            yield sync
        finally:
            sync.stop()
            store.close()

    def central(self) -> CentralStore:
        return open_store(self.central_db)

    def diagnostics(self) -> str:
        """What to read when a drain does not finish."""
        return (
            f"\nstation outbox: {dict(outbox_statuses(self.station_db))}"
            f"\nproxy: {self.proxy.stats()}"
            f"\ningest log tail:\n{''.join(self.ingest.lines[-15:])}"
            f"\nbroker log tail:\n{self.broker.log_tail(15)}"
        )


def check_delivery(rig: SyncRig, records: int) -> None:
    """Central holds every record the station committed exactly once, with the body
    the station committed (the records stream: ``records`` of them; the telemetry
    stream: whatever the link made), and every station row is confirmed."""
    expected = {stream: outbox_records(rig.station_db, stream) for stream in STREAMS}
    assert len(expected["records"]) == records
    assert delivered(rig.station_db, records), rig.diagnostics()
    with rig.central() as central:
        for stream, rows in expected.items():
            assert central.seqs(rig.site, stream) == list(range(1, len(rows) + 1)), stream
            got = [central.record(rig.site, stream, seq) for seq in range(1, len(rows) + 1)]
            assert got == rows, f"central's {stream} differ from what the station committed"
        progress = {r.stream: r for r in central.stream_rows() if r.site == rig.site}["records"]
        assert (progress.contiguous, progress.highest, progress.records) == (
            records,
            records,
            records,
        )


# -- faults -----------------------------------------------------------------------------------

Fault = Literal["cut", "reset", "cut_after", "stall", "restart", "kill_broker"]


@dataclass
class Storm:
    """Record ``records`` lots in steps; after each step, one fault of ``plan``.

    ``cut``/``reset``: close the link's connections (FIN / RST); ``cut_after``: record
    100 lots (about 3 kB of batches) and cut once 100-2,000 more bytes have gone up,
    so the cut most likely lands inside a batch's PUBLISH (TLS hides exactly where);
    ``stall``: hold every byte for 1-2.5 s, the last stall 4 s, longer than the ack
    time-out, so batches are also sent again while their first copy waits;
    ``restart``: stop mosquitto cleanly and start it again; ``kill_broker``: SIGKILL
    it and start it again (what it had not saved is lost). Every fault waits for the
    station to be connected through the proxy first, so each cut closes a link."""

    rig: SyncRig
    lots: Lots
    records: int
    plan: list[Fault]
    rng: random.Random = field(default_factory=lambda: random.Random(55))
    done: Counter[str] = field(default_factory=Counter)

    @staticmethod
    def make_plan(
        cuts: int, cut_afters: int, stalls: int, restarts: int, kills: int, seed: int = 5
    ) -> list[Fault]:
        """Link faults shuffled; broker restarts spread evenly among them."""
        rng = random.Random(seed)
        cut_kinds: tuple[Fault, Fault] = ("cut", "reset")
        link: list[Fault] = ["cut_after" for _ in range(cut_afters)]
        link += ["stall" for _ in range(stalls)]
        link += [rng.choice(cut_kinds) for _ in range(cuts - cut_afters)]
        rng.shuffle(link)
        broker: list[Fault] = ["kill_broker" for _ in range(kills)]
        broker += ["restart" for _ in range(restarts - kills)]
        rng.shuffle(broker)
        every = max(1, len(link) // (len(broker) + 1))
        plan = list(link)
        for i, fault in enumerate(broker):
            plan.insert((i + 1) * every + i, fault)
        return plan

    def run(self) -> None:
        steps = len(self.plan)
        for i, fault in enumerate(self.plan):
            target = self.records * (i + 1) // (steps + 1)
            self.lots.record(max(0, target - self.lots.recorded))
            self._wait_link_up()
            time.sleep(self.rng.uniform(0.02, 0.25))  # let some batches go out
            self._apply(fault, last=fault not in self.plan[i + 1 :])
        self.lots.record(max(0, self.records - self.lots.recorded))

    def _wait_link_up(self) -> None:
        proxy = self.rig.proxy
        wait_for(lambda: proxy.active > 0, 20, "the station to reconnect through the proxy")

    def _apply(self, fault: Fault, last: bool) -> None:
        """``last``: no fault of this kind follows in the plan."""
        proxy, broker = self.rig.proxy, self.rig.broker
        if fault in ("cut", "reset"):
            if proxy.cut(reset=fault == "reset"):
                self.done["cut"] += 1
        elif fault == "cut_after":
            before = proxy.stats().cuts
            proxy.cut_after(self.rng.randint(100, 2000), "up")
            self.lots.record(100)  # about 3 kB of batches to cut into
            wait_for(lambda: proxy.stats().cuts > before, 15, "the cut after some bytes")
            self.done["cut_after"] += 1
        elif fault == "stall":
            proxy.stall(4.0 if last else self.rng.uniform(1.0, 2.5))
            self.done["stall"] += 1
        elif fault == "restart":
            broker.restart()
            self.done["restart"] += 1
        elif fault == "kill_broker":
            broker.restart(hard=True)
            self.done["kill_broker"] += 1

    @property
    def cuts(self) -> int:
        return self.done["cut"] + self.done["cut_after"]


def delivered(path: Path, records: int) -> bool:
    """``records`` rows in the records stream, and every row of every stream confirmed."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT sum(stream = 'records'), sum(status != 'confirmed') FROM outbox"
        ).fetchone()
    finally:
        conn.close()
    return bool(rows[0] == records and rows[1] == 0)


def wait_delivered(rig: SyncRig, records: int, timeout: float) -> None:
    """Wait until :func:`delivered` (or fail with the rig's state)."""
    try:
        wait_for(lambda: delivered(rig.station_db, records), timeout, "all confirmed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}{rig.diagnostics()}") from None


if __name__ == "__main__":  # python -m rigs.sync_support CONFIG.json
    run_link(Path(sys.argv[1]))
