"""Lot label rendering: a pure function from a :class:`LotLabel` to a 1-bit raster.

All text is drawn with the bundled DejaVu Sans font into the image, so Vietnamese
diacritics print the same on every ESC/POS printer, whatever code pages it has.
Text is laid out with Pillow's BASIC engine (no libraqm dependency) after NFC
normalisation, so a label renders identically on every station.

Image convention (PIL mode "1"): 0 = black = a printed dot, 1 = white paper.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(__file__).parent / "fonts"
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"

BASE_WIDTH = 384  # 58 mm paper at 203 dpi; sizes below are for this width and scale with it
MIN_WIDTH = 320  # below this a >= 30 mm QR code with its quiet zone does not fit
MAX_WIDTH = 2048
QR_MIN_DOTS = 240  # 30 mm at 203 dpi, the QR symbol without its quiet zone
QR_QUIET_MODULES = 4
QR_MIN_DOTS_PER_MODULE = 3  # below this phones and cameras stop reading it reliably

TITLE = "PHIẾU LÔ HÀNG"
# Glyphs reaching highest (stacked capital diacritics) and lowest, to size lines by ink.
_TALL = "ỂẪỖỄẤẰÁ"
_DEEP = "gjpqyỵỹ"

BLACK = 0
WHITE = 1


@dataclass(frozen=True)
class LotLabel:
    site_name: str  # e.g. "Điểm thu gom Sìn Hồ"
    producer_name: str  # e.g. "Giàng Thị Mỷ"
    product_name: str  # e.g. "Sâm Lai Châu"
    net_g: int  # integer grams
    recorded_at: datetime  # aware; printed as local dd/mm/yyyy HH:MM
    lot_id: str  # a UUIDv7 string
    seq: int  # per-site sequence number
    qr_payload: str  # what the QR code holds


def format_weight(net_g: int) -> str:
    """Grams as Vietnamese-style kilograms: 12345 -> "12,345 kg", 1234567 -> "1.234,567 kg"."""
    sign = "-" if net_g < 0 else ""
    kg, g = divmod(abs(net_g), 1000)
    return f"{sign}{kg:,}".replace(",", ".") + f",{g:03d} kg"


def short_lot_id(lot_id: str) -> str:
    """Short form of a lot id for people: the last 8 hex digits (the random part of a
    UUIDv7), upper case, as "89AB-CDEF"."""
    tail = "".join(ch for ch in lot_id if ch.isalnum())[-8:].upper()
    return f"{tail[:4]}-{tail[4:]}" if len(tail) == 8 else tail


def format_local_time(recorded_at: datetime, tz: tzinfo | None = None) -> str:
    """dd/mm/yyyy HH:MM in ``tz`` (the system's local zone when None)."""
    if recorded_at.tzinfo is None or recorded_at.utcoffset() is None:
        raise ValueError(f"recorded_at must be timezone-aware, got {recorded_at!r}")
    return f"{recorded_at.astimezone(tz):%d/%m/%Y %H:%M}"


@lru_cache(maxsize=32)
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    path = BOLD_FONT if bold else REGULAR_FONT
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _ink_right(font: ImageFont.FreeTypeFont, text: str) -> float:
    """Rightmost inked column of ``text`` drawn at x=0 (may exceed the advance width)."""
    return font.getbbox(text, anchor="ls")[2] if text else 0


def _clusters(word: str) -> list[str]:
    """Split into base characters with their combining marks attached."""
    out: list[str] = []
    for ch in word:
        if out and unicodedata.combining(ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _break_word(word: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break a word wider than ``width`` into pieces that fit (at least one cluster each)."""
    pieces: list[str] = []
    current = ""
    for cluster in _clusters(word):
        if current and _ink_right(font, current + cluster) > width:
            pieces.append(current)
            current = cluster
        else:
            current += cluster
    pieces.append(current)
    return pieces


def wrap_text(text: str, font: ImageFont.FreeTypeFont, first_width: int, width: int) -> list[str]:
    """Greedy word wrap by ink width. The first line has ``first_width`` (room left after an
    inline label), the others ``width``. The first line may be "" when not even the first
    word fits beside the label. Words longer than a whole line are broken between letters."""
    lines: list[str] = []
    line = ""
    avail = first_width
    for word in _nfc(text).split(" "):
        candidate = f"{line} {word}" if line else word
        if _ink_right(font, candidate) <= avail:
            line = candidate
            continue
        if line or avail < width:  # close this line (possibly the empty label line)
            lines.append(line)
            line, avail = "", width
        if _ink_right(font, word) <= avail:
            line = word
            continue
        *full, line = _break_word(word, font, avail)
        lines.extend(full)
    lines.append(line)
    return lines


class _Canvas:
    """Collects drawing operations top to bottom, then renders them at the final height."""

    def __init__(self, width: int, margin: int) -> None:
        self.width = width
        self.margin = margin
        self.y = 0
        self._texts: list[tuple[int, int, str, ImageFont.FreeTypeFont]] = []
        self._rules: list[tuple[int, int]] = []
        self._images: list[tuple[int, int, Image.Image]] = []

    @property
    def text_width(self) -> int:
        return self.width - 2 * self.margin

    @staticmethod
    def _extent(font: ImageFont.FreeTypeFont) -> tuple[int, int]:
        ascent, descent = font.getmetrics()
        tall = font.getbbox(_TALL, anchor="ls")[1]
        deep = font.getbbox(_DEEP, anchor="ls")[3]
        return max(ascent, math.ceil(-tall)), max(descent, math.ceil(deep))

    def _line(self, fonts: list[ImageFont.FreeTypeFont]) -> int:
        """Advance by one text line high enough for every font; return its baseline."""
        extents = [self._extent(f) for f in fonts]
        ascent = max(a for a, _ in extents)
        descent = max(d for _, d in extents)
        baseline = self.y + ascent
        self.y = baseline + descent + max(2, round(max(f.size for f in fonts) * 0.15))
        return baseline

    def centred(self, text: str, font: ImageFont.FreeTypeFont) -> None:
        for line in wrap_text(text, font, self.text_width, self.text_width):
            baseline = self._line([font])
            left, _, right, _ = font.getbbox(line, anchor="ls")
            x = math.floor((self.width - (right - left)) / 2 - left)
            self._texts.append((x, baseline, line, font))

    def field(
        self,
        label: str,
        value: str,
        label_font: ImageFont.FreeTypeFont,
        value_font: ImageFont.FreeTypeFont,
    ) -> None:
        """ "Label: value" with the value wrapping onto following lines at the margin."""
        label = _nfc(label)
        value_x = self.margin + math.ceil(label_font.getlength(label + " "))
        first_width = self.width - self.margin - value_x
        lines = wrap_text(value, value_font, first_width, self.text_width)
        baseline = self._line([label_font, value_font])
        self._texts.append((self.margin, baseline, label, label_font))
        if lines[0]:
            self._texts.append((value_x, baseline, lines[0], value_font))
        for line in lines[1:]:
            self._texts.append((self.margin, self._line([value_font]), line, value_font))

    def rule(self, thickness: int, gap: int) -> None:
        self.y += gap
        self._rules.append((self.y, thickness))
        self.y += thickness + gap

    def space(self, dots: int) -> None:
        self.y += dots

    def image_centred(self, img: Image.Image) -> None:
        self._images.append(((self.width - img.width) // 2, self.y, img))
        self.y += img.height

    def render(self) -> Image.Image:
        out = Image.new("1", (self.width, self.y), WHITE)
        draw = ImageDraw.Draw(out)
        for x, baseline, text, font in self._texts:
            draw.text((x, baseline), text, font=font, fill=BLACK, anchor="ls")
        for top, thickness in self._rules:
            draw.rectangle(
                (self.margin, top, self.width - self.margin - 1, top + thickness - 1), fill=BLACK
            )
        for x, top, img in self._images:
            out.paste(img, (x, top))
        return out


def qr_image(payload: str, max_width: int) -> Image.Image:
    """QR code (error correction M) with a 4-module quiet zone, an integer number of dots
    per module, the symbol at least 240 dots (30 mm) wide when it fits in ``max_width``."""
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=QR_QUIET_MODULES
    )
    qr.add_data(payload)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()  # includes the quiet zone
    modules = int(qr.modules_count)
    total = len(matrix)
    box = max(math.ceil(QR_MIN_DOTS / modules), QR_MIN_DOTS_PER_MODULE)
    if total * box > max_width:
        box = max_width // total
    if box < QR_MIN_DOTS_PER_MODULE:
        raise ValueError(
            f"QR payload of {len(payload)} characters needs {total} modules: too large for a "
            f"{max_width}-dot label; shorten the payload"
        )
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    small = Image.frombytes("L", (total, total), pixels).convert("1", dither=Image.Dither.NONE)
    return small.resize((total * box, total * box), Image.Resampling.NEAREST)


def render_lot_label(
    label: LotLabel, width_dots: int = BASE_WIDTH, *, tz: tzinfo | None = None
) -> Image.Image:
    """The lot label as a mode "1" image exactly ``width_dots`` wide (384 for 58 mm paper,
    576 for 80 mm), as tall as needed. ``tz`` is the zone for the printed date (the site's
    zone; None = the system's local zone)."""
    if width_dots % 8 or not MIN_WIDTH <= width_dots <= MAX_WIDTH:
        raise ValueError(
            f"width_dots must be a multiple of 8 between {MIN_WIDTH} and {MAX_WIDTH} "
            f"(384 for 58 mm paper, 576 for 80 mm), got {width_dots}"
        )
    scale = width_dots / BASE_WIDTH

    def size(base: int) -> int:
        return round(base * scale)

    canvas = _Canvas(width_dots, margin=size(8))
    regular, bold = _font(False, size(22)), _font(True, size(22))
    canvas.centred(TITLE, _font(True, size(30)))
    canvas.centred(label.site_name, _font(False, size(22)))
    canvas.rule(thickness=max(2, size(2)), gap=size(4))
    canvas.field("Nông dân:", label.producer_name, regular, bold)
    canvas.field("Sản phẩm:", label.product_name, regular, bold)
    canvas.field("Khối lượng tịnh:", "", regular, bold)
    canvas.centred(format_weight(label.net_g), _font(True, size(52)))
    canvas.field("Ngày:", format_local_time(label.recorded_at, tz), regular, bold)
    canvas.field("Mã lô:", f"{short_lot_id(label.lot_id)} · #{label.seq}", regular, bold)
    canvas.space(size(4))
    canvas.image_centred(qr_image(label.qr_payload, width_dots))
    return canvas.render()
