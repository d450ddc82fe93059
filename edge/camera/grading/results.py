"""What a tray photo measured: the marker, the items and the lot, as plain values.

Sizes are in ``unit`` (``mm`` with the marker, else photo pixels); shares are
fractions (0..1). Colours are CIE L*a*b* (L 0..100, a/b signed) and HSV (hue in
degrees 0..360, saturation and value 0..1). Coordinates (centres, outlines, marker
corners) are always pixels of the original photo, also when it was rectified.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

import numpy as np

ScaleSource = Literal["aruco", "pixels"]
Polygon = tuple[tuple[int, int], ...]  # closed polygon, photo pixels
COLOUR_CLASSES = ("yellow", "green", "brown", "red", "pale", "other")


@dataclass(frozen=True)
class Marker:
    """The ArUco marker found on the tray, corners in photo pixels.

    Its four corners (top-left, top-right, bottom-right, bottom-left of the marker)
    give the tray plane's homography, so an oblique view of it is fine. ``square`` is
    False when it cannot be trusted: partly covered (its white surround is not white
    all round), or an implausible shape (not convex, or seen more obliquely than
    MAX_TILT_DEG); such a marker is still kept out of the items but gives no scale.
    """

    corners: tuple[tuple[float, float], ...]
    side_px: float  # mean side in photo pixels
    px_per_mm: float | None  # side_px / marker_mm; None without a size or when not square
    square: bool  # usable: uncovered and a plausible view of a square


@dataclass(frozen=True)
class Item:
    """One item's measurements; sizes in ``unit`` (``mm`` with a marker, else ``px``)."""

    index: int
    unit: Literal["mm", "px"]
    length: float  # extent along the principal (long) axis of the outline
    width: float  # extent across it
    area: float  # mm² or px²
    centre_px: tuple[float, float]  # photo pixels
    colour_class: str
    lab: tuple[float, float, float]  # mean L*, a*, b* of the sound (non-defect) area
    hue_deg: float  # median hue of the sound area
    saturation: float
    value: float
    dark_share: float  # dark spots, rot
    green_share: float  # greening (always 0 for a green item)
    defect_share: float
    elongation: float  # length / width
    solidity: float  # area / convex hull area
    circularity: float  # 4πA / P²
    at_edge: bool  # touches the photo's border: partly out of view, sizes too small
    outline: Polygon = ()  # the item's outline, simplified to about a pixel
    defect_outlines: tuple[Polygon, ...] = ()  # dark-spot, rot and greening regions


@dataclass(frozen=True)
class TrayMeasurement:
    """What a photo measured: the items, the scale and the estimated tray colour."""

    items: tuple[Item, ...]
    scale_source: ScaleSource
    # Pixels per mm that sizes were measured at: the marker's in the photo, or, when
    # the photo was rectified, the rectified view's (photo resolution at its centre).
    px_per_mm: float | None
    marker: Marker | None
    tray_bgr: tuple[float, float, float]  # median tray colour before normalisation
    tray_share: float  # share of the photo that looked like tray
    # Colours are true colours when the marker's white surround served as the white
    # reference ("marker_white"); otherwise the tray is taken to be neutral grey ("tray").
    colour_reference: Literal["marker_white", "tray"]
    image_size: tuple[int, int]  # width, height of the photo
    # The photo was warped to a square-on view of the tray before measuring, because
    # the marker showed it was taken at an angle (see perspective.py).
    rectified: bool = False
    # The camera's tilt from the tray's vertical, estimated from the marker (reads up
    # to about 3° on a square-on photo); None without a usable marker.
    tilt_deg: float | None = None

    @property
    def unit(self) -> Literal["mm", "px"]:
        return "mm" if self.scale_source == "aruco" else "px"

    def lot(self, weight_g: int | None = None) -> dict[str, float]:
        """Flat named measurements of the lot, for threshold rules (see :func:`lot_summary`)."""
        return lot_summary(self, weight_g)


def lot_summary(m: TrayMeasurement, weight_g: int | None = None) -> dict[str, float]:
    """Item count, count per kg, size spread and colour-class shares as one flat dict.

    Keys: ``item_count``; ``weight_g`` and ``count_per_kg`` (only with a positive
    ``weight_g``); ``{length,width}_{mm|px}_{mean,min,max,cv}`` and
    ``area_{mm|px}2_{mean,min,max,cv}`` (with items); ``defect_share_{mean,max}``,
    ``dark_share_mean``, ``green_share_mean``, ``elongation_mean``, ``solidity_min``,
    ``items_at_edge`` (with items); ``colour_share_<class>`` for every class in
    COLOUR_CLASSES. Size keys carry their unit, so a rule written in millimetres cannot
    silently compare pixels. Spreads (``_cv``) are std / mean; shares are 0..1.
    """
    u = m.unit
    items = m.items
    out: dict[str, float] = {"item_count": float(len(items))}
    if weight_g is not None and weight_g > 0:
        per_kg = Decimal(len(items)) * 1000 / Decimal(weight_g)
        out["weight_g"] = float(weight_g)
        out["count_per_kg"] = float(per_kg.quantize(Decimal("0.01"), ROUND_HALF_EVEN))
    for name, values in (
        (f"length_{u}", [i.length for i in items]),
        (f"width_{u}", [i.width for i in items]),
        (f"area_{u}2", [i.area for i in items]),
    ):
        arr = np.asarray(values, dtype=np.float64)
        if arr.size:
            mean = float(arr.mean())
            out[f"{name}_mean"] = mean
            out[f"{name}_min"] = float(arr.min())
            out[f"{name}_max"] = float(arr.max())
            out[f"{name}_cv"] = float(arr.std() / mean) if mean > 0 else 0.0
    if items:
        out["defect_share_mean"] = float(np.mean([i.defect_share for i in items]))
        out["defect_share_max"] = max(i.defect_share for i in items)
        out["dark_share_mean"] = float(np.mean([i.dark_share for i in items]))
        out["green_share_mean"] = float(np.mean([i.green_share for i in items]))
        out["elongation_mean"] = float(np.mean([i.elongation for i in items]))
        out["solidity_min"] = min(i.solidity for i in items)
        out["items_at_edge"] = float(sum(1 for i in items if i.at_edge))
    for cls in COLOUR_CLASSES:
        n = sum(1 for i in items if i.colour_class == cls)
        out[f"colour_share_{cls}"] = n / len(items) if items else 0.0
    return out
