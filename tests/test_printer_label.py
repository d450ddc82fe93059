"""Lot label rendering: exact width, a readable QR code of the right size, wrapping that
never cuts text off, and a font that really has every Vietnamese letter."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageFont

from edge.printer.label import (
    BOLD_FONT,
    QR_QUIET_MODULES,
    REGULAR_FONT,
    LayoutError,
    format_local_time,
    format_weight,
    render_label,
    short_lot_id,
    wrap_text,
)
from edge.printer.payload import PayloadKind, PayloadSigner, verify

LOT_ID = "0190a6f2-7c3e-7abc-9def-0123456789ab"
ICT = timezone(timedelta(hours=7))  # Vietnam: UTC+7, no daylight saving
LONG_NAME = (
    "Nguyễn Thị Hoà – Bản Phìn Hồ, xã Phìn Hồ, huyện Sìn Hồ, tỉnh Lai Châu, "
    "Hợp tác xã chè Shan tuyết cổ thụ Phìn Hồ"
)
VIETNAMESE_LOWER = (
    "aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrstuùủũúụưừửữứựvxyỳỷỹýỵ"
)
VIETNAMESE_LETTERS = VIETNAMESE_LOWER + VIETNAMESE_LOWER.upper()
MARGIN = {384: 8, 576: 12}
KEY = bytes(range(32))
SIGNER = PayloadSigner("sin-ho", KEY)


def make_label(**changes: object) -> dict[str, Any]:
    """A lot label's data (edge.printer.kinds.LotData), with ``changes``."""
    return {
        "collection_point": "Điểm thu gom Sìn Hồ",
        "farmer": "Giàng Thị Mỷ",
        "product": "Sâm Lai Châu",
        "net_g": 12345,
        "recorded_at": datetime(2026, 11, 23, 10, 38, 12, tzinfo=UTC),
        "lot_id": LOT_ID,
        "seq": 42,
        **changes,
    }


def render_lot_label(
    data: dict[str, Any], width: int = 384, *, tz: timezone | None = None
) -> Image.Image:
    return render_label("lot", data, width, signer=SIGNER, tz=tz)


