"""Rows of an export grouped into orders and checked (docs/orders.md "What is
refused"): pure, values in, values out.

An order is the rows sharing an order id. Its status decides its fate first: an
order the marketplace has not released for shipping, or has shipped already, is
*skipped* (not sent, not an error); an open or cancelled one is checked row by row,
and one bad row refuses the whole order, each bad row listed with its spreadsheet
row number and reason. Counts are of orders.

Order-level values (status, payment, amount, recipient, phone, address, carrier,
tracking) are repeated on each of an order's rows by the marketplace: a row that
says otherwise than the order's first row is a bad row. A cancelled order needs no
recipient, phone or address (the marketplace often blanks them): it only has to say
which order it is and which point holds it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.central.orders.exports import OWN, TIKTOK, Export, Row
from edge.central.orders.mapping import Sku

OPEN = "open"
CANCELLED = "cancelled"
OPEN_STATUSES = frozenset(
    {
        "awaiting shipment",
        "awaiting collection",
        "to ship",
        "ready to ship",
        "chờ giao hàng",
        "chờ lấy hàng",
        "chờ đóng gói",
    }
)
CANCELLED_STATUSES = frozenset({"cancelled", "canceled", "đã hủy", "đã huỷ", "hủy", "huỷ"})
SKIPPED_STATUSES = frozenset(
    {
        "unpaid",
        "on hold",
        "shipped",
        "in transit",
        "delivered",
        "completed",
        "chưa thanh toán",
        "đang giao",
        "đang vận chuyển",
        "đã giao",
        "đã giao hàng",
        "hoàn thành",
    }
)
"""TikTok's statuses not sent to a point: not yet payable/shippable, or gone already."""
COD_WORDS = frozenset({"cash on delivery", "cod", "thanh toán khi nhận hàng"})

MAX_QUANTITY = 10_000
MAX_LINES = 200
MAX_DONG = 10**12
TEXT_LIMITS = {
    "recipient": 200,
    "province": 100,
    "district": 100,
    "commune": 100,
    "address": 500,
    "carrier": 100,
    "tracking": 64,
    "package_id": 64,
    "name": 300,
    "variation": 200,
}
MESSAGE_LIMIT = 1000
_ORDER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

TIKTOK_FIELDS = {
    "order_id": "Order ID",
    "status": "Order Status",
    "sku": "Seller SKU",
    "name": "Product Name",
    "variation": "Variation",
    "quantity": "Quantity",
    "amount": "Order Amount",
    "tracking": "Tracking ID",
    "carrier": "Shipping Provider Name",
    "recipient": "Recipient",
    "phone": "Phone #",
    "province": "Province",
    "district": "District",
    "commune": "Commune",
    "address": "Detail Address",
    "payment": "Payment Method",
    "package_id": "Package ID",
    "buyer_message": "Buyer Message",
    "seller_note": "Seller Note",
}
OWN_FIELDS = {
    "order_id": "order_id",
    "status": "status",
    "sku": "seller_sku",
    "name": "product_name",
    "variation": "variation",
    "quantity": "quantity",
    "amount": "amount_dong",
    "cod": "cod_dong",
    "tracking": "tracking",
    "carrier": "carrier",
    "recipient": "recipient",
    "phone": "phone",
    "province": "province",
    "district": "district",
    "commune": "commune",
    "address": "address",
    "payment": "payment",
    "package_id": "package_id",
    "buyer_message": "buyer_message",
    "seller_note": "seller_note",
}
COLUMN = {TIKTOK: TIKTOK_FIELDS, OWN: OWN_FIELDS}


