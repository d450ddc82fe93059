"""The four label kinds: the data each one needs (a pydantic model, unknown keys refused)
and its layout (a list of blocks for :mod:`edge.printer.layout`).

* ``lot``: the tag on a farmer's bag at intake, with a signed QR of the lot id;
* ``receipt``: the farmer's purchase receipt, amount = net weight x unit price;
* ``shipping``: the parcel label for the courier: Code 128 and signed QR of the tracking
  code, recipient, weights, cash on delivery, and the lot it was packed from;
* ``manifest``: the courier handover sheet: signed QR of the batch id, one row per parcel,
  totals and two signatures.

Money is integer đồng ("1.250.000 đ"), weights integer grams ("12,345 kg"), times are
timezone-aware and printed in the site's zone. Text is NFC-normalised with runs of
whitespace collapsed; control and invisible characters, and characters the label fonts
have no glyph for, are refused (edge.printer.printable, the rule the API applies too).
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.gradenames import printed_grade
from edge.printer.layout import (
    LARGE,
    SMALL,
    TITLE,
    Beside,
    BigValue,
    Block,
    Column,
    QRCode,
    Rule,
    Signatures,
    Signer,
    Spacer,
    Table,
    Text,
    Title,
)
from edge.printer.layout import Barcode128 as Barcode
from edge.printer.layout import Field as F
from edge.printer.payload import TRACKING_RE, PayloadKind
from edge.printer.printable import MAX_DONG, UnitPriceDong, phone_number, text_rule


# -- formats ------------------------------------------------------------------------------
def format_weight(net_g: int) -> str:
    """Grams as Vietnamese-style kilograms: 12345 -> "12,345 kg", 1234567 -> "1.234,567 kg"."""
    sign = "-" if net_g < 0 else ""
    kg, g = divmod(abs(net_g), 1000)
    return f"{sign}{kg:,}".replace(",", ".") + f",{g:03d} kg"


def format_dong(amount: int) -> str:
    """Integer đồng with dots between thousands: 1250000 -> "1.250.000 đ"."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,}".replace(",", ".") + " đ"


def amount_dong(net_g: int, unit_price_dong: int) -> int:
    """Net weight (g) x price per kg, rounded half up to the đồng, in integers only."""
    return (net_g * unit_price_dong + 500) // 1000


def short_lot_id(lot_id: str | uuid.UUID) -> str:
    """Short form of a record id for people: the last 8 hex digits (the random part of a
    UUIDv7), upper case, as "89AB-CDEF"."""
    tail = "".join(ch for ch in str(lot_id) if ch.isalnum())[-8:].upper()
    return f"{tail[:4]}-{tail[4:]}" if len(tail) == 8 else tail


def format_local_time(recorded_at: datetime, tz: tzinfo | None = None) -> str:
    """dd/mm/yyyy HH:MM in ``tz`` (the system's local zone when None)."""
    if recorded_at.tzinfo is None or recorded_at.utcoffset() is None:
        raise ValueError(f"recorded_at must be timezone-aware, got {recorded_at!r}")
    return f"{recorded_at.astimezone(tz):%d/%m/%Y %H:%M}"


# -- field types --------------------------------------------------------------------------
# Text, phone numbers and prices follow the one rule the station's API applies too
# (edge.printer.printable): what staff can enter is what a label can print.
def _tracking(value: str) -> str:
    if not TRACKING_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a tracking code: 4 to 30 characters of A-Z, 0-9, '.' "
            "and '-', starting with a letter or digit"
        )
    return value


ORDER_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""An order's id as the marketplace or channel gives it (the rule central's order import
applies): 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'."""


def _order_id(value: str) -> str:
    if not ORDER_ID_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an order id: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
        )
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware, e.g. 2026-11-23T10:38:00+07:00")
    return value


Name = Annotated[str, Strict(), AfterValidator(text_rule(1000))]
LongText = Annotated[str, Strict(), AfterValidator(text_rule(2000))]
Phone = Annotated[str, Strict(), AfterValidator(phone_number)]
Tracking = Annotated[str, Strict(), AfterValidator(_tracking)]
Stamp = Annotated[datetime, AfterValidator(_aware)]
Grams = Annotated[int, Strict(), Field(gt=0, le=100_000_000, description="integer grams")]
Dong = Annotated[int, Strict(), Field(ge=0, le=MAX_DONG, description="integer đồng")]
Seq = Annotated[int, Strict(), Field(ge=1)]
OrderId = Annotated[str, Strict(), AfterValidator(_order_id)]
LotLabel = Annotated[str, Strict(), AfterValidator(text_rule(24))]
"""A lot as staff know it on the floor, e.g. "06/12 #3" (day and daily number)."""
Quantity = Annotated[
    int, Strict(), Field(ge=1, le=100_000, description="packs, a positive integer")
]
MAX_GOODS = 20
MAX_MANIFEST_PARCELS = 2000
"""Parcels one courier manifest lists (a pickup of a whole livestream's parcels)."""
MAX_LOTS = 30


