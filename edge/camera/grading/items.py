"""Measure one segmented item: size, colour, defects, shape, and its outlines.

The item is measured on the view's image (see perspective.py); its centre and outlines
are mapped back to photo pixels through the view's homography.
"""

from __future__ import annotations

import math
from typing import Literal, cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading.image import Contour, Image, transform
from edge.camera.grading.normalise import TRAY_TARGET, Field
from edge.camera.grading.perspective import View
from edge.camera.grading.results import Item, Polygon

DARK_SPOT_RATIO = 0.6  # a pixel darker than this times the item's median L* is a dark spot
OUTLINE_TOLERANCE = 0.7  # work pixels an outline may stray from the item's edge
MIN_DEFECT_OUTLINE_PX = 4  # smaller defect specks are counted but not outlined

# (image, tray field, white-balance gains) when colours can be made true.
Balance = tuple[Image, Field, npt.NDArray[np.float32]]


def colour_class(hue_deg: float, sat: float, val: float) -> str:
    """Name an item's colour from its median hue (degrees), saturation and value (0..1)."""
    if sat < 0.2:
        return "pale"
    if 70 <= hue_deg < 180:
        return "green"
    if 40 <= hue_deg < 70:
        return "yellow" if val >= 0.5 else "brown"  # dark yellow reads as brown
    if hue_deg < 40 or hue_deg >= 320:
        reddish = hue_deg < 15 or hue_deg >= 320
        return "red" if reddish and sat > 0.6 and val > 0.6 else "brown"
    return "other"


def measure_item(
    index: int,
    contour: Contour,
    view: View,
    norm: Image,
    unit: Literal["mm", "px"],
    balance: Balance | None,
    score: Image | None = None,
) -> Item:
    """Measure one item; ``balance`` is given when the colours can be corrected to true
    ones (from the unclipped image, not ``norm``); with the item ``score`` image
    (segment.item_score) the item's extremes are located to a fraction of a pixel."""
    x, y, w, h = cv2.boundingRect(contour)
    crop = norm[y : y + h, x : x + w]
    if balance is not None:
        small, fld, gains = balance
        true = small[y : y + h, x : x + w] * (gains * TRAY_TARGET / fld[y : y + h, x : x + w])
        crop = cast(Image, cv2.convertScaleAbs(true))
    mask = np.zeros((h, w), np.uint8)
    cv2.drawContours(mask, [contour - np.array([x, y], np.int32)], -1, 255, cv2.FILLED)
    inside = mask > 0
    # Only the item's own pixels are converted, as one row (the same per pixel; a column
    # of one-pixel rows is slow: OpenCV splits its work by rows).
    px = np.ascontiguousarray(crop[inside]).reshape(1, -1, 3)
    lab = cast(Image, cv2.cvtColor(px, cv2.COLOR_BGR2Lab)).reshape(-1, 3)
    hsv = cast(Image, cv2.cvtColor(px, cv2.COLOR_BGR2HSV_FULL)).reshape(-1, 3)
    n = max(int(inside.sum()), 1)
    dark = lab[:, 0] < DARK_SPOT_RATIO * _median_u8(lab[:, 0])
    sound = ~dark
    if not sound.any():
        sound = np.ones_like(dark)
    hue = hsv[:, 0]  # 0..255 for 0..360 degrees
    med_hue = _circular_median_hue(hue[sound])
    med_sat = _median_u8(hsv[sound, 1]) / 255.0
    med_val = _median_u8(hsv[sound, 2]) / 255.0
    cls = colour_class(med_hue, med_sat, med_val)
    greenish = sound & (hue >= 50) & (hue < 128) & (hsv[:, 1] > 64)  # 70..180 degrees
    if cls == "green":
        greenish[:] = False
    green_share = float(greenish.sum()) / n
    dark_share = float(dark.sum()) / n
    mean_lab = np.ascontiguousarray(lab[sound].T).mean(axis=1, dtype=np.float64)
    scale = view.px_per_unit
    level = None
    if score is not None:  # segment.segment's level: half the item's median score
        level = 0.5 * _median_u8(score[y : y + h, x : x + w][inside])
    length_px, width_px = _principal_extents(contour, score, level)
    hull_area = max(cv2.contourArea(cv2.convexHull(contour)), 1.0)
    perimeter = max(cv2.arcLength(contour, True), 1.0)
    moments = cv2.moments(contour)
    m00 = max(moments["m00"], 1e-9)
    centre = transform(view.to_photo, (moments["m10"] / m00, moments["m01"] / m00))[0]
    defects = np.zeros((h, w), np.uint8)
    defects[inside] = (dark | greenish).astype(np.uint8)
    return Item(
        index=index,
        unit=unit,
        length=length_px / scale,
        width=width_px / scale,
        area=n / (scale * scale),
        centre_px=(float(centre[0]), float(centre[1])),
        colour_class=cls,
        lab=(
            float(mean_lab[0]) * 100.0 / 255.0,
            float(mean_lab[1]) - 128.0,
            float(mean_lab[2]) - 128.0,
        ),
        hue_deg=med_hue,
        saturation=med_sat,
        value=med_val,
        dark_share=dark_share,
        green_share=green_share,
        defect_share=dark_share + green_share,
        elongation=length_px / max(width_px, 1e-9),
        solidity=min(float(inside.sum()) / hull_area, 1.0),
        circularity=min(4 * math.pi * float(inside.sum()) / (perimeter * perimeter), 1.0),
        at_edge=_at_edge(view, (x, y, w, h), mask),
        outline=_polygon(view, contour),
        defect_outlines=_defect_outlines(view, defects, (x, y)),
    )


