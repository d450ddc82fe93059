"""Grade rules per product: thresholds on a lot's measurements decide its grade.

A rules file is ``<rules_dir>/<product>.toml``::

    grades = ["A", "B", "C", "reject"]      # best first; the last is the fallback
    [conditions]
    A = [ { key = "defect_share_max", op = "<=", value = 0.02 }, ... ]
    B = [ ... ]
    C = [ ... ]                              # "reject" takes no conditions

A photo gets the best grade whose conditions all hold, the last grade otherwise.
An optional ``[costs]`` table prices a calibrated model's mistakes (keyed by the
model's class names; see costs.py): its shape is checked here, its class names when
a model is used.
Keys are those of :func:`edge.camera.grading.measure.lot_summary`; sizes only in
millimetres (a size in pixels depends on how far the camera is). An optional
``band`` per condition is the width of the "uncertain" zone around the threshold,
used for the confidence (default: 20 % of the threshold, at least 0.01).

Everything here is pure: :func:`parse_rules` takes the parsed TOML, :func:`decide`
takes the measurements.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.camera.grading.measure import COLOUR_CLASSES
from edge.tomlfile import did_you_mean, read_toml, unknown_key

Op = Literal["<", "<=", ">", ">="]
PRODUCT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
DEFAULT_BAND_SHARE = 0.2  # the uncertain zone: 20 % of the threshold ...
MIN_BAND = 0.01  # ... but never narrower than this


def _rule_keys() -> tuple[str, ...]:
    """Every lot_summary key a rule may use (sizes in millimetres only)."""
    keys = ["item_count", "weight_g", "count_per_kg"]
    for name in ("length_mm", "width_mm", "area_mm2"):
        keys += [f"{name}_{stat}" for stat in ("mean", "min", "max", "cv")]
    keys += [
        "defect_share_mean",
        "defect_share_max",
        "dark_share_mean",
        "green_share_mean",
        "elongation_mean",
        "solidity_min",
        "items_at_edge",
    ]
    keys += [f"colour_share_{c}" for c in COLOUR_CLASSES]
    return tuple(keys)


RULE_KEYS = _rule_keys()
WEIGHT_KEYS = frozenset({"weight_g", "count_per_kg"})  # measured only with the lot's weight

# How each key reads in a sentence (Vietnamese, English).
_KEY_TEXT: dict[str, tuple[str, str]] = {
    "item_count": ("số quả/củ", "item count"),
    "weight_g": ("khối lượng lô (g)", "lot weight (g)"),
    "count_per_kg": ("số quả/củ mỗi kg", "items per kg"),
    "defect_share_mean": ("tỉ lệ vết hỏng trung bình", "mean defect share"),
    "defect_share_max": ("tỉ lệ vết hỏng lớn nhất", "largest defect share"),
    "dark_share_mean": ("tỉ lệ đốm thâm trung bình", "mean dark-spot share"),
    "green_share_mean": ("tỉ lệ vỏ xanh trung bình", "mean greening share"),
    "elongation_mean": ("độ thuôn trung bình", "mean elongation"),
    "solidity_min": ("độ đặc nhỏ nhất", "lowest solidity"),
    "items_at_edge": ("số quả/củ bị cắt ở mép ảnh", "items cut by the photo's edge"),
}
_SIZE_TEXT = {
    "length_mm": ("chiều dài (mm)", "length (mm)"),
    "width_mm": ("chiều rộng (mm)", "width (mm)"),
    "area_mm2": ("diện tích (mm²)", "area (mm²)"),
}
_STAT_TEXT = {
    "mean": ("trung bình", "mean"),
    "min": ("nhỏ nhất", "smallest"),
    "max": ("lớn nhất", "largest"),
    "cv": ("độ chênh lệch", "spread"),
}
_SIZE_NAME = {
    "length_mm": ("chiều dài", "length"),
    "width_mm": ("chiều rộng", "width"),
    "area_mm2": ("diện tích", "area"),
}
_COLOUR_TEXT = {
    "yellow": "vàng",
    "green": "xanh",
    "brown": "nâu",
    "red": "đỏ",
    "pale": "nhạt màu",
    "other": "màu khác",
}
_OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


def key_text(key: str) -> tuple[str, str]:
    """A measurement key in words (Vietnamese, English)."""
    if key in _KEY_TEXT:
        return _KEY_TEXT[key]
    if key.startswith("colour_share_"):
        cls = key.removeprefix("colour_share_")
        return f"tỉ lệ quả/củ {_COLOUR_TEXT.get(cls, cls)}", f"share of {cls} items"
    name, _, stat = key.rpartition("_")
    if name in _SIZE_NAME and stat == "cv":
        nv, ne = _SIZE_NAME[name]
        return f"độ chênh lệch {nv} (độ lệch chuẩn / trung bình)", f"{ne} spread (std / mean)"
    if name in _SIZE_TEXT and stat in _STAT_TEXT:
        (nv, ne), (sv, se) = _SIZE_TEXT[name], _STAT_TEXT[stat]
        return f"{nv} {sv}", f"{se} {ne}"
    return key, key


class RulesError(Exception):
    """A rules file that cannot be used; ``problems`` are (key, reason) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {key}: {reason}" for key, reason in problems))


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="A lot measurement, e.g. defect_share_max.")
    op: Op = Field(description="How the measurement compares with value: <, <=, > or >=.")
    value: float = Field(description="The threshold.")
    band: float | None = Field(
        None, gt=0, description="Width of the uncertain zone around value (for confidence)."
    )

    @field_validator("key")
    @classmethod
    def _known_key(cls, key: str) -> str:
        if key not in RULE_KEYS:
            hint = ""
            if "_px" in key:
                hint = "; sizes in pixels depend on the camera's distance, use the _mm key"
            raise ValueError(
                f"unknown measurement {key!r}{hint}{did_you_mean(key, list(RULE_KEYS))}"
                f" (valid keys: {', '.join(RULE_KEYS)})"
            )
        return key

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def holds(self, measured: float) -> bool:
        return {
            "<": measured < self.value,
            "<=": measured <= self.value,
            ">": measured > self.value,
            ">=": measured >= self.value,
        }[self.op]

    def margin(self, measured: float) -> float:
        """How far the measurement is inside (positive) or outside (negative) the
        condition, in bands."""
        band = self.band or max(abs(self.value) * DEFAULT_BAND_SHARE, MIN_BAND)
        diff = self.value - measured if self.op in ("<", "<=") else measured - self.value
        return diff / band


