"""The station's link worker against a real mosquitto and a minimal central that
decodes batches and acknowledges them: records are confirmed only after central's
ack, sent again after an ack time-out, and survive a station restart or SIGKILL
mid-drain, each stored once."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.config import MqttConfig, StationConfig, TlsConfig, parse_config
from edge.storage.outbox import Outbox
from edge.storage.store import Store
from edge.sync.connection import config_hash, status_payload, tls_context
from edge.sync.link_setup import build_link
from edge.sync.mqtt import MqttSync
from edge.sync.telemetry import software_version
from edge.sync.usage import LinkUsage
from rigs.helpers import Broker, Pki, wait_for
from rigs.sync_central import TestCentral

SITE = "site-a"


class FakeNow:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def mqtt_cfg(port: int, **keys: Any) -> MqttConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "port": port,
        "batch_max_records": 50,
        "batch_max_age_s": 0.0,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "keepalive_s": 30,
        **keys,
    }
    return MqttConfig(**values)


def seed(store: Store, n: int) -> list[str]:
    producer = store.add_producer("Vàng A Dơ", village="Nậm Cuổi")["id"]
    product = store.add_product("Chè Shan tuyết", 85_000)["id"]
    return [store.record_lot(producer, product, 500 + i, "ST").id for i in range(n)]


def statuses(path: Path) -> Counter[str]:
    conn = sqlite3.connect(path)
    try:
        return Counter(s for (s,) in conn.execute("SELECT status FROM outbox"))
    finally:
        conn.close()


def attempts(path: Path) -> set[int]:
    """How many times the outbox's rows were sent (each value once)."""
    conn = sqlite3.connect(path)
    try:
        return {a for (a,) in conn.execute("SELECT attempts FROM outbox")}
    finally:
        conn.close()


