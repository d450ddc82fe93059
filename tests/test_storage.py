from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge.storage import db as dbmod
from edge.storage.outbox import Outbox
from edge.storage.print_queue import PrintQueue
from edge.storage.store import NotFound, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "s.db", "site-a")


def _lot(store: Store, net_g: int = 1250) -> str:
    producer = store.add_producer("Giàng Thị Mỷ", village="Bản Phìn Hồ")
    product = store.add_product("Sâm Lai Châu", 1_200_000)
    return store.record_lot(producer["id"], product["id"], net_g, "ST,GS,+001.250kg").id


def test_pragmas_wal_and_full_sync(store: Store) -> None:
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert dbmod.schema_version(store.db) == len(dbmod.migrations())


def test_lot_writes_job_outbox_and_audit_in_one_transaction(store: Store) -> None:
    lot_id = _lot(store)
    lot = store.get_lot(lot_id)
    assert (lot.net_g, lot.producer_name, lot.product_name) == (
        1250,
        "Giàng Thị Mỷ",
        "Sâm Lai Châu",
    )
    job = PrintQueue(store).next_queued()
    assert job is not None and job["record_id"] == lot_id
    batch = Outbox(store).next_batch("records", 10, 0)
    assert batch is not None
    producer, product, record = batch.records
    [row] = store.rows("SELECT * FROM outbox WHERE kind = 'lot'")
    assert (row["stream"], row["record_id"], record["id"], record["net_g"]) == (
        "records",
        lot_id,
        lot_id,
        1250,
    )
    assert (record["producer_id"], producer["name"]) == (producer["id"], "Giàng Thị Mỷ")
    assert (record["product_id"], product["name"]) == (product["id"], "Sâm Lai Châu")
    assert json.loads(row["body"])["net_g"] == 1250
    actions = [r["action"] for r in store.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["producer.created", "product.created", "lot.recorded"]


def test_ids_unique_and_sequence_only_grows(store: Store) -> None:
    ids = [_lot(store, 100 + i) for i in range(5)]
    seqs = [r["seq"] for r in store.rows("SELECT seq FROM lots ORDER BY rowid")]
    assert len(set(ids)) == 5
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    all_seqs = [
        r["seq"]
        for t in ("producers", "products", "lots")
        for r in store.rows(f"SELECT seq FROM {t}")
    ]
    assert len(all_seqs) == len(set(all_seqs)), "one per-site sequence across every record"


def test_failed_write_leaves_nothing_behind(store: Store) -> None:
    producer = store.add_producer("A")
    with pytest.raises(NotFound):
        store.record_lot(producer["id"], "no-such-product", 500, "x")
    with pytest.raises(ValueError):
        store.record_lot(producer["id"], "x", 0, "x")
    for table in ("lots", "print_jobs"):
        assert store.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0
    kinds = [r["kind"] for r in store.rows("SELECT kind FROM outbox")]
    assert kinds == ["producer"], "only the producer's record, no lot's"
    seq_before = store.rows("SELECT last_seq FROM site_sequence")[0]["last_seq"]
    assert seq_before == 1, "a rolled-back record does not consume a sequence number"


def test_migration_copies_database_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.db"
    store = Store.open(path, "site-a")
    _lot(store)
    store.close()
    real = dbmod.migrations()
    extra = (
        len(real) + 1,
        f"{len(real) + 1:04d}_extra.sql",
        "ALTER TABLE lots ADD COLUMN note TEXT;",
    )
    monkeypatch.setattr(dbmod, "migrations", lambda: [*real, extra])
    store = Store.open(path, "site-a", backup_dir=tmp_path / "backups")
    assert dbmod.schema_version(store.db) == len(real) + 1
    [copy] = list((tmp_path / "backups").glob(f"m.db.v{len(real)}-*.bak"))
    old = sqlite3.connect(copy)
    assert old.execute("PRAGMA user_version").fetchone()[0] == len(real)
    assert old.execute("SELECT count(*) FROM lots").fetchone()[0] == 1
    old.close()


def test_failed_migration_leaves_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    Store.open(path, "site-a").close()
    real = dbmod.migrations()
    broken = (
        len(real) + 1,
        f"{len(real) + 1:04d}_broken.sql",
        "CREATE TABLE t(x);\nTHIS IS NOT SQL;",
    )
    monkeypatch.setattr(dbmod, "migrations", lambda: [*real, broken])
    with pytest.raises(dbmod.StorageError, match=rf"{len(real) + 1:04d}_broken\.sql failed"):
        Store.open(path, "site-a")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(real)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0] == 0


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    Store.open(path, "site-a").close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(dbmod.StorageError, match="newer than this software"):
        Store.open(path, "site-a")


def test_print_queue_holds_interrupted_jobs_until_staff_confirm(store: Store) -> None:
    _lot(store)
    queue = PrintQueue(store)
    job = queue.next_queued()
    assert job is not None
    queue.mark_sending(job["id"])
    assert queue.hold_interrupted() == 1
    assert queue.next_queued() is None, "an interrupted job is not printed again by itself"
    queue.requeue(job["id"], actor="lan", reason="nhãn không ra")
    again = queue.next_queued()
    assert again is not None and again["id"] == job["id"]
    audit = store.rows(
        "SELECT actor, action, detail FROM audit_log WHERE action = 'print.requeued'"
    )
    assert audit[0]["actor"] == "lan" and "nhãn không ra" in audit[0]["detail"]
    with pytest.raises(ValueError, match="only held, failed or printed"):
        queue.requeue(job["id"], actor="lan", reason="again")


def test_outbox_marks_only_claimed_rows_sent(store: Store) -> None:
    for i in range(3):
        _lot(store, 100 + i)  # each with its producer and product: 9 records
    outbox = Outbox(store)
    first = outbox.next_batch("records", 4, 0)
    second = outbox.next_batch("records", 4, 0)
    assert first is not None and second is not None
    assert [r["seq"] for r in first.records + second.records] == list(range(1, 9))
    assert outbox.mark_sent(first) == 4
    status = outbox.status()["streams"]["records"]
    assert (status["pending"], status["sent"], status["depth"]) == (5, 4, 9)


def test_disk_full_is_a_clear_error_and_keeps_earlier_records(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    store = Store.open(path, "site-a")
    lot_id = _lot(store)
    pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
    store.db.conn.execute(f"PRAGMA max_page_count = {pages}")
    producer = store.list_producers()[0]["id"]
    product = store.list_products()[0]["id"]
    with pytest.raises(dbmod.StorageError, match="nothing was recorded; free disk space"):
        for _ in range(200):
            store.record_lot(producer, product, 700, "x" * 2000)
    store.close()
    again = Store.open(path, "site-a")
    assert again.get_lot(lot_id).net_g == 1250
