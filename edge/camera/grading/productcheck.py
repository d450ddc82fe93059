"""The product check: does this photo look like the lot's product at all?

A grader trained on bananas grades anything it is shown: a photo of potatoes gets a
banana grade instead of a refusal. At calibration a second, cheap classifier learns
"this product" against the other products' calibration photos: a class-balanced
multinomial logistic regression on the same standardised features whose classes are
the product's grades and each other product's grades (a product is no convex blob in
feature space: green, yellow and black bananas surround a brown potato, so one line
between "banana" and "not banana" let half the potatoes through), and the product's
probability is the sum of its grades'. The threshold is chosen from out-of-fold
probabilities (folds that keep photo groups whole) so that (nearly) no calibration
photo of the product itself is refused: the product's photos' MISS_QUANTILE, within
MIN_THRESHOLD .. MAX_THRESHOLD. A photo below the threshold is declined as not the
product.

It is stored inside the model file (``check``, ``check_threshold``, ``check_others``);
a model calibrated without other products' photos has none, and grading then relies
on the rules' shape and colour ranges alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

L2 = 0.003
ITERATIONS = 1000
MISS_QUANTILE = 0.01  # the share of the product's own photos the threshold may refuse
MAX_THRESHOLD = 0.5
MIN_THRESHOLD = 0.01


@dataclass(frozen=True)
class ProductCheck:
    """The trained check. ``weights`` (classes, features) and ``bias`` (classes,) of a
    multinomial model whose first ``own`` classes are the product's grades; or, with
    ``own`` 0, a binary model (``weights`` (features,), ``bias`` a number: the logit of
    "the product")."""

    means: Floats
    scales: Floats
    weights: Floats
    bias: Floats | float
    threshold: float  # below it: not the product
    others: tuple[str, ...]  # the products it was trained against
    own: int = 0

    def probability(self, x: Floats) -> Floats:
        """The probability that each photo (rows of features, or one vector) shows the
        product; a 0-d array for one vector."""
        z = np.atleast_2d((np.asarray(x, np.float64) - self.means) / self.scales)
        if self.own == 0:
            out: Floats = 1.0 / (1.0 + np.exp(-np.clip(z @ self.weights + self.bias, -50, 50)))
        else:
            p = softmax(z @ self.weights.T + self.bias)
            out = p[:, : self.own].sum(axis=1)
        return out[0] if np.ndim(x) == 1 else out

    def to_json(self) -> dict[str, Any]:
        def r(v: Floats | float) -> list[float]:
            return [float(f"{a:.6g}") for a in np.asarray(v, np.float64).ravel()]

        weights = np.asarray(self.weights)
        return {
            "means": r(self.means),
            "scales": r(self.scales),
            "weights": r(weights) if self.own == 0 else [r(row) for row in weights],
            "bias": r(self.bias)[0] if self.own == 0 else r(self.bias),
            "own": self.own,
        }


def softmax(logits: Floats) -> Floats:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: Floats = e / e.sum(axis=1, keepdims=True)
    return out


def fit_multinomial(
    z: Floats, y: npt.NDArray[np.intp], nc: int, l2: float = L2, iterations: int = ITERATIONS
) -> tuple[Floats, Floats]:
    """Class-balanced multinomial logistic regression on standardised rows ``z``, by
    Nesterov-accelerated gradient descent; weights (classes, features) and bias. The
    grading model's logistic candidates are fitted by it too (model.py)."""
    n, nf = z.shape
    counts = np.bincount(y, minlength=nc).astype(np.float64)
    sw = (n / (nc * np.maximum(counts, 1.0)))[y] / n
    onehot = np.eye(nc)[y]
    xb = np.hstack([z, np.ones((n, 1))])
    # The gradient's Lipschitz constant: the largest eigenvalue of xb' diag(sw) xb, found
    # on the smaller of that and its n x n twin (the same nonzero eigenvalues): with an
    # embedding of 1280 numbers and a few dozen photos, the twin is far smaller.
    a = xb * np.sqrt(sw)[:, None]
    gram = a @ a.T if n < nf + 1 else a.T @ a
    lip = 0.5 * float(np.linalg.eigvalsh(gram).max()) + l2
    step = 1.0 / lip
    w = np.zeros((nf + 1, nc))
    v = w.copy()
    penalty = np.ones((nf + 1, 1))
    penalty[-1] = 0.0
    for i in range(iterations):
        grad = xb.T @ ((softmax(xb @ v) - onehot) * sw[:, None]) + l2 * penalty * v
        w_next = v - step * grad
        v = w_next + (i / (i + 3)) * (w_next - w)
        w = w_next
    return w[:-1].T.copy(), w[-1].copy()


