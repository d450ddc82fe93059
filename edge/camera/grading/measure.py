"""Pure measurement of a tray photo: find the marker, choose the view (rectified when the
photo is oblique), normalise, segment, and measure the items and the lot.

Everything here is a function of the image (a BGR ``uint8`` array) and a few numbers;
no camera, no files. The stages live in their own modules:

- image.py: the photo and its half-resolution work image, JPEG decoding
- perspective.py: the ArUco marker, the tray plane's homography, the rectified view
- normalise.py: flat light, neutral tray, true colours from the marker's white surround
- segment.py: items on the tray, touching items split
- items.py: one item's size, colour, defects, shape and outlines
- results.py: the result types and the flat lot summary for rules

This module keeps the public names of all of them.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy.typing as npt

from edge.camera.grading.image import (
    WORK_SCALE,
    Contour,
    Image,
    WorkImage,
    decode_jpeg,
    transform,
)
from edge.camera.grading.items import DARK_SPOT_RATIO, colour_class, measure_item
from edge.camera.grading.normalise import (
    TRAY_TARGET,
    WHITE_TARGET,
    flatten,
    normalise,
    tray_colour,
    tray_field,
    white_balance,
)
from edge.camera.grading.perspective import (
    MARKER_DICT,
    MARKER_ID,
    View,
    find_marker,
    plan_view,
)
from edge.camera.grading.results import (
    COLOUR_CLASSES,
    Item,
    Marker,
    ScaleSource,
    TrayMeasurement,
    lot_summary,
)
from edge.camera.grading.segment import exclusion, item_score, segment, split_touching

__all__ = [
    "COLOUR_CLASSES",
    "DARK_SPOT_RATIO",
    "MARKER_DICT",
    "MARKER_ID",
    "TRAY_TARGET",
    "WHITE_TARGET",
    "WORK_SCALE",
    "Image",
    "Item",
    "Marker",
    "ScaleSource",
    "TrayMeasurement",
    "View",
    "WorkImage",
    "colour_class",
    "decode_jpeg",
    "find_marker",
    "item_score",
    "lot_summary",
    "measure_tray",
    "normalise",
    "plan_view",
    "segment",
    "split_touching",
    "tray_field",
    "white_balance",
]


def measure_tray(
    photo: npt.NDArray[Any] | WorkImage, marker_mm: float | None = 40.0
) -> TrayMeasurement:
    """Measure every item on a tray photo (BGR).

    With ``marker_mm`` and the marker in view, sizes are millimetres and
    ``scale_source`` is ``"aruco"``; otherwise they are full-resolution pixels and
    ``scale_source`` is ``"pixels"``. A photo taken at an angle is rectified first
    (``rectified``), so millimetres hold anywhere on the tray. The marker and its white
    surround are never items.
    """
    work = photo if isinstance(photo, WorkImage) else WorkImage.of(photo)
    marker = find_marker(work, marker_mm)
    view = plan_view(work, marker, marker_mm)
    fld, low, tray_share = tray_field(view.small, view.valid)
    norm = flatten(view.small, fld)
    quad = view.marker_quad
    gains = white_balance(view.small, fld, quad) if quad is not None else None
    score = item_score(norm)
    contours = segment(score, exclusion(norm.shape[:2], quad, view.valid))
    contours.sort(key=lambda c: _reading_order(view, c))
    px_per_mm = view.px_per_mm
    unit: Literal["mm", "px"] = "mm" if px_per_mm else "px"
    balance = (view.small, fld, gains) if gains is not None else None
    items = tuple(
        measure_item(i, c, view, norm, unit, balance, score) for i, c in enumerate(contours)
    )
    h, w = work.full.shape[:2]
    tray = tray_colour(low, view.valid)
    return TrayMeasurement(
        items=items,
        scale_source="aruco" if px_per_mm else "pixels",
        px_per_mm=px_per_mm,
        marker=marker,
        tray_bgr=tray,
        tray_share=tray_share,
        colour_reference="marker_white" if gains is not None else "tray",
        image_size=(w, h),
        rectified=view.rectified,
        tilt_deg=view.tilt_deg,
    )


def _reading_order(view: View, contour: Contour) -> tuple[float, float]:
    """Top, then left, of the item's bounding box in the photo."""
    if not view.rectified:
        x, y, _, _ = cv2.boundingRect(contour)
        return float(y), float(x)
    pts = transform(view.to_photo, contour.reshape(-1, 2))
    top = pts.min(axis=0)
    return float(top[1]), float(top[0])
