"""A small learned grader: standardised features and a NumPy classifier, saved as JSON.

Its inputs (``Model.inputs``) are the 27 produce figures (FIGURES), or those followed
by a pretrained network's 1280-number embedding of the produce (EMBEDDED,
:mod:`edge.camera.grading.embed`; logistic regression only, the figures' block weighed
like the embedding's in the penalty). Calibration uses EMBEDDED by default: on
grading-dev's nested group-aware folds it scored banana 0.957-0.962 and potato
0.960-0.965, against 0.930-0.945 and 0.943 on the figures alone (docs/grading.md).

Three kinds, chosen at calibration by cross-validated macro-F1 on the training photos:

- ``logreg``: multinomial logistic regression with an L2 penalty, class-balanced
  (each class weighs the same in the loss, however many photos it has), fitted by
  accelerated gradient descent;
- ``quadratic``: the same on each standardised feature and its square (clipped at
  QUADRATIC_CLIP standard deviations), so a class may sit in the middle of a
  feature's range: a ripe banana's hue lies between the unripe's green and the
  rotten's brown, which one straight boundary per feature cannot say. On grading-dev's
  group-aware folds it scored banana 0.952 and potato 0.965 against the linear
  model's 0.943 and 0.954;
- ``centroid``: the nearest class mean in standardised feature space.

The candidates are scored on folds that keep photo groups (sessions, backdrops,
cameras: :mod:`edge.camera.grading.groups`) whole, training on the training folds'
photos and their altered copies (:mod:`edge.camera.grading.augment`) and testing on
the held-out photos as they are. The same candidates on the same folds are scored on
the background's figures alone (the control): a control close to the produce's score
means the model can grade from the backdrop, a leak. A temperature fitted on the
chosen candidate's out-of-fold logits makes its probabilities calibrated
(:meth:`Model.calibrated_proba`), which the cost-aware decision needs.

The file holds the product, the classes (the calibration folder's subfolder names),
the feature names, the inputs, the standardisation (means, scales), the weights, the
temperature and the product check (:mod:`edge.camera.grading.productcheck`): a few kB
on the figures, about 160 kB with the embedding. Version 1 files (no temperature, no
check) and version 2 files (no inputs: the figures) still load. Loading checks all of
it, so a foreign, damaged or outdated file is a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edge.camera.grading import embed
from edge.camera.grading.features import CONTROL_FEATURES, FEATURE_NAMES
from edge.camera.grading.groups import group_folds
from edge.camera.grading.productcheck import (
    ProductCheck,
    check_from_json,
    fit_multinomial,
    softmax,
)
from edge.camera.grading.rules import Decision

Floats = npt.NDArray[np.float64]
Kind = Literal["logreg", "quadratic", "centroid"]
KINDS: tuple[Kind, ...] = ("logreg", "quadratic", "centroid")
QUADRATIC_CLIP = 4.0  # standard deviations; a square beyond it says nothing more
FORMAT = "edge-grading-model"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# What a model is fitted on: the produce figures, or the figures followed by the
# pretrained network's embedding of the produce (embed.py). A new backbone gets a new
# name, so a model of another backbone is refused, not misread.
FIGURES = "figures"
EMBEDDED = f"figures+{embed.NAME}-{embed.SIDE}"
INPUTS = (FIGURES, EMBEDDED)
L2_CHOICES = (0.003, 0.03, 0.3, 3.0)
# The embedding has 1280 numbers for a few hundred photos: only the stronger penalties.
EMBEDDED_L2_CHOICES = (0.03, 0.3, 3.0)
TEMPERATURES = np.exp(np.linspace(np.log(0.1), np.log(20.0), 241))
FOLDS = 5
ITERATIONS = 1500


class ModelError(Exception):
    """A model file that cannot be used; the message is ``FILE: KEY: REASON``."""


@dataclass(frozen=True)
class Model:
    product: str
    kind: Kind
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    means: Floats
    scales: Floats
    weights: Floats  # (classes, terms): logreg weights (quadratic: each feature, then
    # each square), or the class means (centroid)
    bias: Floats  # (classes,)
    info: dict[str, Any]  # photos per class, the cross-validated scores; not used to predict
    temperature: float = 1.0  # logits are divided by it for calibrated probabilities
    check: ProductCheck | None = field(default=None)  # the product check, when trained
    inputs: str = FIGURES  # FIGURES or EMBEDDED (then embed.DIM numbers follow the figures)

    @property
    def embedded(self) -> bool:
        return self.inputs == EMBEDDED

    @property
    def check_threshold(self) -> float:
        """Below this product probability a photo is not the product (0: no check)."""
        return self.check.threshold if self.check is not None else 0.0

    @property
    def check_others(self) -> tuple[str, ...]:
        """The products the check was trained against."""
        return self.check.others if self.check is not None else ()

    def product_probability(self, x: Floats) -> float | None:
        """The product check's probability that the photo (one feature vector) shows
        the model's product; ``None`` when no check was trained."""
        if self.check is None:
            return None
        return float(np.asarray(self.check.probability(np.asarray(x).ravel())))

    def calibrated_proba(self, x: Floats) -> Floats:
        """Class probabilities with the fitted temperature (softmax(logits / T)): on
        held-out groups, a photo given 0.8 is right about 8 times in 10."""
        p = softmax(self.logits(x) / self.temperature)
        return p[0] if np.ndim(x) == 1 else p

    def standardise(self, x: Floats) -> Floats:
        out: Floats = (x - self.means) / self.scales
        return out

    def logits(self, x: Floats) -> Floats:
        """Scores per class for feature vectors ``x`` (one row per photo, or one vector)."""
        z = self.standardise(np.atleast_2d(x))
        if self.kind != "centroid":
            out: Floats = terms(z, self.kind) @ self.weights.T + self.bias
        else:
            d2 = ((z[:, None, :] - self.weights[None, :, :]) ** 2).sum(axis=2)
            out = -0.5 * d2
        return out

    def predict_proba(self, x: Floats) -> Floats:
        """Class probabilities; a vector for one photo, rows for several."""
        p = softmax(self.logits(x))
        return p[0] if np.ndim(x) == 1 else p

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "product": self.product,
            "kind": self.kind,
            "inputs": self.inputs,
            "classes": list(self.classes),
            "feature_names": list(self.feature_names),
            "means": _rounded(self.means),
            "scales": _rounded(self.scales),
            "weights": [_rounded(row) for row in self.weights],
            "bias": _rounded(self.bias),
            "temperature": float(f"{self.temperature:.6g}"),
            "check": None if self.check is None else self.check.to_json(),
            "check_threshold": float(f"{self.check_threshold:.6g}"),
            "check_others": list(self.check_others),
            "info": self.info,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")))

    @staticmethod
    def load(path: Path) -> Model:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"{path}: (file): cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ModelError(f"{path}: (file): not a model file (not UTF-8 text)") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path}: (file): not a model file (not JSON: {exc})") from None
        return from_json(data, str(path))