def _standardisation(x: Floats) -> tuple[Floats, Floats]:
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    return means, np.where(scales > 1e-9, scales, 1.0)


@dataclass(frozen=True)
class CheckResult:
    check: ProductCheck
    oof_accuracy: float  # out-of-fold, at the chosen threshold, both sides weighing the same
    oof_refused_own: float  # share of the product's own photos refused out of fold
    oof_accepted_others: float  # share of the other products' photos let through


def train_check(
    own: Floats,
    own_labels: Sequence[int],
    others: Floats,
    other_labels: Sequence[int],
    folds: Sequence[int],
    other_names: Sequence[str],
) -> CheckResult:
    """Fit the check on the product's feature rows ``own`` (its grades ``own_labels``,
    0..k-1) against ``others`` (their classes ``other_labels``, 0..m-1: each other
    product's grades); ``folds`` gives a fold per row of ``own`` then ``others``
    (groups kept whole)."""
    k = int(max(own_labels)) + 1
    x = np.vstack([own, others])
    y = np.concatenate([np.asarray(own_labels, np.intp), k + np.asarray(other_labels, np.intp)])
    nc = int(y.max()) + 1
    is_own = y < k
    fold = np.asarray(folds, np.intp)
    oof = np.zeros(len(y))
    for f in np.unique(fold):
        train, test = fold != f, fold == f
        means, scales = _standardisation(x[train])
        w, b = fit_multinomial((x[train] - means) / scales, y[train], nc)
        p = softmax(((x[test] - means) / scales) @ w.T + b)
        oof[test] = p[:, :k].sum(axis=1)
    own_p = oof[is_own]
    threshold = float(np.clip(np.quantile(own_p, MISS_QUANTILE), MIN_THRESHOLD, MAX_THRESHOLD))
    refused_own = float((own_p < threshold).mean())
    accepted_others = float((oof[~is_own] >= threshold).mean())
    means, scales = _standardisation(x)
    w, b = fit_multinomial((x - means) / scales, y, nc)
    names = tuple(sorted(set(other_names)))
    check = ProductCheck(means, scales, w, b, threshold, names, own=k)
    accuracy = 1.0 - 0.5 * (refused_own + accepted_others)
    return CheckResult(check, accuracy, refused_own, accepted_others)


def check_from_json(
    data: Any, threshold: Any, others: Any, nf: int, bad: Any
) -> ProductCheck | None:
    """The check stored in a model file (``None`` when the file has none); ``bad(key,
    reason)`` makes the error that names what is wrong."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise bad("check", "not an object")

    def array(key: str, ndim: int) -> Floats:
        try:
            arr = np.asarray(data.get(key), np.float64)
        except (TypeError, ValueError):
            raise bad(f"check.{key}", "not a list of numbers") from None
        if arr.ndim != ndim or not np.all(np.isfinite(arr)):
            raise bad(f"check.{key}", "needs finite numbers")
        return arr

    means = array("means", 1)
    if means.shape != (nf,):
        raise bad("check.means", f"needs {nf} finite numbers (one per feature)")
    scales = array("scales", 1)
    if scales.shape != (nf,) or np.any(scales <= 0):
        raise bad("check.scales", f"needs {nf} positive numbers (one per feature)")
    own = data.get("own", 0)
    binary = own == 0
    weights, bias = array("weights", 1 if binary else 2), array("bias", 0 if binary else 1)
    if binary:
        if weights.shape != (nf,):
            raise bad("check.weights", f"needs {nf} finite numbers (one per feature)")
    elif weights.shape[1:] != (nf,) or bias.shape != (weights.shape[0],):
        raise bad("check.weights", "shape does not match (classes x features, bias per class)")
    if not isinstance(own, int) or not 0 <= own < max(len(weights), 1):
        raise bad("check.own", "needs the number of the product's classes (0: binary)")
    if not isinstance(threshold, int | float) or not 0.0 <= threshold < 1.0:
        raise bad("check_threshold", "needs a number from 0 up to (not including) 1")
    if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
        raise bad("check_others", "needs a list of product names")
    return ProductCheck(
        means,
        scales,
        weights,
        float(bias) if binary else bias,
        float(threshold),
        tuple(others),
        own=own,
    )