class Looks(BaseModel):
    """What the product looks like on the tray, to decline a photo of other produce
    (bananas on a potato lot) instead of grading it. An item fits when its colour class
    is one of ``colours`` and its elongation (length / width) is within the bounds; a
    photo where fewer than half the items fit is declined (see plausible.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40, description="The produce in Vietnamese.")
    name_en: str = Field(min_length=1, max_length=40, description="The produce in English.")
    noun: str = Field("quả/củ", min_length=1, max_length=20, description="'quả', 'củ', ...")
    noun_en: str = Field("items", min_length=1, max_length=20, description="'fruit', ...")
    colours: list[str] = Field(
        min_length=1, description=f"Colour classes it may have: {', '.join(COLOUR_CLASSES)}."
    )
    elongation_min: float = Field(1.0, ge=1.0, description="Smallest length / width.")
    elongation_max: float = Field(100.0, ge=1.0, description="Largest length / width.")

    @field_validator("colours")
    @classmethod
    def _known_colours(cls, colours: list[str]) -> list[str]:
        for c in colours:
            if c not in COLOUR_CLASSES:
                raise ValueError(
                    f"unknown colour class {c!r}{did_you_mean(c, list(COLOUR_CLASSES))}"
                    f" (valid: {', '.join(COLOUR_CLASSES)})"
                )
        return colours

    @model_validator(mode="after")
    def _bounds(self) -> Looks:
        if self.elongation_min > self.elongation_max:
            raise ValueError("looks: elongation_min is larger than elongation_max")
        return self


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grades: list[str] = Field(min_length=2, description="Grade names, best first.")
    conditions: dict[str, list[Condition]] = Field(
        description="Per grade (all but the last), the conditions that must all hold."
    )
    looks: Looks | None = Field(
        None, description="What the produce looks like (optional; without it any is graded)."
    )
    costs: dict[str, Any] | None = Field(
        None,
        description="What a calibrated model's mistakes cost: unsure = N and "
        "[costs.<true class>] <graded as> = N (optional; see costs.py).",
    )

    @model_validator(mode="after")
    def _grades_match(self) -> RulesFile:
        if len(set(self.grades)) != len(self.grades):
            raise ValueError("grades: a grade is named twice")
        if any(not g.strip() for g in self.grades):
            raise ValueError("grades: a grade name is empty")
        unknown = [g for g in self.conditions if g not in self.grades]
        if unknown:
            raise ValueError(
                f"conditions.{unknown[0]}: not one of the grades {self.grades}"
                f"{did_you_mean(unknown[0], self.grades)}"
            )
        if self.conditions.get(self.grades[-1]):
            raise ValueError(
                f"conditions.{self.grades[-1]}: the last grade is given when no better "
                "grade fits; it takes no conditions"
            )
        missing = [g for g in self.grades[:-1] if not self.conditions.get(g)]
        if missing:
            raise ValueError(
                f"conditions.{missing[0]}: grade {missing[0]!r} has no conditions "
                "(every grade but the last needs at least one)"
            )
        return self


@dataclass(frozen=True)
class Rules:
    """A product's validated rules."""

    product: str
    file: str
    grades: tuple[str, ...]
    conditions: dict[str, tuple[Condition, ...]]
    looks: Looks | None = None
    costs: Mapping[str, Any] | None = None  # the raw [costs] table, shape checked

    def measurement_keys(self) -> frozenset[str]:
        return frozenset(c.key for cs in self.conditions.values() for c in cs)

    @property
    def needs_marker(self) -> bool:
        """True when a condition compares sizes in millimetres."""
        return any("_mm" in k for k in self.measurement_keys())

    @property
    def needs_weight(self) -> bool:
        return bool(self.measurement_keys() & WEIGHT_KEYS)


