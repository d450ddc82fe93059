"""Realistic TikTok Shop order exports with known outcomes, for the import tests and
the benchmark (docs/orders.md).

:func:`make_export` writes ``orders`` orders (one row per order line: 1 to 3 lines,
so several rows share an Order ID) as CSV (a UTF-8 byte-order mark, Excel's
``\\r\\n`` and quoting, addresses with commas and line breaks inside quotes, phones as
``="0987654321"``, ``(+84) 987 654 321``, ``098.765.4321``..., prices as
``185.000``, ``185,000``, ``185.000 ₫`` or plain, trailing spaces, empty rows at the
end) or as XLSX (openpyxl), and makes ``bad`` of those orders carry one bad row each,
of every kind in :data:`BAD_KINDS` in turn. It returns the bytes with what the
import must make of them: which orders are good (and their point), which rows are
bad and a word their reason must contain, which are cancelled or skipped.

Deterministic: the same arguments give the same bytes, and each order's content
depends only on its index and the seed, so a later export of the same orders with
some of them ``cancelled`` differs only in those orders' status.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

SITES = ("sin-ho-01", "muong-te-02")
CATALOGUE: tuple[tuple[str, str, str, str, int, int, str, int], ...] = (
    # seller_sku, product name shown, product, grade, pack_net_g, pack_tare_g, site, price
    ("SHAN-500-A", "Chè Shan tuyết 500g", "Chè Shan tuyết", "A", 500, 40, SITES[0], 185_000),
    ("SHAN-500-B", "Chè Shan tuyết 500g", "Chè Shan tuyết", "B", 500, 40, SITES[0], 150_000),
    ("SHAN-1000-A", "Chè Shan tuyết 1kg", "Chè Shan tuyết", "A", 1000, 60, SITES[0], 350_000),
    ("TAOQUA-500", "Thảo quả khô 500g", "Thảo quả", "loai1", 500, 35, SITES[0], 120_000),
    ("SAM-100", "Sâm Lai Châu 100g", "Sâm Lai Châu", "A", 100, 20, SITES[1], 890_000),
    ("MACMAT-1000", "Mắc mật tươi 1kg", "Mắc mật", "A", 1000, 80, SITES[1], 95_000),
    ("GAO-5000", "Gạo Séng Cù 5kg", "Gạo Séng Cù", "A", 5000, 120, SITES[1], 160_000),
)
VARIATIONS = {"A": "Hạng A", "B": "Hạng B", "loai1": "Loại 1"}
HEADER = (
    "Order ID",
    "Order Status",
    "Order Substatus",
    "SKU ID",
    "Seller SKU",
    "Product Name",
    "Variation",
    "Quantity",
    "SKU Unit Original Price",
    "Order Amount",
    "Tracking ID",
    "Shipping Provider Name",
    "Recipient",
    "Phone #",
    "Province",
    "District",
    "Commune",
    "Detail Address",
    "Payment Method",
    "Weight(kg)",
    "Package ID",
    "Buyer Message",
    "Seller Note",
)
"""TikTok's columns the import reads, and two it does not (it must ignore them)."""
DESCRIPTIONS = (
    "Platform unique order ID.",
    "Current order status.",
    "Order sub-status.",
    "Platform unique SKU ID.",
    "SKU ID defined by the seller.",
    "Product name.",
    "Product variation.",
    "Quantity of the SKU.",
    "Original price of the SKU.",
    "Total amount of the order.",
    "Tracking number.",
    "Shipping provider.",
    "Recipient name.",
    "Recipient phone number.",
    "Province.",
    "District.",
    "Commune.",
    "Detailed address.",
    "Payment method.",
    "Package weight in kg.",
    "Package ID.",
    "Message from the buyer.",
    "Note from the seller.",
)
OPEN_STATUSES = ("Awaiting Shipment", "Awaiting Collection", "To ship")
SKIPPED_STATUSES = ("Delivered", "Unpaid", "Shipped", "Completed")
BAD_KINDS: tuple[tuple[str, str], ...] = (
    ("unknown_sku", "unknown SKU"),
    ("missing_address", "no address"),
    ("bad_phone", "not a Vietnamese phone number"),
    ("quantity_zero", "not a positive number"),
    ("broken_quoting", "wrong delimiter or broken quoting"),
    ("quantity_fraction", "not a positive whole number"),
    ("amounts_disagree", "one order, one value"),
    ("missing_recipient", "no recipient"),
    ("quantity_word", "is not a number"),
    ("wrong_delimiter", "wrong delimiter or broken quoting"),
    ("sites_differ", "one order goes to one point"),
    ("amount_unreadable", "not an amount"),
    ("masked_phone", "masked"),
    ("missing_sku", "Seller SKU is empty"),
)
"""Each kind of bad row and a word the reason given for it must contain."""
TEXT_ONLY = frozenset({"broken_quoting", "wrong_delimiter"})
"""Kinds an XLSX cannot have (cells have no delimiter): replaced there by the next."""

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Giàng", "Lò", "Sùng")
MIDDLE = ("Thị", "Văn", "Minh", "Thu", "Đức", "Ngọc", "Hữu", "A")
GIVEN = ("Hằng", "Lan", "Hùng", "Dũng", "Mai", "Tuấn", "Hoa", "Phương", "Sính", "Mỷ", "Chứ")
PLACES = (
    ("Hà Nội", "Quận Đống Đa", "Phường Láng Hạ"),
    ("Hà Nội", "Quận Cầu Giấy", "Phường Dịch Vọng"),
    ("Hồ Chí Minh", "Quận 3", "Phường Võ Thị Sáu"),
    ("Hồ Chí Minh", "Thành phố Thủ Đức", "Phường Linh Trung"),
    ("Đà Nẵng", "Quận Hải Châu", "Phường Thạch Thang"),
    ("Lai Châu", "Huyện Sìn Hồ", "Xã Pa Tần"),
    ("Hải Phòng", "Quận Lê Chân", "Phường An Biên"),
    ("Cần Thơ", "Quận Ninh Kiều", "Phường Tân An"),
)
STREETS = ("ngõ 25 Láng Hạ", "đường Trần Duy Hưng", "hẻm 12 Nguyễn Đình Chiểu", "tổ 5")
CARRIERS = ("J&T Express", "J&T Express", "Viettel Post", "Giao Hàng Nhanh")
PREPAID = ("Bank transfer", "TikTok Shop Balance", "Credit/debit card", "Ví ShopeePay")
COD = ("Cash on delivery", "COD", "Thanh toán khi nhận hàng")
MESSAGES = (
    "",
    "",
    "",
    "Giao giờ hành chính giúp em",
    'Gọi trước khi giao, nhà ở "ngõ" nhỏ',
    "Gói kỹ giúp mình, cảm ơn shop!",
)


