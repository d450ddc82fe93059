"""Grading a tray photo: measure it, then grade it by the product's rules or a model.

- :mod:`.measure` (pure measurement) and :mod:`.quality` (photo checks):
  ``assess(bgr)`` returns a :class:`TrayMeasurement` (items with sizes in mm from the
  ArUco marker, or in pixels without it; ``.lot(weight_g)`` for flat lot figures) or
  a :class:`Declined` with a reason code and messages.
- :mod:`.rules`: ``edge/defaults/grading/<product>.toml`` thresholds → grade.
- :mod:`.features` and :mod:`.model`: the learned option a cooperative calibrates.
- :mod:`.grade`: ``grade_photo(bgr, product, rules_dir=...)`` → :class:`Graded` or
  :class:`Declined`; a caller's mistake raises :class:`GradingError`.
"""

from edge.camera.grading.grade import Graded, GradingError, grade_photo, grade_work
from edge.camera.grading.measure import (
    Item,
    Marker,
    TrayMeasurement,
    WorkImage,
    decode_jpeg,
    lot_summary,
    measure_tray,
)
from edge.camera.grading.model import Model, ModelError
from edge.camera.grading.quality import Declined, Reason, assess, check_photo
from edge.camera.grading.rules import Decision, Rules, RulesError, load_rules, products

__all__ = [
    "Decision",
    "Declined",
    "Graded",
    "GradingError",
    "Item",
    "Marker",
    "Model",
    "ModelError",
    "Reason",
    "Rules",
    "RulesError",
    "TrayMeasurement",
    "WorkImage",
    "assess",
    "check_photo",
    "decode_jpeg",
    "grade_photo",
    "grade_work",
    "load_rules",
    "lot_summary",
    "measure_tray",
    "products",
]