def parse_rules(data: dict[str, Any], product: str, file: str = "<rules>") -> Rules:
    """Validate parsed TOML; :class:`RulesError` lists every problem as (key, reason)."""
    raw_costs = data.get("costs")
    problems = cost_table_problems(raw_costs) if isinstance(raw_costs, dict) else []
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesError(file, _describe(exc) + problems) from None
    if problems:
        raise RulesError(file, problems)
    return Rules(
        product=product,
        file=file,
        grades=tuple(parsed.grades),
        conditions={g: tuple(parsed.conditions.get(g, ())) for g in parsed.grades},
        looks=parsed.looks,
        costs=parsed.costs,
    )


def _cost_problem(value: Any, key: str) -> tuple[str, str] | None:
    """Why ``value`` is not a usable cost, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return key, f"a cost is a number (got {value!r})"
    if not math.isfinite(value) or value < 0:
        return key, f"a cost is a finite number of 0 or more (got {value!r})"
    return None


def cost_table_problems(table: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The shape of a ``[costs]`` table as (key, reason) pairs: ``unsure`` a number above
    0, every other key a table of ``graded-as = cost`` (a finite number of 0 or more),
    a right grade not priced. The class names are checked against the model's
    classes when a model is used (costs.costs_for)."""
    problems: list[tuple[str, str]] = []
    for true, row in table.items():
        key = f"costs.{true}"
        if true == "unsure":
            bad = _cost_problem(row, key)
            if bad is None and row == 0:
                bad = key, "asking the lead takes their time: a cost above 0 (e.g. 0.3)"
            problems += [bad] if bad else []
            continue
        if not isinstance(row, dict):
            hint = "unsure = N, or " if isinstance(row, int | float) else ""
            reason = (
                f"{hint}a table [costs.{true}] whose keys are the grades a {true!r} photo "
                f"may be given, e.g. [costs.{true}] other = 5 (got {row!r})"
            )
            problems.append((key, reason))
            continue
        for graded, cost in row.items():
            bad = _cost_problem(cost, f"{key}.{graded}")
            if bad is None and graded == true and cost != 0:
                bad = f"{key}.{graded}", "a right grade costs nothing; leave it out"
            problems += [bad] if bad else []
    return problems


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            model: type[BaseModel] = (
                RulesFile if len(loc) == 1 else Looks if loc[0] == "looks" else Condition
            )
            reason = unknown_key(loc[-1], list(model.model_fields))
        elif err["type"] == "missing":
            reason = "required key is missing"
        elif err["type"] == "value_error":
            reason = str(err["msg"]).removeprefix("Value error, ")
            if reason.startswith(("conditions", "grades: ", "looks: ")):
                key, _, reason = reason.partition(": ")
        else:
            reason = f"{err['msg']} (got {err.get('input')!r})"
        problems.append((key, reason))
    return problems


def products(rules_dir: Path) -> list[str]:
    """The products that have a rules file in ``rules_dir``."""
    return sorted(p.stem for p in rules_dir.glob("*.toml")) if rules_dir.is_dir() else []


