"""Central's orders and downlink queue (schema version 4), on a real SQLite file and
a real PostgreSQL schema: an import stores each order once, queues what changed
to its point with seqs 1, 2, 3..., and a re-import changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.central.store import CentralStore, open_store
from rigs.order_records import import_record
from tests.central_support import central_db, pg_schema

SITE = "sin-ho-01"
OTHER = "ta-phin"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentralStore]:
    with central_db(request.param, tmp_path) as url, open_store(url) as s:
        yield s


def order(n: int, site: str = SITE, status: str = "open", **changes: Any) -> dict[str, Any]:
    """An order as the import hands it to the store (no version, no created_at)."""
    changes = {"address": f"Số {n}, ngõ 25 Láng Hạ", **changes}
    return import_record(n, site, status=status, **changes)


def queued(store: CentralStore, site: str = SITE) -> list[dict[str, Any]]:
    return store.down_records(site, 0, 100_000)


def progress(store: CentralStore) -> dict[str, tuple[int, int]]:
    return {p["site"]: (p["queued_upto"], p["acked_upto"]) for p in store.down_progress()}


def test_new_orders_are_stored_and_queued_to_their_point(store: CentralStore) -> None:
    counts = store.import_orders([order(1), order(2), order(3, OTHER)])
    assert counts == {"accepted": 3, "updated": 0, "cancelled": 0, "unchanged": 0}
    down = queued(store)
    assert [r["seq"] for r in down] == [1, 2]
    assert [(r["id"], r["version"], r["type"]) for r in down] == [
        (order(1)["id"], 1, "order"),
        (order(2)["id"], 1, "order"),
    ]
    assert "site" not in down[0]
    assert down[0]["recipient"] == "Nguyễn Thị Thu Hằng"
    assert down[0]["lines"][0]["pack_tare_g"] == 40
    assert down[0]["created_at"].endswith("Z")
    assert [r["seq"] for r in queued(store, OTHER)] == [1]
    assert progress(store) == {SITE: (2, 0), OTHER: (1, 0)}
    stored = store.orders_of(SITE)
    assert [(o["id"], o["site"], o["status"], o["version"]) for o in stored] == [
        (order(1)["id"], SITE, "open", 1),
        (order(2)["id"], SITE, "open", 1),
    ]
    assert stored[0]["body"]["address"] == "Số 1, ngõ 25 Láng Hạ"
    assert len(store.orders_of()) == 3


def test_reimporting_the_same_orders_changes_nothing(store: CentralStore) -> None:
    store.import_orders([order(n) for n in range(5)])
    again = store.import_orders([order(n) for n in reversed(range(5))])
    assert again == {"accepted": 0, "updated": 0, "cancelled": 0, "unchanged": 5}
    assert len(queued(store)) == 5
    assert {o["version"] for o in store.orders_of()} == {1}


def test_a_changed_order_goes_down_again_with_the_next_version(store: CentralStore) -> None:
    store.import_orders([order(1), order(2)])
    created = queued(store)[0]["created_at"]
    counts = store.import_orders([order(1, phone="0912345678"), order(2)])
    assert counts == {"accepted": 0, "updated": 1, "cancelled": 0, "unchanged": 1}
    down = queued(store)
    assert [(r["seq"], r["version"], r["phone"]) for r in down[2:]] == [(3, 2, "0912345678")]
    assert down[2]["created_at"] == created  # the order's, not the import's
    assert store.orders_of()[0]["version"] == 2


def test_a_cancellation_is_counted_and_sent(store: CentralStore) -> None:
    store.import_orders([order(1), order(2)])
    counts = store.import_orders([order(1, status="cancelled"), order(2)])
    assert counts == {"accepted": 0, "updated": 0, "cancelled": 1, "unchanged": 1}
    last = queued(store)[-1]
    assert (last["seq"], last["id"], last["status"], last["version"]) == (
        3,
        order(1)["id"],
        "cancelled",
        2,
    )
    again = store.import_orders([order(1, status="cancelled")])
    assert again["unchanged"] == 1
    assert len(queued(store)) == 3


def test_an_order_cancelled_at_its_first_import_is_stored_not_sent(store: CentralStore) -> None:
    counts = store.import_orders([order(1, status="cancelled"), order(2)])
    assert counts == {"accepted": 1, "updated": 0, "cancelled": 1, "unchanged": 0}
    assert [r["id"] for r in queued(store)] == [order(2)["id"]]
    assert {o["id"]: o["status"] for o in store.orders_of()}[order(1)["id"]] == "cancelled"


def test_an_order_moved_to_another_point_is_cancelled_at_the_old_one(
    store: CentralStore,
) -> None:
    store.import_orders([order(1)])
    counts = store.import_orders([order(1, OTHER)])
    assert counts == {"accepted": 0, "updated": 1, "cancelled": 0, "unchanged": 0}
    old = queued(store)
    assert [(r["seq"], r["status"], r["version"]) for r in old] == [
        (1, "open", 1),
        (2, "cancelled", 2),
    ]
    new = queued(store, OTHER)
    assert [(r["seq"], r["status"], r["version"]) for r in new] == [(1, "open", 2)]
    assert store.orders_of(OTHER)[0]["id"] == order(1)["id"]
    assert store.orders_of(SITE) == []


def test_products_and_tracking_blocks_are_queued_after_the_orders(store: CentralStore) -> None:
    store.import_orders([order(1)])
    seqs = store.queue_down(
        SITE,
        [
            {"type": "product", "name": "Chè Shan tuyết", "unit_price_dong": 85000,
             "grading": None, "pack_tolerance_g": 30},
            {"type": "tracking_block", "id": "0b8c2f4e-7a51-4d8e-9a55-3f0c1d2e4b6a",
             "carrier": "J&T Express", "prefix": "JTVN", "first": 100000, "last": 100999,
             "digits": 8},
        ],
    )  # fmt: skip
    assert seqs == [2, 3]
    down = queued(store)
    assert [r["type"] for r in down] == ["order", "product", "tracking_block"]
    assert down[1]["unit_price_dong"] == 85000
    assert store.down_records(SITE, 1, 1) == [down[1]]
    with pytest.raises(ValueError, match="type"):
        store.queue_down(SITE, [{"name": "no type"}])
    with pytest.raises(ValueError, match="site"):
        store.queue_down("Not A Site", [{"type": "product", "name": "x"}])
    assert len(queued(store)) == 3


def test_a_bad_order_stores_nothing(store: CentralStore) -> None:
    with pytest.raises(ValueError, match="status"):
        store.import_orders([order(1), order(2, status="shipped")])
    assert store.orders_of() == []
    assert store.down_progress() == []


def test_acks_move_up_only_and_never_past_what_was_queued(store: CentralStore) -> None:
    store.import_orders([order(n) for n in range(10)])
    assert store.note_down_ack(SITE, 4) == 4
    assert store.note_down_ack(SITE, 2) == 4
    assert store.note_down_ack(SITE, 50) == 10
    assert store.note_down_ack("unknown-site", 3) == 0
    store.note_down_sent(SITE, 10)
    (row,) = store.down_progress()
    assert (row["queued_upto"], row["acked_upto"], row["sent_upto"]) == (10, 10, 10)
    assert row["acked_at"] is not None and row["sent_at"] is not None
    assert len(row["epoch"]) == 16 and int(row["epoch"], 16) >= 0
    assert row["epoch"] == store.down_epoch()


def test_2500_orders_import_once(store: CentralStore) -> None:
    # How fast is measured by `make bench` (orders_import_2500_s), not here.
    orders = [order(n, SITE if n % 3 else OTHER) for n in range(2500)]
    counts = store.import_orders(orders)
    again = store.import_orders(orders)
    assert counts["accepted"] == 2500 and again["unchanged"] == 2500
    assert progress(store) == {SITE: (1666, 0), OTHER: (834, 0)}


def test_the_epoch_is_made_once_per_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/central.db"
    with open_store(url) as s:
        epoch = s.down_epoch()
    with open_store(url) as s:
        assert s.down_epoch() == epoch
    with open_store(f"sqlite:///{tmp_path}/other.db") as s:
        assert s.down_epoch() != epoch


def test_a_version_3_sqlite_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    with open_store(f"sqlite:///{path}"):
        pass
    db = sqlite3.connect(path)  # back to what version 3 had
    for table in ("orders", "down_queue", "down_progress"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM central_meta WHERE key = 'down_epoch'")
    db.execute("UPDATE central_meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with open_store(f"sqlite:///{path}") as s:
        assert s.import_orders([order(1)])["accepted"] == 1
        assert len(s.down_epoch()) == 16
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM central_meta WHERE key = 'schema_version'").fetchone() == (
        "4",
    )
    db.close()


def test_a_version_3_postgresql_database_is_upgraded_in_place() -> None:
    import psycopg

    with pg_schema() as url:
        with open_store(url):
            pass
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("orders", "down_queue", "down_progress"):
                conn.execute(f"DROP TABLE {table}")
            conn.execute("DELETE FROM central_meta WHERE key = 'down_epoch'")
            conn.execute("UPDATE central_meta SET value = '3' WHERE key = 'schema_version'")
        with open_store(url) as s:
            assert s.import_orders([order(1)])["accepted"] == 1
            assert len(s.down_epoch()) == 16
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT value FROM central_meta WHERE key = 'schema_version'"
            ).fetchone()
            assert row == ("4",)
