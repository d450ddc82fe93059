"""Applying what central sends down to this point: orders, products, tracking-number
blocks (issue 13, docs/packing.md).

``HANDLERS`` maps a downlink record's ``type`` to the function that applies it. The
downlink (edge.sync.downlink) calls each inside its batch's one write transaction (the
``db`` it passes is the open transaction of ``Store.write()``); a handler never commits.
A record that cannot be applied is refused with :class:`RecordRefused` and its reason:
the downlink keeps it as refused and goes on with the next. Nothing is half-applied: a
handler checks the whole record before it writes anything.

- ``order``: a newer ``version`` replaces the order and its lines; an older or equal one
  is ignored. ``status: "cancelled"`` cancels it (packing refuses it; a parcel already
  packed stays and the order shows "cancelled_after_packing").
- ``product``: matched with the station's products by folded name
  (edge.storage.search_key.fold); an unknown one is added as staff add one (its
  ``product`` record for central included), a known one is edited as a lead edits one
  (edge.storage.corrections: the edit kept beside what was there, a ``product_update``
  record), and its ``pack_tolerance_g`` set.
- ``tracking_block``: numbers ``prefix + str(n).zfill(digits)`` for n in first..last,
  issued one by one when parcels are packed (edge.orders.tracking).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from edge.ids import Now, iso, utc_now
from edge.printer.kinds import MAX_GOODS, ORDER_ID_RE
from edge.printer.payload import TRACKING_RE
from edge.printer.printable import PrintableError, phone_number, printable_text
from edge.storage.corrections import Corrections
from edge.storage.search_key import fold
from edge.storage.store import Store

Handler = Callable[[sqlite_utils.Database, dict[str, Any]], None]

MAX_TEXT = 200
MAX_ADDRESS = 500
MAX_NOTE = 2000
MAX_CODE = 64
MAX_GRADE = 32
MAX_QUANTITY = 100_000
MAX_PACK_G = 1_000_000  # one pack: 1 t is far beyond anything packed by hand
MAX_PARCEL_G = 100_000_000
MAX_DONG = 10**12
MAX_BLOCK = 10_000_000  # numbers in one block
CHANNELS_MAX = 32


class RecordRefused(ValueError):
    """A downlink record this point cannot apply; ``str()`` is the reason."""


@dataclass(frozen=True)
class _Central:
    """Who changes what central sends, in edits and the audit log."""

    id: str = "central"
    name: str = "central"


CENTRAL = _Central()


class _Within(Store):
    """The station's Store over a transaction already open (the downlink batch's): its
    writes join that transaction, so products are added and edited by the very code
    staff use (edge.storage.store, edge.storage.corrections)."""

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        yield self.db


# -- checks ------------------------------------------------------------------------------


def _field(record: dict[str, Any], key: str) -> Any:
    if key not in record:
        raise RecordRefused(f"{key} is missing")
    return record[key]


def _text(record: dict[str, Any], key: str, limit: int, *, optional: bool = False) -> str | None:
    value = record.get(key) if optional else _field(record, key)
    if value is None and optional:
        return None
    if type(value) is not str:
        raise RecordRefused(f"{key} {value!r:.40} is not text")
    if optional and not value.strip():
        return None
    try:
        return printable_text(value, limit)
    except PrintableError as exc:
        raise RecordRefused(f"{key}: {exc}") from None


def _required_text(record: dict[str, Any], key: str, limit: int) -> str:
    text = _text(record, key, limit)
    assert text is not None
    return text


def _int(record: dict[str, Any], key: str, low: int, high: int, *, optional: bool = False) -> Any:
    value = record.get(key) if optional else _field(record, key)
    if value is None and optional:
        return None
    if type(value) is not int or not low <= value <= high:
        raise RecordRefused(f"{key} {value!r:.40} is not an integer in {low}..{high}")
    return value


def _one_of(record: dict[str, Any], key: str, *allowed: str) -> str:
    value = _field(record, key)
    if value not in allowed:
        raise RecordRefused(f"{key} {value!r:.40} is not one of {', '.join(allowed)}")
    return str(value)


def _stamp(record: dict[str, Any], key: str) -> str:
    value = _field(record, key)
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RecordRefused(f"{key} {value!r:.40} is not an ISO 8601 time") from None
    if type(value) is not str or at.tzinfo is None:
        raise RecordRefused(f"{key} {value!r:.40} is not an ISO 8601 time with its zone")
    return iso(at)


def _tracking(value: Any, what: str) -> str:
    if type(value) is not str or not TRACKING_RE.fullmatch(value):
        raise RecordRefused(
            f"{what} {value!r:.40} is not a tracking number (4 to 30 of A-Z, 0-9, '.', '-')"
        )
    return value


# -- orders ------------------------------------------------------------------------------


def _line(raw: Any, n: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RecordRefused(f"line {n} is not an object")
    try:
        product = _required_text(raw, "product", MAX_TEXT)
        if not fold(product):
            raise RecordRefused("product has no letter or digit")
        grade = _text(raw, "grade", MAX_GRADE, optional=True)
        return {
            "line_no": n,
            "sku": _required_text(raw, "sku", MAX_CODE),
            "name": _required_text(raw, "name", MAX_TEXT),
            "variation": _text(raw, "variation", MAX_TEXT, optional=True),
            "product": product,
            "product_key": fold(product),
            "grade": grade,
            "quantity": _int(raw, "quantity", 1, MAX_QUANTITY),
            "pack_net_g": _int(raw, "pack_net_g", 1, MAX_PACK_G),
            "pack_tare_g": _int(raw, "pack_tare_g", 0, MAX_PACK_G),
        }
    except RecordRefused as exc:
        raise RecordRefused(f"line {n}: {exc}") from None


def check_order(record: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order row and its lines from a downlink ``order`` record, or RecordRefused."""
    order_id = _field(record, "id")
    if type(order_id) is not str or not ORDER_ID_RE.fullmatch(order_id):
        raise RecordRefused(
            f"id {order_id!r:.80} is not an order id (1 to 64 of A-Z a-z 0-9 . _ -)"
        )
    try:
        phone = phone_number(_required_text(record, "phone", 32))
    except PrintableError as exc:
        raise RecordRefused(f"phone: {exc}") from None
    tracking = record.get("tracking")
    row = {
        "id": order_id,
        "version": _int(record, "version", 1, 1 << 62),
        "status": _one_of(record, "status", "open", "cancelled"),
        "channel": _required_text(record, "channel", CHANNELS_MAX),
        "carrier": _required_text(record, "carrier", MAX_TEXT),
        "tracking": None if tracking in (None, "") else _tracking(tracking, "tracking"),
        "recipient": _required_text(record, "recipient", MAX_TEXT),
        "phone": phone,
        "province": _required_text(record, "province", MAX_TEXT),
        "district": _text(record, "district", MAX_TEXT, optional=True) or "",
        "commune": _text(record, "commune", MAX_TEXT, optional=True) or "",
        "address": _required_text(record, "address", MAX_ADDRESS),
        "payment": _one_of(record, "payment", "cod", "prepaid"),
        "cod_dong": _int(record, "cod_dong", 0, MAX_DONG),
        "amount_dong": _int(record, "amount_dong", 0, MAX_DONG),
        "buyer_message": _text(record, "buyer_message", MAX_NOTE, optional=True),
        "seller_note": _text(record, "seller_note", MAX_NOTE, optional=True),
        "package_id": _text(record, "package_id", MAX_CODE, optional=True),
        "created_at": _stamp(record, "created_at"),
    }
    if row["payment"] == "prepaid" and row["cod_dong"] != 0:
        raise RecordRefused(f"a prepaid order collects no COD, got cod_dong {row['cod_dong']}")
    raw_lines = _field(record, "lines")
    if not isinstance(raw_lines, list) or not 1 <= len(raw_lines) <= MAX_GOODS:
        raise RecordRefused(f"lines must be a list of 1 to {MAX_GOODS} lines")
    lines = [_line(raw, n) for n, raw in enumerate(raw_lines, start=1)]
    expected = sum(x["quantity"] * (x["pack_net_g"] + x["pack_tare_g"]) for x in lines)
    if expected > MAX_PARCEL_G:
        raise RecordRefused(f"the parcel would weigh {expected} g, more than {MAX_PARCEL_G} g")
    return row, lines


