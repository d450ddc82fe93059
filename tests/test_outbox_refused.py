"""The station's side of a refusal (docs/mqtt.md "Refusals"), on a real SQLite file:
central refused a batch for good, so its rows become ``refused`` (kept, reported in
the outbox status and telemetry, never sent again, never pruned, never confirmed by a
later ack), and the rows after them go on; migration 0011 keeps every row."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.cli import main
from edge.config import MqttConfig
from edge.storage import db as dbmod
from edge.storage.outbox import Outbox
from edge.storage.store import Store
from edge.sync.envelope import Ack, Refusal, encode_ack
from edge.sync.mqtt import MqttSync
from edge.sync.telemetry import outbox_summary
from rigs.helpers import Broker, wait_for

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def station(path: Path, lots: int) -> tuple[Store, Outbox]:
    store = Store.open(path, "sin-ho-01", now=lambda: NOW)
    producer = store.add_producer("Giàng Thị Mỷ")["id"]
    product = store.add_product("Sâm Lai Châu", 1_200_000)["id"]
    for i in range(lots):
        store.record_lot(producer, product, 1000 + i, "ST,GS,+001.000kg")
    return store, Outbox(store, ack_timeout_s=60, retention_days=1)


def statuses(store: Store) -> dict[int, str]:
    return {r["seq"]: r["status"] for r in store.rows("SELECT seq, status FROM outbox")}


def test_refused_rows_are_kept_reported_and_never_sent_again(tmp_path: Path) -> None:
    store, outbox = station(tmp_path / "s.db", 10)  # seqs 1-12
    first = outbox.next_batch("records", 5, 0, now=NOW)
    assert first is not None and (first.first, first.last) == (1, 5)
    outbox.mark_sent(first, now=NOW)
    # Central refused 1-5 (record 3 invalid) and moved its mark past them.
    why = "invalid_record: record 3 (lot): net_g -5 is not a weight (first bad seq 3)"
    assert outbox.refuse("records", 1, 5, why, now=NOW) == 5
    assert outbox.refuse("records", 1, 5, why, now=NOW) == 0  # told twice: nothing new
    later = NOW + timedelta(hours=2)  # past the ack time-out: sent rows would go again
    again = outbox.next_batch("records", 100, 0, now=later)
    assert again is not None and (again.first, again.last) == (6, 12)
    outbox.mark_sent(again, now=later)
    assert outbox.confirm("records", 12, now=later) == 7
    confirmed = dict.fromkeys(range(6, 13), "confirmed")
    assert statuses(store) == {**dict.fromkeys(range(1, 6), "refused"), **confirmed}
    assert outbox.next_batch("records", 100, 0, now=later + timedelta(days=1)) is None
    assert list(outbox.preview("records", 100)) == []
    status = outbox.stream_status(later)["records"]
    assert (status.depth, status.refused, status.confirmed) == (0, 5, 7)
    assert status.refused_reason == why and status.refused_at is not None
    assert outbox.status(later)["refused"] == 5
    summary = outbox_summary(outbox.stream_status(later), later)
    assert summary["records"]["refused"] == 5
    assert "refused" not in summary["telemetry"]
    assert outbox.prune(now=later + timedelta(days=30)) == 7  # the confirmed ones only
    assert statuses(store) == dict.fromkeys(range(1, 6), "refused")
    store.close()


def test_outbox_status_command_says_what_was_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, outbox = station(tmp_path / "s.db", 2)
    outbox.refuse("records", 3, 4, "invalid_record: net_g 0 (first bad seq 3)")
    store.close()
    config = tmp_path / "station.toml"
    config.write_text(
        f'[site]\nid = "sin-ho-01"\nkey_file = "{tmp_path / "site.key"}"\n'
        f'[storage]\npath = "{tmp_path / "s.db"}"\n'
    )
    assert main(["outbox", "status", "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "REFUSED by central: 2 records records" in err
    assert "net_g 0 (first bad seq 3)" in err


def test_migration_0011_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "station.db"
    [(mine, _, _)] = [m for m in dbmod.migrations() if m[1].endswith("_outbox_refused.sql")]
    old = dbmod.connect(path)
    for number, _name, sql in dbmod.migrations():
        if number < mine:
            old.conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    old.conn.execute(
        "INSERT INTO outbox(stream, seq, kind, record_id, body, status, attempts, created_at, "
        "sent_at, confirmed_at) VALUES "
        "('records', 1, 'lot', 'a', '{\"net_g\":5}', 'confirmed', 1, 't0', 't1', 't2'), "
        "('records', 2, 'lot', 'b', '{\"net_g\":6}', 'sent', 2, 't0', 't1', NULL), "
        "('telemetry', 1, 'telemetry', 'c', '{}', 'pending', 0, 't0', NULL, NULL)"
    )
    before = old.conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    old.close()
    db = dbmod.open_database(path)
    try:
        assert dbmod.schema_version(db) >= mine
        after = db.conn.execute(
            "SELECT id, stream, seq, kind, record_id, body, status, batch_id, attempts, "
            "created_at, sent_at, confirmed_at FROM outbox ORDER BY id"
        ).fetchall()
        assert after == before
        db.conn.execute("UPDATE outbox SET status = 'refused', refusal = 'x' WHERE id = 2")
        indexes = {r[1] for r in db.conn.execute("PRAGMA index_list(outbox)")}
        assert {"outbox_stream_status", "outbox_record", "outbox_confirmed_at"} <= indexes
    finally:
        db.close()


def test_the_link_applies_a_refusal_of_its_own_epoch_only(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Over a real mosquitto: a refusal without this database's epoch (an answer to a
    batch that carried none, which this station never sends: someone else's) is
    ignored; one with it marks the rows refused before the ack's ``upto`` confirms
    the rest, so an ack moving past a refused range never confirms it."""
    caplog.set_level(logging.INFO, logger="edge.sync")
    path = tmp_path / "station.db"
    store, outbox = station(path, 8)  # 10 records
    cfg = MqttConfig(
        enabled=True,
        port=broker.port,
        batch_max_records=50,
        batch_max_age_s=0.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        keepalive_s=30,
    )
    sync = MqttSync(cfg, "sin-ho-01", outbox)
    central = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-central")
    central.connect("127.0.0.1", broker.port)
    central.loop_start()
    sync.start()
    try:
        wait_for(lambda: Counter(statuses(store).values())["sent"] == 10, 10, "sent")

        def ack(a: Ack) -> None:
            central.publish("edge/sin-ho-01/ack", encode_ack(a), qos=1).wait_for_publish(5)

        ack(Ack("records", 0, "", Refusal(1, 10, 1, "epoch_missing", "no epoch")))
        ack(Ack("records", 10, outbox.epoch, Refusal(4, 6, 5, "invalid_record", "net_g 0")))
        wait_for(lambda: statuses(store)[10] == "confirmed", 10, "the ack applied")
        assert statuses(store) == {
            **dict.fromkeys((1, 2, 3, 7, 8, 9, 10), "confirmed"),
            **dict.fromkeys((4, 5, 6), "refused"),
        }
        assert "ignoring central's refusal of records 1-10" in caplog.text
        assert "central refused records 4-6 for good" in caplog.text
        status = outbox.stream_status()["records"]
        assert status.refused == 3 and "net_g 0 (first bad seq 5)" in (status.refused_reason or "")
    finally:
        sync.stop()
        central.disconnect()
        central.loop_stop()
        store.close()
