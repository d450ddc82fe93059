"""The one rule for what a label can print (edge.printer.printable), which the label kinds
and the station's API share: text normalised as printed, control and invisible
characters refused, characters the label fonts cannot draw refused, phone numbers and
prices in range; each refusal said in English and Vietnamese."""

from __future__ import annotations

import pytest
from PIL import ImageFont

from edge.printer.kinds import LabelDataError, parse_label_data
from edge.printer.printable import (
    LABEL_FONTS,
    PrintableError,
    font_code_points,
    label_code_points,
    phone_number,
    printable_text,
)


def test_the_font_table_agrees_with_what_the_font_draws() -> None:
    """A character the cmap says is missing draws the font's empty box, and only those."""
    for path in LABEL_FONTS:
        font = ImageFont.truetype(str(path), 24, layout_engine=ImageFont.Layout.BASIC)
        box = (bytes(font.getmask("\U000f0000")), font.getbbox("\U000f0000"))  # private use
        covered = font_code_points(path)
        sample = [*range(0x20, 0x250), *range(0x1E00, 0x2200), *range(0x4E00, 0x4E40)]
        for code in sample:
            ch = chr(code)
            drawn_as_box = (bytes(font.getmask(ch)), font.getbbox(ch)) == box
            assert drawn_as_box != (code in covered), f"U+{code:04X} in {path.name}"
    every_vietnamese_letter = (
        "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
    )
    for ch in every_vietnamese_letter + every_vietnamese_letter.upper() + "–“”‘’…₫€·":
        assert ord(ch) in label_code_points(), ch


@pytest.mark.parametrize(
    ("given", "printed"),
    [
        ("Giàng Thị Mỷ", "Giàng Thị Mỷ"),
        ("  Giàng \t Thị\nMỷ  ", "Giàng Thị Mỷ"),  # whitespace collapsed, as printed
        ("Gia\u0300ng Thi\u0323", "Giàng Thị"),  # decomposed marks: NFC
        ("Sâm Lai Châu – loại 1", "Sâm Lai Châu – loại 1"),
        ("x" * 120, "x" * 120),
    ],
)
def test_text_is_normalised_as_the_label_prints_it(given: str, printed: str) -> None:
    assert printable_text(given, 120) == printed


@pytest.mark.parametrize(
    ("given", "en", "vi"),
    [
        (
            "Giàng\u200bThị",
            "invisible character U+200B (ZERO WIDTH SPACE) at position 6",
            "ký tự ẩn",
        ),
        ("\x00", "control or invisible character U+0000 at position 1", "ký tự điều khiển"),
        ("Mỷ\x1f", "U+001F", "đừng dán"),  # a control Python's split() takes for a space
        ("A\u0085B", "U+0085", "vị trí 2"),  # NEL: whitespace to split(), a control to us
        ("Giàng\ud800", "U+D800", "ký tự ẩn"),  # a lone surrogate
        ("Bản\u202eHon", "U+202E (RIGHT-TO-LEFT OVERRIDE)", "ký tự ẩn"),
        ("Nông\u00adsản", "U+00AD (SOFT HYPHEN)", "ký tự ẩn"),
        ("\ue000", "U+E000", "ký tự ẩn"),  # private use
        ("", "must not be empty", "không được để trống"),
        ("   \n\t", "must not be empty", "không được để trống"),
        ("张伟", "the label font cannot print U+5F20 (CJK UNIFIED IDEOGRAPH-5F20)", "“张”"),
        ("x" * 121, "at most 120 characters, got 121", "tối đa 120 ký tự"),
        ("x" * 10_000_000, "at most 120 characters", "dài quá"),
    ],
)
def test_text_no_label_can_print_is_refused_in_both_languages(given: str, en: str, vi: str) -> None:
    with pytest.raises(PrintableError) as refused:
        printable_text(given, 120)
    assert en in str(refused.value) and en in refused.value.en
    assert vi in refused.value.vi


def test_phone_numbers() -> None:
    assert phone_number("0912 345 678") == "0912 345 678"
    assert phone_number("+84 912.345.678") == "+84 912.345.678"
    for bad in ("12", "0912-345-678", "٠٩١٢٣٤٥٦٧٨", "0912345678\x00", "09123456789012"):
        with pytest.raises(PrintableError) as refused:
            phone_number(bad)
        assert "not a phone number" in refused.value.en
        assert "không phải số điện thoại" in refused.value.vi


def test_the_label_kinds_apply_the_same_rule() -> None:
    data = {
        "collection_point": "Điểm thu gom Sìn Hồ",
        "lot_id": "01936c8e-9a4b-7c3d-8e2f-0123456789ab",
        "farmer": "张伟",
        "product": "Chè",
        "net_g": 1200,
        "recorded_at": "2026-11-23T10:38:12+07:00",
    }
    with pytest.raises(LabelDataError, match="farmer: the label font cannot print U\\+5F20"):
        parse_label_data("lot", data)
    receipt = {**data, "farmer": "Giàng Thị Mỷ", "staff": "Lan", "unit_price_dong": 10**10}
    with pytest.raises(LabelDataError, match="unit_price_dong: Input should be less than"):
        parse_label_data("receipt", receipt)
