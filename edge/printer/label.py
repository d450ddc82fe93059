"""Labels as pure functions from data to a 1-bit raster, exactly as wide as the paper.

:func:`render_label` renders any kind (``lot``, ``receipt``, ``shipping``, ``manifest``,
see :mod:`edge.printer.kinds`) from its data; the QR codes it prints are signed with the
site's key (:mod:`edge.printer.payload`).

All text is drawn with the bundled DejaVu Sans font into the image (see
:mod:`edge.printer.layout`), so Vietnamese diacritics print the same on every ESC/POS
printer, whatever code pages it has. Image convention (PIL mode "1"): 0 = black = a
printed dot, 1 = white paper. The preview PNG and the ESC/POS job are made from the same
image (:mod:`edge.printer.escpos_out`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from PIL import Image

from edge.printer.kinds import (
    KINDS,
    LabelData,
    LabelDataError,
    format_dong,
    format_local_time,
    format_weight,
    kind_spec,
    parse_label_data,
    short_lot_id,
)
from edge.printer.layout import (
    BASE_WIDTH,
    BLACK,
    MAX_WIDTH,
    MIN_WIDTH,
    QR_MIN_DOTS,
    QR_MIN_DOTS_PER_MODULE,
    QR_QUIET_MODULES,
    WHITE,
    Block,
    LayoutError,
    Rule,
    Title,
    qr_image,
    render_blocks,
)
from edge.printer.payload import PayloadSigner
from edge.printer.text import BOLD_FONT, FONT_DIR, REGULAR_FONT, wrap_text

__all__ = [
    "BASE_WIDTH",
    "BLACK",
    "BOLD_FONT",
    "FONT_DIR",
    "KINDS",
    "MAX_WIDTH",
    "MIN_WIDTH",
    "QR_MIN_DOTS",
    "QR_MIN_DOTS_PER_MODULE",
    "QR_QUIET_MODULES",
    "REGULAR_FONT",
    "TITLE",
    "WHITE",
    "LabelDataError",
    "LayoutError",
    "PayloadSigner",
    "format_dong",
    "format_local_time",
    "format_weight",
    "label_blocks",
    "parse_label_data",
    "qr_image",
    "render_label",
    "short_lot_id",
    "wrap_text",
]

TITLE = "PHIẾU LÔ HÀNG"
COPY_MARK = "BẢN SAO"


def label_blocks(
    kind: str,
    data: LabelData | Mapping[str, Any] | str | bytes,
    *,
    signer: PayloadSigner | None = None,
    tz: tzinfo | None = None,
) -> list[Block]:
    """The blocks of one label: ``data`` is the kind's model, a mapping or JSON text
    (validated: :class:`LabelDataError` names each bad field). Kinds with a QR code
    (lot, shipping, manifest) need ``signer`` (the site id and key)."""
    spec = kind_spec(kind)
    model = data if isinstance(data, spec.model) else parse_label_data(kind, data)  # type: ignore[arg-type]
    qr = None
    if spec.payload is not None:
        if signer is None:
            raise ValueError(
                f"a {kind} label carries a signed QR code: pass signer=PayloadSigner(site, key)"
            )
        qr = signer.sign(*spec.payload(model))
    blocks = spec.blocks(model, qr, tz)
    # a reprint of a label that had printed: said first, in large type
    if getattr(model, "is_copy", False):
        blocks = [Title(COPY_MARK), Rule(thickness=3), *blocks]
    return blocks


def render_label(
    kind: str,
    data: LabelData | Mapping[str, Any] | str | bytes,
    width_dots: int = BASE_WIDTH,
    *,
    signer: PayloadSigner | None = None,
    tz: tzinfo | None = None,
) -> Image.Image:
    """One label as a mode "1" image exactly ``width_dots`` wide (384 for 58 mm paper, 576
    for 80 mm, 800 for 100 x 150 mm labels), as tall as needed (on label stock, laid out to
    fit one label where it can: edge.printer.layout.fitted). ``tz``: the zone for printed
    times (the site's zone; None = the system's local zone). Raises LabelDataError (bad
    data), LayoutError (a width or content that cannot be printed) or ValueError (no
    signer for a QR kind)."""
    return render_blocks(label_blocks(kind, data, signer=signer, tz=tz), width_dots)