class LabelData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrintedData(LabelData):
    """The data of a whole label (a kind), not of a part of one."""

    is_copy: bool = False
    """A reprint of a label that had printed: it says "BẢN SAO" (copy) at the top."""


class LotData(PrintedData):
    collection_point: Name
    lot_id: uuid.UUID
    seq: Seq | None = None
    day_no: Seq | None = None  # the daily lot number staff see; printed instead of seq
    voided: bool = False
    """The lot was voided (issue 12): its label says "ĐÃ HỦY" in large type, first."""
    farmer: Name
    product: Name
    grade: Name | None = None
    net_g: Grams
    recorded_at: Stamp


class ReceiptData(LotData):
    """A lot tag's data plus what the farmer is paid and who paid."""

    unit_price_dong: UnitPriceDong
    staff: Name

    @property
    def amount_dong(self) -> int:
        return amount_dong(self.net_g, self.unit_price_dong)


class Recipient(LabelData):
    name: Name
    phone: Phone
    address: LongText


class Goods(LabelData):
    """One line of what is in the parcel: ``quantity`` packs of a product (and grade)."""

    name: Name
    grade: Name | None = None
    quantity: Quantity
    net_g: Annotated[Grams, Field(description="net weight of the whole line")]


class ShippingData(PrintedData):
    """A parcel's label. Older data names one ``product`` (and ``grade``) and one
    ``lot_id``; a packed order lists its ``goods`` lines and the ``lots`` staff packed it
    from. At least one of ``product`` and ``goods`` is given; with ``goods``, the label
    prints the lines, not ``product`` (a summary of them)."""

    tracking_code: Tracking
    courier: Name | None = None
    collection_point: Name
    sender_phone: Phone | None = None
    order_id: OrderId | None = None
    recipient: Recipient
    product: Name | None = None
    grade: Name | None = None
    goods: list[Goods] | None = None
    """1 to :data:`MAX_GOODS` lines."""
    net_g: Grams
    gross_g: Grams
    cod_dong: Dong
    lot_id: uuid.UUID | None = None
    lots: Annotated[list[LotLabel], Field(max_length=MAX_LOTS)] = []
    created_at: Stamp
    note: LongText | None = None

    @field_validator("gross_g")
    @classmethod
    def _gross_not_below_net(cls, value: int, info: ValidationInfo) -> int:
        net = info.data.get("net_g")
        if net is not None and value < net:
            raise ValueError(f"gross weight {value} g is less than the net weight {net} g")
        return value

    @field_validator("goods")
    @classmethod
    def _goods_lines(cls, goods: list[Goods] | None) -> list[Goods] | None:
        if goods is not None and not 1 <= len(goods) <= MAX_GOODS:
            raise ValueError(
                f"a parcel lists 1 to {MAX_GOODS} goods lines, got {len(goods)}"
                + (" (leave 'goods' out rather than empty)" if not goods else "")
            )
        return goods

    @model_validator(mode="after")
    def _says_what_is_inside(self) -> ShippingData:
        if self.product is None and not self.goods:
            raise ValueError("the parcel's contents are missing: give 'goods' (or 'product')")
        return self


class Parcel(LabelData):
    tracking_code: Tracking
    weight_g: Annotated[Grams, Field(description="gross weight of the parcel")]
    cod_dong: Dong = 0


class ManifestData(PrintedData):
    batch_id: uuid.UUID
    collection_point: Name
    courier: Name  # the courier company
    courier_staff: Name  # the person who takes the parcels and signs
    staff: Name  # the station's staff who hands them over and signs
    handed_over_at: Stamp
    parcels: Annotated[list[Parcel], Field(min_length=1, max_length=MAX_MANIFEST_PARCELS)]

    @field_validator("parcels")
    @classmethod
    def _unique_codes(cls, parcels: list[Parcel]) -> list[Parcel]:
        seen: set[str] = set()
        for parcel in parcels:
            if parcel.tracking_code in seen:
                raise ValueError(f"tracking code {parcel.tracking_code} is listed twice")
            seen.add(parcel.tracking_code)
        return parcels