def terms(z: Floats, kind: Kind) -> Floats:
    """What a kind's weights multiply: the standardised features ``z`` (rows), and for
    ``quadratic`` also their squares (clipped at QUADRATIC_CLIP, scaled to the same
    range as the features)."""
    if kind != "quadratic":
        return z
    c = np.clip(z, -QUADRATIC_CLIP, QUADRATIC_CLIP)
    return np.hstack([z, c * c / QUADRATIC_CLIP])


def _rounded(v: Floats) -> list[float]:
    return [float(f"{x:.6g}") for x in np.asarray(v, np.float64).ravel()]


def from_json(data: Any, file: str = "<model>") -> Model:
    """Validate a parsed model file; :class:`ModelError` names the key that is wrong."""

    def bad(key: str, reason: str) -> ModelError:
        return ModelError(f"{file}: {key}: {reason}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad("format", f"not a grading model (expected format {FORMAT!r})")
    version = data.get("version")
    if version not in READABLE_VERSIONS:
        raise bad(
            "version",
            f"version {version!r} is not supported (expected one of "
            f"{', '.join(map(str, READABLE_VERSIONS))}; a model from newer software: "
            "upgrade the station)",
        )
    product = data.get("product")
    if not isinstance(product, str) or not product:
        raise bad("product", "missing or not a string")
    kind = data.get("kind")
    if kind not in KINDS:
        raise bad(
            "kind",
            f"{kind!r} is not one of {', '.join(map(repr, KINDS))} (a model from newer "
            "software: upgrade the station)",
        )
    classes = data.get("classes")
    if (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, str) for c in classes)
    ):
        raise bad("classes", "needs a list of at least two class names")
    if len(set(classes)) != len(classes):
        raise bad("classes", "a class is named twice")
    names = data.get("feature_names")
    if names != list(FEATURE_NAMES):
        raise bad(
            "feature_names",
            "calibrated with another set of features than this station computes; "
            "calibrate the model again with `edge grade calibrate`",
        )
    inputs = data.get("inputs", FIGURES) if version >= 3 else FIGURES
    if inputs not in INPUTS:
        raise bad(
            "inputs",
            f"{inputs!r} is not one of {', '.join(map(repr, INPUTS))} (calibrated with "
            "another backbone: calibrate the model again, or upgrade the station)",
        )
    if inputs == EMBEDDED and kind == "quadratic":
        raise bad("kind", "a quadratic model is fitted on the figures alone")
    nf = len(FEATURE_NAMES) + (embed.DIM if inputs == EMBEDDED else 0)
    nc = len(classes)

    def array(key: str, shape: tuple[int, ...]) -> Floats:
        try:
            arr = np.asarray(data.get(key), np.float64)
        except (TypeError, ValueError):
            raise bad(key, "not a list of numbers") from None
        if arr.shape != shape:
            raise bad(key, f"shape {arr.shape} does not match {shape} (classes x features)")
        if not np.all(np.isfinite(arr)):
            raise bad(key, "holds a non-finite number")
        return arr

    scales = array("scales", (nf,))
    if np.any(scales <= 0):
        raise bad("scales", "a scale is zero or negative")
    info = data.get("info", {})
    temperature, check = 1.0, None
    if version >= 2:
        raw_t = data.get("temperature")
        if not isinstance(raw_t, int | float) or not np.isfinite(raw_t) or raw_t <= 0:
            raise bad("temperature", "needs a positive number")
        temperature = float(raw_t)
        check = check_from_json(
            data.get("check"), data.get("check_threshold"), data.get("check_others"), nf, bad
        )
    return Model(
        product=product,
        kind=kind,
        classes=tuple(classes),
        feature_names=tuple(names),
        means=array("means", (nf,)),
        scales=scales,
        weights=array("weights", (nc, 2 * nf if kind == "quadratic" else nf)),
        bias=array("bias", (nc,)),
        info=info if isinstance(info, dict) else {},
        temperature=float(temperature),
        check=check,
        inputs=inputs,
    )


