"""Outbox v2 on a real SQLite file: streams with gapless seqs, batches by count and
age, sent on PUBACK, confirmed by central's ack, resent after an ack time-out,
coalesced telemetry, pruning, status, and the migration of v1 rows."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zstandard

from edge import clock
from edge.cli import main
from edge.storage import db as dbmod
from edge.storage.outbox import Outbox, add
from edge.storage.store import NotFound, Store
from edge.sync.envelope import decode_batch, encode_batch
from edge.sync.records import LOTS


class FakeNow:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def now() -> FakeNow:
    return FakeNow()


@pytest.fixture
def store(tmp_path: Path, now: FakeNow) -> Store:
    return Store.open(tmp_path / "s.db", "sin-ho-01", now=now)


@pytest.fixture
def outbox(store: Store) -> Outbox:
    return Outbox(store, ack_timeout_s=60, retention_days=30)


def catalogue(store: Store) -> tuple[str, str]:
    producer = store.add_producer("Giàng Thị Mỷ", phone="0912 345 678", village="Bản Phìn Hồ")
    product = store.add_product("Sâm Lai Châu", 1_200_000)
    return producer["id"], product["id"]


def lots(store: Store, n: int, now: FakeNow | None = None) -> list[str]:
    producer, product = catalogue(store)
    out = []
    for i in range(n):
        tare, source = (350, "software") if i % 3 == 0 else (None, None)
        lot = store.record_lot(
            producer, product, 1000 + i, f"ST,GS,{i}", tare_g=tare, tare_source=source
        )
        out.append(lot.id)
        if now is not None:
            now.advance(1)
    return out


def rows(store: Store, stream: str = "records") -> list[dict[str, Any]]:
    return store.rows("SELECT * FROM outbox WHERE stream = ? ORDER BY seq", (stream,))


# -- adding rows -------------------------------------------------------------------------------


def test_records_carry_their_fields_and_the_time_stamp(store: Store, outbox: Outbox) -> None:
    lot_id = lots(store, 1)[0]
    batch = outbox.next_batch("records", 3, 0)
    assert batch is not None and (batch.first, batch.last) == (1, 3)
    producer, product, lot = batch.records
    assert producer == {
        "type": "producer",
        "seq": 1,
        "id": producer["id"],
        "name": "Giàng Thị Mỷ",
        "phone": "0912 345 678",
        "village": "Bản Phìn Hồ",
        "recorded_at": "2026-11-23T03:00:00.000Z",
        "boot_id": clock.boot_id(),
        "uptime_s": producer["uptime_s"],
        "clock_synced": producer["clock_synced"],
    }
    assert (product["type"], product["name"], product["unit_price_dong"]) == (
        "product",
        "Sâm Lai Châu",
        1_200_000,
    )
    assert lot == {
        "type": "lot",
        "seq": 3,
        "id": lot_id,
        "producer_id": producer["id"],
        "product_id": product["id"],
        "net_g": 1000,
        "day_no": 1,  # the daily lot number staff see (issue 12)
        "tare_g": 350,
        "tare_source": "software",
        "recorded_at": "2026-11-23T03:00:00.000Z",
        "boot_id": clock.boot_id(),
        "uptime_s": lot["uptime_s"],
        "clock_synced": lot["clock_synced"],
    }
    assert isinstance(lot["uptime_s"], float) and isinstance(lot["clock_synced"], bool)
    data = encode_batch(batch)
    assert decode_batch(data) == batch
    assert (
        json.loads(rows(store)[2]["body"])["uptime_s"]
        == store.rows("SELECT uptime_s FROM lots")[0]["uptime_s"]
    )


def test_station_lots_fit_the_compact_columns(store: Store, outbox: Outbox) -> None:
    lots(store, 50)
    batch = outbox.next_batch("records", 100, 0)
    assert batch is not None
    body = cbor2.loads(zstandard.ZstdDecompressor().decompress(encode_batch(batch)))
    kinds = [seg[0] for seg in body["records"][1:]]
    assert kinds[-1] == LOTS and len(body["records"][-1][4]) == 50 * 10, "50 lots as columns"


def test_seq_is_gapless_per_stream_and_a_failed_write_takes_none(
    store: Store, outbox: Outbox
) -> None:
    producer, product = catalogue(store)
    with pytest.raises(NotFound):
        store.record_lot(producer, "no-such-product", 500, "x")
    store.record_lot(producer, product, 500, "x")
    outbox.put_telemetry({"type": "telemetry", "up": 1})
    outbox.add("bulk", "thumbnail", {"id": "t1", "lot": "x"})
    assert [r["seq"] for r in rows(store)] == [1, 2, 3]
    assert [r["seq"] for r in rows(store, "telemetry")] == [1]
    assert [r["seq"] for r in rows(store, "bulk")] == [1]
    with pytest.raises(ValueError, match="unknown outbox stream 'photos'"), store.write() as db:
        add(db, "photos", "x", "id", {})
    with pytest.raises(ValueError, match="differs from kind"):
        outbox.add("records", "lot", {"type": "producer"})
    streams = {r["stream"]: r["last_seq"] for r in store.rows("SELECT * FROM outbox_streams")}
    assert streams == {"records": 3, "telemetry": 1, "bulk": 1}


# -- batches -----------------------------------------------------------------------------------


def test_batches_by_count_and_age(store: Store, outbox: Outbox, now: FakeNow) -> None:
    catalogue(store)  # 2 records
    assert outbox.next_batch("records", 5, 2.0) is None, "too few and too young"
    now.advance(1.9)
    assert outbox.next_batch("records", 5, 2.0) is None
    now.advance(0.2)
    batch = outbox.next_batch("records", 5, 2.0)
    assert batch is not None and (batch.first, batch.last, batch.batch_id) == (
        1,
        2,
        "records:1-2:1",
    )
    assert outbox.next_batch("records", 5, 0) is None, "claimed rows are not handed out twice"
    lots(store, 8)  # seq 3-12: its own catalogue (2) and 8 lots
    full = outbox.next_batch("records", 5, 3600)
    assert full is not None and (full.first, full.last) == (3, 7), "a full batch leaves at once"
    assert outbox.next_batch("records", 5, 3600) is not None  # 8-12: full again
    assert outbox.next_batch("records", 5, 3600) is None  # nothing left
    lots(store, 1)  # 13-15
    assert outbox.next_batch("records", 5, 3600) is None, "3 young rows wait"


def test_clock_going_back_does_not_hold_a_batch(store: Store, outbox: Outbox, now: FakeNow) -> None:
    catalogue(store)
    now.advance(-86_400)  # NTP corrected a wrong clock backwards by a day
    assert outbox.next_batch("records", 5, 2.0) is not None


def test_sent_confirmed_and_resent_after_ack_timeout(
    store: Store, outbox: Outbox, now: FakeNow
) -> None:
    lots(store, 3)  # 5 records
    first = outbox.next_batch("records", 3, 0)
    second = outbox.next_batch("records", 3, 0)
    assert first is not None and second is not None
    assert (first.first, first.last, second.first, second.last) == (1, 3, 4, 5)
    assert outbox.mark_sent(first) == 3
    assert outbox.mark_sent(first) == 0, "a second PUBACK changes nothing"
    assert outbox.release(second) == 2, "no PUBACK: unclaimed, offered again"
    again = outbox.next_batch("records", 3, 0)
    assert again is not None and again.batch_id == "records:4-5:1"
    outbox.mark_sent(again)
    statuses = [r["status"] for r in rows(store)]
    assert statuses == ["sent"] * 5
    assert outbox.confirm("records", 2) == 2
    now.advance(59)
    assert outbox.next_batch("records", 10, 0) is None, "unconfirmed, but not timed out yet"
    now.advance(2)
    resend = outbox.next_batch("records", 10, 0)
    assert resend is not None
    assert (resend.first, resend.last, resend.batch_id) == (3, 5, "records:3-5:2")
    assert [r["seq"] for r in resend.records] == [3, 4, 5]
    outbox.mark_sent(resend)
    assert outbox.confirm("records", 5) == 3
    assert [r["status"] for r in rows(store)] == ["confirmed"] * 5
    assert [r["attempts"] for r in rows(store)] == [1, 1, 2, 2, 2]
    assert outbox.next_batch("records", 10, 0) is None


def test_ack_beyond_last_seq_confirms_nothing_and_is_reported(
    store: Store, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Central holds seqs this station never assigned (a replaced database, or a site id
    used twice): confirming would mark this station's records delivered while central
    drops them as duplicates, so nothing is confirmed and the conflict is reported."""
    catalogue(store)
    assert outbox.confirm("records", 500) == 0
    assert "beyond the last this station assigned (2)" in caplog.text
    status = outbox.stream_status()["records"]
    assert (status.confirmed_upto, status.ack_conflict_upto) == (0, 500)
    assert status.ack_conflict_at is not None
    assert outbox.status()["ack_conflict"] is True
    lots(store, 1)  # its catalogue: 3, 4; the lot: 5
    assert [r["status"] for r in rows(store)] == ["pending"] * 5
    # The conflict survives a restart of the station (a new Outbox on the same file).
    assert Outbox(store).stream_status()["records"].ack_conflict_upto == 500
    # An ordinary ack is still applied.
    assert outbox.confirm("records", 2) == 2


