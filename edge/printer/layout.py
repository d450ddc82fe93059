"""The label layout engine: a label is a list of blocks, laid out top to bottom into a
1-bit raster exactly ``width_dots`` wide.

A layout says *what* is on a label (:class:`Title`, :class:`Field`, :class:`Table`, ...);
this module decides *where*: it wraps text by ink width (never by character count),
shrinks big values that do not fit, sizes QR codes and Code 128 symbols to whole dots per
module, and never puts ink into the side margins. Sizes are in dots for 58 mm paper
(384 dots) and scale with the width (80 mm paper, 576 dots, gets everything 1.5 times).

Wider than 80 mm is label stock: 100 mm is 100 x 150 mm labels (800 x 1200 dots,
:data:`LABEL_STOCK`). Its length is fixed, so its sizes are 1.25 times (:data:`LABEL_SCALE`,
between 58 and 80 mm paper) and the room across goes to :class:`Beside` (text next to a QR
code). :func:`render_blocks` lays a label that comes out longer than its stock out again at
the 58 mm sizes; if even that is too long, it prints that way and continues onto the next
label (what comes first, the courier's part of a shipping label, stays on the first).

Text is drawn with the bundled DejaVu Sans (Vietnamese complete) using Pillow's BASIC
layout engine after NFC normalisation (:mod:`edge.printer.text`), so a label renders
identically on every station.
Image convention (PIL mode "1"): 0 = black = a printed dot, 1 = white paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import qrcode
import qrcode.constants
from barcode.codex import Code128  # type: ignore[import-untyped]  # no type hints
from PIL import Image, ImageDraw, ImageFont

from edge.printer.text import (
    clusters,
    extent,
    font,
    ink_box,
    ink_width,
    nfc,
    text_mask,
    wrap_text,
)

BASE_WIDTH = 384  # 58 mm paper at 203 dpi; sizes below are for this width and scale with it
SCALE_WIDTH = 576  # 80 mm paper: sizes scale with the width up to here (x1.5)
LABEL_SCALE = 1.25  # wider is label stock of a fixed length: sizes x1.25
LABEL_STOCK = {800: 1200}  # width -> length in dots: 100 x 150 mm labels at 203 dpi
MIN_WIDTH = 320  # below this a >= 30 mm QR code with its quiet zone does not fit
MAX_WIDTH = 2048
MARGIN = 8
QR_MIN_DOTS = 240  # 30 mm at 203 dpi, the QR symbol without its quiet zone
QR_QUIET_MODULES = 4
QR_MIN_DOTS_PER_MODULE = 3  # below this phones and cameras stop reading it reliably
BARCODE_QUIET_MODULES = 10  # Code 128 quiet zone each side (ISO/IEC 15417)
BARCODE_MODULE_DOTS = (3, 2)  # 0.375 / 0.25 mm bars; 1 dot (0.125 mm) is too thin to scan

# text sizes in dots at 384 dots wide
SMALL, NORMAL, LARGE, TITLE, BIG = 18, 22, 26, 30, 52

BLACK = 0
WHITE = 1

Align = Literal["left", "center", "right"]


class LayoutError(ValueError):
    """Content that cannot be laid out at this width (the message says which and why)."""


# -- blocks -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Title:
    text: str  # bold, centred; shrinks a little, then wraps


@dataclass(frozen=True)
class Text:
    text: str
    size: int = NORMAL
    bold: bool = False
    align: Align = "left"


@dataclass(frozen=True)
class Field:
    """``Label: value``; the value (bold) wraps onto following lines at the margin."""

    label: str
    value: str
    size: int = NORMAL


@dataclass(frozen=True)
class BigValue:
    """One large bold value, centred; shrinks (then wraps) to fit the width."""

    text: str
    size: int = BIG


@dataclass(frozen=True)
class Rule:
    thickness: int = 2
    gap: int = 4


@dataclass(frozen=True)
class Spacer:
    dots: int


@dataclass(frozen=True)
class Column:
    header: str
    align: Align = "left"
    grow: bool = False  # takes the spare width (and wraps first when there is none)


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Signer:
    role: str  # e.g. "Bên giao"
    name: str = ""  # printed under the signature line
    hint: str = "(ký, ghi rõ họ tên)"


@dataclass(frozen=True)
class Signatures:
    """Room to sign, side by side when the width allows, else one under the other."""

    signers: tuple[Signer, ...]


@dataclass(frozen=True)
class QRCode:
    payload: str


@dataclass(frozen=True)
class Barcode128:
    code: str
    caption: bool = True  # the code in large bold text under the bars


@dataclass(frozen=True)
class Beside:
    """A QR code with ``blocks`` to its right, their top at the symbol's top, when that
    column is at least ``min_column`` dots wide (at 384); else the QR code, centred, and
    the blocks under it."""

    qr: QRCode
    blocks: tuple[Block, ...]
    min_column: int = 200


Block = (
    Title
    | Text
    | Field
    | BigValue
    | Rule
    | Spacer
    | Table
    | Signatures
    | QRCode
    | Barcode128
    | Beside
)


# -- codes --------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _qr_matrix(payload: str) -> tuple[bytes, int, int]:
    """(pixels 0=dark/255=light with the quiet zone, modules without it, total modules)."""
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=QR_QUIET_MODULES
    )
    qr.add_data(payload)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()  # includes the quiet zone
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    return pixels, int(qr.modules_count), len(matrix)


def qr_image(payload: str, max_width: int, max_symbol: int | None = None) -> Image.Image:
    """QR code (error correction M) with a 4-module quiet zone, an integer number of dots
    per module, the symbol at least 240 dots (30 mm) wide when it fits: the whole image
    within ``max_width`` and the symbol within ``max_symbol`` (default ``max_width``)."""
    pixels, modules, total = _qr_matrix(payload)
    box = max(math.ceil(QR_MIN_DOTS / modules), QR_MIN_DOTS_PER_MODULE)
    box = min(box, max_width // total, (max_symbol or max_width) // modules)
    if box < QR_MIN_DOTS_PER_MODULE:
        raise LayoutError(
            f"QR payload of {len(payload)} characters needs {total} modules: too large for a "
            f"{max_width}-dot label; shorten the payload"
        )
    small = Image.frombytes("L", (total, total), pixels).convert("1", dither=Image.Dither.NONE)
    return small.resize((total * box, total * box), Image.Resampling.NEAREST)


@lru_cache(maxsize=256)
def code128_modules(code: str) -> str:
    """Code 128 bar pattern ("1" = bar module), start to stop, checksum included."""
    modules: str = Code128(code).build()[0]
    return modules


def _bars(modules: str, module: int, height: int) -> Image.Image:
    row = bytes(0 if m == "1" else 255 for m in modules)
    line = Image.frombytes("L", (len(modules), 1), row).convert("1", dither=Image.Dither.NONE)
    return line.resize((len(modules) * module, height), Image.Resampling.NEAREST)


# -- the engine ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PlacedText:
    x: int  # pen position
    baseline: int
    text: str
    font: ImageFont.FreeTypeFont


class Layout:
    """Blocks laid out at one width: what goes where (``texts``, ``images``, ``rects``),
    then :meth:`render` draws it at the final height."""

    def __init__(self, width: int, scale: float | None = None) -> None:
        if width % 8 or not MIN_WIDTH <= width <= MAX_WIDTH:
            raise LayoutError(
                f"width_dots must be a multiple of 8 between {MIN_WIDTH} and {MAX_WIDTH} "
                f"(384 for 58 mm paper, 576 for 80 mm, 800 for 100 mm labels), got {width}"
            )
        self.width = width
        if scale is None:
            scale = width / BASE_WIDTH if width <= SCALE_WIDTH else LABEL_SCALE
        self.scale = scale
        self.margin = self.px(MARGIN)
        self.left = self.margin  # where text and rules go: the margins, or a column (Beside)
        self.right = width - self.margin
        self.y = 0
        self.texts: list[PlacedText] = []
        self.images: list[tuple[int, int, Image.Image]] = []
        self.rects: list[tuple[int, int, int, int]] = []  # inclusive x0, y0, x1, y1

    def px(self, base: int) -> int:
        return max(1, round(base * self.scale))

    def font(self, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
        return font(bold, self.px(size))

    @property
    def text_width(self) -> int:
        return self.right - self.left

    # -- primitives
    def line(self, fonts: Sequence[ImageFont.FreeTypeFont]) -> int:
        """Advance by one text line high enough for every font; return its baseline."""
        extents = [extent(f) for f in fonts]
        baseline = self.y + max(a for a, _ in extents)
        leading = max(2, round(max(f.size for f in fonts) * 0.15))
        self.y = baseline + max(d for _, d in extents) + leading
        return baseline

    def put(
        self,
        text: str,
        f: ImageFont.FreeTypeFont,
        baseline: int,
        left: int,
        right: int,
        align: Align = "left",
    ) -> None:
        """Place one line so that its ink lies within [left, right)."""
        if not text:
            return
        ink_left, _, ink_right, _ = ink_box(f, text)
        if align == "left":
            x = left - min(0, ink_left)
        elif align == "right":
            x = right - ink_right
        else:
            x = math.floor((left + right - (ink_right - ink_left)) / 2 - ink_left)
        if x + ink_left < left or x + ink_right > right:
            raise LayoutError(f"{text!r} does not fit in {right - left} dots")  # a bug if seen
        self.texts.append(PlacedText(x, baseline, text, f))

    def wrapped(self, text: str, f: ImageFont.FreeTypeFont, align: Align = "left") -> None:
        for line in wrap_text(text, f, self.text_width, self.text_width):
            self.put(line, f, self.line([f]), self.left, self.right, align)

    def image(self, img: Image.Image, x: int | None = None) -> None:
        left = (self.left + self.right - img.width) // 2 if x is None else x
        self.images.append((left, self.y, img))
        self.y += img.height

    def rule(self, thickness: int, x0: int | None = None, x1: int | None = None) -> None:
        left = self.left if x0 is None else x0
        right = self.right - 1 if x1 is None else x1
        self.rects.append((left, self.y, right, self.y + thickness - 1))
        self.y += thickness

    # -- blocks
    def add(self, block: Block) -> None:
        match block:
            case Title(text):
                self.big_value(text, TITLE, LARGE)
            case Text(text, size, bold, align):
                self.wrapped(text, self.font(size, bold), align)
            case Field(label, value, size):
                self.field(label, value, size)
            case BigValue(text, size):
                self.big_value(text, size)
            case Rule(thickness, gap):
                self.y += self.px(gap)
                self.rule(max(1, self.px(thickness)))
                self.y += self.px(gap)
            case Spacer(dots):
                self.y += self.px(dots)
            case Table():
                self.table(block)
            case Signatures(signers):
                self.signatures(signers)
            case QRCode(payload):
                self.image(qr_image(payload, self.width, self.text_width))
            case Barcode128(code, caption):
                self.barcode(code, caption)
            case Beside():
                self.beside(block)

    def field(self, label: str, value: str, size: int) -> None:
        label_font, value_font = self.font(size), self.font(size, bold=True)
        left, right = self.left, self.right
        *label_lines, last = wrap_text(label, label_font, self.text_width, self.text_width)
        for line in label_lines:
            self.put(line, label_font, self.line([label_font]), left, right)
        value_x = left + ink_width(label_font, last) + math.ceil(label_font.size * 0.4)
        lines = wrap_text(value, value_font, right - value_x, self.text_width) if value else [""]
        baseline = self.line([label_font, value_font])
        self.put(last, label_font, baseline, left, right)
        self.put(lines[0], value_font, baseline, value_x, right)
        for line in lines[1:]:
            self.put(line, value_font, self.line([value_font]), left, right)

    def big_value(self, text: str, size: int, smallest: int = NORMAL) -> None:
        """Bold, centred, as large as fits between ``smallest`` and ``size``, then wrapped."""
        text = nfc(text)
        dots = self.px(size)
        floor = self.px(smallest)
        while dots > floor and ink_width(font(True, dots), text) > self.text_width:
            dots -= 2
        self.wrapped(text, font(True, dots), "center")

    def table(self, table: Table) -> None:
        n = len(table.columns)
        if any(len(row) != n for row in table.rows):
            raise LayoutError(f"every table row needs {n} cells")
        gap = self.px(10)
        avail = self.text_width - gap * (n - 1)
        grow = next((i for i, c in enumerate(table.columns) if c.grow), None)
        sizes = (NORMAL, SMALL, 16)
        natural = {size: self._natural(table, size, whole=True) for size in sizes}
        fits = [s for s in sizes if sum(natural[s]) <= avail]
        size = fits[0] if fits else sizes[-1]
        widths = natural[size]
        spare = avail - sum(widths)
        least = self._natural(table, size, whole=False)  # the widest letter of each column
        if spare >= 0:  # the largest text at which no cell needs to wrap
            widths[grow if grow is not None else n - 1] += spare
        elif grow is not None and spare + widths[grow] >= max(least[grow], avail // 4):
            widths[grow] += spare  # only the growing column wraps
        elif sum(least) <= avail:  # every column wraps: each keeps its widest letter
            room = avail - sum(least)
            extra = [w - m for w, m in zip(widths, least, strict=True)]
            widths = [m + e * room // sum(extra) for m, e in zip(least, extra, strict=True)]
        else:
            raise LayoutError(f"a table of {n} columns does not fit in {self.text_width} dots")
        body, head = self.font(size), self.font(size, bold=True)
        lefts = [self.left + sum(widths[:i]) + gap * i for i in range(n)]
        self._row([c.header for c in table.columns], table.columns, head, lefts, widths)
        self.y += self.px(2)
        self.rule(1)
        self.y += self.px(3)
        for row in table.rows:
            self._row(list(row), table.columns, body, lefts, widths)

    def _natural(self, table: Table, size: int, *, whole: bool) -> list[int]:
        """Each column's width at text ``size``: without wrapping (``whole``), or the
        narrowest it can wrap to (its widest letter)."""
        body, head = self.font(size), self.font(size, bold=True)

        def width(f: ImageFont.FreeTypeFont, text: str) -> int:
            parts = [nfc(text)] if whole else clusters(nfc(text))
            return max((ink_width(f, p) for p in parts), default=0)

        return [
            max([width(head, c.header)] + [width(body, row[i]) for row in table.rows])
            for i, c in enumerate(table.columns)
        ]

    def _row(
        self,
        cells: list[str],
        columns: tuple[Column, ...],
        f: ImageFont.FreeTypeFont,
        lefts: list[int],
        widths: list[int],
    ) -> None:
        wrapped = [wrap_text(c, f, w, w) for c, w in zip(cells, widths, strict=True)]
        for i in range(max(len(w) for w in wrapped)):
            baseline = self.line([f])
            for lines, col, left, w in zip(wrapped, columns, lefts, widths, strict=True):
                if i < len(lines):
                    self.put(lines[i], f, baseline, left, left + w, col.align)

    def signatures(self, signers: tuple[Signer, ...]) -> None:
        gap = self.px(16)
        n = len(signers)
        per_row = n if (self.text_width - gap * (n - 1)) // n >= self.px(150) else 1
        role_font, hint_font, name_font = (
            self.font(NORMAL, bold=True),
            self.font(SMALL),
            self.font(NORMAL),
        )
        for start in range(0, n, per_row):
            group = signers[start : start + per_row]
            width = (self.text_width - gap * (per_row - 1)) // per_row
            top, bottom = self.y, self.y
            for i, signer in enumerate(group):
                left = self.left + i * (width + gap)
                self.y = top
                for text, f in ((signer.role, role_font), (signer.hint, hint_font)):
                    for line in wrap_text(text, f, width, width):
                        self.put(line, f, self.line([f]), left, left + width, "center")
                self.y += self.px(96)  # 12 mm of room to sign
                inset = width // 10
                self.rule(max(1, self.px(1)), left + inset, left + width - inset - 1)
                self.y += self.px(4)
                for line in wrap_text(signer.name, name_font, width, width) if signer.name else []:
                    self.put(line, name_font, self.line([name_font]), left, left + width, "center")
                bottom = max(bottom, self.y)
            self.y = bottom + self.px(8)

    def beside(self, block: Beside) -> None:
        payload = block.qr.payload
        img = qr_image(payload, self.width, self.text_width)
        if self.text_width - img.width < self.px(block.min_column):
            self.image(img)
            for inner in block.blocks:
                self.add(inner)
            return
        quiet = img.width // _qr_matrix(payload)[2] * QR_QUIET_MODULES
        top, left = self.y, self.left
        self.images.append((left, top, img))
        self.left, self.y = left + img.width, top + quiet  # the quiet zone is the gap
        try:
            for inner in block.blocks:
                self.add(inner)
        finally:
            self.left = left
        self.y = max(self.y, top + img.height)

    def barcode(self, code: str, caption: bool) -> None:
        modules = code128_modules(code)
        n, quiet = len(modules), BARCODE_QUIET_MODULES
        height = self.px(80)
        for dots in BARCODE_MODULE_DOTS:
            if n * dots <= self.text_width and (n + 2 * quiet) * dots <= self.width:
                self.y += quiet * dots // 2  # half a quiet zone above and below is plenty
                self.image(_bars(modules, dots, height))
                self.y += quiet * dots // 2
                break
        else:  # too long to lie across the paper: print it along the paper, bars across
            dots = BARCODE_MODULE_DOTS[-1]
            bars = _bars(modules, dots, min(self.text_width, self.px(200)))
            self.y += quiet * dots
            self.image(bars.transpose(Image.Transpose.ROTATE_90))
            self.y += quiet * dots
        if caption:
            self.big_value(code, LARGE, SMALL)

    def render(self) -> Image.Image:
        out = Image.new("1", (self.width, max(1, self.y)), WHITE)
        for t in self.texts:
            mask, left, top = text_mask(t.font, t.text)
            out.paste(BLACK, (t.x + left, t.baseline + top), mask)
        draw = ImageDraw.Draw(out)
        for rect in self.rects:
            draw.rectangle(rect, fill=BLACK)
        for x, top, img in self.images:
            out.paste(img, (x, top))
        return out


def layout(
    blocks: Sequence[Block], width_dots: int, *, bottom: int = 8, scale: float | None = None
) -> Layout:
    """Lay ``blocks`` out at ``width_dots``; ``bottom`` blank dots (at 384) at the end;
    ``scale``: sizes times this (default: for the width, see the module's docstring)."""
    page = Layout(width_dots, scale)
    for block in blocks:
        page.add(block)
    page.y += page.px(bottom) if bottom else 0
    return page


def fitted(blocks: Sequence[Block], width_dots: int) -> Layout:
    """``blocks`` laid out at ``width_dots``; on label stock (:data:`LABEL_STOCK`) too long
    for one label, at the 58 mm sizes instead (longer still: it continues onto the next)."""
    page = layout(blocks, width_dots)
    length = LABEL_STOCK.get(width_dots)
    if length is not None and page.y > length:
        page = layout(blocks, width_dots, scale=1.0)
    return page


def render_blocks(blocks: Sequence[Block], width_dots: int) -> Image.Image:
    """The label as a mode "1" image exactly ``width_dots`` wide, as tall as needed (on
    label stock, fitted to one label where it can be: :func:`fitted`)."""
    return fitted(blocks, width_dots).render()
