"""The station database's epoch end to end: the station ignores an ack meant for
another database under its site id, and a station whose database was replaced
(a new SD card, same site id) after central stored the old one's records gets
none of its new records confirmed while central refuses them and reports it
(real mosquitto, real ``edge central ingest``, real SQLite files)."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import MqttConfig
from edge.storage.outbox import Outbox
from edge.storage.store import Store
from edge.sync.envelope import Ack, encode_ack
from edge.sync.mqtt import MqttSync
from rigs.helpers import Broker, Pki, wait_for
from rigs.sync_support import Lots, SyncRig, outbox_records, outbox_statuses, wait_delivered

SITE = "site-a"


def attempts(path: Path) -> Counter[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT attempts FROM outbox WHERE stream = 'records'").fetchall()
    finally:
        conn.close()
    return Counter(a for (a,) in rows)


def test_the_station_ignores_an_ack_for_another_epoch(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.sync")
    path = tmp_path / "station.db"
    store = Store.open(path, SITE)
    producer = store.add_producer("Vàng A Dơ", village="Nậm Cuổi")["id"]
    product = store.add_product("Chè Shan tuyết", 85_000)["id"]
    for i in range(8):
        store.record_lot(producer, product, 500 + i, "ST")  # 10 records in all
    outbox = Outbox(store)
    own = outbox.epoch
    foreign = f"{int(own, 16) ^ 1:016x}"  # another database under this site id
    cfg = MqttConfig(
        enabled=True,
        port=broker.port,
        batch_max_records=50,
        batch_max_age_s=0.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        keepalive_s=30,
    )
    sync = MqttSync(cfg, SITE, outbox)
    central = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-central")
    central.connect("127.0.0.1", broker.port)
    central.loop_start()
    sync.start()
    try:
        wait_for(lambda: outbox_statuses(path)["sent"] == 10, 10, "the batch PUBACKed")

        def ack(a: Ack) -> None:
            central.publish(f"edge/{SITE}/ack", encode_ack(a), qos=1).wait_for_publish(5)

        # In order on one topic from one publisher: the other database's acks (of seqs
        # this station also has), then one of its own.
        ack(Ack("records", 10, foreign))
        ack(Ack("records", 9, foreign))
        ack(Ack("records", 4, own))
        wait_for(lambda: outbox_statuses(path)["confirmed"] == 4, 10, "its own ack")
        assert outbox_statuses(path) == Counter({"confirmed": 4, "sent": 6})
        ignored = [r for r in caplog.records if "ignoring central's ack" in r.getMessage()]
        assert len(ignored) == 1, "logged once"
        assert foreign in ignored[0].getMessage() and own in ignored[0].getMessage()
        assert outbox.stream_status()["records"].ack_conflict_upto is None
        ack(Ack("records", 10))  # a central from before epochs: trusted as before
        wait_for(lambda: outbox_statuses(path)["confirmed"] == 10, 10, "an ack without epoch")
    finally:
        sync.stop()
        central.disconnect()
        central.loop_stop()
        store.close()


def test_a_replaced_station_database_is_refused_and_keeps_its_records(
    tmp_path: Path, tls_pki: Pki
) -> None:
    with SyncRig(tmp_path, tls_pki, f"sqlite:///{tmp_path}/central.db") as rig:
        lots = Lots(rig.station_db)  # 3 producers and 2 products
        lots.record(45)
        old_epoch = Outbox(lots.store).epoch
        with rig.link():
            wait_delivered(rig, 50, 20)
        lots.close()
        old_records = outbox_records(rig.station_db)
        # The SD card is replaced: a new, empty database under the same site id.
        for suffix in ("", "-wal", "-shm"):
            old = rig.station_db.with_name(rig.station_db.name + suffix)
            if old.exists():
                old.rename(tmp_path / f"old-card.db{suffix}")
        lots = Lots(rig.station_db, seed=9)
        lots.record(10)  # seqs 1-15 again: central holds 1-50 of the old database
        new_epoch = Outbox(lots.store).epoch
        assert new_epoch != old_epoch
        try:
            with rig.link():
                # Refused, never confirmed, so sent again after the ack time-out
                # (3 s), and refused again.
                wait_for(lambda: max(attempts(rig.station_db)) >= 2, 15, "a resend")
                wait_for(
                    lambda: rig.ingest.status()["ingest"]["epoch_conflicts"] >= 3,
                    10,
                    "the resend refused",
                )
                status = rig.ingest.status()
        finally:
            lots.close()
        states = outbox_statuses(rig.station_db)
        assert states["confirmed"] == 0, "nothing of the new database is confirmed"
        assert len(outbox_records(rig.station_db)) == 15, "every new record kept"
        with rig.central() as central:
            assert central.seqs(SITE, "records") == list(range(1, 51))
            got = [central.record(SITE, "records", s) for s in range(1, 51)]
            assert got == old_records, "the old database's records are untouched"
        (site,) = status["sites"]
        conflict = site["epoch_conflict"]
        assert (conflict["stored"], conflict["seen"]) == (old_epoch, new_epoch)
        assert status["ingest"]["rejected"] == 0
        assert rig.ingest.saw("the station's database was replaced or cloned")
