"""The four label kinds at 58 mm (384 dots) and 80 mm (576 dots): nothing cut off or
drawn into the margins, every letter and tone mark intact, QR codes large, readable and
genuine, the Code 128 readable, the printed raster equal to the preview, and label data
checked field by field."""

from __future__ import annotations

import copy
import io
import json
import unicodedata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw

from edge.printer.escpos_out import preview_png, raster_to_escpos
from edge.printer.kinds import KINDS, LabelDataError, amount_dong, format_dong
from edge.printer.label import label_blocks, render_label
from edge.printer.layout import Layout, layout
from edge.printer.payload import PayloadKind, PayloadSigner, verify
from rigs.escpos_decode import decode

CODE128 = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.Code128)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "labels"
KEY = bytes(range(32))
SIGNER = PayloadSigner("sin-ho", KEY)
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WIDTHS = [384, 576]
MARGIN = {384: 8, 576: 12}
QR_KINDS = {"lot": PayloadKind.LOT, "shipping": PayloadKind.SHIPPING}
QR_KINDS["manifest"] = PayloadKind.MANIFEST
VIETNAMESE = (
    "aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrstuùủũúụưừửữứựvxyỳỷỹýỵ"
)


def example(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))
    return data


def laid_out(kind: str, data: Any, width: int) -> tuple[Layout, Image.Image]:
    page = layout(label_blocks(kind, data, signer=SIGNER, tz=TZ), width)
    return page, page.render()


def ink_bbox(img: Image.Image) -> tuple[int, int, int, int] | None:
    return ImageChops.invert(img.convert("L")).getbbox()


NOT_VERBATIM = {"lot_id", "batch_id", "recorded_at", "created_at", "handed_over_at"}
NOT_VERBATIM |= {"day", "printed_at"}  # the day summary's date and time, printed dd/mm/yyyy