def test_every_database_has_its_own_epoch_and_every_batch_carries_it(
    tmp_path: Path, store: Store, outbox: Outbox
) -> None:
    epoch = outbox.epoch
    assert len(epoch) == 16 and int(epoch, 16) >= 0 and epoch == epoch.lower()
    lots(store, 3)
    batch = outbox.next_batch("records", 100, 0)
    assert batch is not None and batch.epoch == epoch
    assert decode_batch(encode_batch(batch)).epoch == epoch
    assert all(b.epoch == epoch for b in outbox.preview("records", 2))
    # Kept across a restart; another database (a new SD card, same site id) has another.
    again = Store.open(tmp_path / "s.db", "sin-ho-01")
    other = Store.open(tmp_path / "new-card.db", "sin-ho-01")
    try:
        assert Outbox(again).epoch == epoch
        assert Outbox(other).epoch != epoch
    finally:
        again.close()
        other.close()
    with pytest.raises(sqlite3.IntegrityError), store.write() as db:  # one row, made once
        db.execute("INSERT INTO station_epoch(id, epoch) VALUES (2, '0123456789abcdef')")


def test_an_existing_database_gets_an_epoch_when_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "before.db"
    real = dbmod.migrations()
    monkeypatch.setattr(dbmod, "migrations", lambda: [m for m in real if m[0] < 9])
    old = Store.open(path, "sin-ho-01")
    catalogue(old)  # records written at schema 8 (today's lots need columns of later ones)
    old.add_producer("Lò Văn Sáng")
    old.add_product("Chè Shan tuyết")
    old.close()
    monkeypatch.setattr(dbmod, "migrations", lambda: real)
    store = Store.open(path, "sin-ho-01")
    epoch = Outbox(store).epoch
    assert len(epoch) == 16 and set(epoch) <= set("0123456789abcdef")
    assert [r["seq"] for r in rows(store)] == [1, 2, 3, 4]  # nothing lost on the way
    batch = Outbox(store).next_batch("records", 100, 0)
    store.close()
    assert batch is not None and batch.epoch == epoch