def outbox_records(path: Path) -> list[dict[str, Any]]:
    """Every record of the station's records stream, as its dict, by seq."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT kind, seq, body FROM outbox WHERE stream = 'records' ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [{"type": kind, "seq": seq, **json.loads(body)} for kind, seq, body in rows]


@pytest.fixture
def central(broker: Broker) -> Iterator[TestCentral]:
    c = TestCentral(broker.port)
    yield c
    c.close()


class Steps:
    """Counts the link worker's finished steps, for checks that something did *not*
    happen: they wait until the worker has demonstrably gone round a few more times
    (a positive sync point), not for a time that a loaded machine may not use."""

    def __init__(self, sync: MqttSync) -> None:
        self.done = 0
        step = sync.step

        def counted() -> None:
            try:
                step()
            finally:
                self.done += 1

        sync.step = counted  # type: ignore[method-assign]

    def more(self, n: int = 3, timeout: float = 30.0) -> None:
        """Wait until ``n`` more steps have finished (so ``n - 1`` ran wholly from now)."""
        target = self.done + n
        wait_for(lambda: self.done >= target, timeout, f"{n} more steps of the link worker")


class Link:
    """A link worker on its own Store, as the station runs it."""

    def __init__(self, path: Path, cfg: MqttConfig, now: FakeNow | None = None, **kw: Any):
        self.store = Store.open(path, SITE, now=now) if now else Store.open(path, SITE)
        self.sync = MqttSync(cfg, SITE, Outbox(self.store), **kw)
        self.steps = Steps(self.sync)

    def __enter__(self) -> MqttSync:
        self.sync.start()
        return self.sync

    def __exit__(self, *_exc: object) -> None:
        self.sync.stop()
        self.store.close()


# -- delivery -----------------------------------------------------------------------------


def test_confirmed_only_after_central_acks(
    tmp_path: Path, broker: Broker, central: TestCentral
) -> None:
    path = tmp_path / "station.db"
    writer = Store.open(path, SITE)
    seed(writer, 120)  # 122 records: producer, product, 120 lots
    central.acking = False
    with Link(path, mqtt_cfg(broker.port)) as sync:
        wait_for(lambda: sync.status == "online", 10, "the link online")
        wait_for(lambda: statuses(path)["sent"] == 122, 15, "every batch PUBACKed")
        assert statuses(path)["confirmed"] == 0, "a PUBACK confirms nothing"
        # the broker's PUBACK to the station comes before its delivery to central
        wait_for(lambda: central.upto(SITE) == 122, 10, "central has every record")
        assert statuses(path)["confirmed"] == 0, "nothing is confirmed before central acks"
        central.acking = True
        central.ack_all()
        wait_for(lambda: statuses(path)["confirmed"] == 122, 10, "central's ack confirming")
        seed(writer, 5)  # while online: out within the batch age, acked at once
        wait_for(lambda: statuses(path)["confirmed"] == 129, 10, "new records confirmed")
    writer.close()
    assert central.records(SITE) == outbox_records(path), "central holds what was recorded"
    assert [r["type"] for r in central.records(SITE)][:3] == ["producer", "product", "lot"]
    assert max(central.deliveries.values()) == 1, "each record sent once"
    assert central.batch_ids[0] == "records:1-50:1"


def test_status_online_with_version_and_config_hash_then_offline(
    tmp_path: Path, broker: Broker, central: TestCentral
) -> None:
    cfg = parse_config({"site": {"id": SITE}, "mqtt": {"enabled": True, "port": broker.port}})
    digest = config_hash(cfg)
    again = StationConfig.model_validate(cfg.model_dump())
    assert len(digest) == 12 and digest == config_hash(again)
    other = parse_config({"site": {"id": SITE}, "mqtt": {"enabled": True, "keepalive_s": 61}})
    assert config_hash(other) != digest
    with Link(tmp_path / "s.db", mqtt_cfg(broker.port), cfg_hash=digest, version="1.2.3"):
        wait_for(lambda: central.status.get(SITE, {}).get("state") == "online", 10, "online")
        online = {"state": "online", "version": "1.2.3", "config_hash": digest}
        assert central.status[SITE] == online
    wait_for(lambda: central.status[SITE] == {"state": "offline"}, 10, "offline on stop")
    assert json.loads(status_payload("offline")) == {"state": "offline"}


def test_resent_after_ack_timeout(tmp_path: Path, broker: Broker, central: TestCentral) -> None:
    path = tmp_path / "station.db"
    now = FakeNow()
    writer = Store.open(path, SITE, now=now)
    seed(writer, 48)  # 50 records: one batch
    central.acking = False
    link = Link(path, mqtt_cfg(broker.port, ack_timeout_s=60), now=now)
    with link:
        wait_for(lambda: statuses(path)["sent"] == 50, 10, "the batch PUBACKed")
        central.acking = True  # central is back, but lost what it had not acknowledged
        with central._lock:
            central.stored.clear()
        now.advance(59)
        link.steps.more()  # the worker went round with 59 s gone: still nothing to resend
        assert attempts(path) == {1}, "not resent before the time-out"
        assert central.batch_ids == ["records:1-50:1"], "not resent before the time-out"
        now.advance(2)
        wait_for(lambda: statuses(path)["confirmed"] == 50, 10, "resent and confirmed")
    assert central.batch_ids == ["records:1-50:1", "records:1-50:2"]
    assert attempts(path) == {2}
    assert [r["seq"] for r in central.records(SITE)] == list(range(1, 51))


def test_broker_down_then_back(tmp_path: Path, broker: Broker, central: TestCentral) -> None:
    path = tmp_path / "station.db"
    writer = Store.open(path, SITE)
    with Link(path, mqtt_cfg(broker.port)) as sync:
        wait_for(lambda: sync.status == "online", 10, "online")
        broker.stop()
        wait_for(lambda: sync.status == "offline", 10, "offline")
        seed(writer, 30)
        assert statuses(path)["pending"] == 32
        broker.start()
        wait_for(lambda: statuses(path)["confirmed"] == 32, 20, "drained after the outage")
    writer.close()
    assert [r["seq"] for r in central.records(SITE)] == list(range(1, 33))


def test_telemetry_goes_out_coalesced(tmp_path: Path, broker: Broker, central: TestCentral) -> None:
    taken: list[datetime] = []

    def telemetry(when: datetime) -> dict[str, Any]:
        taken.append(when)
        return {"type": "telemetry", "recorded_at": when.isoformat(), "n": len(taken)}

    cfg = mqtt_cfg(broker.port, telemetry_every_s=10)
    with Link(tmp_path / "s.db", cfg, telemetry=telemetry) as sync:
        wait_for(lambda: central.records(SITE, "telemetry"), 10, "a telemetry record")
        assert sync.status == "online"
    [record] = central.records(SITE, "telemetry")
    assert (record["type"], record["seq"], record["n"]) == ("telemetry", 1, 1)


# -- restarts -------------------------------------------------------------------------------


def test_station_restart_mid_drain(tmp_path: Path, broker: Broker, central: TestCentral) -> None:
    path = tmp_path / "station.db"
    writer = Store.open(path, SITE)
    seed(writer, 1998)  # 2000 records, 40 batches of 50
    writer.close()
    cfg = mqtt_cfg(broker.port, max_inflight_batches=1)
    with Link(path, cfg):
        wait_for(lambda: statuses(path)["confirmed"] >= 300, 20, "part of the drain")
    assert statuses(path)["confirmed"] < 2000, "stopped mid-drain"
    with Link(path, cfg):
        wait_for(lambda: statuses(path)["confirmed"] == 2000, 60, "the rest after a restart")
    assert [r["seq"] for r in central.records(SITE)] == list(range(1, 2001))
    assert central.records(SITE) == outbox_records(path)


STATION = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from edge.config import MqttConfig
    from edge.storage.outbox import Outbox
    from edge.storage.store import Store
    from edge.sync.mqtt import MqttSync
    store = Store.open(Path(sys.argv[1]), "site-a")
    cfg = MqttConfig(enabled=True, port=int(sys.argv[2]), batch_max_records=20,
                     batch_max_age_s=0, max_inflight_batches=1, keepalive_s=30,
                     reconnect_min_s=0.1, reconnect_max_s=0.5)
    sync = MqttSync(cfg, "site-a", Outbox(store))
    sync.start()
    print("started", flush=True)
    time.sleep(3600)
    """
)