class TotalsRow(LabelData):
    """One farmer's or one product's lots of a day."""

    name: Name
    lots: Annotated[int, Strict(), Field(ge=1, le=1_000_000)]
    net_g: Annotated[int, Strict(), Field(gt=0, le=10**13)]
    amount_dong: Annotated[int, Strict(), Field(ge=0, le=10**15)]
    unpriced_lots: Annotated[int, Strict(), Field(ge=0, le=1_000_000)] = 0
    """Lots without a price: weighed, not in ``amount_dong``."""


class DaySummaryData(PrintedData):
    """The end-of-day summary (80 mm): the day's lots per product and per farmer."""

    collection_point: Name
    day: date
    printed_at: Stamp
    staff: Name
    products: Annotated[list[TotalsRow], Field(max_length=2000)]
    farmers: Annotated[list[TotalsRow], Field(max_length=5000)]


# -- layouts ------------------------------------------------------------------------------
def _ref(record_id: uuid.UUID, seq: int | None, day_no: int | None = None) -> str:
    number = day_no if day_no is not None else seq
    return short_lot_id(record_id) + (f" · #{number}" if number is not None else "")


def _with_grade(product: str, grade: str | None) -> str:
    return f"{product} – {printed_grade(grade)}" if grade else product


VOID_MARK = "ĐÃ HỦY"


def void_blocks(d: LotData) -> list[Block]:
    """The stamp a voided lot's label or receipt starts with (nothing for a valid lot)."""
    if not d.voided:
        return []
    return [
        BigValue(VOID_MARK),
        Text("Lô này đã bị hủy. Không dùng nhãn này.", bold=True, align="center"),
        Rule(thickness=4),
    ]