def test_release_claims_at_start(store: Store, outbox: Outbox) -> None:
    catalogue(store)
    assert outbox.next_batch("records", 5, 0) is not None
    assert outbox.next_batch("records", 5, 0) is None
    assert Outbox(store).release_claims() == 2  # a new process: nothing is in flight
    assert outbox.next_batch("records", 5, 0) is not None


# -- telemetry -------------------------------------------------------------------------------


def test_telemetry_is_coalesced_without_gaps(store: Store, outbox: Outbox, now: FakeNow) -> None:
    for i in range(5):
        assert outbox.put_telemetry({"type": "telemetry", "n": i}) == 1
        now.advance(300)
    [row] = rows(store, "telemetry")
    assert json.loads(row["body"]) == {"n": 4}
    batch = outbox.next_batch("telemetry", 1, 0)
    assert batch is not None and batch.records[0]["n"] == 4
    assert outbox.put_telemetry({"type": "telemetry", "n": 5}) == 2, "claimed: not rewritten"
    assert outbox.put_telemetry({"type": "telemetry", "n": 6}) == 2
    assert [json.loads(r["body"])["n"] for r in rows(store, "telemetry")] == [4, 6]
    outbox.mark_sent(batch)
    second = outbox.next_batch("telemetry", 1, 0)
    assert second is not None and (second.first, second.records[0]["n"]) == (2, 6)


# -- pruning, status ---------------------------------------------------------------------------


def test_prune_only_confirmed_rows_past_retention(
    store: Store, outbox: Outbox, now: FakeNow
) -> None:
    lots(store, 2)  # 4 records
    batch = outbox.next_batch("records", 2, 0)
    assert batch is not None
    outbox.mark_sent(batch)
    outbox.confirm("records", 2)
    now.advance(29 * 86_400)
    assert outbox.prune() == 0
    now.advance(2 * 86_400)
    assert outbox.prune() == 2
    now.advance(365 * 86_400)
    assert outbox.prune() == 0, "unconfirmed rows are never dropped"
    assert [r["seq"] for r in rows(store)] == [3, 4]
    lots(store, 1)  # numbering goes on after the pruned rows
    assert [r["seq"] for r in rows(store)] == [3, 4, 5, 6, 7]


