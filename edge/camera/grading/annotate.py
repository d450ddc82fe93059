"""Draw what grading measured onto the photo, for the staff page and the farmer.

:func:`annotate` is pure: it returns a new image and leaves the photo alone. Each
item's outline is drawn with its number (``Item.index + 1``) and size; dark-spot, rot
and greening regions are tinted red; the size marker is outlined (blue when it gave
the scale, red when it was covered or implausible); items cut off by the photo's
border are outlined in amber. A caption, when given, goes in a band below the photo,
drawn with the bundled DejaVu Sans so Vietnamese diacritics render (OpenCV's own text
cannot draw them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image as PilImage
from PIL import ImageDraw

from edge.camera.grading.image import Image
from edge.camera.grading.results import Item, Polygon, TrayMeasurement
from edge.printer.text import font, nfc

ITEM_BGR = (255, 200, 0)  # cyan-blue: an item
EDGE_ITEM_BGR = (0, 190, 255)  # amber: an item partly out of view
DEFECT_BGR = (40, 40, 230)  # red: defects
MARKER_BGR = (255, 80, 0)  # blue: the marker that gave the scale
BAD_MARKER_BGR = (0, 0, 255)  # red: a marker that gave no scale
DEFECT_ALPHA = 0.45
BAND_BGR = (32, 32, 32)
CAPTION_RGB = (255, 255, 255)
LABEL_BG_ALPHA = 0.6
MAX_CAPTION_LINES = 3


def annotate(photo: npt.NDArray[Any], m: TrayMeasurement, caption: str | None = None) -> Image:
    """The photo with the measurement drawn on it (BGR ``uint8``).

    ``m`` must have been measured on this photo (its coordinates are the photo's
    pixels). With a ``caption`` the result is taller than the photo by a band below
    it holding the caption, wrapped (up to MAX_CAPTION_LINES lines).
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError("expected a BGR uint8 image")
    h, w = photo.shape[:2]
    if (w, h) != m.image_size:
        raise ValueError(
            f"the photo is {w}x{h} but the measurement is of a "
            f"{m.image_size[0]}x{m.image_size[1]} photo: annotate the photo that was measured"
        )
    out = cast(Image, photo.copy())
    line = max(2, round(max(w, h) / 640))
    _tint_defects(out, [d for i in m.items for d in i.defect_outlines])
    for item in m.items:
        colour = EDGE_ITEM_BGR if item.at_edge else ITEM_BGR
        if len(item.outline) >= 2:
            cv2.polylines(out, [_pts(item.outline)], True, colour, line, cv2.LINE_AA)
    if m.marker is not None:
        colour = MARKER_BGR if m.marker.px_per_mm else BAD_MARKER_BGR
        quad = np.round(np.asarray(m.marker.corners)).astype(np.int32)
        cv2.polylines(out, [quad], True, colour, line, cv2.LINE_AA)
    out = _labels(out, m.items, size=max(14, round(h / 40)))
    if caption:
        out = _with_caption(out, caption)
    return out


def _pts(poly: Polygon) -> npt.NDArray[np.int32]:
    return np.asarray(poly, np.int32).reshape(-1, 1, 2)


def _tint_defects(img: Image, polygons: Sequence[Polygon]) -> None:
    """Blend DEFECT_BGR over the defect regions and outline them."""
    if not polygons:
        return
    mask = np.zeros(img.shape[:2], np.uint8)
    shapes = [_pts(p) for p in polygons if len(p) >= 1]
    cv2.fillPoly(mask, shapes, 255)
    cv2.polylines(mask, shapes, True, 255, 1)  # specks of a pixel or two stay visible
    inside = mask > 0
    tint = np.array(DEFECT_BGR, np.float32)
    img[inside] = (img[inside] * (1 - DEFECT_ALPHA) + tint * DEFECT_ALPHA).astype(np.uint8)
    cv2.polylines(img, shapes, True, DEFECT_BGR, 1, cv2.LINE_AA)


def _label_text(item: Item) -> str:
    return f"{item.index + 1}: {item.length:.0f}×{item.width:.0f} {item.unit}"


def _labels(img: Image, items: Sequence[Item], size: int) -> Image:
    """Each item's number and size, on a dark box just above its outline."""
    if not items:
        return img
    f = font(True, size)
    h, w = img.shape[:2]
    boxes = []
    for item in items:
        text = _label_text(item)
        left, top, right, bottom = f.getbbox(text)
        tw, th = right - left, bottom - top
        pad = max(2, size // 5)
        ys = [p[1] for p in item.outline] or [round(item.centre_px[1])]
        x = round(item.centre_px[0] - tw / 2)
        y = min(ys) - th - 3 * pad
        if y < 0:  # no room above: inside the item, at its centre
            y = round(item.centre_px[1] - th / 2)
        x = min(max(x, pad), max(w - tw - pad, pad))
        y = min(max(y, pad), max(h - th - pad, pad))
        boxes.append((text, x, y, tw, th, pad, left, top))
    shade = img.copy()
    for _, x, y, tw, th, pad, _, _ in boxes:
        cv2.rectangle(shade, (x - pad, y - pad), (x + tw + pad, y + th + pad), (0, 0, 0), -1)
    img = cast(Image, cv2.addWeighted(shade, LABEL_BG_ALPHA, img, 1 - LABEL_BG_ALPHA, 0))
    pil = PilImage.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(pil)
    for text, x, y, _, _, _, left, top in boxes:
        draw.text((x - left, y - top), text, font=f, fill=(255, 255, 255))
    return cast(Image, cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR))


def _with_caption(img: Image, caption: str) -> Image:
    """The image with a band below it holding ``caption`` (NFC, wrapped by ink width)."""
    w = img.shape[1]
    size = max(16, round(w / 40))
    f = font(False, size)
    margin = size // 2
    lines = _wrap(nfc(caption), f, w - 2 * margin)
    ascent, descent = f.getmetrics()
    line_h = ascent + descent
    band_h = len(lines) * line_h + 2 * margin
    band = PilImage.new("RGB", (w, band_h), BAND_BGR[::-1])
    draw = ImageDraw.Draw(band)
    for n, text in enumerate(lines):
        draw.text((margin, margin + n * line_h), text, font=f, fill=CAPTION_RGB)
    band_bgr = cv2.cvtColor(np.asarray(band), cv2.COLOR_RGB2BGR)
    return cast(Image, np.vstack([img, band_bgr]))


def _wrap(text: str, f: Any, width: int) -> list[str]:
    """Greedy word wrap by ink width; the last allowed line ends in an ellipsis if cut."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        trial = f"{current} {word}" if current else word
        if f.getlength(trial) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    lines.append(current)
    if len(lines) > MAX_CAPTION_LINES:
        lines = lines[:MAX_CAPTION_LINES]
        last = lines[-1]
        while last and f.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    for n, text_line in enumerate(lines):  # a single word wider than the band
        while len(text_line) > 1 and f.getlength(text_line) > width:
            text_line = text_line[:-2] + "…"
        lines[n] = text_line
    return lines
