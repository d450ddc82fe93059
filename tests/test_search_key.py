"""The farmer search key (edge.storage.search_key) and the search over a real station
database (edge.storage.farmer_search): folding, phone digits, queries, the key kept by
migration 0013's triggers, and the order of the answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.ids import utc_now
from edge.storage import db as dbmod
from edge.storage.corrections import Corrections
from edge.storage.farmer_search import (
    get_producer,
    possible_duplicates,
    recent_producers,
    search_producers,
)
from edge.storage.search_key import (
    duplicate_prefix,
    fold,
    parse_query,
    phone_digits,
    producer_key,
)
from edge.storage.store import Store


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Nguyễn Thị Hương", "nguyen thi huong"),
        ("  NGUYỄN   thị\tHƯƠNG ", "nguyen thi huong"),
        ("Đặng Văn Đức", "dang van duc"),
        ("đường", "duong"),
        ("Lò Thị Xuân", "lo thi xuan"),
        ("Bản Lác", "ban lac"),
        ("Thôn 3", "thon 3"),
        ("Giàng A-Páo", "giang a pao"),
        ("Vàng|Dơ", "vang do"),  # no separator survives
        # decomposed input (as some phone keyboards send it) folds the same as composed
        ("Nguye\u0302\u0303n", "nguyen"),
        ("", ""),
        (None, ""),
    ],
)
def test_fold(text: str | None, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("phone", "digits"),
    [
        ("0987 654 321", "0987654321"),
        ("0987.654.321", "0987654321"),
        ("+84 987 654 321", "0987654321"),
        ("+84987654321", "0987654321"),
        ("0084 987 654 321", "0987654321"),
        ("84987654321", "0987654321"),
        ("0212 3875 123", "02123875123"),
        (None, ""),
    ],
)
def test_phone_digits(phone: str | None, digits: str) -> None:
    assert phone_digits(phone) == digits


def test_producer_key_and_duplicate_prefix() -> None:
    key = producer_key("Nguyễn Thị Hương", "Bản Lác", "+84 987.654.321")
    assert key == "nguyen thi huong|ban lac|0987654321"
    assert key.startswith(duplicate_prefix("nguyen  THI hương", "ban lác"))
    assert not key.startswith(duplicate_prefix("Nguyễn Thị Hương", "Bản Lác Hạ"))
    assert producer_key("Mỷ", None, None) == "my||"


@pytest.mark.parametrize(
    ("typed", "terms"),
    [
        ("huong", (("huong",),)),
        ("Hương", (("huong",),)),
        ("nguyen  huong", (("nguyen",), ("huong",))),
        ("huong huong", (("huong",),)),
        ("0987", (("0987",),)),
        ("0987 654", (("0987654",),)),
        ("0987.654.321", (("0987654321",),)),
        ("+84 987", (("0987",),)),
        ("84987", (("84987", "0987"),)),
        ("0084987", (("0987",),)),
        ("huong 0987", (("huong",), ("0987",))),
        ("   ", ()),
        ("!!", ()),
    ],
)
def test_parse_query(typed: str, terms: tuple[tuple[str, ...], ...]) -> None:
    assert parse_query(typed).terms == terms


# -- the search over a station database ----------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "station.db", "test-site")
    return s


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r["name"]) for r in rows]


def test_key_is_kept_by_triggers(store: Store) -> None:
    p = store.add_producer("Nguyễn Thị Hương", "0987 654 321", "Bản Lác")
    [row] = store.rows("SELECT search_key FROM producers WHERE id = ?", (p["id"],))
    assert row["search_key"] == "nguyen thi huong|ban lac|0987654321"
    with store.write() as db:  # an edit anywhere (a correction, a merge) keeps the key
        db.execute("UPDATE producers SET village = 'Nậm Tăm' WHERE id = ?", [p["id"]])
    [row] = store.rows("SELECT search_key FROM producers WHERE id = ?", (p["id"],))
    assert row["search_key"] == "nguyen thi huong|nam tam|0987654321"


def test_migration_backfills_existing_farmers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    real = dbmod.migrations()
    monkeypatch.setattr(dbmod, "migrations", lambda: [m for m in real if m[0] < 13])
    old = dbmod.open_database(path)
    old.conn.execute(
        "INSERT INTO producers(id, seq, site_id, name, phone, village, created_at) "
        "VALUES ('p1', 1, 's', 'Đặng Thị Hường', '+84 912 345 678', 'Phìn Hồ', 't')"
    )
    old.conn.execute(
        "INSERT INTO products(id, seq, site_id, name, created_at) VALUES ('g1', 2, 's', 'Chè', 't')"
    )
    lot_sql = (
        "INSERT INTO lots(id, seq, site_id, producer_id, product_id, net_g, scale_frame, "
        "recorded_at, boot_id, uptime_s) VALUES (?, ?, 's', 'p1', 'g1', 900, 'f', ?, 'b', 1.0)"
    )
    old.conn.execute(lot_sql, ["l1", 3, "2026-11-20T08:00:00.000Z"])
    old.conn.execute(lot_sql, ["l2", 4, "2026-11-21T08:00:00.000Z"])
    old.close()
    monkeypatch.setattr(dbmod, "migrations", lambda: real)
    new = dbmod.open_database(path)
    [row] = new.conn.execute("SELECT search_key, last_lot_at FROM producers").fetchall()
    assert row == ("dang thi huong|phin ho|0912345678", "2026-11-21T08:00:00.000Z")
    indexes = {r[0] for r in new.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"producers_search_key", "lots_producer_recorded"} <= indexes
    new.close()


def test_last_lot_follows_a_lot_moved_to_another_farmer(store: Store) -> None:
    a = store.add_producer("Lò Thị Hoa")["id"]
    b = store.add_producer("Lò Văn Páo")["id"]
    product = store.add_product("Chè")["id"]
    lot = store.record_lot(a, product, 1000, "ST,GS,+001.000kg")

    def last() -> dict[object, object]:
        return {r["id"]: r["last_lot_at"] for r in store.rows("SELECT * FROM producers")}

    assert last() == {a: lot.recorded_at, b: None}
    with store.write() as db:
        db.execute("UPDATE lots SET producer_id = ? WHERE id = ?", [b, lot.id])
    assert last() == {a: None, b: lot.recorded_at}


def test_search_by_name_phone_and_village(store: Store) -> None:
    store.add_producer("Nguyễn Thị Hương", "0987 654 321", "Bản Lác")
    store.add_producer("Nguyễn Văn Hướng", "0912.000.111", "Mường Khoa")
    store.add_producer("Lò Thị Xuân", "+84 977 123 456", "Hương Sơn")
    store.add_producer("Đặng Văn Đức", None, "Bản Lác")
    # the name holding "thi huong" first; Lò Thị Xuân lives in Hương Sơn
    assert names(search_producers(store, "thi huong")) == ["Nguyễn Thị Hương", "Lò Thị Xuân"]
    assert names(search_producers(store, "thi huong ban lac")) == ["Nguyễn Thị Hương"]
    # a word of a name (then by name), then elsewhere: Lò Thị Xuân lives in Hương Sơn
    assert names(search_producers(store, "huong")) == [
        "Nguyễn Thị Hương",
        "Nguyễn Văn Hướng",
        "Lò Thị Xuân",
    ]
    assert names(search_producers(store, "0987")) == ["Nguyễn Thị Hương"]
    assert names(search_producers(store, "654 321")) == ["Nguyễn Thị Hương"]
    assert names(search_producers(store, "+84 977")) == ["Lò Thị Xuân"]
    assert names(search_producers(store, "84977")) == ["Lò Thị Xuân"]
    assert names(search_producers(store, "dang duc")) == ["Đặng Văn Đức"]
    assert sorted(names(search_producers(store, "ban lac"))) == ["Nguyễn Thị Hương", "Đặng Văn Đức"]
    assert search_producers(store, "zzz") == []
    assert len(search_producers(store, "", limit=2)) == 2


class Ticking:
    """A clock one second further on at each reading: lots recorded one after another
    carry distinct times, as lots weighed by hand do (two calls within one millisecond
    would tie, and a tie is ordered by the search's other keys)."""

    def __init__(self) -> None:
        self.t = utc_now()

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def test_recent_farmers_first_then_best_match(store: Store) -> None:
    store.now = Ticking()
    late = store.add_producer("Vàng Thị Hương", None, "Sìn Hồ")  # rank 1: a word of the name
    early = store.add_producer("Lý Văn Tú", None, "Hương Lâm")  # rank 3: the village
    store.add_producer("Hương Thị Mai", None, "Nậm Cha")  # rank 0: the name starts with it
    store.add_producer("Giàng Thị Hương", None, "Pa Tần")  # rank 1, before Vàng by name
    product = store.add_product("Chè")["id"]
    store.record_lot(early["id"], product, 1000, "ST,GS,+001.000kg")
    store.record_lot(late["id"], product, 1000, "ST,GS,+001.000kg")
    found = search_producers(store, "huong")
    assert names(found) == ["Vàng Thị Hương", "Lý Văn Tú", "Hương Thị Mai", "Giàng Thị Hương"]
    assert found[0]["last_lot_at"] > found[1]["last_lot_at"]
    assert found[2]["last_lot_at"] is None
    assert names(search_producers(store, "huong", limit=2)) == ["Vàng Thị Hương", "Lý Văn Tú"]
    # an empty box: the farmers of the latest lots, then the others by name
    assert names(recent_producers(store, 3)) == ["Vàng Thị Hương", "Lý Văn Tú", "Giàng Thị Hương"]
    store.record_lot(early["id"], product, 1000, "ST,GS,+001.000kg")
    assert names(recent_producers(store, 2)) == ["Lý Văn Tú", "Vàng Thị Hương"]


def test_possible_duplicates(store: Store) -> None:
    first = store.add_producer("Nguyễn Thị Hương", "0987 654 321", "Bản Lác")
    store.add_producer("Nguyễn Thị Hương", None, "Bản Lác Hạ")
    store.add_producer("Nguyễn Thị Hương Giang", None, "Bản Lác")
    lonely = store.add_producer("Lò Văn Páo")
    found = possible_duplicates(store, "  nguyen thi  HUONG", "ban lac")
    assert [r["id"] for r in found] == [first["id"]]
    assert [r["id"] for r in possible_duplicates(store, "Lò  văn páo", None)] == [lonely["id"]]
    assert possible_duplicates(store, "Lò Văn Páo", "Bản Lác") == []


@dataclass(frozen=True)
class Lead:
    id: str = "lead-1"
    name: str = "Vàng Thị Dung"


def test_a_merged_farmer_is_found_as_the_survivor(store: Store) -> None:
    survivor = store.add_producer("Nguyễn Thị Hương", "0987 654 321", "Bản Lác")
    twin = store.add_producer("Nguyen Thi Huong", None, "Ban Lac")
    assert len(possible_duplicates(store, "Nguyễn Thị Hương", "Bản Lác")) == 2
    Corrections(store).merge_producers(twin["id"], survivor["id"], "cùng một người", Lead())
    assert [r["id"] for r in search_producers(store, "huong")] == [survivor["id"]]
    assert [r["id"] for r in recent_producers(store)] == [survivor["id"]]
    assert [r["id"] for r in possible_duplicates(store, "Nguyễn Thị Hương", "Bản Lác")] == [
        survivor["id"]
    ]
    # a page that remembered the merged farmer is given the survivor
    found = get_producer(store, twin["id"])
    assert found is not None and found["id"] == survivor["id"]
    assert get_producer(store, "no-such-farmer") is None