@dataclass
class Plan:
    orders: list[dict[str, Any]] = field(default_factory=list)
    """Each an ``order`` record (docs/mqtt.md) plus ``site``."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """``{"row", "order_id", "reason"}`` per bad row, by row."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """``{"row", "order_id", "reason"}`` per order not sent (its first row)."""
    refused_orders: int = 0
    notes: list[str] = field(default_factory=list)


# -- values ---------------------------------------------------------------------------

_PHONE_NOISE = re.compile(r"[\s.\-()/]")


def normalise_phone(text: str) -> tuple[str | None, str | None]:
    """A Vietnamese phone number as digits with its leading 0 (mobile: 10 digits
    03/05/07/08/09; landline: 11 digits 02), or why it is not one. ``+84``, ``84``
    and ``(+84)`` stand for the 0; spaces, dots, dashes are dropped; 9 digits that
    start like a mobile without its 0 (a spreadsheet number cell) get the 0 back."""
    if not text:
        return None, "phone is empty"
    if "*" in text:
        return None, f"phone {text!r} is masked by the marketplace: export with full details"
    digits = _PHONE_NOISE.sub("", text)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    elif len(digits) == 9 and digits[:1] in ("3", "5", "7", "8", "9"):
        digits = "0" + digits
    if not digits.isascii() or not digits.isdigit():
        return None, f"phone {text!r} is not a Vietnamese phone number"
    if len(digits) == 10 and digits[:2] in ("03", "05", "07", "08", "09"):
        return digits, None
    if len(digits) == 11 and digits.startswith("02"):
        return digits, None
    return None, (
        f"phone {text!r} is not a Vietnamese phone number (a mobile is 10 digits "
        "starting 03, 05, 07, 08 or 09; a landline 11 starting 02)"
    )


_CURRENCY = re.compile(r"(?i)\s*(₫|đồng|đ|vnd|vnđ)\s*")
_GROUPED = re.compile(r"^\d{1,3}([.,])\d{3}(\1\d{3})*$")
_ZERO_DECIMALS = re.compile(r"^(\d+)[.,]0{1,2}$")


def parse_dong(text: str) -> tuple[int | None, str | None]:
    """An amount in đồng: ``185000``, ``185.000``, ``185,000``, ``185.000 ₫``,
    ``1.234.567đ``, ``VND 185,000``; or why not."""
    raw = text
    text = _CURRENCY.sub("", text).replace(" ", "").replace("\u00a0", "")
    if not text:
        return None, "is empty" if not raw else f"{raw!r} is not an amount in đồng"
    if text.isascii() and text.isdigit():
        value = int(text)
    elif _GROUPED.match(text):
        value = int(text.replace(".", "").replace(",", ""))
    elif _ZERO_DECIMALS.match(text):
        value = int(_ZERO_DECIMALS.match(text).group(1))  # type: ignore[union-attr]
    else:
        return None, f"{raw!r} is not an amount in đồng"
    if value > MAX_DONG:
        return None, f"{raw!r} is more than {MAX_DONG:,} đồng"
    return value, None


def parse_quantity(text: str) -> tuple[int | None, str | None]:
    if not text:
        return None, "is empty"
    whole = text[:-2] if text.endswith(".0") else text
    if whole.isascii() and whole.isdigit():
        value = int(whole)
        if value <= 0:
            return None, f"{text} is not a positive number"
        if value > MAX_QUANTITY:
            return None, f"{text} is more than {MAX_QUANTITY:,}"
        return value, None
    try:
        float(text.replace(",", "."))
    except ValueError:
        return None, f"{text!r} is not a number"
    return None, f"{text!r} is not a positive whole number"


def one_line(text: str) -> str:
    """Text for a label: control characters out, line breaks and runs of spaces as one."""
    return " ".join(_CONTROL.sub(" ", text).split())


def free_text(text: str) -> str | None:
    text = _CONTROL.sub(" ", text).replace("\r\n", "\n").strip()
    return unicodedata.normalize("NFC", text[:MESSAGE_LIMIT]) if text else None


def status_of(channel: str, text: str) -> str | None:
    """``open``, ``cancelled``, ``skip``, or None when the status is not known."""
    key = " ".join(text.split()).casefold()
    if channel == OWN:
        return {"open": OPEN, "cancelled": CANCELLED}.get(key)
    if key in OPEN_STATUSES:
        return OPEN
    if key in CANCELLED_STATUSES:
        return CANCELLED
    if key in SKIPPED_STATUSES:
        return "skip"
    return None


# -- one row --------------------------------------------------------------------------


@dataclass
class _Line:
    row: int
    values: dict[str, Any]
    """Order-level values as compared across rows (normalised)."""
    line: dict[str, Any] | None
    site: str | None
    problems: list[str]
    invalid: set[str] = field(default_factory=set)
    """Value keys whose cell could not be read (not compared across rows)."""


def _check_row(
    channel: str, row: Row, cells: Mapping[str, str], skus: Mapping[str, Sku], status: str
) -> _Line:
    problems: list[str] = []
    values: dict[str, Any] = {}
    names = COLUMN[channel]

    def column(key: str) -> str:
        return names.get(key, key)

    def text(key: str) -> str:
        return one_line(cells.get(key, ""))

    for key, limit in TEXT_LIMITS.items():
        value = text(key)
        if len(value) > limit:
            problems.append(f"{column(key)} is {len(value)} characters, more than {limit}")
            value = value[:limit]
        values[key] = value or None
    strict = status == OPEN
    for key in ("recipient", "province", "address"):
        if strict and not values[key]:
            what = "address" if key != "recipient" else "recipient"
            problems.append(f"{column(key)} is empty: no {what} to ship to")
    if strict and not values["district"] and not values["commune"]:
        problems.append(f"{column('district')} and {column('commune')} are both empty")
    invalid: set[str] = set()
    phone, why = normalise_phone(cells.get("phone", "").strip())
    if why:
        invalid.add("phone")
        if strict:
            problems.append(why)
    values["phone"] = phone or (one_line(cells.get("phone", ""))[:64] or None)

    payment_text = " ".join(cells.get("payment", "").split()).casefold()
    if channel == OWN:
        payment = payment_text if payment_text in ("cod", "prepaid") else None
        if payment is None:
            invalid.update(("payment", "cod_dong", "amount_dong"))
            if strict:
                problems.append(f"payment {cells.get('payment', '')!r} is not cod or prepaid")
    else:
        payment = "cod" if payment_text in COD_WORDS else ("prepaid" if payment_text else None)
        if payment is None:
            invalid.update(("payment", "cod_dong"))
            if strict:
                problems.append("Payment Method is empty: cash on delivery or not?")
    values["payment"] = payment or "prepaid"

    amount, why = parse_dong(cells.get("amount", ""))
    if channel == OWN:
        cod, cod_why = parse_dong(cells.get("cod", "")) if cells.get("cod") else (0, None)
        if cod_why:
            invalid.add("cod_dong")
            if strict:
                problems.append(f"cod_dong {cod_why}")
        if payment == "cod" and not cod and strict and not cod_why:
            problems.append("cod_dong is empty or 0 for a cash-on-delivery order")
        if payment == "prepaid" and cod:
            problems.append(f"cod_dong is {cod} for a prepaid order (0 or empty)")
        if not cells.get("amount"):
            amount, why = cod or 0, None
    else:
        cod = amount if payment == "cod" else 0
    if why:
        invalid.update(("amount_dong", "cod_dong"))
        if strict:
            problems.append(f"{column('amount')} {why}")
    values["amount_dong"] = amount or 0
    values["cod_dong"] = (cod or 0) if payment == "cod" else 0

    line: dict[str, Any] | None = None
    site: str | None = None
    sku_text = cells.get("sku", "")
    quantity, why = parse_quantity(cells.get("quantity", ""))
    if why:
        problems.append(f"{column('quantity')} {why}")
    sku = skus.get(sku_text)
    if not sku_text:
        problems.append(f"{column('sku')} is empty")
    elif sku is None:
        problems.append(f"unknown SKU {sku_text!r}: not in the mapping file")
    else:
        site = sku.site
        line = {
            "sku": sku.seller_sku,
            "name": values["name"] or sku.product,
            "variation": values["variation"],
            "product": sku.product,
            "grade": sku.grade,
            "quantity": quantity,
            "pack_net_g": sku.pack_net_g,
            "pack_tare_g": sku.pack_tare_g,
        }
    values["buyer_message"] = free_text(cells.get("buyer_message", ""))
    values["seller_note"] = free_text(cells.get("seller_note", ""))
    return _Line(row.row, values, line, site, problems, invalid)


_COMPARED = (
    ("recipient", "recipient"),
    ("phone", "phone"),
    ("province", "province"),
    ("district", "district"),
    ("commune", "commune"),
    ("address", "address"),
    ("payment", "payment"),
    ("amount_dong", "amount"),
    ("cod_dong", "cod"),
    ("carrier", "carrier"),
    ("tracking", "tracking"),
    ("package_id", "package_id"),
)
"""Order-level values every row of an order must agree on (value key, column key)."""


# -- the plan -------------------------------------------------------------------------


def plan_orders(
    export: Export, skus: Mapping[str, Sku], default_carrier: str | None = None
) -> Plan:
    """The orders of an export and its bad rows. An open order needs a tracking number
    or a carrier (whose block the point takes one from): ``default_carrier`` is the
    carrier of the orders whose export names none."""
    channel = export.kind
    names = COLUMN[channel]
    plan = Plan(notes=list(export.notes))
    groups: dict[str, list[Row]] = {}
    broken: dict[str, list[Row]] = {}
    for row in export.rows:
        if row.problem is not None:
            if row.order_hint:
                broken.setdefault(row.order_hint, []).append(row)
            else:
                plan.rejected.append({"row": row.row, "order_id": None, "reason": row.problem})
            continue
        cells = {key: row.cells.get(col, "") for key, col in names.items()}
        oid = cells["order_id"]
        if not oid:
            reason = f"{names['order_id']} is empty: which order is this line of?"
            plan.rejected.append({"row": row.row, "order_id": None, "reason": reason})
            continue
        if not _ORDER_ID.match(oid):
            hint = " (the column was a number cell: format it as text)" if "e+" in oid else ""
            reason = f"{names['order_id']} {oid[:40]!r} is not an order id{hint}"
            plan.rejected.append({"row": row.row, "order_id": oid[:64], "reason": reason})
            continue
        groups.setdefault(oid, []).append(row)
    for oid, rows in broken.items():
        if oid not in groups:
            plan.refused_orders += 1
            for row in rows:
                plan.rejected.append({"row": row.row, "order_id": oid, "reason": row.problem})
    for oid, rows in groups.items():
        _plan_order(plan, channel, oid, rows, broken.get(oid, []), skus, default_carrier)
    plan.rejected.sort(key=lambda r: r["row"])
    return plan


def _plan_order(
    plan: Plan,
    channel: str,
    oid: str,
    rows: list[Row],
    broken: list[Row],
    skus: Mapping[str, Sku],
    default_carrier: str | None,
) -> None:
    names = COLUMN[channel]
    first = rows[0]
    status_text = first.cells.get(names["status"], "")
    status = status_of(channel, status_text)
    if status == "skip":
        reason = f"status {status_text}: not sent to a point"
        plan.skipped.append({"row": first.row, "order_id": oid, "reason": reason})
        return
    bad: list[tuple[int, str]] = [(r.row, str(r.problem)) for r in broken]
    if status is None:
        known = "open, cancelled" if channel == OWN else "Awaiting Shipment, Cancelled, ..."
        bad.append((first.row, f"status {status_text!r} is not one this import knows ({known})"))
        status = OPEN
    lines: list[_Line] = []
    for row in rows:
        cells = {key: row.cells.get(col, "") for key, col in names.items()}
        checked = _check_row(channel, row, cells, skus, status)
        if row is not first and cells["status"].casefold() != status_text.casefold():
            checked.problems.append(
                f"status {cells['status']!r} differs from row {first.row}'s {status_text!r}"
            )
        lines.append(checked)
    head = lines[0]
    for checked in lines[1:]:
        for key, col in _COMPARED:
            if key in head.invalid or key in checked.invalid:
                continue
            mine, theirs = checked.values.get(key), head.values.get(key)
            always = key in ("amount_dong", "cod_dong", "payment")
            if mine != theirs and (always or (mine and theirs)):
                label = names.get(col, col)
                checked.problems.append(
                    f"{label} {mine!r} differs from row {head.row}'s {theirs!r} "
                    "(one order, one value)"
                )
    sites = [c.site for c in lines if c.site is not None]
    if sites:
        for checked in lines:
            if checked.site is not None and checked.site != sites[0]:
                sku = checked.line["sku"] if checked.line else "?"
                checked.problems.append(
                    f"SKU {sku} is packed at point {checked.site}, the order's other lines at "
                    f"{sites[0]}: one order goes to one point"
                )
    head_values = lines[0].values
    if not head_values["carrier"] and default_carrier:
        head_values["carrier"] = default_carrier
    if status == OPEN and not head_values["carrier"] and not head_values["tracking"]:
        bad.append(
            (
                first.row,
                f"{names['carrier']} and {names['tracking']} are both empty: the point "
                "cannot give the parcel a tracking number (name the carrier, or import "
                "with --default-carrier)",
            )
        )
    if len(lines) > MAX_LINES:
        bad.append((first.row, f"{len(lines)} lines, more than {MAX_LINES}"))
    for checked in lines:
        bad += [(checked.row, problem) for problem in checked.problems]
    if bad:
        plan.refused_orders += 1
        reasons: dict[int, list[str]] = {}
        for row_no, reason in bad:
            reasons.setdefault(row_no, []).append(reason)
        for row_no in sorted(reasons):
            reason = "; ".join(reasons[row_no])
            plan.rejected.append({"row": row_no, "order_id": oid, "reason": reason})
        return
    v = head.values
    plan.orders.append(
        {
            "type": "order",
            "id": oid,
            "status": status,
            "channel": channel,
            "carrier": v["carrier"],
            "tracking": v["tracking"],
            "recipient": v["recipient"] or "",
            "phone": v["phone"] or "",
            "province": v["province"] or "",
            "district": v["district"] or "",
            "commune": v["commune"] or "",
            "address": v["address"] or "",
            "payment": v["payment"],
            "cod_dong": v["cod_dong"],
            "amount_dong": v["amount_dong"],
            "buyer_message": next(
                (c.values["buyer_message"] for c in lines if c.values["buyer_message"]), None
            ),
            "seller_note": next(
                (c.values["seller_note"] for c in lines if c.values["seller_note"]), None
            ),
            "package_id": v["package_id"],
            "lines": [c.line for c in lines],
            "site": sites[0],
        }
    )
