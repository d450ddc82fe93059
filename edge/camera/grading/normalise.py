"""Light and colour normalisation: flatten the lighting, make the tray neutral grey, and
(with the marker's white surround as a reference) recover true colours.

All functions take the work image (or its rectified view) and return new arrays.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading.image import Image, Mask

TRAY_TARGET = 200.0  # the tray is normalised to this neutral grey (each of B, G, R)
WHITE_TARGET = 235.0  # with a white reference, white is shown as this (each of B, G, R)

Field = npt.NDArray[np.float32]


def tray_field(small: Image, valid: Mask | None = None) -> tuple[Field, Field, float]:
    """Estimate the tray's colour at every pixel (a smooth quadratic field per channel).

    Tray candidates are the bright pixels of a 1/8-size thumbnail whose chromaticity is
    that of the dominant bright surface (the tray, whatever its tint or light); only
    thumbnail pixels wholly inside ``valid`` count. Returns the field at ``small``'s
    size, at thumbnail size, and the share of the (valid) thumbnail that was tray.
    """
    h, w = small.shape[:2]
    th, tw = max(h // 8, 8), max(w // 8, 8)
    thumb = cv2.resize(small, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    inside = np.ones((th, tw), bool)
    if valid is not None:
        inside = cv2.resize(valid, (tw, th), interpolation=cv2.INTER_AREA) >= 255
    lum = np.maximum(thumb.mean(axis=2), 1.0)
    chrom = thumb / lum[..., None]  # colour without brightness: immune to the light gradient
    ref_lum = float(np.percentile(lum[inside], 75)) if inside.any() else 1.0
    bright = (lum > 0.7 * ref_lum) & inside
    ref = np.median(chrom[bright], axis=0) if bright.any() else np.ones(3, np.float32)
    cand = bright & (np.abs(chrom - ref).max(axis=2) < 0.06)
    share = float(cand.sum()) / max(int(inside.sum()), 1)
    if cand.sum() < 12:
        level = float(np.median(thumb[inside].reshape(-1, 3), axis=0).mean())
        return (
            np.full((h, w, 3), level, np.float32),
            np.full((th, tw, 3), level, np.float32),
            share,
        )
    yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
    xx, yy = xx / tw - 0.5, yy / th - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1)
    a, b = basis[cand], thumb[cand]
    coef = _least_squares(a, b)
    # One pass of outlier removal: drop candidates far from the first fit.
    resid = np.abs(_apply(a, coef) - b).max(axis=1)
    keep = resid < max(6.0, float(np.percentile(resid, 90)))
    coef = _least_squares(a[keep], b[keep])
    low = _apply(basis.reshape(-1, 6), coef).reshape(th, tw, 3)
    full = np.asarray(cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    return full, low, share


def tray_colour(low: Field, valid: Mask | None = None) -> tuple[float, float, float]:
    """The tray's median colour (B, G, R) over the thumbnail field, within ``valid``."""
    px = low.reshape(-1, 3)
    if valid is not None:
        th, tw = low.shape[:2]
        inside = cv2.resize(valid, (tw, th), interpolation=cv2.INTER_AREA).reshape(-1) >= 255
        if inside.any():
            px = px[inside]
    tray = np.median(px, axis=0)
    return float(tray[0]), float(tray[1]), float(tray[2])


def _least_squares(a: Field, b: Field) -> Field:
    """Least-squares solution of a @ x = b by OpenCV (numpy's BLAS threads stall a busy Pi)."""
    _, x = cv2.solve(a, b, flags=cv2.DECOMP_SVD)
    return np.asarray(x, np.float32)


def _apply(a: Field, coef: Field) -> Field:
    out: Field = np.einsum("ij,jk->ik", a, coef).astype(np.float32)
    return out


def normalise(small: Image) -> tuple[Image, tuple[float, float, float], float]:
    """Flatten the lighting and remove the colour cast so the tray becomes neutral grey.

    Returns the normalised image, the tray's median colour before normalisation and
    the tray share of the image.
    """
    fld, low, share = tray_field(small)
    return flatten(small, fld), tray_colour(low), share


def flatten(small: Image, fld: Field) -> Image:
    """Divide out the tray field: the tray becomes TRAY_TARGET grey everywhere."""
    gain = TRAY_TARGET / np.maximum(fld, 1.0)
    return cast(Image, cv2.convertScaleAbs(cv2.multiply(small.astype(np.float32), gain)))


def white_balance(
    small: Image, fld: Field, quad: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32] | None:
    """Per-channel gains that turn the flattened image's colours into true ones.

    Flattening makes the tray neutral grey whatever its own colour; the marker's white
    surround (around ``quad``, the marker's corners in ``small``) is a known white, so
    the tray's real tint is the tray's colour over the white's, seen under the same
    light. ``None`` when the white is not usable (clipped, or not brighter than the tray).
    """
    pts = np.asarray(quad, np.float32)
    centre = pts.mean(axis=0)
    outer = centre + (pts - centre) * 1.24
    h, w = small.shape[:2]
    x0, y0 = (max(int(v), 0) for v in outer.min(axis=0))
    x1, y1 = (min(int(v) + 2, lim) for v, lim in zip(outer.max(axis=0), (w, h), strict=True))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    origin = np.array([x0, y0], np.float32)
    ring = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(ring, (outer - origin).astype(np.int32), 255)
    cv2.fillConvexPoly(ring, (centre + (pts - centre) * 1.08 - origin).astype(np.int32), 0)
    inside = ring > 0
    if inside.sum() < 50:
        return None
    white = np.median(small[y0:y1, x0:x1][inside], axis=0).astype(np.float32)
    tray = fld[y0:y1, x0:x1][inside].mean(axis=0)
    if white.max() >= 250 or np.any(white <= tray * 1.02):
        return None
    gains: npt.NDArray[np.float32] = (tray / white) * (WHITE_TARGET / TRAY_TARGET)
    return gains