def test_status_per_stream(store: Store, outbox: Outbox, now: FakeNow) -> None:
    lots(store, 3, now)  # 5 records, created at t, t, t, t+1, t+2
    outbox.put_telemetry({"type": "telemetry", "x": 1})
    batch = outbox.next_batch("records", 2, 0)
    assert batch is not None
    outbox.mark_sent(batch)
    now.advance(10)
    outbox.confirm("records", 1)
    status = outbox.status()
    records = status["streams"]["records"]
    assert (records["depth"], records["pending"], records["sent"], records["confirmed"]) == (
        4,
        3,
        1,
        1,
    )
    assert records["oldest_at"] == "2026-11-23T03:00:00.000Z"
    assert records["oldest_age_s"] == 13.0
    assert records["last_confirmed_at"] == "2026-11-23T03:00:13.000Z"
    assert (records["last_seq"], records["confirmed_upto"]) == (5, 1)
    assert status["streams"]["telemetry"]["depth"] == 1
    assert status["streams"]["bulk"]["depth"] == 0
    assert status["pending"] == 4 and status["oldest_pending_at"] == records["oldest_at"]
    unconfirmed = store.rows("SELECT body FROM outbox WHERE status != 'confirmed'")
    body_bytes = sum(len(r["body"].encode()) for r in unconfirmed)
    assert status["pending_bytes"] == body_bytes
    assert status["disk"]["nearly_full"] is False and status["disk"]["free_mb"] > 0


def test_disk_nearly_full_is_reported_and_nothing_dropped(store: Store) -> None:
    lots(store, 2)
    full = Outbox(store, min_free_mb=10**12)  # more than any disk: "nearly full"
    status = full.status()
    assert status["disk"]["nearly_full"] is True
    assert status["pending"] == 4 and full.prune() == 0


# -- migration from v1 ---------------------------------------------------------------------------


def test_v1_outbox_rows_migrate_without_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    real = dbmod.migrations()
    v1 = [m for m in real if m[0] < 5]
    monkeypatch.setattr(dbmod, "migrations", lambda: v1)
    old = dbmod.open_database(path)
    conn = old.conn
    t = "2026-11-20T08:00:00.000Z"
    conn.execute("INSERT INTO site_sequence VALUES ('s', 9)")
    conn.execute(
        "INSERT INTO producers(id, seq, site_id, name, phone, village, created_at) "
        "VALUES ('p1', 1, 's', 'Lò Thị Hoa', NULL, 'Nậm Tăm', ?)",
        [t],
    )
    conn.execute(
        "INSERT INTO products(id, seq, site_id, name, unit_price_dong, created_at) "
        "VALUES ('g1', 2, 's', 'Chè', 50000, ?)",
        [t],
    )
    lot_sql = (
        "INSERT INTO lots(id, seq, site_id, producer_id, product_id, net_g, scale_frame, "
        "recorded_at, boot_id, uptime_s, tare_g, tare_source) VALUES (?, ?, 's', 'p1', 'g1', "
        "?, 'f', ?, 'b00t', 12.345, ?, ?)"
    )
    for lot_id, seq, net, tare, source in [
        ("l1", 3, 900, None, None),
        ("l2", 4, 800, 100, "scale"),
        ("l3", 5, 700, None, None),
    ]:
        conn.execute(lot_sql, [lot_id, seq, net, t, tare, source])
        status = "sent" if lot_id == "l1" else "pending"
        conn.execute(
            "INSERT INTO outbox(stream, topic, record_id, seq, payload, status, created_at) "
            "VALUES ('records', 'lots', ?, ?, ?, ?, ?)",
            [lot_id, seq, json.dumps({"v": 1, "type": "lot", "id": lot_id}), status, t],
        )
    conn.execute(  # a v1 row whose lot row is gone: kept whole
        "INSERT INTO outbox(stream, topic, record_id, seq, payload, status, created_at) "
        "VALUES ('records', 'lots', 'l9', 9, ?, 'pending', ?)",
        [json.dumps({"v": 1, "type": "lot", "site": "s", "seq": 9, "id": "l9", "net_g": 5}), t],
    )
    old.close()

    monkeypatch.setattr(dbmod, "migrations", lambda: real)
    store = Store.open(path, "s")
    got = [(r["seq"], r["kind"], r["record_id"], json.loads(r["body"])) for r in rows(store)]
    unknown = {"boot_id": "unknown", "uptime_s": None, "clock_synced": False, "recorded_at": t}
    assert got == [
        (1, "producer", "p1", {"id": "p1", "name": "Lò Thị Hoa", "phone": None,
                               "village": "Nậm Tăm", **unknown}),
        (2, "product", "g1", {"id": "g1", "name": "Chè", "unit_price_dong": 50000, **unknown}),
        (3, "lot", "l2", {"id": "l2", "producer_id": "p1", "product_id": "g1", "net_g": 800,
                          "tare_g": 100, "tare_source": "scale", "recorded_at": t,
                          "boot_id": "b00t", "uptime_s": 12.345, "clock_synced": False}),
        (4, "lot", "l3", {"id": "l3", "producer_id": "p1", "product_id": "g1", "net_g": 700,
                          "recorded_at": t, "boot_id": "b00t", "uptime_s": 12.345,
                          "clock_synced": False}),
        (5, "lot", "l9", {"id": "l9", "net_g": 5}),
    ]  # fmt: skip
    assert store.rows("SELECT count(*) AS n FROM outbox_v1")[0]["n"] == 4, "v1 rows kept"
    lots(store, 1)
    assert [r["seq"] for r in rows(store)][-3:] == [6, 7, 8], "numbering continues"
    batch = Outbox(store).next_batch("records", 100, 0)
    assert batch is not None and decode_batch(encode_batch(batch)) == batch
    [copy] = list(tmp_path.glob("old.db.v4-*.bak"))
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM outbox").fetchone() == (4,)