def _at_edge(view: View, box: tuple[int, int, int, int], mask: npt.NDArray[np.uint8]) -> bool:
    """Whether the item touches the border of the photo (or of its rectified footprint)."""
    x, y, w, h = box
    ih, iw = view.small.shape[:2]
    if x <= 0 or y <= 0 or x + w >= iw or y + h >= ih:
        return True
    if view.valid is None:
        return False
    # Outside the photo within two pixels of the item: it runs out of view.
    x0, y0, x1, y1 = max(x - 2, 0), max(y - 2, 0), min(x + w + 2, iw), min(y + h + 2, ih)
    grown = np.zeros((y1 - y0, x1 - x0), np.uint8)
    grown[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = mask
    grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    return bool(np.any((grown > 0) & (view.valid[y0:y1, x0:x1] == 0)))


def _polygon(view: View, contour: Contour, offset: tuple[int, int] = (0, 0)) -> Polygon:
    """A contour (view pixels), simplified, as a polygon in photo pixels."""
    approx = cv2.approxPolyDP(contour, OUTLINE_TOLERANCE, True).reshape(-1, 2)
    pts = transform(view.to_photo, approx + np.asarray(offset))
    return tuple((x, y) for x, y in np.rint(pts).astype(int).tolist())


def _defect_outlines(
    view: View, defects: npt.NDArray[np.uint8], origin: tuple[int, int]
) -> tuple[Polygon, ...]:
    """Outlines (photo pixels) of the connected defect regions of an item's crop at
    ``origin``; specks under MIN_DEFECT_OUTLINE_PX pixels are left out."""
    found, _ = cv2.findContours(defects, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in found:
        if cv2.contourArea(c) + 0.5 * cv2.arcLength(c, True) + 1 >= MIN_DEFECT_OUTLINE_PX:
            out.append(_polygon(view, cast(Contour, c), origin))
    return tuple(out)


def _principal_extents(
    contour: Contour, score: Image | None = None, level: float | None = None
) -> tuple[float, float]:
    """Extent along the contour's principal (long) axis and across it, in pixels.

    The contour runs through the centres of the item's outermost pixels; the item's
    edge lies beyond each extreme one, where ``score`` falls through ``level`` between
    that pixel and the next one out (half a pixel without them).
    """
    m = cv2.moments(contour)
    theta = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])
    pts = contour.reshape(-1, 2).astype(np.float64)
    extents = []
    for axis in (
        np.array([math.cos(theta), math.sin(theta)]),
        np.array([-math.sin(theta), math.cos(theta)]),
    ):
        proj = pts @ axis
        hi, lo = int(np.argmax(proj)), int(np.argmin(proj))
        extent = float(proj[hi] - proj[lo])
        if score is None or level is None:
            extent += 1.0
        else:
            extent += _edge_gap(score, pts[hi], axis, level) + _edge_gap(
                score, pts[lo], -axis, level
            )
        extents.append(extent)
    return max(extents), min(extents)


def _edge_gap(
    score: Image, p: npt.NDArray[np.float64], d: npt.NDArray[np.float64], level: float
) -> float:
    """How far beyond pixel centre ``p``, along ``d``, the score crosses ``level``
    (0..1 pixel; half a pixel when it does not cross there)."""
    inner = _sample(score, p)
    outer = _sample(score, p + d)
    if not inner > level > outer:
        return 0.5
    return (inner - level) / (inner - outer)


def _sample(img: Image, p: npt.NDArray[np.float64]) -> float:
    """Bilinear sample of a single-channel image (edges clamped)."""
    h, w = img.shape[:2]
    x = min(max(float(p[0]), 0.0), w - 1.0)
    y = min(max(float(p[1]), 0.0), h - 1.0)
    x0, y0 = int(x), int(y)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = float(img[y0, x0]) * (1 - fx) + float(img[y0, x1]) * fx
    bottom = float(img[y1, x0]) * (1 - fx) + float(img[y1, x1]) * fx
    return float(top * (1 - fy) + bottom * fy)


def _median_u8(values: npt.NDArray[np.uint8]) -> float:
    """Median of 8-bit values by histogram (no sort)."""
    if values.size == 0:
        return 0.0
    cum = np.cumsum(np.bincount(values, minlength=256))
    return float(np.searchsorted(cum, (values.size + 1) // 2))


def _circular_median_hue(hue: npt.NDArray[np.uint8]) -> float:
    """Median hue in degrees of 8-bit hues (0..255 for 0..360), taken around the circular
    mean so that reds either side of 0 do not split."""
    if hue.size == 0:
        return 0.0
    counts = np.bincount(hue, minlength=256).astype(np.float64)
    ang = np.arange(256) * (2 * math.pi / 256)
    mean = math.atan2(float(counts @ np.sin(ang)), float(counts @ np.cos(ang)))
    start = round(mean / (2 * math.pi) * 256) - 128  # the histogram bin opposite the mean
    rolled = np.roll(counts, -start)
    idx = int(np.searchsorted(np.cumsum(rolled), (hue.size + 1) // 2))
    return float(((idx + start) % 256) * 360.0 / 256.0)
