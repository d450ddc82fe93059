"""Grade a photo: the product's rules, or a cooperative's calibrated model.

:func:`grade_photo` is what the station and ``edge grade`` call. It returns a
:class:`Graded` (grade, confidence, the decisions that explain it, the measurements)
or a :class:`~edge.camera.grading.quality.Declined` for a photo it will not grade.
A caller's mistake (unknown product, bad rules or model file, a rule needing the
lot's weight when none was given) raises :class:`GradingError`.

The model path decides by cost, not by the most probable class: the product check
first (is this the lot's produce at all?), then the grade whose expected cost under
the calibrated probabilities is lowest (the rules file's ``[costs]``, costs.py), or
"không chắc chắn — nhờ trưởng trạm xem" (:data:`Reason.UNSURE`) when asking the lead
costs less than any grade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edge.camera.grading.costs import Costs, costs_for
from edge.camera.grading.embed import BackboneError, backbone
from edge.camera.grading.features import Features, photo_features
from edge.camera.grading.measure import TrayMeasurement, WorkImage, lot_summary, measure_tray
from edge.camera.grading.model import Model, ModelError, explain
from edge.camera.grading.plausible import check_looks, failed_check, looks_like
from edge.camera.grading.quality import Declined, assess, unsure
from edge.camera.grading.rules import (
    WEIGHT_KEYS,
    Decision,
    Looks,
    MissingMeasurement,
    Rules,
    RulesError,
    decide,
    load_rules,
    products,
)
from edge.camera.grading.wording import StaffReason, staff_reasons

__all__ = [
    "Decision",
    "Graded",
    "GradingError",
    "grade_photo",
    "grade_work",
    "load_grading_costs",
    "load_grading_model",
    "load_grading_rules",
    "load_lookalikes",
    "model_input",
]


class GradingError(Exception):
    """Grading cannot start: unknown product, bad rules or model file, missing weight.

    The message names the file, the key and the reason (``FILE: KEY: REASON``).
    """


@dataclass(frozen=True)
class Graded:
    """A proposed grade and why."""

    product: str
    grade: str
    confidence: float  # 0..1
    method: Literal["rules", "model"]
    reasons: tuple[Decision, ...]  # every comparison that decided it (technicians)
    measurements: dict[str, float]  # lot_summary(...), plus model features when used
    measurement: TrayMeasurement
    staff: tuple[StaffReason, ...] = ()  # at most three, the deciding one first (the page)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (plain floats, no numpy types): ``reasons`` are the staff's short
        ones, ``decisions`` every comparison with its raw figures."""
        m = self.measurement
        return {
            "product": self.product,
            "grade": self.grade,
            "confidence": round(float(self.confidence), 4),
            "method": self.method,
            "reasons": [r.to_json() for r in self.staff],
            "decisions": [d.to_json() for d in self.reasons],
            "measurements": {k: round(float(v), 6) for k, v in self.measurements.items()},
            "unit": m.unit,
            "scale_source": m.scale_source,
            "px_per_mm": None if m.px_per_mm is None else float(m.px_per_mm),
            "colour_reference": m.colour_reference,
            "item_count": len(m.items),
            "image_size": [int(m.image_size[0]), int(m.image_size[1])],
        }


def grade_photo(
    photo: npt.NDArray[np.uint8],
    product: str,
    *,
    rules_dir: Path,
    model_path: Path | None = None,
    weight_g: int | None = None,
    marker_mm: float | None = 40.0,
) -> Graded | Declined:
    """Grade a BGR photo of ``product``; loads the rules (and model) on every call.

    Callers grading many photos should load once and use :func:`grade_work`.
    """
    rules = load_grading_rules(rules_dir, product)
    model = load_grading_model(model_path, product) if model_path is not None else None
    return grade_work(
        WorkImage.of(photo),
        rules,
        model,
        weight_g=weight_g,
        marker_mm=marker_mm,
        lookalikes=load_lookalikes(rules_dir, product),
    )


NO_LOOKALIKES: Mapping[str, Looks] = MappingProxyType({})


def load_lookalikes(rules_dir: Path, product: str) -> Mapping[str, Looks]:
    """The other products' ``[looks]`` by product key (to say what a declined photo
    looks like); a file that cannot be read is left out (it is reported when its
    product is graded)."""
    out = {}
    for other in products(rules_dir):
        if other == product:
            continue
        try:
            looks = load_rules(rules_dir, other).looks
        except RulesError:
            continue
        if looks is not None:
            out[other] = looks
    return MappingProxyType(out)


def load_grading_costs(rules: Rules, model: Model) -> Costs:
    """The rules file's ``[costs]`` over the model's classes; :class:`GradingError` when
    it names a class the model does not have (FILE: KEY: REASON)."""
    try:
        return costs_for(rules.costs, model.classes, rules.file)
    except RulesError as exc:
        raise GradingError(str(exc)) from None


def load_grading_rules(rules_dir: Path, product: str) -> Rules:
    """The product's rules; :class:`GradingError` names the file, key and reason."""
    try:
        return load_rules(rules_dir, product)
    except RulesError as exc:
        raise GradingError(str(exc)) from None


def load_grading_model(path: Path, product: str) -> Model:
    """A calibrated model for ``product``; :class:`GradingError` when it cannot be used.

    A model on the embedding is a file of about 160 kB: it is read again only when the
    file changed (its path, size and modification time), not for every photo."""
    try:
        st = path.stat()
    except OSError as exc:
        raise GradingError(f"{path}: (file): cannot read: {exc.strerror}") from None
    try:
        model = _load_model(path, st.st_size, st.st_mtime_ns)
    except ModelError as exc:
        raise GradingError(str(exc)) from None
    if model.product != product:
        raise GradingError(
            f"{path}: product: the model was calibrated for {model.product!r}, not {product!r}"
        )
    return model