def ink_bbox(img: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of the black (printed) pixels, None if there are none."""
    return ImageChops.invert(img.convert("L")).getbbox()


def read_qr(img: Image.Image) -> zxingcpp.Barcode:
    results = [r for r in zxingcpp.read_barcodes(img) if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(results) == 1, f"expected one QR code, found {len(results)}"
    return results[0]


@pytest.mark.parametrize("width", [384, 576])
def test_label_has_exact_width_and_a_large_centred_readable_qr(width: int) -> None:
    img = render_lot_label(make_label(), width, tz=ICT)
    assert img.mode == "1"
    assert img.width == width

    qr = read_qr(img)
    assert verify(qr.text, KEY, site="sin-ho").ref == LOT_ID
    assert verify(qr.text, KEY).kind is PayloadKind.LOT
    assert qr.ec_level == "M"
    corners = [qr.position.top_left, qr.position.top_right, qr.position.bottom_right]
    corners.append(qr.position.bottom_left)
    left, right = min(p.x for p in corners), max(p.x for p in corners)
    top = min(p.y for p in corners)

    # measured from the pixels: the symbol's black box, its finder pattern = 7 modules
    symbol = img.crop((0, top - 2, width, img.height))
    x0, y0, x1, y1 = ink_bbox(symbol) or (0, 0, 0, 0)
    assert abs(x0 - left) <= 1 and abs(x1 - right) <= 1
    assert x1 - x0 == y1 - y0 >= 240, "QR code must be at least 30 mm (240 dots) wide"
    finder = next(i for i in range(x1 - x0) if symbol.getpixel((x0 + i, y0)) != 0)
    assert finder % 7 == 0, "an integer number of dots per module"
    module = finder // 7
    assert (x1 - x0) % module == 0 and ((x1 - x0) // module - 17) % 4 == 0  # 17 + 4*version
    assert abs((x0 + x1) / 2 - width / 2) <= 1, "QR code centred"

    # quiet zone: nothing printed within 4 modules around the symbol (image edge included)
    quiet = QR_QUIET_MODULES * module
    top_abs = top - 2 + y0
    around = img.crop((x0 - quiet, top_abs - quiet, x1 + quiet, top_abs + (y1 - y0) + quiet))
    assert ink_bbox(around) == (quiet, quiet, quiet + x1 - x0, quiet + y1 - y0)


@pytest.mark.parametrize("width", [384, 576])
def test_long_names_wrap_instead_of_being_cut_off(width: int) -> None:
    short = render_lot_label(make_label(), width, tz=ICT)
    long = render_lot_label(
        make_label(farmer=LONG_NAME, product="Chè " + "Shan" * 30, collection_point=LONG_NAME),
        width,
        tz=ICT,
    )
    assert long.width == width
    assert long.height > short.height + 100
    margin = MARGIN[width]
    assert ink_bbox(long.crop((width - margin, 0, width, long.height))) is None
    assert ink_bbox(long.crop((0, 0, margin - 1, long.height))) is None
    assert verify(read_qr(long).text, KEY).ref == LOT_ID


def test_wrap_keeps_every_letter_and_fits_the_width() -> None:
    font = ImageFont.truetype(str(BOLD_FONT), 22)
    lines = wrap_text(LONG_NAME, font, first_width=150, width=368)
    assert len(lines) >= 3
    assert " ".join(line for line in lines if line) == LONG_NAME
    assert font.getbbox(lines[0], anchor="ls")[2] <= 150
    assert all(font.getbbox(line, anchor="ls")[2] <= 368 for line in lines[1:])

    word = "Giàng" * 20  # no space to break at: broken between letters
    pieces = wrap_text(word, font, first_width=368, width=368)
    assert len(pieces) > 1 and "".join(pieces) == word
    assert all(font.getbbox(p, anchor="ls")[2] <= 368 for p in pieces)

    assert wrap_text("Mỷ", font, first_width=5, width=368) == ["", "Mỷ"]  # next line


def test_decomposed_input_renders_like_precomposed() -> None:
    nfc = render_lot_label(make_label(), tz=ICT)
    nfd = render_lot_label(
        make_label(
            farmer=unicodedata.normalize("NFD", "Giàng  Thị Mỷ"),
            collection_point=unicodedata.normalize("NFD", "Điểm thu gom Sìn Hồ"),
            product=unicodedata.normalize("NFD", "Sâm Lai Châu"),
        ),
        tz=ICT,
    )
    assert nfc.tobytes() == nfd.tobytes()


@pytest.mark.parametrize("path", [REGULAR_FONT, BOLD_FONT], ids=["regular", "bold"])
def test_bundled_font_has_every_vietnamese_letter(path: object) -> None:
    font = ImageFont.truetype(str(path), 24, layout_engine=ImageFont.Layout.BASIC)

    def mask(text: str) -> tuple[tuple[int, int], bytes]:
        m = font.getmask(text, mode="1")
        return m.size, bytes(m)

    tofu = mask("\ue000")  # a private-use code point: DejaVu draws its .notdef box
    assert tofu[0] != (0, 0) and any(tofu[1]), "the .notdef glyph should be visible"
    for ch in VIETNAMESE_LETTERS + "–·#":
        glyph = mask(ch)
        assert glyph != tofu, f"{ch!r} (U+{ord(ch):04X}) is missing from {path}"
        assert any(glyph[1]), f"{ch!r} renders empty"
        base = unicodedata.normalize("NFD", ch)[0]
        if base != ch:  # the tone/vowel mark is really drawn
            assert glyph != mask(base), f"{ch!r} looks like {base!r}"
    assert mask("Đ") != mask("D") and mask("đ") != mask("d")


def test_rendering_is_deterministic_and_validates_input() -> None:
    assert render_lot_label(make_label(), tz=ICT).tobytes() == (
        render_lot_label(make_label(), tz=ICT).tobytes()
    )
    with pytest.raises(ValueError, match="multiple of 8"):
        render_lot_label(make_label(), 300)
    with pytest.raises(ValueError, match="multiple of 8"):
        render_lot_label(make_label(), 385)
    with pytest.raises(ValueError, match="timezone-aware"):
        render_lot_label(make_label(recorded_at=datetime(2026, 11, 23, 10, 38)))
    with pytest.raises(LayoutError, match="between 320 and"):
        render_lot_label(make_label(), 64)


@pytest.mark.parametrize(
    ("net_g", "text"),
    [
        (12345, "12,345 kg"),
        (500, "0,500 kg"),
        (-20, "-0,020 kg"),
        (0, "0,000 kg"),
        (1, "0,001 kg"),
        (1000, "1,000 kg"),
        (999_999, "999,999 kg"),
        (1_234_567, "1.234,567 kg"),
        (-1_234_567, "-1.234,567 kg"),
    ],
)
def test_format_weight(net_g: int, text: str) -> None:
    assert format_weight(net_g) == text


def test_local_time_and_short_id() -> None:
    at = datetime(2026, 11, 23, 10, 38, 59, tzinfo=UTC)
    assert format_local_time(at, ICT) == "23/11/2026 17:38"
    assert format_local_time(datetime(2026, 12, 31, 17, 30, tzinfo=UTC), ICT) == "01/01/2027 00:30"
    with pytest.raises(ValueError):
        format_local_time(datetime(2026, 11, 23, 10, 38), ICT)
    assert short_lot_id(LOT_ID) == "4567-89AB"