@dataclass(frozen=True)
class BadRow:
    row: int
    order_id: str | None
    kind: str
    reason_has: str


@dataclass
class Generated:
    data: bytes
    format: str
    good: dict[str, str] = field(default_factory=dict)
    """Order id -> point, of every order that must be stored open."""
    cancelled: dict[str, str] = field(default_factory=dict)
    """Order id -> point, of every good order whose status is Cancelled."""
    skipped: set[str] = field(default_factory=set)
    bad: list[BadRow] = field(default_factory=list)
    rows: int = 0
    """Data rows (order lines) written."""

    @property
    def bad_orders(self) -> set[str]:
        return {b.order_id for b in self.bad if b.order_id is not None}


def mapping_csv() -> bytes:
    """The SKU mapping for :data:`CATALOGUE` (docs/orders.md "The mapping file")."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("seller_sku", "product", "grade", "pack_net_g", "pack_tare_g", "site"))
    for sku, _name, product, grade, net, tare, site, _price in CATALOGUE:
        writer.writerow((sku, product, grade, net, tare, site))
    return out.getvalue().encode()


def order_id(i: int, first: int = 578_310_000_000_000_000) -> str:
    return str(first + 7919 * i)


def _money(rng: random.Random, amount: int) -> str:
    style = rng.randrange(4)
    grouped = f"{amount:,}"
    if style == 0:
        return str(amount)
    if style == 1:
        return grouped.replace(",", ".")
    if style == 2:
        return grouped
    return grouped.replace(",", ".") + " ₫"


def _phone(rng: random.Random, text_forcing: bool) -> tuple[str, str]:
    """(as typed, normalised)."""
    digits = rng.choice(("03", "05", "07", "08", "09")) + f"{rng.randrange(10**8):08d}"
    rest = digits[1:]
    styles = [
        digits,
        "+84" + rest,
        f"(+84) {rest[:3]} {rest[3:6]} {rest[6:]}",
        f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
        "84" + rest,
        f"{digits[:4]} {digits[4:7]} {digits[7:]}",
    ]
    if text_forcing:
        styles.append(f'="{digits}"')
        styles.append("'" + digits)
    return rng.choice(styles), digits


def _order(i: int, seed: int, two_lines: bool = False) -> dict[str, Any]:
    """One order's content, from its index and the seed only."""
    rng = random.Random(seed * 1_000_003 + i)
    site = SITES[rng.randrange(len(SITES))]
    here = [c for c in CATALOGUE if c[6] == site]
    count = rng.choice((1, 1, 1, 2, 2, 3))
    if two_lines:
        count = max(count, 2)
    picks = rng.sample(here, min(count, len(here)))
    lines = [(c, rng.choice((1, 1, 2, 3))) for c in picks]
    amount = sum(c[7] * q for c, q in lines) + rng.choice((0, 15_000, 30_000))
    province, district, commune = rng.choice(PLACES)
    house = f"Số {rng.randrange(1, 200)}, {rng.choice(STREETS)}"
    if rng.random() < 0.3:
        house += f"\n{commune}"  # a line break inside the quoted address
    cod = rng.random() < 0.6
    tracked = rng.random() < 0.3
    return {
        "rng": rng,
        "site": site,
        "lines": lines,
        "amount": amount,
        "recipient": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        "province": province,
        "district": district,
        "commune": commune,
        "address": house,
        "payment": rng.choice(COD) if cod else rng.choice(PREPAID),
        "tracking": f"JT{rng.randrange(10**10):010d}" if tracked else "",
        "carrier": "J&T Express" if tracked else rng.choice(CARRIERS),
        "package_id": str(1_152_000_000_000_000_000 + i) if tracked else "",
        "message": rng.choice(MESSAGES),
    }