def _fit_centroid(z: Floats, y: npt.NDArray[np.intp], nc: int) -> tuple[Floats, Floats]:
    means = np.stack([z[y == c].mean(axis=0) for c in range(nc)])
    return means, np.zeros(nc)


def standardisation(x: Floats) -> tuple[Floats, Floats]:
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    return means, np.where(scales > 1e-9, scales, 1.0)


def fit(
    x: Floats,
    y: npt.NDArray[np.intp],
    classes: tuple[str, ...],
    product: str,
    kind: Kind,
    l2: float,
    inputs: str = FIGURES,
) -> Model:
    """Fit one candidate on rows ``x`` (the figures, followed by the embedding when
    ``inputs`` is EMBEDDED)."""
    means, scales = standardisation(x)
    if inputs == EMBEDDED:
        # The penalty weighs the figures (27; 25 in the control) and the embedding's
        # 1280 numbers as two equal blocks, not as 1307 equals: the figures' few telling
        # numbers (a spot share) would drown.
        nf = x.shape[1] - embed.DIM
        scales[:nf] /= np.sqrt(embed.DIM / nf)
    z = (x - means) / scales
    nc = len(classes)
    if kind == "centroid":
        w, b = _fit_centroid(z, y, nc)
    else:
        w, b = fit_multinomial(terms(z, kind), y, nc, l2, iterations=ITERATIONS)
    info: dict[str, Any] = {"photos": {c: int((y == i).sum()) for i, c in enumerate(classes)}}
    if kind != "centroid":
        info["l2"] = l2
    return Model(product, kind, classes, FEATURE_NAMES, means, scales, w, b, info, inputs=inputs)


def macro_f1(y: npt.NDArray[np.intp], pred: npt.NDArray[np.intp], nc: int) -> float:
    f1s = []
    for c in range(nc):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0)
    return float(np.mean(f1s))


def joined(figures: Floats, embedded: Floats | None) -> Floats:
    """The figures followed by the embedding, row by row (an EMBEDDED model's input)."""
    if embedded is None or len(embedded) != len(figures):
        raise ValueError("an embedding row is needed for each row of figures")
    return np.hstack([figures, embedded])


Candidate = tuple[str, Kind, float]  # inputs, kind, L2
CANDIDATES: tuple[Candidate, ...] = (
    (FIGURES, "centroid", 0.0),
    *((FIGURES, "logreg", v) for v in L2_CHOICES),
    *((FIGURES, "quadratic", v) for v in L2_CHOICES),
    *((EMBEDDED, "logreg", v) for v in EMBEDDED_L2_CHOICES),
)


