"""Reading an order export (bytes in, rows out; docs/orders.md "Export formats").

Two layouts, told apart by their header row: TikTok Shop's seller-centre export
(``Order ID``, ``Seller SKU``, ``Phone #``...; one row per order line) and the
project's own plain CSV (``order_id``, ``seller_sku``, ``phone``...). Two file
formats, told apart by content: an XLSX workbook is a zip (``PK\\x03\\x04``), anything
else is read as delimited text.

Each row keeps the number a spreadsheet shows: the header is row 1 (when blank
rows stand before it, it is the row it is on) and a quoted field spanning lines is
still one row. Cells come back as cleaned text: surrounding spaces dropped, Excel's
text forcing (``="0987654321"``, a leading apostrophe) undone, Unicode in NFC.

Bounded before parsing: :data:`MAX_FILE_BYTES` of file, :data:`MAX_ROWS` rows,
:data:`MAX_FIELD_CHARS` characters a cell, :data:`MAX_COLUMNS` columns, and for XLSX
:data:`MAX_XLSX_UNZIPPED` bytes unzipped (the sizes the zip declares, which Python's
zipfile holds each member to, so a zip bomb is refused before anything inflates).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.central.orders.xlsx import TooManyRows, XlsxError, sheet_rows

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
MAX_FIELD_CHARS = 10_000
MAX_COLUMNS = 256
MAX_XLSX_UNZIPPED = 200 * 1024 * 1024
MAX_XLSX_MEMBERS = 1_000

TIKTOK = "tiktok"
OWN = "csv"

TIKTOK_COLUMNS = (
    "Order ID",
    "Order Status",
    "SKU ID",
    "Seller SKU",
    "Product Name",
    "Variation",
    "Quantity",
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
TIKTOK_REQUIRED = (
    "Order ID",
    "Order Status",
    "Seller SKU",
    "Quantity",
    "Order Amount",
    "Recipient",
    "Phone #",
    "Province",
    "District",
    "Detail Address",
    "Payment Method",
)
OWN_COLUMNS = (
    "order_id",
    "status",
    "seller_sku",
    "quantity",
    "recipient",
    "phone",
    "province",
    "district",
    "commune",
    "address",
    "payment",
    "cod_dong",
    "amount_dong",
    "carrier",
    "tracking",
    "product_name",
    "variation",
    "package_id",
    "buyer_message",
    "seller_note",
)
OWN_REQUIRED = (
    "order_id",
    "status",
    "seller_sku",
    "quantity",
    "recipient",
    "phone",
    "province",
    "district",
    "address",
    "payment",
)
ORDER_ID_COLUMN = {TIKTOK: "Order ID", OWN: "order_id"}

BROKEN_ROW = "wrong delimiter or broken quoting"


class ExportError(ValueError):
    """The file cannot be read as an order export at all (the message says what to do)."""


@dataclass(frozen=True)
class Row:
    """One data row: its spreadsheet row number and its known columns' cleaned text.
    ``problem`` is set for a row that cannot be read as the header's columns (then
    ``cells`` is empty and ``order_hint`` is the order id it seems to belong to)."""

    row: int
    cells: dict[str, str]
    problem: str | None = None
    order_hint: str | None = None


@dataclass(frozen=True)
class Export:
    kind: str
    """:data:`TIKTOK` or :data:`OWN`."""
    format: str
    """``csv`` or ``xlsx``."""
    rows: list[Row]
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    """What was passed over on purpose (TikTok's row of column descriptions)."""


_SPACE = " \t\r\n\ufeff\u00a0\u200b\u2007\u202f"
_FORCED = re.compile(r'^="(.*)"$', re.DOTALL)
_ID_TOKEN = re.compile(r"^[A-Za-z0-9._-]+")


def clean(text: str) -> str:
    """A cell's text as meant: spaces around it dropped, ``="..."`` and a leading
    apostrophe (Excel's ways of forcing text) undone, Unicode composed (NFC)."""
    text = text.strip(_SPACE)
    forced = _FORCED.match(text)
    if forced:
        text = forced.group(1).replace('""', '"').strip(_SPACE)
    elif text.startswith("'"):
        text = text[1:].strip(_SPACE)
    return unicodedata.normalize("NFC", text)


def _key(name: str) -> str:
    return " ".join(clean(name).split()).casefold()


_TIKTOK_KEYS = {_key(c): c for c in TIKTOK_COLUMNS}
_OWN_KEYS = {_key(c): c for c in OWN_COLUMNS}
_KNOWN = frozenset(_TIKTOK_KEYS) | frozenset(_OWN_KEYS)


def _layout(header: Sequence[str]) -> tuple[str, dict[int, str]]:
    """The layout a header row names and, per position, the known column there."""
    best: tuple[str, dict[int, str]] | None = None
    for kind, keys in ((TIKTOK, _TIKTOK_KEYS), (OWN, _OWN_KEYS)):
        at: dict[int, str] = {}
        for i, name in enumerate(header):
            column = keys.get(_key(name))
            if column is not None and column not in at.values():
                at[i] = column
        if best is None or len(at) > len(best[1]):
            best = (kind, at)
    assert best is not None
    kind, at = best
    required = TIKTOK_REQUIRED if kind == TIKTOK else OWN_REQUIRED
    missing = [c for c in required if c not in at.values()]
    if len(at) < 3:
        raise ExportError(
            "no header row with the columns of a TikTok Shop order export (Order ID, "
            "Seller SKU, Quantity, ...) or of the own CSV (order_id, seller_sku, quantity, "
            "...): export the orders again, or see docs/orders.md for the columns"
        )
    if missing:
        layout = "TikTok Shop export" if kind == TIKTOK else "own CSV"
        raise ExportError(
            f"the header (row 1) of this {layout} lacks the column(s) {', '.join(missing)}: "
            "export again with every column, or add them (docs/orders.md)"
        )
    return kind, at


def read_export(data: bytes) -> Export:
    """The rows of an order export (XLSX if ``data`` is a zip, else delimited text).
    ExportError when it is too big, not an export, or not readable at all."""
    if len(data) > MAX_FILE_BYTES:
        raise ExportError(
            f"the file is {len(data):,} bytes, more than {MAX_FILE_BYTES:,}: "
            "export a shorter period, or split it"
        )
    if not data.strip():
        raise ExportError("the file is empty")
    if data.startswith(b"PK\x03\x04"):
        return read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ExportError(
            "this is an old Excel .xls workbook, or a password-protected one: save it as "
            ".xlsx without a password, or as CSV UTF-8, and import that"
        )
    return read_csv(data)


# -- delimited text -------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ExportError("the file says UTF-16 but is not: export it again") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(
            f"the file is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8 "
            "(Excel: File > Save As > CSV UTF-8), or import the .xlsx itself"
        ) from None
    if "\x00" in text:
        raise ExportError("the file holds NUL bytes: it is not a CSV text file")
    return text


