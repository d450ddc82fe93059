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
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
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
)

from edge.printer.layout import (
    LARGE,
    SMALL,
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


class LabelData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LotData(LabelData):
    collection_point: Name
    lot_id: uuid.UUID
    seq: Seq | None = None
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


class ShippingData(LabelData):
    tracking_code: Tracking
    courier: Name | None = None
    collection_point: Name
    sender_phone: Phone | None = None
    recipient: Recipient
    product: Name
    grade: Name | None = None
    net_g: Grams
    gross_g: Grams
    cod_dong: Dong
    lot_id: uuid.UUID
    created_at: Stamp
    note: LongText | None = None

    @field_validator("gross_g")
    @classmethod
    def _gross_not_below_net(cls, value: int, info: ValidationInfo) -> int:
        net = info.data.get("net_g")
        if net is not None and value < net:
            raise ValueError(f"gross weight {value} g is less than the net weight {net} g")
        return value


class Parcel(LabelData):
    tracking_code: Tracking
    weight_g: Annotated[Grams, Field(description="gross weight of the parcel")]
    cod_dong: Dong = 0


class ManifestData(LabelData):
    batch_id: uuid.UUID
    collection_point: Name
    courier: Name  # the courier company
    courier_staff: Name  # the person who takes the parcels and signs
    staff: Name  # the station's staff who hands them over and signs
    handed_over_at: Stamp
    parcels: Annotated[list[Parcel], Field(min_length=1, max_length=500)]

    @field_validator("parcels")
    @classmethod
    def _unique_codes(cls, parcels: list[Parcel]) -> list[Parcel]:
        seen: set[str] = set()
        for parcel in parcels:
            if parcel.tracking_code in seen:
                raise ValueError(f"tracking code {parcel.tracking_code} is listed twice")
            seen.add(parcel.tracking_code)
        return parcels


# -- layouts ------------------------------------------------------------------------------
def _ref(record_id: uuid.UUID, seq: int | None) -> str:
    return short_lot_id(record_id) + (f" · #{seq}" if seq is not None else "")


def _with_grade(product: str, grade: str | None) -> str:
    return f"{product} – {grade}" if grade else product


def lot_blocks(d: LotData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    blocks: list[Block] = [
        Title("PHIẾU LÔ HÀNG"),
        Text(d.collection_point, align="center"),
        Rule(),
        F("Nông dân:", d.farmer),
        F("Sản phẩm:", d.product),
    ]
    if d.grade:
        blocks.append(F("Phân loại:", d.grade))
    blocks += [
        F("Khối lượng tịnh:", ""),
        BigValue(format_weight(d.net_g)),
        F("Ngày:", format_local_time(d.recorded_at, tz)),
        F("Mã lô:", _ref(d.lot_id, d.seq)),
    ]
    if qr:
        blocks += [Spacer(4), QRCode(qr)]
    return blocks


def receipt_blocks(d: ReceiptData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    blocks: list[Block] = [
        Title("PHIẾU THU MUA"),
        Text(d.collection_point, align="center"),
        F("Số phiếu:", _ref(d.lot_id, d.seq)),
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


def shipping_blocks(d: ShippingData, qr: str | None, tz: tzinfo | None) -> list[Block]:
    blocks: list[Block] = []
    if d.courier:
        blocks.append(Text(d.courier, size=LARGE, bold=True, align="center"))
    blocks += [Barcode(d.tracking_code), Rule(thickness=3)]
    blocks.append(F("Người gửi:", d.collection_point))
    if d.sender_phone:
        blocks.append(F("Điện thoại:", d.sender_phone))
    blocks += [
        Rule(),
        F("Người nhận:", d.recipient.name, size=LARGE),
        F("Điện thoại:", d.recipient.phone, size=LARGE),
        F("Địa chỉ:", d.recipient.address),
        Rule(),
        F("Hàng:", _with_grade(d.product, d.grade)),
        F("KL tịnh:", format_weight(d.net_g)),
        F("KL cả bì:", format_weight(d.gross_g)),
    ]
    if d.note:
        blocks.append(F("Ghi chú:", d.note))
    blocks += [Rule(), F("Thu hộ (COD):", "")]
    blocks.append(
        BigValue(format_dong(d.cod_dong)) if d.cod_dong else BigValue("Không thu tiền", LARGE)
    )
    blocks.append(Rule(thickness=3))
    if qr:
        blocks.append(QRCode(qr))
    blocks += [
        F("Truy xuất lô:", short_lot_id(d.lot_id), size=SMALL),
        F("Ngày gửi:", format_local_time(d.created_at, tz), size=SMALL),
    ]
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


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The nested model that the error location points into."""
    for part in loc[:-1]:
        if isinstance(part, str):
            annotation = model.model_fields[part].annotation
            nested = getattr(annotation, "__args__", (annotation,))[0]
            if isinstance(nested, type) and issubclass(nested, BaseModel):
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