def candidate_name(c: Candidate) -> str:
    inputs, kind, l2 = c
    if inputs == EMBEDDED:
        return f"{embed.SHORT}_l2_{l2:g}"
    return kind if kind == "centroid" else f"{kind}_l2_{l2:g}"


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold results of every candidate on one set of folds."""

    scores: dict[str, float]  # candidate name -> macro-F1 (most probable class)
    best: Candidate
    oof_logits: Floats  # the best candidate's, one row per photo


def cross_validate(
    x: Floats,
    y: npt.NDArray[np.intp],
    classes: tuple[str, ...],
    fold: npt.NDArray[np.intp],
    aug_x: Floats | None = None,
    aug_of: npt.NDArray[np.intp] | None = None,
    embedded: Floats | None = None,
    only: str | None = None,
) -> CrossValidation:
    """Score each candidate: train on the other folds' photos (and their altered copies
    ``aug_x``, ``aug_of`` = the photo each copy came from), predict the held-out fold's
    photos as they are. Ties go to the simpler candidate (the earlier one).

    ``embedded``: the embedding rows; without them the EMBEDDED candidates are left out.
    Those are trained on the photos alone, without the altered copies (see
    :func:`calibrate_full`). ``only``: just the candidates on these inputs
    (FIGURES or EMBEDDED)."""
    nc = len(classes)
    scores: dict[str, float] = {}
    best: tuple[float, Candidate, Floats] | None = None
    for cand in CANDIDATES:
        inputs, kind, l2 = cand
        if (inputs == EMBEDDED and embedded is None) or (only is not None and inputs != only):
            continue
        xc, ac = x, aug_x
        if inputs == EMBEDDED:
            xc, ac = joined(x, embedded), None
        logits = np.zeros((len(y), nc))
        for f in np.unique(fold):
            train, test = fold != f, fold == f
            xt, yt = xc[train], y[train]
            if ac is not None and aug_of is not None and len(ac):
                extra = train[aug_of]
                xt = np.vstack([xt, ac[extra]])
                yt = np.concatenate([yt, y[aug_of[extra]]])
            m = fit(xt, yt, classes, "", kind, l2, inputs)
            logits[test] = m.logits(xc[test])
        score = macro_f1(y, np.argmax(logits, axis=1), nc)
        scores[candidate_name(cand)] = round(score, 4)
        if best is None or score > best[0] + 1e-9:
            best = (score, cand, logits)
    assert best is not None
    return CrossValidation(scores, best[1], best[2])


def fit_temperature(logits: Floats, y: npt.NDArray[np.intp]) -> float:
    """The temperature T minimising the out-of-fold log-loss of softmax(logits / T)
    (a grid from 0.1 to 20, log-spaced: deterministic, no local minima to fear; the
    floor keeps classes that every fold separated from probabilities of exactly 1)."""
    rows = np.arange(len(y))
    best_t, best_nll = 1.0, np.inf
    for t in TEMPERATURES:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = float((np.log(np.exp(z).sum(axis=1)) - z[rows, y]).mean())
        if nll < best_nll - 1e-12:
            best_t, best_nll = float(t), nll
    return best_t


@dataclass(frozen=True)
class Calibration:
    """A calibrated model and the out-of-fold evidence behind it."""

    model: Model
    labels: npt.NDArray[np.intp]  # class per photo
    folds: npt.NDArray[np.intp]  # fold per photo
    groups: int
    oof_logits: Floats  # the chosen candidate's, before the temperature
    control: dict[str, float]  # background-only macro-F1 per candidate (empty: none)

    @property
    def oof_proba(self) -> Floats:
        return softmax(self.oof_logits / self.model.temperature)


def calibrate_full(
    x: Floats,
    y: npt.NDArray[np.intp],
    classes: tuple[str, ...],
    product: str,
    groups: Sequence[int] | None = None,
    aug_x: Floats | None = None,
    aug_of: npt.NDArray[np.intp] | None = None,
    background: Floats | None = None,
    embedded: Floats | None = None,
    background_embedded: Floats | None = None,
    only: str | None = None,
) -> Calibration:
    """Group-aware cross-validation of every candidate (see the module), the best refit
    on all photos and their copies, a temperature fitted on its out-of-fold logits, and
    the background-only control on the same folds (``background``: one row per photo of
    :func:`features.background_features`, NaN rows where a photo has no background to
    speak of, left out; only its CONTROL_FEATURES columns are used).

    ``embedded``: the pretrained network's embedding of each photo's produce
    (:mod:`embed`); with it the EMBEDDED candidates compete too, and
    ``background_embedded`` (the backdrop's embedding, produce greyed) is their control.
    They learn from the photos alone: the network already sees past light, white
    balance and orientation, and the altered copies (made for the figures) lowered
    their nested group-aware macro-F1 on grading-dev (docs/grading.md). ``only``: just
    the candidates on these inputs (FIGURES or EMBEDDED).

    Without ``groups`` every photo is a group of its own (plain stratified folds)."""
    nc = len(classes)
    g = list(range(len(y))) if groups is None else list(groups)
    fold = np.asarray(group_folds(g, y.tolist(), FOLDS), np.intp)
    cv = cross_validate(x, y, classes, fold, aug_x, aug_of, embedded, only)
    control: dict[str, float] = {}
    if background is not None:
        bg = (
            background[:, CONTROL_FEATURES]
            if background.shape[1] == len(FEATURE_NAMES)
            else background
        )
        ok = ~np.isnan(bg).any(axis=1)
        if len(np.unique(y[ok])) == nc:
            bge = None if background_embedded is None else background_embedded[ok]
            control = cross_validate(
                bg[ok], y[ok], classes, fold[ok], embedded=bge, only=only
            ).scores
    inputs, kind, l2 = cv.best
    if inputs == EMBEDDED:
        x, aug_x = joined(x, embedded), None
    xa, ya = x, y
    if aug_x is not None and aug_of is not None and len(aug_x):
        xa, ya = np.vstack([x, aug_x]), np.concatenate([y, y[aug_of]])
    model = fit(xa, ya, classes, product, kind, l2, inputs)
    temperature = fit_temperature(cv.oof_logits, y)
    model.info["photos"] = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    model.info["cv_folds"] = int(fold.max()) + 1
    model.info["cv_groups"] = len(set(g))
    model.info["cv_macro_f1"] = cv.scores
    model.info["chosen"] = candidate_name(cv.best)
    model.info["control_macro_f1"] = control
    model.info["augmented_copies"] = 0 if aug_x is None else len(aug_x)
    model = replace(model, temperature=temperature)
    return Calibration(model, y, fold, len(set(g)), cv.oof_logits, control)


def calibrate(
    x: Floats,
    y: npt.NDArray[np.intp],
    classes: tuple[str, ...],
    product: str,
    groups: Sequence[int] | None = None,
) -> Model:
    """:func:`calibrate_full`'s model (no copies, no control)."""
    return calibrate_full(x, y, classes, product, groups).model


def explain(model: Model, x: Floats, best: int, top: int = 3) -> tuple[Decision, ...]:
    """The features that pushed the photo towards class ``best`` most (over the runner-up)."""
    z = model.standardise(x)
    logits = model.logits(x)[0]
    order = np.argsort(-logits)
    other = int(order[1]) if int(order[0]) == best else int(order[0])
    if model.kind != "centroid":
        t = terms(z[None, :], model.kind)[0] * (model.weights[best] - model.weights[other])
        nf = len(z)
        contrib = t[:nf] + t[nf:] if model.kind == "quadratic" else t
    else:
        contrib = 0.5 * ((z - model.weights[other]) ** 2 - (z - model.weights[best]) ** 2)
    # Only the named figures are told to people; an embedding's numbers mean nothing to them.
    contrib = contrib[: len(model.feature_names)]
    cls, rival = model.classes[best], model.classes[other]
    out = []
    for i in np.argsort(-contrib)[:top]:
        if contrib[i] <= 0:
            break
        name, value, mean = model.feature_names[i], float(x[i]), float(model.means[i])
        op = ">" if value > mean else "<"
        rel_vi, rel_en = ("cao hơn", "above") if value > mean else ("thấp hơn", "below")
        out.append(
            Decision(
                grade=cls,
                key=name,
                value=value,
                op=op,
                threshold=mean,
                passed=True,
                margin=float(contrib[i]),
                text_vi=f"{name} = {value:.3g}, {rel_vi} mức trung bình khi học ({mean:.3g}): "
                f"nghiêng về '{cls}' hơn '{rival}'.",
                text_en=f"{name} = {value:.3g}, {rel_en} the calibration mean ({mean:.3g}): "
                f"points to '{cls}' rather than '{rival}'.",
            )
        )
    return tuple(out)