def _sniff(first_line: str, known: frozenset[str]) -> str:
    """The delimiter under which the header line names the most known columns."""
    best, score = ",", (-1, -1)
    for delimiter in (",", ";", "\t"):
        fields = next(csv.reader([first_line], delimiter=delimiter), [])
        hits = sum(1 for f in fields if _key(f) in known)
        if (hits, len(fields)) > score:
            best, score = delimiter, (hits, len(fields))
    return best


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row, fields) of each record, blank ones included in the count."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ExportError(
                f"row {row + 1}: {exc}: a quoted field never closes (an unbalanced "
                '" takes the rest of the file with it); fix that row and export again'
            ) from None
        row += 1
        if row > MAX_ROWS:
            raise ExportError(f"more than {MAX_ROWS:,} rows: split the export")
        yield row, fields


def _blank(fields: Iterable[Any]) -> bool:
    return all(f is None or (isinstance(f, str) and not f.strip(_SPACE)) for f in fields)


def _hint(fields: Sequence[str], index: int | None) -> str | None:
    if index is None or index >= len(fields):
        return None
    token = _ID_TOKEN.match(clean(fields[index]))
    return token.group(0) if token else None


def _first_line(text: str) -> str:
    return text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")


def read_csv(data: bytes) -> Export:
    text = _decode(data)
    delimiter = _sniff(_first_line(text), _KNOWN)
    return _rows(_records(text, delimiter), "csv", delimiter)


