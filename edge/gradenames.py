"""Grade names as staff read them, on the page, on paper and in photo captions.

A product's grades are keys ("A", "B", "C", "reject"; or a calibrated model's classes).
The last of the shipped rules is "reject": it is named "Loại bỏ" ("Reject"), never
plain "Loại", which staff read as a grade ("Loại 1" is the best grade on a receipt).
"""

from __future__ import annotations

from typing import Literal

REJECT = "reject"
REJECT_VI = "Loại bỏ"
REJECT_EN = "Reject"

Lang = Literal["vi", "en"]


def grade_label(grade: str, lang: Lang = "vi") -> str:
    """ "Hạng A" / "Grade A"; the reject grade "Loại bỏ" / "Reject"."""
    if grade == REJECT:
        return REJECT_VI if lang == "vi" else REJECT_EN
    return f"Hạng {grade}" if lang == "vi" else f"Grade {grade}"


def printed_grade(grade: str) -> str:
    """A grade as a label or receipt prints it after the product: the reject key in
    words, any other name (the station's "A", a cooperative's "Loại 1") as given."""
    return REJECT_VI if grade == REJECT else grade