def load_rules(rules_dir: Path, product: str) -> Rules:
    """Read ``<rules_dir>/<product>.toml``; an unknown product lists the known ones."""
    if not PRODUCT_NAME.match(product):
        raise RulesError(
            product,
            [("(product)", "a product name is lower-case ASCII letters, digits, '_' or '-'")],
        )
    path = rules_dir / f"{product}.toml"
    if not path.is_file():
        known = products(rules_dir)
        listed = ", ".join(known) if known else "none"
        reason = (
            f"no rules for product {product!r}{did_you_mean(product, known)} "
            f"(products with rules in {rules_dir}: {listed})"
        )
        raise RulesError(str(path), [("(file)", reason)])
    return parse_rules(read_toml(path, RulesError), product, str(path))


@dataclass(frozen=True)
class Decision:
    """One measurement compared with one threshold, and what it meant."""

    grade: str  # the grade whose condition this is
    key: str
    value: float
    op: str  # <, <=, >, >=
    threshold: float
    passed: bool
    margin: float  # in bands; positive inside the condition
    text_vi: str
    text_en: str

    def to_json(self) -> dict[str, Any]:
        return {
            "grade": self.grade,
            "key": self.key,
            "value": round(float(self.value), 4),
            "op": self.op,
            "threshold": float(self.threshold),
            "passed": bool(self.passed),
            "margin": round(float(self.margin), 3),
            "text_vi": self.text_vi,
            "text_en": self.text_en,
        }


def _fmt(x: float) -> str:
    """A measurement for people: 0.0395, 170.1, 140 (no exponent, no trailing zeros)."""
    text = f"{x:.1f}" if abs(x) >= 10 else f"{x:.4f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def _decision(grade: str, cond: Condition, measured: float) -> Decision:
    passed = cond.holds(measured)
    kv, ke = key_text(cond.key)
    rel = f"{_fmt(measured)} {_OP_TEXT[cond.op]} {_fmt(cond.value)}"
    if passed:
        vi = f"Hạng {grade}: {kv} = {_fmt(measured)}, đạt ({rel})."
        en = f"Grade {grade}: {ke} = {_fmt(measured)}, met ({rel})."
    else:
        need = f"{_OP_TEXT[cond.op]} {_fmt(cond.value)}"
        vi = f"Chưa đạt hạng {grade}: {kv} = {_fmt(measured)}, cần {need}."
        en = f"Not grade {grade}: {ke} = {_fmt(measured)}, needs {need}."
    return Decision(
        grade, cond.key, measured, cond.op, cond.value, passed, cond.margin(measured), vi, en
    )


@dataclass(frozen=True)
class RuleOutcome:
    grade: str
    confidence: float
    reasons: tuple[Decision, ...]


class MissingMeasurement(Exception):
    """A rule needs a measurement the photo does not give (e.g. no lot weight)."""


def decide(rules: Rules, measured: dict[str, float]) -> RuleOutcome:
    """The best grade whose conditions all hold (the last grade otherwise), and why.

    Reasons: the conditions that held for the grade given, then those that failed for
    the next better grade. Confidence is ``1 - exp(-M) / 2`` where ``M`` is the
    deciding margin in bands: the smallest margin among the conditions that held (how
    far from dropping a grade), and how far the failed conditions of the better grade
    are from all holding (the largest shortfall). 0.5 on a threshold, 0.82 one band
    away, 0.98 three bands away.
    """
    missing = sorted(k for k in rules.measurement_keys() if k not in measured)
    if missing:
        raise MissingMeasurement(
            f"{rules.file}: {missing[0]}: this rule needs a measurement the photo did not give"
            + (" (it needs the lot's weight)" if missing[0] in WEIGHT_KEYS else "")
        )
    given = len(rules.grades) - 1
    for i, grade in enumerate(rules.grades[:-1]):
        if all(c.holds(measured[c.key]) for c in rules.conditions[grade]):
            given = i
            break
    grade = rules.grades[given]
    held = [_decision(grade, c, measured[c.key]) for c in rules.conditions[grade]]
    failed: list[Decision] = []
    if given > 0:
        better = rules.grades[given - 1]
        failed = [
            d
            for d in (_decision(better, c, measured[c.key]) for c in rules.conditions[better])
            if not d.passed
        ]
    margins = []
    if held:
        margins.append(min(d.margin for d in held))
    if failed:
        margins.append(max(-d.margin for d in failed))
    m = max(min(margins), 0.0) if margins else 0.0
    return RuleOutcome(grade, 1.0 - 0.5 * math.exp(-m), (*held, *failed))