def apply_order(db: sqlite_utils.Database, record: dict[str, Any], now: Now = utc_now) -> None:
    row, lines = check_order(record)
    had = db.execute("SELECT version, status FROM orders WHERE id = ?", [row["id"]]).fetchone()
    if had is not None and had[0] >= row["version"]:
        return  # central's older (or the same) word: this point has newer
    at = iso(now())
    if had is None:
        db.table("orders").insert({**row, "received_at": at, "updated_at": at})
        action = "order.received"
    else:
        sets = ", ".join(f"{k} = :{k}" for k in row if k != "id")
        db.execute(f"UPDATE orders SET {sets}, updated_at = :at WHERE id = :id", {**row, "at": at})
        db.execute("DELETE FROM order_lines WHERE order_id = ?", [row["id"]])
        action = "order.cancelled" if row["status"] == "cancelled" != had[1] else "order.updated"
    db.table("order_lines").insert_all({"order_id": row["id"], **line} for line in lines)
    Store(db, "", now).audit(
        db, action, row["id"], actor=CENTRAL.name, version=row["version"], status=row["status"]
    )


# -- products ----------------------------------------------------------------------------


def _site(db: sqlite_utils.Database) -> str:
    """This station's site id: the site whose sequence numbers its records carry
    (edge.storage.orders.claim_site puts its row there when the station starts)."""
    rows = db.execute("SELECT site_id FROM site_sequence").fetchall()
    if len(rows) != 1:
        raise RecordRefused(
            f"the station's site is unknown here ({len(rows)} rows in site_sequence); "
            "start the station once, then the record applies"
        )
    return str(rows[0][0])


