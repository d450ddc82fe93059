"""A small learned grader: standardised features and a NumPy classifier, saved as JSON.

Two kinds, chosen at calibration by cross-validated macro-F1 on the training photos:

- ``logreg``: multinomial logistic regression with an L2 penalty, class-balanced
  (each class weighs the same in the loss, however many photos it has), fitted by
  accelerated gradient descent;
- ``centroid``: the nearest class mean in standardised feature space.

The file holds the product, the classes (the calibration folder's subfolder names),
the feature names, the standardisation (means, scales) and the weights: a few kB.
Loading checks all of it, so a foreign, damaged or outdated file is a clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edge.camera.grading.features import FEATURE_NAMES
from edge.camera.grading.rules import Decision

Floats = npt.NDArray[np.float64]
Kind = Literal["logreg", "centroid"]
FORMAT = "edge-grading-model"
VERSION = 1
L2_CHOICES = (0.003, 0.03, 0.3)
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
    weights: Floats  # (classes, features): logreg weights, or the class means (centroid)
    bias: Floats  # (classes,)
    info: dict[str, Any]  # photos per class, the cross-validated scores; not used to predict

    def standardise(self, x: Floats) -> Floats:
        out: Floats = (x - self.means) / self.scales
        return out

    def logits(self, x: Floats) -> Floats:
        """Scores per class for feature vectors ``x`` (one row per photo, or one vector)."""
        z = self.standardise(np.atleast_2d(x))
        if self.kind == "logreg":
            out: Floats = z @ self.weights.T + self.bias
        else:
            d2 = ((z[:, None, :] - self.weights[None, :, :]) ** 2).sum(axis=2)
            out = -0.5 * d2
        return out

    def predict_proba(self, x: Floats) -> Floats:
        """Class probabilities; a vector for one photo, rows for several."""
        p = _softmax(self.logits(x))
        return p[0] if np.ndim(x) == 1 else p

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "product": self.product,
            "kind": self.kind,
            "classes": list(self.classes),
            "feature_names": list(self.feature_names),
            "means": _rounded(self.means),
            "scales": _rounded(self.scales),
            "weights": [_rounded(row) for row in self.weights],
            "bias": _rounded(self.bias),
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


def _rounded(v: Floats) -> list[float]:
    return [float(f"{x:.6g}") for x in np.asarray(v, np.float64).ravel()]


def from_json(data: Any, file: str = "<model>") -> Model:
    """Validate a parsed model file; :class:`ModelError` names the key that is wrong."""

    def bad(key: str, reason: str) -> ModelError:
        return ModelError(f"{file}: {key}: {reason}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad("format", f"not a grading model (expected format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise bad(
            "version", f"version {data.get('version')!r} is not supported (expected {VERSION})"
        )
    product = data.get("product")
    if not isinstance(product, str) or not product:
        raise bad("product", "missing or not a string")
    kind = data.get("kind")
    if kind not in ("logreg", "centroid"):
        raise bad("kind", f"{kind!r} is not 'logreg' or 'centroid'")
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
    nf, nc = len(FEATURE_NAMES), len(classes)

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
    return Model(
        product=product,
        kind=kind,
        classes=tuple(classes),
        feature_names=tuple(names),
        means=array("means", (nf,)),
        scales=scales,
        weights=array("weights", (nc, nf)),
        bias=array("bias", (nc,)),
        info=info if isinstance(info, dict) else {},
    )


def _softmax(logits: Floats) -> Floats:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: Floats = e / e.sum(axis=1, keepdims=True)
    return out


def _fit_logreg(z: Floats, y: npt.NDArray[np.intp], nc: int, l2: float) -> tuple[Floats, Floats]:
    """Class-balanced multinomial logistic regression by Nesterov-accelerated descent."""
    n, nf = z.shape
    counts = np.bincount(y, minlength=nc).astype(np.float64)
    sample_w = (n / (nc * np.maximum(counts, 1.0)))[y] / n
    onehot = np.eye(nc)[y]
    xb = np.hstack([z, np.ones((n, 1))])
    # Lipschitz bound of the gradient: 1/2 the largest eigenvalue of the weighted Gram.
    lip = 0.5 * float(np.linalg.eigvalsh((xb * sample_w[:, None]).T @ xb).max()) + l2
    step = 1.0 / lip
    w = np.zeros((nf + 1, nc))
    v = w.copy()
    penalty = np.ones((nf + 1, 1))
    penalty[-1] = 0.0  # no penalty on the bias
    for t in range(ITERATIONS):
        p = _softmax(xb @ v)
        grad = xb.T @ ((p - onehot) * sample_w[:, None]) + l2 * penalty * v
        w_next = v - step * grad
        v = w_next + (t / (t + 3)) * (w_next - w)
        w = w_next
    return w[:-1].T.copy(), w[-1].copy()


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
) -> Model:
    means, scales = standardisation(x)
    z = (x - means) / scales
    nc = len(classes)
    w, b = _fit_logreg(z, y, nc, l2) if kind == "logreg" else _fit_centroid(z, y, nc)
    info: dict[str, Any] = {"photos": {c: int((y == i).sum()) for i, c in enumerate(classes)}}
    if kind == "logreg":
        info["l2"] = l2
    return Model(product, kind, classes, FEATURE_NAMES, means, scales, w, b, info)


def macro_f1(y: npt.NDArray[np.intp], pred: npt.NDArray[np.intp], nc: int) -> float:
    f1s = []
    for c in range(nc):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0)
    return float(np.mean(f1s))


def _folds(y: npt.NDArray[np.intp], k: int) -> npt.NDArray[np.intp]:
    """Deterministic stratified fold numbers: each class dealt round-robin, in order."""
    fold = np.zeros(len(y), np.intp)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def calibrate(x: Floats, y: npt.NDArray[np.intp], classes: tuple[str, ...], product: str) -> Model:
    """Fit every candidate, keep the best by cross-validated macro-F1, refit on all photos.

    Candidates: the nearest class mean, and logistic regression with each L2 strength in
    L2_CHOICES. Folds are stratified and deterministic, so the same photos give the same
    model. Ties go to the simpler candidate (the earlier one).
    """
    nc = len(classes)
    k = int(min(FOLDS, np.bincount(y, minlength=nc).min()))
    fold = _folds(y, k)
    logreg: Kind = "logreg"
    candidates: list[tuple[Kind, float]] = [("centroid", 0.0), *((logreg, v) for v in L2_CHOICES)]
    scores: dict[str, float] = {}
    best: tuple[float, Kind, float] | None = None
    for kind, l2 in candidates:
        pred = np.zeros(len(y), np.intp)
        for f in range(k):
            train, test = fold != f, fold == f
            m = fit(x[train], y[train], classes, product, kind, l2)
            pred[test] = np.argmax(m.logits(x[test]), axis=1)
        score = macro_f1(y, pred, nc)
        scores[kind if kind == "centroid" else f"logreg_l2_{l2:g}"] = round(score, 4)
        if best is None or score > best[0] + 1e-9:
            best = (score, kind, l2)
    assert best is not None
    model = fit(x, y, classes, product, best[1], best[2])
    model.info["cv_folds"] = k
    model.info["cv_macro_f1"] = scores
    return model


def explain(model: Model, x: Floats, best: int, top: int = 3) -> tuple[Decision, ...]:
    """The features that pushed the photo towards class ``best`` most (over the runner-up)."""
    z = model.standardise(x)
    logits = model.logits(x)[0]
    order = np.argsort(-logits)
    other = int(order[1]) if int(order[0]) == best else int(order[0])
    if model.kind == "logreg":
        contrib = (model.weights[best] - model.weights[other]) * z
    else:
        contrib = 0.5 * ((z - model.weights[other]) ** 2 - (z - model.weights[best]) ** 2)
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