# -- the clock -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "synced"),
    [
        (0, 0x0001, True),  # TIME_OK, STA_PLL
        (1, 0x2001, True),  # TIME_INS (leap second pending) is still synchronised
        (0, 0x0040, False),  # STA_UNSYNC
        (0, 0x2041, False),
        (5, 0x0000, False),  # TIME_ERROR
        (-1, 0, False),  # the call failed
    ],
)
def test_clock_sync_decoding(state: int, status: int, synced: bool) -> None:
    assert clock.synchronised(state, status) is synced


def test_clock_reads_the_kernel() -> None:
    state, status = clock.read_adjtimex()
    assert state in range(6) and status >= 0, "a real adjtimex answer"
    assert clock.clock_synced() is clock.synchronised(state, status)
    stamp = clock.stamp(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    assert stamp["recorded_at"] == "2026-01-02T03:04:05.678Z"
    assert stamp["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert stamp["uptime_s"] > 0 and isinstance(stamp["clock_synced"], bool)


# -- the CLI ---------------------------------------------------------------------------------


def test_outbox_cli_status_and_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], now: FakeNow
) -> None:
    config = tmp_path / "station.toml"
    db_path = tmp_path / "station.db"
    config.write_text(f'[site]\nid = "sin-ho-01"\n[storage]\npath = "{db_path}"\n')
    store = Store.open(db_path, "sin-ho-01", now=now)
    lots(store, 3)
    Outbox(store).put_telemetry({"type": "telemetry", "disk_free_mb": 812})
    store.close()

    assert main(["outbox", "status", "--config", str(config), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["streams"]["records"]["depth"] == 5
    assert status["streams"]["telemetry"]["depth"] == 1
    assert main(["outbox", "status", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "records" in text and "5" in text and "telemetry" in text

    assert main(["outbox", "show", "--config", str(config), "--limit", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [b["batch"] for b in shown] == ["records:1-5:1", "telemetry:1-1:1"]
    first = shown[0]
    assert (first["v"], first["site"], first["first"], first["last"], first["schema"]) == (
        2,
        "sin-ho-01",
        1,
        5,
        2,
    )
    assert first["records"][0]["name"] == "Giàng Thị Mỷ"
    assert [r["type"] for r in first["records"]] == ["producer", "product", "lot", "lot", "lot"]
    assert first["wire_bytes"] > 0
    assert main(["outbox", "show", "--config", str(config), "--stream", "telemetry"]) == 0
    [tele] = json.loads(capsys.readouterr().out)
    assert tele["records"][0]["disk_free_mb"] == 812