def lot_blocks(d: LotData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    blocks: list[Block] = [
        *void_blocks(d),
        Title("PHIẾU LÔ HÀNG"),
        Text(d.collection_point, align="center"),
        Rule(),
        F("Nông dân:", d.farmer),
        F("Sản phẩm:", d.product),
    ]
    if d.grade:
        blocks.append(F("Phân loại:", printed_grade(d.grade)))
    blocks += [
        F("Khối lượng tịnh:", ""),
        BigValue(format_weight(d.net_g)),
        F("Ngày:", format_local_time(d.recorded_at, tz)),
        F("Mã lô:", _ref(d.lot_id, d.seq, d.day_no)),
    ]
    if qr:
        blocks += [Spacer(4), QRCode(qr)]
    return blocks


def receipt_blocks(d: ReceiptData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    blocks: list[Block] = [
        *void_blocks(d),
        Title("PHIẾU THU MUA"),
        Text(d.collection_point, align="center"),
        F("Số phiếu:", _ref(d.lot_id, d.seq, d.day_no)),
        F("Ngày:", format_local_time(d.recorded_at, tz)),
        Rule(),
        F("Người bán:", d.farmer),
        F("Sản phẩm:", _with_grade(d.product, d.grade)),
        F("Khối lượng tịnh:", format_weight(d.net_g)),
        F("Đơn giá:", f"{format_dong(d.unit_price_dong)}/kg"),
        Rule(),
        F("Thành tiền:", ""),
        BigValue(format_dong(d.amount_dong)),
        Rule(),
        F("Nhân viên thu mua:", d.staff),
        Spacer(6),
        Text("Người bán đã nhận đủ số tiền trên.", size=SMALL, align="center"),
        Spacer(6),
        Signatures((Signer("Người bán", d.farmer),)),
    ]
    return blocks


def _totals_table(first: str, rows: list[TotalsRow]) -> Table:
    columns = (
        Column(first, grow=True),
        Column("Lô", "right"),
        Column("KL (kg)", "right"),
        Column("Tiền (đ)", "right"),
    )
    return Table(
        columns,
        tuple(
            (
                r.name,
                str(r.lots),
                format_weight(r.net_g).removesuffix(" kg"),
                format_dong(r.amount_dong).removesuffix(" đ") + ("*" if r.unpriced_lots else ""),
            )
            for r in rows
        ),
    )


def day_summary_blocks(d: DaySummaryData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    """Totals by product, then by farmer, then for the day; an asterisk marks an amount
    that leaves out lots without a price."""
    lots = sum(r.lots for r in d.products)
    unpriced = sum(r.unpriced_lots for r in d.products)
    blocks: list[Block] = [
        Title("TỔNG KẾT NGÀY"),
        Text(d.collection_point, align="center"),
        F("Ngày:", f"{d.day:%d/%m/%Y}"),
        F("In lúc:", format_local_time(d.printed_at, tz)),
        F("Nhân viên:", d.staff),
        Rule(),
    ]
    if not lots:
        blocks.append(Text("Không có lô nào trong ngày.", align="center"))
    else:
        blocks += [
            Text("Theo sản phẩm", bold=True),
            _totals_table("Sản phẩm", d.products),
            Rule(),
            Text("Theo nông dân", bold=True),
            _totals_table("Nông dân", d.farmers),
        ]
    blocks += [
        Rule(thickness=3),
        F("Tổng số lô:", str(lots)),
        F("Tổng khối lượng:", format_weight(sum(r.net_g for r in d.products))),
        F("Tổng tiền:", ""),
        BigValue(format_dong(sum(r.amount_dong for r in d.products))),
    ]
    if unpriced:
        note = f"* {unpriced} lô chưa có giá: có khối lượng, không tính vào tiền."
        blocks.append(Text(note, size=SMALL))
    blocks += [
        Rule(),
        Signatures((Signer("Nhân viên", d.staff), Signer("Trưởng điểm"))),
    ]
    return blocks


def _goods_table(goods: list[Goods]) -> Table:
    graded = any(g.grade for g in goods)
    columns = (
        Column("Hàng", grow=True),
        *((Column("Loại"),) if graded else ()),
        Column("SL", "right"),
        Column("KL (kg)", "right"),
    )
    rows = tuple(
        (
            g.name,
            *((printed_grade(g.grade) if g.grade else "–",) if graded else ()),
            str(g.quantity),
            format_weight(g.net_g).removesuffix(" kg"),
        )
        for g in goods
    )
    return Table(columns, rows)


COD_PAID = "Đã thanh toán"
"""What a parcel without cash on delivery says where the amount would be."""


def shipping_blocks(d: ShippingData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    """Carrier, tracking code (Code 128 and text), order, sender, recipient, goods,
    weights, cash on delivery, the signed QR and the lots the parcel was packed from."""
    blocks: list[Block] = []
    if d.courier:
        blocks += [BigValue(d.courier, TITLE), Spacer(6)]
    blocks += [Barcode(d.tracking_code), Rule(thickness=3)]
    sender = f"{d.collection_point} · {d.sender_phone}" if d.sender_phone else d.collection_point
    blocks.append(F("Người gửi:", sender, size=SMALL))
    blocks += [
        Rule(),
        F("Người nhận:", d.recipient.name, size=LARGE),
        F("Điện thoại:", d.recipient.phone, size=LARGE),
        F("Địa chỉ:", d.recipient.address),
        Rule(),
    ]
    if d.goods:  # the lines say what ``product`` sums up
        blocks.append(_goods_table(d.goods))
    elif d.product:
        blocks.append(F("Hàng:", _with_grade(d.product, d.grade)))
    if d.note:
        blocks.append(F("Ghi chú:", d.note))
    blocks.append(Rule())
    blocks.append(
        BigValue(f"Thu hộ: {format_dong(d.cod_dong)}", TITLE)
        if d.cod_dong
        else BigValue(COD_PAID, LARGE)
    )
    blocks.append(Rule(thickness=3))
    # next to the QR code on 100 mm labels, under it on rolls
    trace: list[Block] = [F("Mã đơn:", d.order_id)] if d.order_id else []
    trace += [
        F("KL tịnh:", format_weight(d.net_g)),
        F("KL cả bì:", format_weight(d.gross_g)),
    ]
    if d.lots:
        trace.append(F("Từ lô:", " · ".join(d.lots), size=SMALL))
    if d.lot_id:
        trace.append(F("Truy xuất lô:", short_lot_id(d.lot_id), size=SMALL))
    trace.append(F("Ngày gửi:", format_local_time(d.created_at, tz), size=SMALL))
    blocks += [Beside(QRCode(qr), tuple(trace))] if qr else trace
    return blocks


def manifest_blocks(d: ManifestData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    with_cod = any(p.cod_dong for p in d.parcels)
    columns = [Column("#", "right"), Column("Mã vận đơn", grow=True), Column("KL (kg)", "right")]
    rows = [
        (str(i), p.tracking_code, format_weight(p.weight_g).removesuffix(" kg"))
        + ((format_dong(p.cod_dong).removesuffix(" đ") if p.cod_dong else "–",) if with_cod else ())
        for i, p in enumerate(d.parcels, start=1)
    ]
    if with_cod:
        columns.append(Column("Thu hộ (đ)", "right"))
    blocks: list[Block] = [
        Title("BIÊN BẢN BÀN GIAO"),
        Text(d.collection_point, align="center"),
        Rule(),
        F("Mã bàn giao:", short_lot_id(d.batch_id)),
        F("Thời gian:", format_local_time(d.handed_over_at, tz)),
        F("Đơn vị vận chuyển:", d.courier),
        F("Người nhận hàng:", d.courier_staff),
        F("Nhân viên giao:", d.staff),
    ]
    if qr:
        blocks.append(QRCode(qr))
    blocks += [
        Rule(),
        Table(tuple(columns), tuple(rows)),
        Rule(),
        F("Tổng số kiện:", str(len(d.parcels))),
        F("Tổng khối lượng:", format_weight(sum(p.weight_g for p in d.parcels))),
    ]
    if with_cod:
        blocks.append(F("Tổng thu hộ:", format_dong(sum(p.cod_dong for p in d.parcels))))
    blocks += [
        Rule(),
        Signatures((Signer("Bên giao", d.staff), Signer("Bên nhận", d.courier_staff))),
    ]
    return blocks


# -- registry -----------------------------------------------------------------------------
D = TypeVar("D", bound=LabelData)


@dataclass(frozen=True)
class KindSpec(Generic[D]):
    name: str
    model: type[D]
    blocks: Callable[[D, str | None, tzinfo | None], list[Block]]
    payload: Callable[[D], tuple[PayloadKind, str]] | None  # what the QR signs, if any


KINDS: dict[str, KindSpec[Any]] = {
    "lot": KindSpec("lot", LotData, lot_blocks, lambda d: (PayloadKind.LOT, str(d.lot_id))),
    "receipt": KindSpec("receipt", ReceiptData, receipt_blocks, None),
    "shipping": KindSpec(
        "shipping", ShippingData, shipping_blocks, lambda d: (PayloadKind.SHIPPING, d.tracking_code)
    ),
    "manifest": KindSpec(
        "manifest", ManifestData, manifest_blocks, lambda d: (PayloadKind.MANIFEST, str(d.batch_id))
    ),
    "day_summary": KindSpec("day_summary", DaySummaryData, day_summary_blocks, None),
}


class LabelDataError(ValueError):
    """Label data that does not fit its kind; ``problems`` are (field, reason) pairs."""

    def __init__(self, kind: str, problems: list[tuple[str, str]]) -> None:
        self.kind = kind
        self.problems = problems
        super().__init__("\n".join(f"{kind} label: {key}: {why}" for key, why in problems))


def kind_spec(kind: str) -> KindSpec[Any]:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown label kind {kind!r}; known: {', '.join(KINDS)}") from None


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(data)"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside a field's type: ``Goods`` in ``Annotated[list[Goods], ...] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or getattr(annotation, "__origin__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The nested model that the error location points into."""
    for part in loc[:-1]:
        if isinstance(part, str) and part in model.model_fields:
            nested = _nested_model(model.model_fields[part].annotation)
            if nested is not None:
                model = nested
    return model


def _describe(model: type[BaseModel], exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            known = list(_model_at(model, loc).model_fields)
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean '{guess[0]}'? " if guess else ""
            reason = f"unknown key ({hint}known keys here: {', '.join(known)})"
        elif err["type"] == "missing":
            reason = "required, missing"
        elif err["type"] == "json_invalid":
            reason = f"not valid JSON: {err['ctx'].get('error', err['msg'])}"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = repr(err.get("input"))
            reason = f"{msg} (got {got[:57] + '...' if len(got) > 60 else got})"
        problems.append((_key(loc), reason))
    return problems


def parse_label_data(kind: str, data: Mapping[str, Any] | str | bytes) -> LabelData:
    """Validate a kind's data (a mapping, or JSON text); LabelDataError names each field."""
    spec = kind_spec(kind)
    try:
        if isinstance(data, str | bytes):
            return spec.model.model_validate_json(data)  # type: ignore[no-any-return]
        return spec.model.model_validate(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise LabelDataError(kind, _describe(spec.model, exc)) from None
