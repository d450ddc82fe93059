"""Grade reasons the way staff read them: at most three, the deciding one first, in
percentages, centimetres and kilograms with Vietnamese number formatting (comma
decimals, dot thousands: "đốm thâm 6,7 % (giới hạn 15 %)"), and the same in English
("dark spots 6.7 % (limit 15 %)").

The full comparisons (:class:`~edge.camera.grading.rules.Decision`, raw ratios, every
condition) stay in the stored grade detail for technicians; these are what the page
shows. Everything here is pure: decisions in, sentences out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edge.camera.grading.rules import Decision
from edge.gradenames import grade_label

Lang = Literal["vi", "en"]
MAX_REASONS = 3
NBSP = "\u00a0"  # between a number and its unit: "15 %" never breaks across lines
DEFAULT_NOUN = ("quả/củ", "items")

# How a measurement is shown: multiply by, decimals, unit (after a space; "" for none).
_PERCENT = (100.0, 1, "%")
_CM = (0.1, 1, "cm")
_CM2 = (0.01, 0, "cm²")
_KG = (0.001, 3, "kg")
_COUNT = (1.0, 0, "")
_RATIO = (1.0, 1, "")

_COLOUR = {
    "yellow": ("vàng", "yellow"),
    "green": ("xanh", "green"),
    "brown": ("nâu", "brown"),
    "red": ("đỏ", "red"),
    "pale": ("nhạt màu", "pale"),
    "other": ("màu khác", "odd-coloured"),
}
_SIZE = {  # (vi, en) per statistic
    "length_mm": {
        "min": ("{n} ngắn nhất", "shortest {n}"),
        "max": ("{n} dài nhất", "longest {n}"),
        "mean": ("chiều dài trung bình", "mean length"),
        "cv": ("chênh lệch chiều dài", "length spread"),
    },
    "width_mm": {
        "min": ("bề ngang nhỏ nhất", "narrowest"),
        "max": ("bề ngang lớn nhất", "widest"),
        "mean": ("bề ngang trung bình", "mean width"),
        "cv": ("chênh lệch bề ngang", "width spread"),
    },
    "area_mm2": {
        "min": ("diện tích nhỏ nhất", "smallest area"),
        "max": ("diện tích lớn nhất", "largest area"),
        "mean": ("diện tích trung bình", "mean area"),
        "cv": ("chênh lệch kích cỡ", "size spread"),
    },
}
_PLAIN: dict[str, tuple[str, str, tuple[float, int, str]]] = {
    "defect_share_mean": ("vết hỏng trung bình", "mean defects", _PERCENT),
    "defect_share_max": ("vết hỏng nhiều nhất", "worst defects", _PERCENT),
    "dark_share_mean": ("đốm thâm", "dark spots", _PERCENT),
    "green_share_mean": ("vỏ xanh", "greening", _PERCENT),
    "elongation_mean": ("độ thuôn", "elongation", _RATIO),
    "solidity_min": ("hình dạng nguyên vẹn", "shape intact", _PERCENT),
    "weight_g": ("khối lượng lô", "lot weight", _KG),
}
# The bound in words: a held condition of the grade given, a failed one of a better grade.
_HELD = {
    "<=": ("giới hạn", "limit"),
    "<": ("phải dưới", "must be below"),
    ">=": ("tối thiểu", "at least"),
    ">": ("phải trên", "must be above"),
}
_NEEDS = {
    "<=": ("tối đa", "at most"),
    "<": ("dưới", "below"),
    ">=": ("tối thiểu", "at least"),
    ">": ("trên", "above"),
}


def format_number(x: float, lang: Lang, decimals: int) -> str:
    """``x`` with at most ``decimals`` decimals (trailing zeros dropped), grouped in
    thousands: "1.234,5" in Vietnamese, "1,234.5" in English."""
    text = f"{abs(x):,.{max(decimals, 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if x < 0 and text.strip("0.,"):
        text = "−" + text
    return text.translate(str.maketrans(",.", ".,")) if lang == "vi" else text


def _unit(key: str) -> tuple[float, int, str]:
    if key in _PLAIN:
        return _PLAIN[key][2]
    if key.startswith("colour_share_"):
        return _PERCENT
    name, _, stat = key.rpartition("_")
    if name in _SIZE:
        if stat == "cv":
            return _PERCENT
        return _CM2 if name == "area_mm2" else _CM
    if key == "count_per_kg":
        return _RATIO
    return _COUNT  # item_count, items_at_edge


def measurement_name(key: str, noun: tuple[str, str] = DEFAULT_NOUN) -> tuple[str, str]:
    """A rule key as staff say it (Vietnamese, English): "đốm thâm", "quả nâu"."""
    nv, ne = noun
    if key in _PLAIN:
        return _PLAIN[key][0], _PLAIN[key][1]
    if key.startswith("colour_share_"):
        cv, ce = _COLOUR.get(key.removeprefix("colour_share_"), (key, key))
        return f"{nv} {cv}", f"{ce} {ne}"
    name, _, stat = key.rpartition("_")
    if name in _SIZE and stat in _SIZE[name]:
        sv, se = _SIZE[name][stat]
        return sv.format(n=nv), se.format(n=ne)
    return {
        "item_count": (f"số {nv}", f"{ne} counted"),
        "count_per_kg": (f"số {nv}/kg", f"{ne} per kg"),
        "items_at_edge": (f"{nv} bị cắt ở mép ảnh", f"{ne} cut by the photo's edge"),
    }.get(key, (key, key))


def quantity_pair(key: str, value: float, threshold: float, lang: Lang) -> tuple[str, str]:
    """The measured value and the threshold with their unit ("6,7 %", "15 %", joined by a
    no-break space), with
    enough decimals that two different numbers never read the same (2,04 % vs 2 %)."""
    scale, decimals, unit = _unit(key)
    v, t = value * scale, threshold * scale
    for d in range(decimals, decimals + 3):
        vt, tt = format_number(v, lang, d), format_number(t, lang, d)
        if vt != tt or v == t:
            break
    suffix = f"{NBSP}{unit}" if unit else ""
    return vt + suffix, tt + suffix


@dataclass(frozen=True)
class StaffReason:
    """One reason as the page shows it; ``deciding`` marks the one that set the grade."""

    key: str
    grade: str  # the grade whose condition this is
    passed: bool
    deciding: bool
    value: float
    op: str
    threshold: float
    text_vi: str
    text_en: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "grade": self.grade,
            "passed": bool(self.passed),
            "deciding": bool(self.deciding),
            "value": round(float(self.value), 4),
            "op": self.op,
            "threshold": float(self.threshold),
            "text_vi": self.text_vi,
            "text_en": self.text_en,
        }


def _in_sentence(grade: str, lang: Lang) -> str:
    """ "hạng A", "loại bỏ" (the grade's own name keeps its case)."""
    label = grade_label(grade, lang)
    return label[:1].lower() + label[1:]


def phrase_rule(d: Decision, noun: tuple[str, str] = DEFAULT_NOUN) -> tuple[str, str]:
    """One rule comparison for staff. A condition of the grade given: "đốm thâm 6,7 %
    (giới hạn 15 %)"; one a better grade failed: "đốm thâm 6,7 % (hạng A: tối đa 2 %)"."""
    (nv, ne) = measurement_name(d.key, noun)
    vv, tv = quantity_pair(d.key, d.value, d.threshold, "vi")
    ve, te = quantity_pair(d.key, d.value, d.threshold, "en")
    if d.passed:
        bv, be = _HELD.get(d.op, (d.op, d.op))
        return f"{nv} {vv} ({bv} {tv})", f"{ne} {ve} ({be} {te})"
    bv, be = _NEEDS.get(d.op, (d.op, d.op))
    gv, ge = _in_sentence(d.grade, "vi"), _in_sentence(d.grade, "en")
    return f"{nv} {vv} ({gv}: {bv} {tv})", f"{ne} {ve} ({ge}: {be} {te})"


def phrase_model(d: Decision) -> tuple[str, str]:
    """One feature of a calibrated model: how it compares with the photos it learnt from."""
    vv, tv = format_number(d.value, "vi", 2), format_number(d.threshold, "vi", 2)
    ve, te = format_number(d.value, "en", 2), format_number(d.threshold, "en", 2)
    name = d.key.removeprefix("feature_")
    higher = d.op == ">"
    rv, re_ = ("cao hơn", "above") if higher else ("thấp hơn", "below")
    return (
        f"{name} {vv} ({rv} mức học được {tv}): giống {_in_sentence(d.grade, 'vi')}",
        f"{name} {ve} ({re_} the learnt {te}): like {_in_sentence(d.grade, 'en')}",
    )


def deciding_order(decisions: Sequence[Decision], grade: str) -> list[Decision]:
    """The decisions, the one that set the grade first.

    Below the best grade, what set it is the better grade's failed conditions, the
    furthest from holding first. At the best grade (every condition held), the one
    nearest its limit, then the others by how near they are.
    """
    failed = sorted((d for d in decisions if not d.passed), key=lambda d: d.margin)
    held = sorted((d for d in decisions if d.passed and d.grade == grade), key=lambda d: d.margin)
    return [*failed, *held]


def staff_reasons(
    decisions: Sequence[Decision],
    grade: str,
    method: Literal["rules", "model"] = "rules",
    noun: tuple[str, str] = DEFAULT_NOUN,
    limit: int = MAX_REASONS,
) -> tuple[StaffReason, ...]:
    """At most ``limit`` reasons, the deciding one first, phrased for staff.

    A model's decisions are already its strongest features first.
    """
    ordered = list(decisions) if method == "model" else deciding_order(decisions, grade)
    out = []
    for i, d in enumerate(ordered[: max(limit, 0)]):
        vi, en = phrase_model(d) if method == "model" else phrase_rule(d, noun)
        out.append(
            StaffReason(d.key, d.grade, d.passed, i == 0, d.value, d.op, d.threshold, vi, en)
        )
    return tuple(out)