def read_table(
    data: bytes, columns: Sequence[str]
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A small CSV of the project's own (mapping, catalogue): its header and its
    non-blank rows with their numbers; the delimiter is the one under which the
    header names most of ``columns``. ExportError when it cannot be read."""
    if len(data) > MAX_FILE_BYTES:
        raise ExportError(f"the file is {len(data):,} bytes, more than {MAX_FILE_BYTES:,}")
    text = _decode(data)
    delimiter = _sniff(_first_line(text), frozenset(_key(c) for c in columns))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for number, fields in _records(text, delimiter):
        if _blank(fields):
            continue
        if header is None:
            header = fields
        else:
            rows.append((number, fields))
    if header is None:
        raise ExportError("the file is empty")
    return header, rows


def _rows(records: Iterator[tuple[int, list[str]]], fmt: str, delimiter: str | None) -> Export:
    header: list[str] | None = None
    kind = OWN
    at: dict[int, str] = {}
    id_index: int | None = None
    rows: list[Row] = []
    notes: list[str] = []
    header_row = 0
    for number, fields in records:
        if header is None:
            if _blank(fields):
                continue
            if len(fields) > MAX_COLUMNS:
                raise ExportError(f"row {number}: {len(fields)} columns, more than {MAX_COLUMNS}")
            header = fields
            kind, at = _layout(fields)
            header_row = number
            id_index = next((i for i, c in at.items() if c == ORDER_ID_COLUMN[kind]), None)
            continue
        if _blank(fields):
            continue
        width = len(header)
        if len(fields) != width:
            problem = f"{BROKEN_ROW}: {len(fields)} fields where the header has {width}" + (
                " (the file's delimiter is " + _name(delimiter) + ")" if delimiter else ""
            )
            rows.append(Row(number, {}, problem, _hint(fields, id_index)))
            continue
        long = next((i for i in at if len(fields[i]) > MAX_FIELD_CHARS), None)
        if long is not None:
            problem = (
                f"{at[long]} is {len(fields[long]):,} characters, more than {MAX_FIELD_CHARS:,}"
            )
            rows.append(Row(number, {}, problem, _hint(fields, id_index)))
            continue
        cells = {column: clean(fields[i]) for i, column in at.items()}
        if kind == TIKTOK and number == header_row + 1 and _describes(cells):
            notes.append(f"row {number}: TikTok's row of column descriptions, passed over")
            continue
        rows.append(Row(number, cells))
    if header is None:
        raise ExportError("the file has no header row")
    return Export(kind, fmt, rows, delimiter, notes)


def _name(delimiter: str) -> str:
    return {",": "a comma", ";": "a semicolon", "\t": "a tab"}.get(delimiter, repr(delimiter))


def _describes(cells: dict[str, str]) -> bool:
    """TikTok's second row (``Platform unique order ID.``...) rather than an order:
    its Order ID cell is words, which no order id is."""
    order_id = cells.get("Order ID", "")
    return " " in order_id and not any(ch.isdigit() for ch in order_id)


# -- XLSX -----------------------------------------------------------------------------


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExportError(f"the file starts like an XLSX workbook but is not one ({exc})") from None
    if len(members) > MAX_XLSX_MEMBERS:
        raise ExportError(
            f"the workbook holds {len(members):,} files, more than {MAX_XLSX_MEMBERS:,}"
        )
    unzipped = sum(m.file_size for m in members)
    if unzipped > MAX_XLSX_UNZIPPED:
        raise ExportError(
            f"the workbook unzips to {unzipped:,} bytes, more than {MAX_XLSX_UNZIPPED:,} "
            "(a zip bomb, or far too big an export): export a shorter period"
        )
    if any(m.flag_bits & 0x1 for m in members):
        raise ExportError("the workbook is password-protected: save it without a password")


def read_xlsx(data: bytes) -> Export:
    """The first sheet of an XLSX workbook, streamed (``edge.central.orders.xlsx``)."""
    _check_zip(data)
    rows = sheet_rows(data, MAX_ROWS, MAX_COLUMNS)
    try:
        return _rows(_xlsx_padded(rows), "xlsx", None)
    except TooManyRows:
        raise ExportError(f"more than {MAX_ROWS:,} rows: split the export") from None
    except XlsxError as exc:
        raise ExportError(f"the XLSX workbook cannot be read ({exc}): save it again") from None


def _xlsx_padded(records: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """XLSX rows as wide as the header: a sheet leaves trailing empty cells out, and
    cells right of the header's last column belong to no column."""
    width = 0
    for number, fields in records:
        if not width:
            if not _blank(fields):
                while fields and not fields[-1].strip(_SPACE):
                    fields.pop()
                width = len(fields)
            yield number, fields
            continue
        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        yield number, fields[:width]
