"""What a label can print: the one rule for the text and numbers a label carries.

The label kinds (:mod:`edge.printer.kinds`) check their data with it, and the station's
API (:mod:`edge.web.api`) checks what staff enter with it, so a farmer, village or
product whose label could never print is refused when it is typed, not when its first
lot is weighed.

Text (:func:`printable_text`): NFC, runs of whitespace collapsed to one space, trimmed;
not empty; at most ``max_len`` characters; no control or invisible character (a zero-width
space pasted from a chat, NUL, a lone surrogate, a soft hyphen...); and only characters
both bundled label fonts (DejaVu Sans, regular and bold) have a glyph for: anything else
prints as an empty box. Each refusal (:class:`PrintableError`) says why in English and in
Vietnamese.

Money is integer đồng: an amount at most :data:`MAX_DONG`; a price per kilogram more
than 0 and at most :data:`MAX_UNIT_PRICE_DONG` (:data:`UnitPriceDong`).
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, Strict

from edge.printer.text import nfc

FONT_DIR = Path(__file__).parent / "fonts"
LABEL_FONTS = (FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf")
"""Every font a label is drawn with (edge.printer.text): a character must be in all."""

MAX_DONG = 10**12
"""The largest amount of money a label prints (COD, a receipt's total), in đồng."""
MAX_UNIT_PRICE_DONG = 10**9
"""The largest price per kilogram: 1 tỷ đồng a kilo is already far beyond any produce."""

UnitPriceDong = Annotated[
    int, Strict(), Field(gt=0, le=MAX_UNIT_PRICE_DONG, description="đồng per kg")
]
"""A price per kilogram, integer đồng (a receipt's ``unit_price_dong``, a product's)."""

_DIGITS = "0123456789"
_WHITESPACE = " \t\n\r"
"""Control characters that are ordinary whitespace: collapsed to one space, not refused."""


class PrintableError(ValueError):
    """Text a label cannot print: ``str()`` is the reason in English, ``vi`` in Vietnamese."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en = en
        self.vi = vi


def _cmap_subtable(data: bytes, at: int) -> set[int]:
    """Code points with a real glyph (not glyph 0) in one cmap subtable (format 4 or 12)."""
    covered: set[int] = set()
    fmt = struct.unpack_from(">H", data, at)[0]
    if fmt == 4:
        seg2 = struct.unpack_from(">H", data, at + 6)[0]
        ends = at + 14
        starts = ends + seg2 + 2
        deltas = starts + seg2
        ranges = deltas + seg2
        for i in range(0, seg2, 2):
            end, start = (struct.unpack_from(">H", data, a + i)[0] for a in (ends, starts))
            delta, range_offset = (
                struct.unpack_from(">H", data, a + i)[0] for a in (deltas, ranges)
            )
            for code in range(start, min(end, 0xFFFE) + 1):
                if range_offset == 0:
                    glyph = (code + delta) & 0xFFFF
                else:
                    at_glyph = ranges + i + range_offset + 2 * (code - start)
                    glyph = struct.unpack_from(">H", data, at_glyph)[0]
                    glyph = (glyph + delta) & 0xFFFF if glyph else 0
                if glyph:
                    covered.add(code)
    elif fmt == 12:
        groups = struct.unpack_from(">I", data, at + 12)[0]
        for g in range(groups):
            start, end, first = struct.unpack_from(">III", data, at + 16 + 12 * g)
            covered.update(range(start + (first == 0), end + 1))
    return covered


def font_code_points(path: Path) -> frozenset[int]:
    """Every code point the TrueType font at ``path`` maps to a glyph (its Unicode cmaps)."""
    data = path.read_bytes()
    tables = struct.unpack_from(">H", data, 4)[0]
    for i in range(tables):
        tag, _sum, offset, _length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if tag == b"cmap":
            break
    else:
        raise ValueError(f"{path}: no cmap table")
    covered: set[int] = set()
    for j in range(struct.unpack_from(">H", data, offset + 2)[0]):
        platform, encoding, sub = struct.unpack_from(">HHI", data, offset + 4 + 8 * j)
        if platform == 0 or (platform == 3 and encoding in (1, 10)):  # the Unicode ones
            covered |= _cmap_subtable(data, offset + sub)
    return frozenset(covered)


@cache
def label_code_points() -> frozenset[int]:
    """Code points every label font can draw."""
    fonts = [font_code_points(path) for path in LABEL_FONTS]
    return frozenset.intersection(*fonts)


def _describe(ch: str) -> str:
    """``U+200B (ZERO WIDTH SPACE)``; a character without a name is its number only."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def printable_text(value: str, max_len: int) -> str:
    """``value`` as a label prints it (NFC, whitespace collapsed), or :class:`PrintableError`
    saying why it cannot be printed."""
    if len(value) > 4 * max_len + 64:  # far too long: not worth normalising first
        raise PrintableError(
            f"at most {max_len} characters, got {len(value)}",
            f"dài quá: tối đa {max_len} ký tự (đang có {len(value)})",
        )
    for at, ch in enumerate(value, start=1):
        if unicodedata.category(ch)[0] == "C" and ch not in _WHITESPACE:
            raise PrintableError(
                f"contains control or invisible character {_describe(ch)} at position {at}; "
                "type it again rather than paste it",
                f"có ký tự điều khiển hoặc ký tự ẩn {_describe(ch)} ở vị trí {at}; "
                "hãy gõ lại bằng bàn phím, đừng dán",
            )
    text = nfc(value)
    if not text:
        raise PrintableError(
            "must not be empty (or only spaces)", "không được để trống (hoặc chỉ có dấu cách)"
        )
    if len(text) > max_len:
        raise PrintableError(
            f"at most {max_len} characters, got {len(text)}",
            f"dài quá: tối đa {max_len} ký tự (đang có {len(text)})",
        )
    covered = label_code_points()
    for at, ch in enumerate(text, start=1):
        if ord(ch) not in covered:
            raise PrintableError(
                f"the label font cannot print {_describe(ch)} {ch!r} at position {at}",
                f"phông chữ của nhãn không in được ký tự “{ch}” ({_describe(ch)}) ở vị trí {at}",
            )
    return text


def text_rule(max_len: int) -> Callable[[str], str]:
    """:func:`printable_text` with its length, for a pydantic ``AfterValidator``."""

    def check(value: str) -> str:
        return printable_text(value, max_len)

    return check


def phone_number(value: str) -> str:
    """A phone number as labels print it: 9 to 12 digits, spaces, dots and '+' allowed."""
    text = nfc(value)
    digits = sum(ch in _DIGITS for ch in text)
    if not all(ch in _DIGITS or ch in " .+" for ch in text) or not 9 <= digits <= 12:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise PrintableError(
            f"not a phone number (9 to 12 digits, spaces allowed): {shown!r}",
            f"không phải số điện thoại (9 đến 12 chữ số, được có dấu cách): “{shown}”",
        )
    return text