def make_export(
    orders: int,
    bad: int = 0,
    fmt: str = "csv",
    seed: int = 13,
    cancelled: Collection[int] = (),
    skipped: int = 0,
    descriptions: bool = False,
) -> Generated:
    """An export of ``orders`` orders (indexes 0..orders-1; ids from :func:`order_id`).
    ``bad`` of them (spread evenly) carry one bad row each, of the kinds of
    :data:`BAD_KINDS` in turn; ``cancelled`` are indexes whose status is Cancelled
    (and which then carry no bad row);
    ``skipped`` more orders (not counted in ``orders``) have statuses the import
    skips. ``descriptions`` adds TikTok's row of column descriptions as row 2."""
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"format {fmt!r} is not csv or xlsx")
    kinds = [k for k in BAD_KINDS if fmt == "csv" or k[0] not in TEXT_ONLY]
    bad_at = {round(j * orders / bad) + 1 if bad else 0: kinds[j % len(kinds)] for j in range(bad)}
    bad_at = {min(k, orders - 1): v for k, v in bad_at.items()}
    if len(bad_at) != bad:
        raise ValueError(f"{bad} bad orders do not fit in {orders}")
    gen = Generated(b"", fmt)
    records: list[tuple[list[Any], str | None]] = []  # (cells, how to write it: None, or a kind)
    row = 3 if descriptions else 2
    plan = [(i, False) for i in range(orders)] + [(orders + k, True) for k in range(skipped)]
    for i, skip in plan:
        oid = order_id(i)
        kind = None if i in cancelled else bad_at.get(i)
        o = _order(i, seed, two_lines=kind is not None and kind[0] == "amounts_disagree")
        rng: random.Random = o["rng"]
        if kind is not None and kind[0] == "sites_differ" and len(o["lines"]) < 2:
            other = next(c for c in CATALOGUE if c[6] == o["site"] and c != o["lines"][0][0])
            o["lines"].append((other, 1))
        status = rng.choice(OPEN_STATUSES)
        if i in cancelled:
            status = "Cancelled"
        if skip:
            status = SKIPPED_STATUSES[i % len(SKIPPED_STATUSES)]
        bad_line = 0 if kind is None or len(o["lines"]) == 1 else 1
        if kind is not None and kind[0] in ("amounts_disagree", "sites_differ"):
            bad_line = 1
        phone_text, _phone_norm = _phone(rng, text_forcing=fmt == "csv")
        amount_text = _money(rng, o["amount"])
        for n, (cat, quantity) in enumerate(o["lines"]):
            sku, name, _product, grade, net, _tare, _site, price = cat
            cells: dict[str, Any] = {
                "Order ID": oid,
                "Order Status": status,
                "Order Substatus": status,
                "SKU ID": str(1_729_000_000_000_000_000 + CATALOGUE.index(cat)),
                "Seller SKU": sku,
                "Product Name": name,
                "Variation": VARIATIONS[grade],
                "Quantity": quantity if fmt == "xlsx" else str(quantity),
                "SKU Unit Original Price": _money(rng, price),
                "Order Amount": amount_text,
                "Tracking ID": o["tracking"],
                "Shipping Provider Name": o["carrier"],
                "Recipient": o["recipient"] + (" " if rng.random() < 0.2 else ""),
                "Phone #": phone_text,
                "Province": o["province"],
                "District": o["district"],
                "Commune": o["commune"],
                "Detail Address": o["address"],
                "Payment Method": o["payment"],
                "Weight(kg)": f"{net * quantity / 1000:g}",
                "Package ID": o["package_id"],
                "Buyer Message": o["message"],
                "Seller Note": "",
            }
            how: str | None = None
            if kind is not None and n == bad_line and not skip:
                how = _spoil(cells, kind[0], rng, o)
                gen.bad.append(BadRow(row, oid, kind[0], kind[1]))
            records.append(([cells[h] for h in HEADER], how))
            row += 1
            gen.rows += 1
        if skip:
            gen.skipped.add(oid)
        elif kind is None:
            (gen.cancelled if i in cancelled else gen.good)[oid] = o["site"]
    gen.data = (
        _write_csv(records, descriptions) if fmt == "csv" else _write_xlsx(records, descriptions)
    )
    return gen


