"""Applying central's downlink records at the point (issue 13): orders with their
versions and cancellations, products matched by folded name, tracking-number blocks.
Each handler runs inside a real Store's write transaction, as the downlink runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.orders.apply import HANDLERS, RecordRefused
from edge.storage.orders import claim_site
from edge.storage.store import Store
from rigs.order_records import order_record, tracking_block

SITE = "sin-ho-01"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", SITE)
    claim_site(s)
    yield s
    s.close()


def apply(store: Store, record: dict[str, Any]) -> None:
    with store.write() as db:
        HANDLERS[record["type"]](db, record)


def order(**changes: Any) -> dict[str, Any]:
    """The contract's order, with a buyer's message and a package id, and ``changes``."""
    return order_record(buyer_message="Giao giờ hành chính", package_id="PKG-1") | changes


ORDER = order()


def records(store: Store, kind: str) -> list[dict[str, Any]]:
    rows = store.rows("SELECT body FROM outbox WHERE kind = ? ORDER BY seq", (kind,))
    return [json.loads(r["body"]) for r in rows]


def test_an_order_is_stored_with_its_lines_and_a_newer_version_replaces_it(store: Store) -> None:
    apply(store, ORDER)
    row = store.rows("SELECT * FROM orders")[0]
    assert (row["recipient"], row["status"], row["version"]) == ("Nguyễn Thị Thu Hằng", "open", 1)
    lines = store.rows("SELECT * FROM order_lines")
    assert [(x["product_key"], x["grade"], x["quantity"]) for x in lines] == [
        ("che shan tuyet", "A", 2)
    ]

    two = order(version=2, lines=[{**ORDER["lines"][0], "quantity": 3}])
    apply(store, two)
    apply(store, order(version=2, recipient="Someone else"))  # equal version: ignored
    apply(store, order(version=1, status="cancelled"))  # older: ignored
    row = store.rows("SELECT * FROM orders")[0]
    assert (row["recipient"], row["status"], row["version"]) == ("Nguyễn Thị Thu Hằng", "open", 2)
    assert [x["quantity"] for x in store.rows("SELECT * FROM order_lines")] == [3]

    apply(store, order(version=3, status="cancelled"))
    assert store.rows("SELECT status FROM orders")[0]["status"] == "cancelled"
    actions = [r["action"] for r in store.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["order.received", "order.updated", "order.cancelled"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "578 12"}, "not an order id"),
        ({"version": 0}, "version"),
        ({"status": "shipped"}, "status"),
        ({"phone": "12"}, "phone"),
        ({"recipient": ""}, "recipient"),
        ({"address": None}, "address"),
        ({"payment": "card"}, "payment"),
        ({"cod_dong": -1}, "cod_dong"),
        ({"cod_dong": 1.5}, "cod_dong"),
        ({"created_at": "06/12/2026"}, "created_at"),
        ({"tracking": "jt 01"}, "tracking"),
        ({"lines": []}, "lines"),
        ({"lines": [{**ORDER["lines"][0], "quantity": 0}]}, "line 1: quantity"),
        ({"lines": [{**ORDER["lines"][0], "pack_net_g": -500}]}, "line 1: pack_net_g"),
        ({"lines": [{**ORDER["lines"][0], "quantity": True}]}, "line 1: quantity"),
        ({"lines": [{**ORDER["lines"][0], "product": "--"}]}, "line 1: product"),
        ({"recipient": "Hằng\x00"}, "recipient"),
        ({"payment": "prepaid"}, "prepaid"),
    ],
)
def test_a_bad_order_is_refused_with_its_reason_and_nothing_is_written(
    store: Store, change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(RecordRefused, match=reason):
        apply(store, order(**change))
    assert store.rows("SELECT count(*) AS n FROM orders")[0]["n"] == 0
    assert store.rows("SELECT count(*) AS n FROM order_lines")[0]["n"] == 0


def test_a_missing_field_is_named(store: Store) -> None:
    bad = order()
    del bad["carrier"]
    with pytest.raises(RecordRefused, match="carrier is missing"):
        apply(store, bad)


def test_an_unknown_product_is_added_with_its_record_and_a_known_one_edited(
    store: Store,
) -> None:
    apply(store, {"type": "product", "name": "Chè Shan tuyết", "unit_price_dong": 85000,
                  "grading": None, "pack_tolerance_g": 30})  # fmt: skip
    [product] = store.rows("SELECT * FROM products")
    assert (product["name"], product["unit_price_dong"], product["pack_tolerance_g"]) == (
        "Chè Shan tuyết", 85000, 30,
    )  # fmt: skip
    assert [r["name"] for r in records(store, "product")] == ["Chè Shan tuyết"]

    # the same product, spelt otherwise: edited, not added
    apply(store, {"type": "product", "name": "CHÈ  shan Tuyết", "unit_price_dong": 90000,
                  "grading": "banana", "pack_tolerance_g": 25})  # fmt: skip
    [product] = store.rows("SELECT * FROM products")
    assert (product["unit_price_dong"], product["grading"], product["pack_tolerance_g"]) == (
        90000, "banana", 25,
    )  # fmt: skip
    [update] = records(store, "product_update")
    assert (update["product_id"], update["unit_price_dong"], update["by"]) == (
        product["id"], 90000, "central",
    )  # fmt: skip
    [edit] = store.rows("SELECT * FROM product_edits")
    assert (edit["was_unit_price_dong"], edit["unit_price_dong"]) == (85000, 90000)

    # a seq of its own, from the station's own sequence
    lot_seq = store.add_producer("Giàng A Páo")["seq"]
    assert lot_seq == product["seq"] + 1


def test_a_product_without_a_name_is_refused(store: Store) -> None:
    with pytest.raises(RecordRefused, match="name"):
        apply(store, {"type": "product", "name": " ", "unit_price_dong": None})
    with pytest.raises(RecordRefused, match="unit_price_dong"):
        apply(store, {"type": "product", "name": "Mật ong", "unit_price_dong": "85.000"})
    assert store.rows("SELECT count(*) AS n FROM products")[0]["n"] == 0


BLOCK = tracking_block(block_id="0190f0aa-0000-7000-8000-0000000000b1")


def test_a_tracking_block_is_kept_and_an_overlapping_one_refused(store: Store) -> None:
    apply(store, BLOCK)
    apply(store, BLOCK)  # the same block again: nothing new
    [block] = store.rows("SELECT * FROM tracking_blocks")
    assert (block["next_n"], block["first"], block["last"]) == (100000, 100000, 100999)
    overlapping = {**BLOCK, "id": "0190f0aa-0000-7000-8000-0000000000b2", "first": 100500,
                   "last": 101499}  # fmt: skip
    with pytest.raises(RecordRefused, match="overlap"):
        apply(store, overlapping)
    with pytest.raises(RecordRefused, match="other numbers"):
        apply(store, {**BLOCK, "last": 100500})
    with pytest.raises(RecordRefused, match="last"):
        apply(store, {**BLOCK, "id": "b3", "first": 5, "last": 4})
    with pytest.raises(RecordRefused, match="digits"):
        apply(store, {**BLOCK, "id": "b4", "digits": 0})
    with pytest.raises(RecordRefused, match="tracking number"):
        apply(store, {**BLOCK, "id": "b5", "prefix": "jt", "first": 1, "last": 2})
    assert len(store.rows("SELECT * FROM tracking_blocks")) == 1
