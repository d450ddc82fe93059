"""ESC/POS job bytes for a rendered label, built with python-escpos's Dummy printer.

A job is: ESC @ (initialise), the image as GS v 0 raster block(s) (python-escpos splits
images taller than 960 dots into several blocks), ESC d 6 (print and feed six lines, which
python-escpos's cut() sends to move the label past the cutter) and GS V 0 (full cut).

python-escpos details handled here:

* The "default" profile has no media width, so ``image()`` *prints* (stdout, not a
  warning) "The media.width.pixel field ... is not set" on every call. We give the profile
  the image's own width, so nothing is printed, the width check passes and no centring
  happens (``center=False``, the default). The shared profile data of python-escpos is
  left untouched: the patched copy lives on this job's profile instance only.
* ``image()`` re-thresholds the picture; for a mode "1" image that is lossless, so the
  raster sent equals :func:`preview_png` bit for bit.
"""

from __future__ import annotations

import copy
import io

from escpos.printer import Dummy
from PIL import Image

PROFILE = "default"  # generic Epson-compatible: GS v 0 raster and GS V full cut


def as_raster(img: Image.Image) -> Image.Image:
    """The exact 1-bit raster that is printed (threshold at 50 %, no dithering)."""
    return img if img.mode == "1" else img.convert("1", dither=Image.Dither.NONE)


def raster_to_escpos(img: Image.Image) -> bytes:
    """ESC/POS bytes printing ``img`` unscaled and uncentred, then feeding and cutting."""
    raster = as_raster(img)
    printer = Dummy(profile=PROFILE)
    profile_data = copy.deepcopy(printer.profile.profile_data)
    profile_data["media"]["width"]["pixels"] = raster.width
    printer.profile.profile_data = profile_data  # instance attribute; class data untouched
    printer.hw("INIT")
    printer.image(
        raster,
        impl="bitImageRaster",
        high_density_vertical=True,
        high_density_horizontal=True,
        center=False,
    )
    printer.cut(mode="FULL", feed=True)  # ESC d 6 (feed past the cutter), GS V 0
    data: bytes = printer.output
    return data


def preview_png(img: Image.Image) -> bytes:
    """PNG of exactly the raster :func:`raster_to_escpos` prints (1-bit, black = printed)."""
    buf = io.BytesIO()
    as_raster(img).save(buf, format="PNG")
    return buf.getvalue()
