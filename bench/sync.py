"""Sync over the real link: wire bytes per record and the 7-day backlog drain.

The parts are the fault tests' (tests/sync_support.py): the station's SQLite
database and link worker (edge.sync.mqtt), the fault proxy counting every byte
both ways, the shipped mutual-TLS mosquitto with its ACL, and ``edge central
ingest`` (a process of its own, SQLite) storing the batches and publishing the
acknowledgements. Only the station-broker leg crosses the proxy, as only it is
the metered village link.

Lots are recorded through the station's store (lot, print job, outbox row and
audit in one transaction) on a simulated clock: one lot every 20-120 s (wall
time, uptime and ids move together), 30 farmers, 5 products, a quarter with a
scale tare, so the records look like a collection point's day, not like a loop.

``sync_wire_bytes_per_record_bN``: every byte through the proxy (TLS handshake,
MQTT CONNECT, the retained status, batches, PUBACKs, central's acks) from the
first connect until the last record is confirmed and the link has said offline
and disconnected, divided by the records; batch size N (``batch_max_records``),
otherwise the shipped defaults (20 batches in flight).

``sync_drain_7day_s``: 3,500 lots waiting (a week at 500 a day), the proxy adding
300 ms each way (a 600 ms round trip, as on a poor mobile link), the shipped
defaults (100 records a batch, 20 in flight): seconds from the connect to the
last acknowledgement (every row confirmed).
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from edge import ids
from edge.storage.store import Store
from edge.sync.link_setup import station_outbox
from edge.sync.mqtt import MqttSync
from rigs.helpers import Pki
from rigs.sync_support import SyncRig

SITE = "lai-chau-sin-ho-01"
"""A site id of a realistic length: it is in every topic."""
WIRE_RUNS = ((1, 2_000), (10, 2_000), (100, 2_000), (1_000, 5_000))
DRAIN_RECORDS = 3_500
DRAIN_LATENCY_MS = 300
SHIPPED = {"batch_max_age_s": 2.0, "ack_timeout_s": 60.0, "keepalive_s": 300}
"""The shipped defaults where the test rig (tests/sync_support.FAST_LINK) differs."""


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
                tare = rng.random() < 0.25
                store.record_lot(
                    rng.choice(producers),
                    rng.choice(products),
                    rng.randint(300, 60_000),
                    "ST,GS,+012.345kg",
                    tare_g=rng.choice((100, 120, 250)) if tare else None,
                    tare_source="scale" if tare else None,
                )
        finally:
            store.close()
    return n


def confirmed(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT count(*) FROM outbox WHERE status = 'confirmed'").fetchone()
        return int(row[0])
    finally:
        conn.close()


@contextmanager
def rig(pki: Pki, workdir: Path) -> Iterator[SyncRig]:
    with SyncRig(workdir, pki, f"sqlite:///{workdir}/central.db", site=SITE) as r:
        yield r


def drain(r: SyncRig, records: int, timeout_s: float = 300.0, **mqtt: object) -> float:
    """Start the link on the waiting records; seconds until all are confirmed."""
    cfg = r.settings(**{**SHIPPED, **mqtt})
    store = Store.open(r.station_db, SITE)
    sync = MqttSync(cfg.mqtt, SITE, station_outbox(cfg, store))  # no telemetry: records only
    t0 = time.perf_counter()
    sync.start()
    try:
        deadline = t0 + timeout_s
        while confirmed(r.station_db) < records:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"not confirmed within {timeout_s} s{r.diagnostics()}")
            time.sleep(0.005)
        return time.perf_counter() - t0
    finally:
        sync.stop()
        store.close()


def wire_bytes(pki: Pki, tmp: Path, batch: int, records: int) -> tuple[float, float]:
    """(bytes per record, seconds) for one batch size."""
    with rig(pki, tmp / f"wire-{batch}") as r:
        record_lots(r.station_db, records, seed=batch)
        r.proxy.reset_counts()  # from the first byte of the connect...
        seconds = drain(r, records, batch_max_records=batch)
        stats = r.proxy.stats()  # ...to the offline status and DISCONNECT after the drain
    return (stats.bytes_up + stats.bytes_down) / records, seconds


def bench_sync() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pki = Pki(tmp / "pki")
        pki.client(SITE)
        for batch, records in WIRE_RUNS:
            per_record, seconds = wire_bytes(pki, tmp, batch, records)
            target = "target <= 30; " if batch == 100 else ""
            print(
                f"sync_wire_bytes_per_record_b{batch} {per_record:.1f}  ({target}{records} "
                f"lots, both ways through the proxy, mutual TLS and connect included; "
                f"drained in {seconds:.1f} s on localhost)",
                flush=True,
            )
        with rig(pki, tmp / "drain") as r:
            record_lots(r.station_db, DRAIN_RECORDS, seed=7)
            r.proxy.latency(DRAIN_LATENCY_MS)
            seconds = drain(r, DRAIN_RECORDS)
        print(
            f"sync_drain_7day_s {seconds:.2f}  (target <= 5; {DRAIN_RECORDS} lots waiting, "
            f"{DRAIN_LATENCY_MS} ms added each way, 100 a batch, 20 batches in flight, "
            "connect to the last acknowledgement)",
            flush=True,
        )


if __name__ == "__main__":
    bench_sync()