def strings(value: Any) -> list[str]:
    """The texts of label data that are printed as they are (ids and times are not)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in NOT_VERBATIM for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def assert_printable(page: Layout, img: Image.Image) -> None:
    """Exact width; blank margins; each text line drawn whole (compared with the same line
    drawn alone by Pillow's own ImageDraw.text) and inside the margins."""
    width, margin = page.width, MARGIN[page.width]
    assert img.mode == "1" and img.width == width
    assert ink_bbox(img.crop((0, 0, margin, img.height))) is None, "ink in the left margin"
    assert ink_bbox(img.crop((width - margin, 0, width, img.height))) is None, "right margin"
    for t in page.texts:
        left, top, right, bottom = map(int, t.font.getbbox(t.text, anchor="ls", mode="1"))
        box = (t.x + left, t.baseline + top, t.x + right, t.baseline + bottom)
        assert margin <= box[0] and box[2] <= width - margin, f"{t.text!r} crosses a margin"
        assert box[1] >= 0 and box[3] <= img.height, f"{t.text!r} cut at the top or bottom"
        alone = Image.new("1", (box[2] - box[0], box[3] - box[1]), 1)
        ImageDraw.Draw(alone).text((-left, -top), t.text, font=t.font, fill=0, anchor="ls")
        assert img.crop(box).tobytes() == alone.tobytes(), f"{t.text!r} is not drawn intact"


def measure_qr(img: Image.Image) -> tuple[str, int, int]:
    """(text, symbol width in dots, dots per module) of the one QR code on the label."""
    (qr,) = [r for r in zxingcpp.read_barcodes(img) if r.format == zxingcpp.BarcodeFormat.QRCode]
    corners = [qr.position.top_left, qr.position.top_right]
    corners += [qr.position.bottom_right, qr.position.bottom_left]
    top = min(p.y for p in corners)
    symbol = img.crop((0, top - 2, img.width, max(p.y for p in corners) + 3))
    x0, y0, x1, y1 = ink_bbox(symbol) or (0, 0, 0, 0)
    assert x1 - x0 == y1 - y0, "square symbol"
    finder = next(i for i in range(x1 - x0) if symbol.getpixel((x0 + i, y0)) != 0)
    assert finder % 7 == 0
    return qr.text, x1 - x0, finder // 7


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_example_renders_whole_within_the_margins(kind: str, width: int) -> None:
    data = example(kind)
    page, img = laid_out(kind, data, width)
    assert_printable(page, img)
    placed_words = {w for t in page.texts for w in t.text.split()}
    for value in strings(data):  # every word printed whole, diacritics and all (NFC)
        for word in unicodedata.normalize("NFC", value).split():
            assert word in placed_words, f"{word!r} of {value!r} missing or broken"
    nfd = json.loads(unicodedata.normalize("NFD", json.dumps(data, ensure_ascii=False)))
    assert render_label(kind, nfd, width, signer=SIGNER, tz=TZ).tobytes() == img.tobytes()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", list(QR_KINDS))
def test_qr_is_large_readable_and_genuine(kind: str, width: int) -> None:
    img = render_label(kind, example(kind), width, signer=SIGNER, tz=TZ)
    text, symbol_dots, module_dots = measure_qr(img)
    assert symbol_dots >= 240, "at least 30 mm wide"
    assert module_dots >= 3
    verified = verify(text, KEY, site="sin-ho")
    assert verified.kind is QR_KINDS[kind]
    expected = {"lot": "lot_id", "shipping": "tracking_code", "manifest": "batch_id"}[kind]
    assert verified.ref == example(kind)[expected]


@pytest.mark.parametrize("width", WIDTHS)
def test_shipping_code128_reads_as_the_tracking_code(width: int) -> None:
    img = render_label("shipping", example("shipping"), width, signer=SIGNER, tz=TZ)
    found = zxingcpp.read_barcodes(img, formats=CODE128)
    assert [r.text for r in found] == ["VTP2611230427"]


def test_long_tracking_code_turns_along_the_paper_and_still_reads() -> None:
    data = example("shipping") | {"tracking_code": "S22762945.MN4.A1.1234567"}
    page, img = laid_out("shipping", data, 384)
    assert_printable(page, img)
    (bars,) = [im for _, _, im in page.images if im.height > im.width]  # turned 90 degrees
    assert bars.width <= 384 - 2 * 8
    found = zxingcpp.read_barcodes(img, formats=CODE128)
    assert [r.text for r in found] == ["S22762945.MN4.A1.1234567"]
    page80, img80 = laid_out("shipping", data, 576)  # fits across 80 mm paper
    assert all(im.width >= im.height for _, _, im in page80.images)
    assert zxingcpp.read_barcodes(img80, formats=CODE128)[0].text == ("S22762945.MN4.A1.1234567")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_printed_raster_equals_the_preview(kind: str, width: int) -> None:
    img = render_label(kind, example(kind), width, signer=SIGNER, tz=TZ)
    decoded = decode(raster_to_escpos(img))
    assert decoded.cuts == 1 and decoded.text == b""
    (printed,) = decoded.images
    with Image.open(io.BytesIO(preview_png(img))) as preview:
        assert printed.size == preview.size == img.size
        assert printed.tobytes() == preview.convert("1").tobytes() == img.tobytes()


def test_manifest_table_keeps_tracking_codes_whole_and_totals() -> None:
    data = example("manifest")
    page, _ = laid_out("manifest", data, 384)
    lines = [t.text for t in page.texts]
    for parcel in data["parcels"]:
        assert parcel["tracking_code"] in lines, "a tracking code is never split"
    assert "5.545.000 đ" in lines and "22,510 kg" in lines and "5" in lines


@pytest.mark.parametrize("width", WIDTHS)
def test_long_manifest_and_long_text_wrap_inside_the_margins(width: int) -> None:
    data = example("manifest")
    data["courier"] = "Tổng công ty Cổ phần Bưu chính Viettel – Chi nhánh Lai Châu " * 2
    data["parcels"] = [
        {"tracking_code": f"S{22762945 + i}.MN4.A1.{1234567 + i}", "weight_g": 500 + i * 37}
        for i in range(40)
    ] + [{"tracking_code": "X" * 30, "weight_g": 100_000_000, "cod_dong": 10**12}]
    page, img = laid_out("manifest", data, width)
    assert_printable(page, img)
    assert measure_qr(img)[1] >= 240


WORDS = st.text(alphabet=VIETNAMESE + VIETNAMESE.upper() + "0123456789-,.()", min_size=1)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(WORDS, min_size=1, max_size=30), st.sampled_from(WIDTHS))
def test_any_vietnamese_text_stays_inside(words: list[str], width: int) -> None:
    text = " ".join(words)
    data = copy.deepcopy(example("shipping"))
    data["recipient"] |= {"name": text, "address": text}
    data["product"] = data["collection_point"] = text
    page, img = laid_out("shipping", data, width)
    assert_printable(page, img)