def find_product(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """The product whose name folds like ``name`` (the oldest, if several do)."""
    key = fold(name)
    for row in db.execute(
        "SELECT id, name, unit_price_dong, grading, pack_tolerance_g FROM products ORDER BY seq"
    ).fetchall():
        if fold(row[1]) == key:
            return {
                "id": row[0],
                "name": row[1],
                "unit_price_dong": row[2],
                "grading": row[3],
                "pack_tolerance_g": row[4],
            }
    return None


def apply_product(db: sqlite_utils.Database, record: dict[str, Any], now: Now = utc_now) -> None:
    name = _required_text(record, "name", MAX_TEXT)
    if not fold(name):
        raise RecordRefused("name has no letter or digit")
    changes: dict[str, Any] = {"name": name}
    if "unit_price_dong" in record:
        changes["unit_price_dong"] = _int(record, "unit_price_dong", 0, MAX_DONG, optional=True)
    if "grading" in record:
        changes["grading"] = _text(record, "grading", MAX_CODE, optional=True)
    tolerance_given = "pack_tolerance_g" in record
    tolerance = _int(record, "pack_tolerance_g", 0, MAX_PACK_G, optional=True)
    store = _Within(db, _site(db), now)
    found = find_product(db, name)
    if found is None:
        product = store.add_product(
            name,
            changes.get("unit_price_dong"),
            changes.get("grading"),
            actor=CENTRAL.name,
        )
        product_id, was_tolerance = str(product["id"]), None
    else:
        Corrections(store).edit_product(found["id"], changes, CENTRAL)
        product_id, was_tolerance = found["id"], found["pack_tolerance_g"]
    if tolerance_given and tolerance != was_tolerance:
        db.execute("UPDATE products SET pack_tolerance_g = ? WHERE id = ?", [tolerance, product_id])
        store.audit(
            db,
            "product.tolerance_set",
            product_id,
            actor=CENTRAL.name,
            was=was_tolerance,
            now=tolerance,
        )


# -- tracking-number blocks --------------------------------------------------------------


def number(prefix: str, n: int, digits: int) -> str:
    """A block's number n as printed: ``prefix + str(n).zfill(digits)``."""
    return prefix + str(n).zfill(digits)


def check_block(record: dict[str, Any]) -> dict[str, Any]:
    block_id = _required_text(record, "id", MAX_CODE)
    carrier = _required_text(record, "carrier", MAX_TEXT)
    prefix = _field(record, "prefix")
    if type(prefix) is not str or len(prefix) > 20:
        raise RecordRefused(f"prefix {prefix!r:.40} is not text of at most 20 characters")
    digits = _int(record, "digits", 1, 20)
    first = _int(record, "first", 0, 10**digits - 1)
    last = _int(record, "last", first, 10**digits - 1)
    if last - first + 1 > MAX_BLOCK:
        raise RecordRefused(f"the block holds {last - first + 1} numbers, more than {MAX_BLOCK}")
    _tracking(number(prefix, first, digits), "first number")
    _tracking(number(prefix, last, digits), "last number")
    return {
        "id": block_id,
        "carrier": carrier,
        "prefix": prefix,
        "first": first,
        "last": last,
        "digits": digits,
    }


def apply_tracking_block(
    db: sqlite_utils.Database, record: dict[str, Any], now: Now = utc_now
) -> None:
    block = check_block(record)
    had = db.execute(
        "SELECT carrier, prefix, first, last, digits FROM tracking_blocks WHERE id = ?",
        [block["id"]],
    ).fetchone()
    if had is not None:
        if tuple(had) == tuple(block[k] for k in ("carrier", "prefix", "first", "last", "digits")):
            return  # the same block again
        raise RecordRefused(f"block {block['id']} is already here with other numbers")
    clash = db.execute(
        "SELECT id, first, last FROM tracking_blocks WHERE prefix = ? AND digits = ? "
        "AND first <= ? AND last >= ? LIMIT 1",
        [block["prefix"], block["digits"], block["last"], block["first"]],
    ).fetchone()
    if clash is not None:
        raise RecordRefused(
            f"numbers {block['first']}..{block['last']} overlap block {clash[0]} "
            f"({clash[1]}..{clash[2]}) with the same prefix: a number would be issued twice"
        )
    db.table("tracking_blocks").insert(
        {**block, "next_n": block["first"], "received_at": iso(now())}
    )
    Store(db, "", now).audit(
        db,
        "tracking_block.received",
        block["id"],
        actor=CENTRAL.name,
        carrier=block["carrier"],
        first=number(block["prefix"], block["first"], block["digits"]),
        last=number(block["prefix"], block["last"], block["digits"]),
    )


def handlers(now: Now = utc_now) -> dict[str, Handler]:
    """The handlers, with the clock their audit entries and records take."""
    return {
        "order": lambda db, record: apply_order(db, record, now),
        "product": lambda db, record: apply_product(db, record, now),
        "tracking_block": lambda db, record: apply_tracking_block(db, record, now),
    }


HANDLERS: dict[str, Handler] = handlers()