def test_sigkill_mid_drain_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, broker: Broker, central: TestCentral
) -> None:
    path = tmp_path / "station.db"
    writer = Store.open(path, SITE)
    seed(writer, 1498)  # 1500 records, 75 batches of 20
    writer.close()

    def run() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", STATION, str(path), str(broker.port)],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    proc = run()
    try:
        wait_for(lambda: central.upto(SITE) >= 200, 30, "part of the drain")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: central.status.get(SITE) == {"state": "offline"}, 10, "the last will")
        before = statuses(path)
        assert before["confirmed"] < 1500 and sum(before.values()) == 1500
        proc = run()
        wait_for(lambda: statuses(path)["confirmed"] == 1500, 60, "the rest after SIGKILL")
    finally:
        proc.kill()
        proc.wait(10)
    assert [r["seq"] for r in central.records(SITE)] == list(range(1, 1501))
    assert central.records(SITE) == outbox_records(path)
    assert not central.rejected


# -- mutual TLS -----------------------------------------------------------------------------


def test_over_mutual_tls_with_the_shipped_broker_config(tmp_path: Path, tls_pki: Pki) -> None:
    with Broker(tmp_path / "tls-broker", tls=tls_pki.broker_tls) as broker:
        central = TestCentral(
            broker.port, tls=tls_pki.client("central:ingest-1"), client_id="central:ingest-1"
        )
        try:
            path = tmp_path / "station.db"
            writer = Store.open(path, SITE)
            seed(writer, 10)
            writer.close()
            tls = tls_pki.client(SITE).as_config()
            cfg = mqtt_cfg(broker.port, host="localhost", tls=tls)
            with Link(path, cfg) as sync:
                wait_for(lambda: statuses(path)["confirmed"] == 12, 15, "confirmed over TLS")
                assert sync.status == "online"
        finally:
            central.close()
    assert [r["seq"] for r in central.records(SITE)] == list(range(1, 13))


# -- wired as the station wires it: telemetry, byte count, budget ---------------------------


def test_built_link_sends_telemetry_and_counts_its_bytes(
    tmp_path: Path, broker: Broker, central: TestCentral
) -> None:
    cfg = parse_config(
        {
            "site": {"id": SITE},
            "storage": {"path": str(tmp_path / "s.db")},
            "mqtt": {"enabled": True, "port": broker.port, "reconnect_min_s": 0.1},
        }
    )
    store = Store.open(cfg.storage.path, SITE)
    devices = {"scale": {"status": "stable"}, "printer": {"status": "ready"}}
    sync = build_link(cfg, store, devices=lambda: devices)
    sync.start()
    try:
        wait_for(lambda: central.records(SITE, "telemetry"), 10, "a telemetry record")
        wait_for(lambda: statuses(cfg.storage.path)["confirmed"] == 1, 10, "it confirmed")
    finally:
        sync.stop()
    [record] = central.records(SITE, "telemetry")
    assert record["type"] == "telemetry" and record["version"] == software_version()
    assert record["devices"] == devices
    assert record["outbox"]["records"] == {"depth": 0, "oldest_age_s": None}
    assert isinstance(record["clock_synced"], bool) and record["disk_free_mb"] > 0
    wait_for(lambda: central.status.get(SITE) == {"state": "offline"}, 10, "offline said")
    months = LinkUsage(store).history()  # whichever month(s) the link ran in
    bytes_out, bytes_in = sum(m.bytes_out for m in months), sum(m.bytes_in for m in months)
    assert bytes_out > 300 and bytes_in > 20, "TLS-less MQTT bytes, counted"
    store.close()


