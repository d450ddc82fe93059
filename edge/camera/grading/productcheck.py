"""The product check: does this photo look like the lot's product at all?

A grader trained on bananas grades anything it is shown: a photo of potatoes gets a
banana grade instead of a refusal. At calibration a second, cheap classifier learns
"this product" against the other products' calibration photos (logistic regression on
the same standardised features, each side weighing the same), and its threshold is
chosen from out-of-fold probabilities (folds that keep photo groups whole) so that
(nearly) no calibration photo of the product itself is refused: the product's photo
at the MISS_QUANTILE of those probabilities, times THRESHOLD_MARGIN, and never above
MAX_THRESHOLD. A photo below the threshold is declined as not the product.

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

L2 = 0.03
ITERATIONS = 800
MISS_QUANTILE = 0.005  # the share of the product's own photos the threshold may refuse
THRESHOLD_MARGIN = 0.8
MAX_THRESHOLD = 0.5
MIN_THRESHOLD = 0.01


@dataclass(frozen=True)
class ProductCheck:
    means: Floats
    scales: Floats
    weights: Floats  # (features,)
    bias: float
    threshold: float  # below it: not the product
    others: tuple[str, ...]  # the products it was trained against

    def probability(self, x: Floats) -> Floats:
        """The probability that each photo (rows of features, or one vector) shows the
        product; a 0-d array for one vector."""
        z = (np.asarray(x, np.float64) - self.means) / self.scales
        out: Floats = _sigmoid(z @ self.weights + self.bias)
        return out

    def to_json(self) -> dict[str, Any]:
        def r(v: Floats) -> list[float]:
            return [float(f"{a:.6g}") for a in np.asarray(v, np.float64).ravel()]

        return {
            "means": r(self.means),
            "scales": r(self.scales),
            "weights": r(self.weights),
            "bias": float(f"{self.bias:.6g}"),
        }


def _sigmoid(t: Floats) -> Floats:
    out: Floats = 1.0 / (1.0 + np.exp(-np.clip(t, -50.0, 50.0)))
    return out


def fit_binary(z: Floats, t: npt.NDArray[np.intp], l2: float = L2) -> tuple[Floats, float]:
    """Class-balanced binary logistic regression on standardised rows ``z`` (labels 0/1),
    by Nesterov-accelerated gradient descent; weights and bias."""
    n, nf = z.shape
    counts = np.bincount(t, minlength=2).astype(np.float64)
    sw = (n / (2.0 * np.maximum(counts, 1.0)))[t] / n
    xb = np.hstack([z, np.ones((n, 1))])
    lip = 0.25 * float(np.linalg.eigvalsh((xb * sw[:, None]).T @ xb).max()) + l2
    step = 1.0 / lip
    w = np.zeros(nf + 1)
    v = w.copy()
    penalty = np.ones(nf + 1)
    penalty[-1] = 0.0
    for i in range(ITERATIONS):
        grad = xb.T @ ((_sigmoid(xb @ v) - t) * sw) + l2 * penalty * v
        w_next = v - step * grad
        v = w_next + (i / (i + 3)) * (w_next - w)
        w = w_next
    return w[:-1].copy(), float(w[-1])


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
    others: Floats,
    folds: Sequence[int],
    other_names: Sequence[str],
) -> CheckResult:
    """Fit the check on the product's feature rows ``own`` against ``others``; ``folds``
    gives a fold per row of ``own`` then ``others`` (groups kept whole)."""
    x = np.vstack([own, others])
    t = np.concatenate([np.ones(len(own), np.intp), np.zeros(len(others), np.intp)])
    fold = np.asarray(folds, np.intp)
    oof = np.zeros(len(t))
    for f in np.unique(fold):
        train, test = fold != f, fold == f
        if len(np.unique(t[train])) < 2:
            oof[test] = 0.5
            continue
        means, scales = _standardisation(x[train])
        w, b = fit_binary((x[train] - means) / scales, t[train])
        oof[test] = _sigmoid(((x[test] - means) / scales) @ w + b)
    own_p = oof[t == 1]
    threshold = float(np.quantile(own_p, MISS_QUANTILE)) * THRESHOLD_MARGIN
    threshold = float(np.clip(threshold, MIN_THRESHOLD, MAX_THRESHOLD))
    refused_own = float((own_p < threshold).mean())
    accepted_others = float((oof[t == 0] >= threshold).mean())
    means, scales = _standardisation(x)
    w, b = fit_binary((x - means) / scales, t)
    check = ProductCheck(means, scales, w, b, threshold, tuple(sorted(set(other_names))))
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
    arrays = {}
    for key, shape in (("means", (nf,)), ("scales", (nf,)), ("weights", (nf,))):
        try:
            arr = np.asarray(data.get(key), np.float64)
        except (TypeError, ValueError):
            raise bad(f"check.{key}", "not a list of numbers") from None
        if arr.shape != shape or not np.all(np.isfinite(arr)):
            raise bad(f"check.{key}", f"needs {shape[0]} finite numbers")
        arrays[key] = arr
    if np.any(arrays["scales"] <= 0):
        raise bad("check.scales", "a scale is zero or negative")
    bias = data.get("bias")
    if not isinstance(bias, int | float) or not np.isfinite(bias):
        raise bad("check.bias", "not a finite number")
    if not isinstance(threshold, int | float) or not 0.0 <= threshold < 1.0:
        raise bad("check_threshold", "needs a number from 0 up to (not including) 1")
    if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
        raise bad("check_others", "needs a list of product names")
    return ProductCheck(
        arrays["means"],
        arrays["scales"],
        arrays["weights"],
        float(bias),
        float(threshold),
        tuple(others),
    )
