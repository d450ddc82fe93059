"""Grading a tray photo: pure measurement (:mod:`.measure`) and photo checks (:mod:`.quality`).

``assess(bgr)`` returns a :class:`TrayMeasurement` (items with sizes in mm from the
ArUco marker, or in pixels without it; ``.lot(weight_g)`` for flat lot figures) or
a :class:`Declined` with a reason code and messages. No grade rules here.
"""

from edge.camera.grading.measure import (
    Item,
    Marker,
    TrayMeasurement,
    WorkImage,
    decode_jpeg,
    lot_summary,
    measure_tray,
)
from edge.camera.grading.quality import Declined, Reason, assess, check_photo

__all__ = [
    "Declined",
    "Item",
    "Marker",
    "Reason",
    "TrayMeasurement",
    "WorkImage",
    "assess",
    "check_photo",
    "decode_jpeg",
    "lot_summary",
    "measure_tray",
]