def test_receipt_amount_is_weight_times_price_rounded_half_up() -> None:
    assert amount_dong(12345, 120_000) == 1_481_400
    assert amount_dong(1, 500) == 1  # 0.5 đ rounds up
    assert amount_dong(1, 499) == 0
    assert format_dong(1_250_000) == "1.250.000 đ" and format_dong(0) == "0 đ"
    page, _ = laid_out("receipt", example("receipt"), 384)
    assert "1.481.400 đ" in [t.text for t in page.texts]


BAD_DATA = [
    ("lot", {"net_gram": 5}, "net_gram: unknown key (did you mean 'net_g'?"),
    ("lot", {"net_g": 12.5}, "net_g: Input should be a valid integer"),
    ("lot", {"net_g": "12345"}, "net_g: Input should be a valid integer"),
    ("lot", {"net_g": 0}, "net_g: Input should be greater than 0"),
    ("lot", {"recorded_at": "2026-11-23T10:38:12"}, "recorded_at: must be timezone-aware"),
    ("lot", {"lot_id": "lot-42"}, "lot_id: "),
    ("lot", {"farmer": "  "}, "farmer: must not be empty"),
    ("lot", {"farmer": "Giàng\u200bThị"}, "farmer: contains control or invisible"),
    ("receipt", {"unit_price_dong": 0}, "unit_price_dong: Input should be greater than 0"),
    ("shipping", {"gross_g": 100}, "gross_g: gross weight 100 g is less than the net"),
    ("shipping", {"tracking_code": "vtp123"}, "tracking_code: 'vtp123' is not a tracking"),
    (
        "shipping",
        {"recipient": {"name": "An", "phone": "12", "address": "Hà Nội"}},
        "recipient.phone: not a phone number",
    ),
    (
        "shipping",
        {"recipient": {"name": "An", "phone": "0987654321", "address": "HN", "zip": 1}},
        "recipient.zip: unknown key (known keys here: name, phone, address)",
    ),
    ("manifest", {"parcels": []}, "parcels: List should have at least 1 item"),
    (
        "manifest",
        {"parcels": [{"tracking_code": "VTP1", "weight_g": 5}] * 2},
        "parcels: tracking code VTP1 is listed twice",
    ),
    (
        "manifest",
        {"parcels": [{"tracking_code": "VTP1", "weight": 5}]},
        "parcels[0].weight: unknown key (did you mean 'weight_g'?",
    ),
]


@pytest.mark.parametrize(("kind", "change", "message"), BAD_DATA)
def test_bad_data_is_refused_naming_the_field(
    kind: str, change: dict[str, Any], message: str
) -> None:
    data = example(kind) | change
    with pytest.raises(LabelDataError) as refused:
        render_label(kind, data, 384, signer=SIGNER, tz=TZ)
    assert f"{kind} label: {message}" in str(refused.value)


def test_missing_fields_bad_json_unknown_kind_and_no_signer() -> None:
    with pytest.raises(LabelDataError, match="lot label: farmer: required, missing"):
        render_label("lot", {k: v for k, v in example("lot").items() if k != "farmer"})
    with pytest.raises(LabelDataError, match="not valid JSON"):
        render_label("lot", b'{"farmer": ', signer=SIGNER)
    with pytest.raises(ValueError, match="unknown label kind 'invoice'"):
        render_label("invoice", {})
    with pytest.raises(ValueError, match="signed QR code: pass signer"):
        render_label("shipping", example("shipping"), tz=TZ)
    receipt = render_label("receipt", json.dumps(example("receipt")), 384, tz=TZ)  # no QR
    assert not zxingcpp.read_barcodes(receipt)
