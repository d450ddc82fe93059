"""Plain-text print jobs and the printer self-test page.

Text is printed either as a raster drawn with the bundled DejaVu font (right on every
printer) or, when the printer profile says its native code page prints right
(``native_text = "tcvn3"`` or ``"cp1258"``), as code-page text (:mod:`edge.printer.codepage`):
far fewer bytes, which matters on a 9600-baud serial printer.

The self-test page (``edge printer selftest``) shows the same Vietnamese sample both ways,
raster first, then TCVN-3 and CP1258 with the page numbers of the profile, so staff can
see which native encoding (if any) their printer gets right and set ``native_text``.
"""

from __future__ import annotations

import copy
import io
import unicodedata
from functools import lru_cache
from pathlib import Path

from escpos.printer import Dummy
from PIL import Image, ImageDraw, ImageFont

from edge.printer.codepage import encode_cp1258, encode_tcvn3, select_page
from edge.printer.profiles import PrinterProfile

FONT_DIR = Path(__file__).parent / "fonts"
INIT = b"\x1b@"
SAMPLE = (
    "Điểm thu gom Sìn Hồ: Giàng Thị Mỷ, Sâm Lai Châu 2,500 kg",
    "HOA: ĐIỂM THU GOM, SÂM LAI CHÂU, ẮT, ỮA, ỴÊ",
    "ă â ê ô ơ ư đ - à ả ã á ạ - ỳ ỷ ỹ ý ỵ",
)


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONT_DIR / name), size, layout_engine=ImageFont.Layout.BASIC)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy wrap by width; a word longer than a line is broken between letters."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:
            if line and font.getlength(line + ch) > width:
                lines.append(line)
                line = ""
            line += ch
    lines.append(line)
    return lines


def text_image(
    lines: list[str] | tuple[str, ...], width_dots: int, size: int = 22, *, bold_first: bool = False
) -> Image.Image:
    """The lines drawn with DejaVu Sans into a mode "1" image ``width_dots`` wide (black =
    printed), wrapped at an 8-dot margin, NFC-normalised."""
    margin = 8
    out: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for i, text in enumerate(lines):
        font = _font(size, bold=bold_first and i == 0)
        text = unicodedata.normalize("NFC", " ".join(str(text).split()))
        out += [(line, font) for line in _wrap(text, font, width_dots - 2 * margin)]
    step = round(size * 1.45)
    img = Image.new("1", (width_dots, max(1, step * len(out) + 2 * margin)), 1)
    draw = ImageDraw.Draw(img)
    for i, (line, font) in enumerate(out):
        draw.text(
            (margin, margin + i * step + round(size * 1.15)),
            line,
            font=font,
            fill=0,
            anchor="ls",
        )
    return img


def raster_block(img: Image.Image) -> bytes:
    """``GS v 0`` raster block(s) for a mode "1" image, unscaled, uncentred (no init/cut)."""
    printer = Dummy(profile="default")
    data = copy.deepcopy(printer.profile.profile_data)
    data["media"]["width"]["pixels"] = img.width
    printer.profile.profile_data = data  # this instance only; python-escpos's data untouched
    printer.image(img, impl="bitImageRaster", center=False)
    out: bytes = printer.output
    return out


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def finish(profile: PrinterProfile) -> bytes:
    """Feed the paper past the tear bar or cutter, and cut where there is a cutter."""
    feed = b"\x1bd\x05"
    if profile.cutter == "full":
        return feed + b"\x1dV\x00"
    if profile.cutter == "partial":
        return feed + b"\x1dV\x01"
    return feed


def native_lines(lines: list[str] | tuple[str, ...], profile: PrinterProfile) -> bytes:
    """The lines in the profile's native encoding (its ``native_text``), one per line."""
    pages = profile.codepages
    out = bytearray()
    for line in lines:
        if profile.native_text == "tcvn3" and pages.tcvn3 is not None:
            out += encode_tcvn3(line, pages.tcvn3, pages.tcvn3_capitals or pages.tcvn3).data
        elif profile.native_text == "cp1258" and pages.cp1258 is not None:
            out += encode_cp1258(line, pages.cp1258).data
        else:
            raise ValueError(f"profile {profile.title!r} has no native text encoding")
        out += b"\n"
    return bytes(out) + select_page(0)


def text_job(lines: list[str], width_dots: int, profile: PrinterProfile) -> tuple[bytes, bytes]:
    """(ESC/POS bytes, preview PNG) for a plain-text job: native code-page text when the
    profile says the printer prints it right, else a raster."""
    img = text_image(lines, width_dots)
    native = profile.native_text != "none"
    body = native_lines(lines, profile) if native else raster_block(img)
    return INIT + body + finish(profile), png(img)


def selftest_page(profile: PrinterProfile, target: str) -> bytes:
    """The self-test page for ``profile`` on printer ``target`` (a URI, for the header)."""
    width = profile.paper_dots
    header = [
        "TỰ KIỂM TRA MÁY IN / PRINTER SELF-TEST",
        f"{profile.title} · {width} dots · {target}",
        "1) Chữ in bằng ảnh (font DejaVu), luôn đúng / raster text:",
        *SAMPLE,
        "2) Chữ mã trang của máy in / native code pages (below): so sánh với dòng trên.",
    ]
    img = text_image(header, width, bold_first=True)
    ImageDraw.Draw(img).rectangle((0, 0, width - 1, img.height - 1), outline=0)  # full width
    out = bytearray(INIT + raster_block(img) + b"\n")
    pages = profile.codepages
    if pages.tcvn3 is not None and pages.tcvn3_capitals is not None:
        out += f"TCVN-3 (ESC t {pages.tcvn3}/{pages.tcvn3_capitals}):\n".encode()
        for line in SAMPLE:
            out += encode_tcvn3(line, pages.tcvn3, pages.tcvn3_capitals).data + b"\n"
    else:
        out += b"TCVN-3: no code page in this profile\n"
    out += select_page(0)
    if pages.cp1258 is not None:
        out += f"CP1258 (ESC t {pages.cp1258}):\n".encode()
        for line in SAMPLE:
            out += encode_cp1258(line, pages.cp1258).data + b"\n"
    else:
        out += b"CP1258: no code page in this profile\n"
    out += select_page(0) + b"native_text = tcvn3 | cp1258 | none\n"
    return bytes(out + finish(profile))