def _spoil(cells: dict[str, Any], kind: str, rng: random.Random, o: dict[str, Any]) -> str | None:
    """Make this row bad in the way ``kind`` says; how to write it (text kinds)."""
    if kind == "unknown_sku":
        cells["Seller SKU"] = "SHAN-250-X"
    elif kind == "missing_address":
        cells["Detail Address"] = "  "
    elif kind == "missing_recipient":
        cells["Recipient"] = ""
    elif kind == "bad_phone":
        cells["Phone #"] = rng.choice(("0123456789", "+1 415 555 0100", "09876543", "098765432100"))
    elif kind == "masked_phone":
        cells["Phone #"] = "(+84)98*****321"
    elif kind == "quantity_zero":
        cells["Quantity"] = "0"
    elif kind == "quantity_fraction":
        cells["Quantity"] = "2.5"
    elif kind == "quantity_word":
        cells["Quantity"] = "hai"
    elif kind == "amounts_disagree":
        cells["Order Amount"] = str(o["amount"] + 10_000)
    elif kind == "amount_unreadable":
        cells["Order Amount"] = "một trăm nghìn"
    elif kind == "sites_differ":
        elsewhere = next(c for c in CATALOGUE if c[6] != o["site"])
        cells["Seller SKU"] = elsewhere[0]
    elif kind == "missing_sku":
        cells["Seller SKU"] = ""
    elif kind in TEXT_ONLY:
        cells["Detail Address"] = "Số 9, tổ 3"  # one line: the row stays one record
        return kind
    else:
        raise ValueError(f"no bad row of kind {kind!r}")
    return None


def _write_csv(records: list[tuple[list[Any], str | None]], descriptions: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    if descriptions:
        writer.writerow(DESCRIPTIONS)
    address = HEADER.index("Detail Address")
    for values, how in records:
        if how == "broken_quoting":  # the address's comma left unquoted: one field too many
            line = io.StringIO()
            csv.writer(line, lineterminator="").writerow(values)
            out.write(line.getvalue().replace(f'"{values[address]}"', values[address]) + "\r\n")
        elif how == "wrong_delimiter":  # a row pasted from a semicolon file
            line = io.StringIO()
            csv.writer(line, delimiter=";", lineterminator="").writerow(values)
            out.write(line.getvalue() + "\r\n")
        else:
            writer.writerow(values)
    out.write(",,,,\r\n\r\n")  # a spreadsheet's empty trailing rows
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def _write_xlsx(records: list[tuple[list[Any], str | None]], descriptions: bool) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("OrderSKUList")
    sheet.append(list(HEADER))
    if descriptions:
        sheet.append(list(DESCRIPTIONS))
    for values, _how in records:
        sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
