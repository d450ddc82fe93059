"""ESC/POS job bytes for a rendered label.

A job is: ESC @ (initialise), the image as GS v 0 raster block(s) of at most 960 rows
(the split python-escpos uses), ESC d 6 (print and feed six lines, which python-escpos's
cut() sends to move the label past the cutter) and GS V 0 (full cut).

The initialise and cut commands come from python-escpos's Dummy printer. The raster
blocks are packed here directly from the image's bytes: python-escpos's ``image()``
re-thresholds the picture pixel by pixel in Python (about 30 ms for an 80 mm shipping
label, which alone misses the 50 labels/s target) and produces exactly the same bytes
for a 1-bit image (checked by the tests against ``image(impl="bitImageRaster")``). The
raster sent therefore equals :func:`preview_png` bit for bit.
"""

from __future__ import annotations

import io

from escpos.printer import Dummy
from PIL import Image

PROFILE = "default"  # generic Epson-compatible: GS v 0 raster and GS V full cut
FRAGMENT_ROWS = 960  # rows per GS v 0 block, as python-escpos splits tall images
_INVERT = bytes(255 - i for i in range(256))  # PIL "1": bit 1 = white; GS v 0: bit 1 = dot


def _fixed_bytes() -> tuple[bytes, bytes]:
    init, cut = Dummy(profile=PROFILE), Dummy(profile=PROFILE)
    init.hw("INIT")
    cut.cut(mode="FULL", feed=True)  # ESC d 6 (feed past the cutter), GS V 0
    return init.output, cut.output


_INIT, _CUT = _fixed_bytes()


def as_raster(img: Image.Image) -> Image.Image:
    """The exact 1-bit raster that is printed (threshold at 50 %, no dithering)."""
    return img if img.mode == "1" else img.convert("1", dither=Image.Dither.NONE)


def raster_to_escpos(img: Image.Image) -> bytes:
    """ESC/POS bytes printing ``img`` unscaled and uncentred, then feeding and cutting."""
    raster = as_raster(img)
    width_bytes = (raster.width + 7) // 8
    dots = raster.tobytes().translate(_INVERT)
    parts = [_INIT]
    for top in range(0, raster.height, FRAGMENT_ROWS):
        rows = min(FRAGMENT_ROWS, raster.height - top)
        header = b"\x1dv0\x00" + width_bytes.to_bytes(2, "little") + rows.to_bytes(2, "little")
        parts += [header, dots[top * width_bytes : (top + rows) * width_bytes]]
    parts.append(_CUT)
    return b"".join(parts)


def preview_png(img: Image.Image) -> bytes:
    """PNG of exactly the raster :func:`raster_to_escpos` prints (1-bit, black = printed)."""
    buf = io.BytesIO()
    as_raster(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