def test_budget_holds_back_bulk_never_records(
    tmp_path: Path, broker: Broker, central: TestCentral
) -> None:
    path = tmp_path / "s.db"
    now = FakeNow()  # one month for the whole test, whatever the real date
    writer = Store.open(path, SITE, now=now)
    LinkUsage(writer).add(900_000, 0, now())  # 90 % of 1 MB used this month
    Outbox(writer).add("bulk", "thumbnail", {"id": "t1", "lot_id": "l1", "jpeg_bytes": 9000})
    seed(writer, 3)
    cfg = mqtt_cfg(broker.port, monthly_budget_mb=1.0)
    link = Link(path, cfg, now=now)
    link.sync.usage = LinkUsage(link.store)
    with link:
        wait_for(lambda: statuses(path)["confirmed"] == 5, 10, "the records confirmed")
        link.steps.more()  # went round after the records: the thumbnail still held back
    assert statuses(path)["pending"] == 1, "the thumbnail waits for next month"
    assert central.records(SITE, "bulk") == []


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_scheduled_link_opens_for_a_backlog_or_on_time_and_closes_when_done(
    tmp_path: Path, broker: Broker, central: TestCentral
) -> None:
    path = tmp_path / "s.db"
    writer = Store.open(path, SITE)
    seed(writer, 1)  # 3 records
    mono = FakeMonotonic()
    cfg = mqtt_cfg(broker.port, connect_every_min=10, connect_backlog=5)
    link = Link(path, cfg, monotonic=mono)
    with link as sync:
        wait_for(lambda: statuses(path)["confirmed"] == 3, 10, "the first window's drain")
        wait_for(lambda: sync.status == "offline", 10, "the link closed until the next window")
        wait_for(lambda: central.status.get(SITE) == {"state": "offline"}, 10, "offline said")
        producer = writer.list_producers()[0]["id"]
        product = writer.list_products()[0]["id"]
        for i in range(4):
            writer.record_lot(producer, product, 100 + i, "ST")
        link.steps.more()  # went round with the 4 records there: not opened for them
        assert sync.status == "offline" and statuses(path)["pending"] == 4, "4 < backlog of 5"
        writer.record_lot(producer, product, 200, "ST")
        wait_for(lambda: statuses(path)["confirmed"] == 8, 10, "opened early for the backlog")
        wait_for(lambda: sync.status == "offline", 10, "closed again")
        writer.record_lot(producer, product, 300, "ST")
        link.steps.more()  # went round with it there: it waits for the next window
        assert statuses(path)["pending"] == 1
        mono.t += 600  # ten minutes: the next window
        wait_for(lambda: statuses(path)["confirmed"] == 9, 10, "sent in the next window")
    writer.close()
    assert [r["seq"] for r in central.records(SITE)] == list(range(1, 10))


def test_tls_checks_the_configured_server_name(tmp_path: Path, tls_pki: Pki) -> None:
    """``[mqtt.tls] server_hostname`` is the name checked in the broker's certificate,
    whatever address is dialled."""
    files = tls_pki.client(SITE).as_config()
    with Broker(tmp_path / "tls-broker", tls=tls_pki.broker_tls) as broker:
        good = tls_context(TlsConfig(**files, server_hostname="localhost"))
        address = ("127.0.0.1", broker.port)
        with (
            socket.create_connection(address, timeout=5) as raw,
            good.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            assert conn.getpeercert() is not None
        wrong = tls_context(TlsConfig(**files, server_hostname="broker.elsewhere.example"))
        with (
            socket.create_connection(address, timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match=r"broker\.elsewhere\.example"),
        ):
            wrong.wrap_socket(raw, server_hostname="127.0.0.1")