@lru_cache(maxsize=16)
def _load_model(path: Path, size: int, mtime_ns: int) -> Model:
    return Model.load(path)


def grade_work(
    work: WorkImage,
    rules: Rules,
    model: Model | None = None,
    *,
    weight_g: int | None = None,
    marker_mm: float | None = 40.0,
    lookalikes: Mapping[str, Looks] = NO_LOOKALIKES,
) -> Graded | Declined:
    """Grade an already-wrapped photo with loaded rules, or with ``model`` when given.

    Rules: the photo checks and tray measurement of :func:`assess` (the marker is
    required when a rule compares millimetres). Model: the produce checks of
    :func:`~edge.camera.grading.features.photo_features` (a model may have been
    calibrated from photos that are not tray photos), the model's product check when
    it has one, then the grade with the lowest expected cost under the calibrated
    probabilities (its probability is the confidence, with the features that decided
    it), or :data:`Reason.UNSURE` when asking the lead costs less.
    Either way a photo whose produce does not look like the product (its rules'
    ``[looks]``) is declined with ``not_the_product`` (plausible.py); ``lookalikes``
    (other products' looks, by product key) name what it looks like instead.
    """
    if model is None:
        return _by_rules(work, rules, weight_g, marker_mm, lookalikes)
    return _by_model(work, rules, model, weight_g, marker_mm, lookalikes)


def _noun(rules: Rules) -> tuple[str, str]:
    return (rules.looks.noun, rules.looks.noun_en) if rules.looks else ("quả/củ", "items")


def _by_rules(
    work: WorkImage,
    rules: Rules,
    weight_g: int | None,
    marker_mm: float | None,
    lookalikes: Mapping[str, Looks],
) -> Graded | Declined:
    if rules.needs_weight and (weight_g is None or weight_g <= 0):
        key = sorted(rules.measurement_keys() & WEIGHT_KEYS)[0]
        raise GradingError(f"{rules.file}: {key}: this rule needs the lot's weight (weight_g)")
    result = assess(work.full, marker_mm=marker_mm, require_marker=rules.needs_marker)
    if isinstance(result, Declined):
        return result
    odd = check_looks(result, rules.looks, tuple(lookalikes.values()))
    if odd is not None:
        return odd
    measured = lot_summary(result, weight_g)
    try:
        outcome = decide(rules, measured)
    except MissingMeasurement as exc:
        raise GradingError(str(exc)) from None
    return Graded(
        product=rules.product,
        grade=outcome.grade,
        confidence=outcome.confidence,
        method="rules",
        reasons=outcome.reasons,
        measurements=measured,
        measurement=result,
        staff=staff_reasons(outcome.reasons, outcome.grade, "rules", _noun(rules)),
    )


def model_input(
    work: WorkImage, marker_mm: float | None = 40.0
) -> tuple[TrayMeasurement, Features] | Declined:
    """What the learned grader sees of a photo: its measurement and produce features.

    The same for calibration, evaluation and grading, so a model is used on exactly
    the kind of figures it was fitted on.
    """
    m = measure_tray(work, marker_mm)
    features = photo_features(work, m.marker)
    if isinstance(features, Declined):
        return features
    return m, features


def model_vector(model: Model, features: Features) -> npt.NDArray[np.float64]:
    """What ``model`` was fitted on, for one photo: the produce figures, followed by the
    pretrained network's embedding of the produce when the model uses it."""
    if not model.embedded:
        return features.vector
    try:
        row = backbone().embed([features.view])[0]
    except BackboneError as exc:
        raise GradingError(str(exc)) from None
    return np.concatenate([features.vector, row])


def product_check(
    model: Model,
    x: npt.NDArray[np.float64],
    m: TrayMeasurement,
    looks: Looks | None,
    lookalikes: Mapping[str, Looks],
) -> Declined | None:
    """The model's learnt product check: ``None`` when the photo may be the product
    (or the model has no check), else ``not_the_product`` naming what it looks like:
    the one product the check was trained against, or the product whose ``[looks]``
    most items fit."""
    p = model.product_probability(x)
    if p is None or p >= model.check_threshold:
        return None
    if len(model.check_others) == 1:
        like = lookalikes.get(model.check_others[0])
    else:
        like = looks_like(m, looks, tuple(lookalikes.values()))
    return failed_check(looks, like, p, model.check_threshold)


def _by_model(
    work: WorkImage,
    rules: Rules,
    model: Model,
    weight_g: int | None,
    marker_mm: float | None,
    lookalikes: Mapping[str, Looks],
) -> Graded | Declined:
    costs = load_grading_costs(rules, model)
    seen = model_input(work, marker_mm)
    if isinstance(seen, Declined):
        return seen
    m, features = seen
    x = model_vector(model, features)
    odd = product_check(model, x, m, rules.looks, lookalikes)
    if odd is None:
        odd = check_looks(m, rules.looks, tuple(lookalikes.values()))
    if odd is not None:
        return odd
    proba = np.asarray(model.calibrated_proba(x), np.float64).reshape(-1)
    best = costs.decide(proba)
    if best is None:
        return unsure(model.classes, proba.tolist())
    measured = lot_summary(m, weight_g)
    measured.update(features.named())
    decisions = explain(model, x, best)
    return Graded(
        product=rules.product,
        grade=model.classes[best],
        confidence=float(proba[best]),
        method="model",
        reasons=decisions,
        measurements=measured,
        measurement=m,
        staff=staff_reasons(decisions, model.classes[best], "model"),
    )
