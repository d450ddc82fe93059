"""Text for labels: the bundled DejaVu fonts, NFC normalisation, ink measurements and
word wrap by ink width (never by character count), Vietnamese diacritics included.

Measurements are of the ink as drawn on a 1-bit image, so what the layout engine
(:mod:`edge.printer.layout`) reserves is what prints.
"""

from __future__ import annotations

import math
import unicodedata
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(__file__).parent / "fonts"
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"

# Glyphs reaching highest (stacked capital diacritics) and lowest, to size lines by ink.
_TALL = "ỂẪỖỄẤẰÁ"
_DEEP = "gjpqyỵỹ"


# -- text ---------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    path = BOLD_FONT if bold else REGULAR_FONT
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


def nfc(text: str) -> str:
    """NFC with runs of whitespace (newlines included) collapsed to one space."""
    return unicodedata.normalize("NFC", " ".join(text.split()))


@lru_cache(maxsize=8192)
def ink_box(f: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
    """Ink box of ``text`` drawn at x=0 on baseline y=0 (left may be negative), as drawn
    on a 1-bit image: monochrome glyphs are hinted differently and can be a dot or two
    wider than the anti-aliased ones that ``getbbox()`` measures by default."""
    if not text:
        return (0, 0, 0, 0)
    left, top, right, bottom = f.getbbox(text, anchor="ls", mode="1")
    return (math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom))


def ink_width(f: ImageFont.FreeTypeFont, text: str) -> int:
    """Dots from the pen position (or the ink, if it starts further left) to the last ink."""
    left, _, right, _ = ink_box(f, text)
    return right - min(0, left)


def clusters(word: str) -> list[str]:
    """Split into base characters with their combining marks attached."""
    out: list[str] = []
    for ch in word:
        if out and unicodedata.combining(ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _break_word(word: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break a word wider than ``width`` into pieces that fit (at least one cluster each),
    after a '.', '-' or '/' in the second half of a piece when there is one (codes such
    as S22762945.MN4.A1.1234567 then break where people read them in parts)."""
    pieces: list[str] = []
    current: list[str] = []
    for cluster in clusters(word):
        if current and ink_width(f, "".join(current) + cluster) > width:
            cut = max((i + 1 for i, c in enumerate(current) if c in ".-/"), default=0)
            cut = cut if cut > len(current) // 2 else len(current)
            pieces.append("".join(current[:cut]))
            current = current[cut:]
            if current and ink_width(f, "".join(current) + cluster) > width:
                pieces.append("".join(current))
                current = []
        current.append(cluster)
    pieces.append("".join(current))
    return pieces


def wrap_text(text: str, f: ImageFont.FreeTypeFont, first_width: int, width: int) -> list[str]:
    """Greedy word wrap by ink width. The first line has ``first_width`` (room left after an
    inline label), the others ``width``. The first line may be "" when not even the first
    word fits beside the label. Words longer than a whole line are broken between letters."""
    lines: list[str] = []
    line = ""
    avail = first_width
    for word in nfc(text).split(" "):
        candidate = f"{line} {word}" if line else word
        if ink_width(f, candidate) <= avail:
            line = candidate
            continue
        if line or avail < width:  # close this line (possibly the empty label line)
            lines.append(line)
            line, avail = "", width
        if ink_width(f, word) <= avail:
            line = word
            continue
        *full, line = _break_word(word, f, avail)
        lines.extend(full)
    lines.append(line)
    return lines


@lru_cache(maxsize=64)
def extent(f: ImageFont.FreeTypeFont) -> tuple[int, int]:
    """Ascent and descent that hold every Vietnamese glyph's ink."""
    ascent, descent = f.getmetrics()
    return max(ascent, -ink_box(f, _TALL)[1]), max(descent, ink_box(f, _DEEP)[3])


@lru_cache(maxsize=1024)
def text_mask(f: ImageFont.FreeTypeFont, text: str) -> tuple[Image.Image, int, int]:
    """``text`` rendered once (1 = ink) with its offset from the pen position: the words
    that recur on every label (field names, the site, products) are drawn only once."""
    left, top, right, bottom = ink_box(f, text)
    mask = Image.new("1", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=f, fill=1, anchor="ls")
    return mask, left, top
