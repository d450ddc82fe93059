"""A fixed-length feature vector of the produce in a photo, for the learned grader.

The features describe the produce pixels only (colour, colour classes, spots, shape),
never the background or the photo's size, so that a model learns the produce and not
the camera. The produce is found by :func:`foreground`, a plain-background extraction
that works the same on a station's tray photo and on a photo of produce on paper or a
table, so a model calibrated from a cooperative's photos sees the same kind of mask
when it grades at the station:

1. The photo is resized to FEATURE_SIDE pixels on its long side (sizes in pixels and
   the camera's resolution drop out).
2. Near-black padding connected to the border (a rotated copy's corners) is void.
3. The background's colour is a smooth quadratic field fitted to the border strip
   (light gradients, vignetting), refitted without border pixels far from the fit
   (produce reaching the edge).
4. A pixel is produce when its CIE Lab distance to that field, with lightness
   weighted by LIGHTNESS_WEIGHT (shadows), exceeds FOREGROUND_DELTA_E; small
   specks are removed, small holes (spots the colour of the background) filled,
   and the ArUco marker with its white surround is never produce.

The colours are then divided by the light's strength (:func:`balance`): where the
background is near neutral (tray, paper), it serves as a grey card for the exposure
and the light's gradient; not for its colour (that would write the backdrop's tint
into the produce; calibration shows the model white-balance-altered copies instead).
Everything here is a pure function of the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading.embed import produce_view
from edge.camera.grading.measure import Marker, WorkImage
from edge.camera.grading.quality import Declined, Reason

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]

FEATURE_SIDE = 256  # the long side features are computed at, in pixels
BORDER_SHARE = 0.04  # the border strip that shows the background: 4 % of the long side
VOID_LEVEL = 10  # padding: every channel at or below this, connected to the border
FOREGROUND_DELTA_E = 15.0  # produce differs from the background by more than this
LIGHTNESS_WEIGHT = 0.4  # lightness counts this much in a colour difference (shadows)
BACKGROUND_NEAR_DELTA_E = 12.0  # border pixels this close to its dominant colour
BACKGROUND_FIT_DELTA_E = 8.0  # border pixels this close to the fitted field are background
MIN_PRODUCE_SHARE = 0.015  # less produce than this share of the photo: none found
MAX_HOLE_SHARE = 0.01  # holes up to this share of the photo are filled (spots, not gaps)
NEUTRAL_CHROMA = 18.0  # a background this close to grey is taken as neutral
BALANCE_GREY = 200.0  # a neutral background is scaled to this grey (as the tray is)
DARK_RATIO = 0.6  # a pixel darker than this times the produce's median L* is a dark spot
VERY_DARK_RATIO = 0.4
CLIPPED_LEVEL = 250  # a pixel with two channels at or above this is clipped (a saturated
# yellow legitimately has one channel at 255)
MAX_CLIPPED_SHARE = 0.25  # more of the produce clipped than this: overexposed
MIN_BRIGHTEST_L = 35.0  # even the brightest 1 % of the photo darker than this: underexposed
BACKGROUND_MARGIN = 9  # pixels round the produce (at FEATURE_SIDE) left out of the backdrop

# Hue bands in degrees (OpenCV's full-range HSV), for pixels with some saturation.
HUE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("red", 345.0, 15.0),
    ("orange", 15.0, 40.0),
    ("yellow", 40.0, 65.0),
    ("lime", 65.0, 90.0),
    ("green", 90.0, 170.0),
    ("blue", 170.0, 345.0),
)
SATURATED = 0.18  # HSV saturation above this has a hue worth counting

FEATURE_NAMES: tuple[str, ...] = (
    "lab_l_mean",
    "lab_a_mean",
    "lab_b_mean",
    "lab_l_std",
    "lab_a_std",
    "lab_b_std",
    "lab_l_p10",
    "lab_l_p90",
    "chroma_mean",
    "hue_angle_cos",
    "hue_angle_sin",
    *(f"hue_share_{name}" for name, _, _ in HUE_BANDS),
    "grey_share",
    "dark_share",
    "very_dark_share",
    "brown_share",
    "green_share",
    "yellow_share",
    "spot_contrast",
    "edge_density",
    "elongation",
    "solidity",
)


# The background control leaves out the shape figures: the outline of everything that
# is not produce is the produce's own outline, not the backdrop.
CONTROL_FEATURES: tuple[int, ...] = tuple(
    i for i, n in enumerate(FEATURE_NAMES) if n not in ("elongation", "solidity")
)


@dataclass(frozen=True)
class Features:
    """The feature vector of one photo and the produce mask it came from."""

    vector: Floats  # len(FEATURE_NAMES), float64
    mask: Mask  # produce pixels at feature resolution
    scale: float  # feature-resolution pixels per photo pixel
    view: Image  # the produce alone, for the pretrained network (embed.produce_view)

    def named(self) -> dict[str, float]:
        return {f"feature_{n}": float(v) for n, v in zip(FEATURE_NAMES, self.vector, strict=True)}


def resize_for_features(bgr: Image) -> tuple[Image, float]:
    h, w = bgr.shape[:2]
    scale = FEATURE_SIDE / max(h, w)
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cast(Image, cv2.resize(bgr, size, interpolation=interp)), scale


def to_lab(bgr: Image) -> npt.NDArray[np.float32]:
    """CIE L*a*b* in real units (L 0..100, a and b signed)."""
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    return np.asarray(lab, np.float32)


def void_mask(bgr: Image) -> Mask:
    """Near-black padding connected to the border (the corners of a rotated copy)."""
    dark = (cv2.inRange(bgr, (0, 0, 0), (VOID_LEVEL,) * 3) > 0).astype(np.uint8)
    if not dark.any():
        return np.zeros(bgr.shape[:2], np.bool_)
    _, labels = cv2.connectedComponents(dark, connectivity=4)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touching = np.unique(edge[edge > 0])
    # The padding's edge is a blend of padding and photo: void too.
    grown = cv2.dilate(np.isin(labels, touching).astype(np.uint8), np.ones((5, 5), np.uint8))
    out: Mask = grown > 0
    return out


def border_mask(shape: tuple[int, int]) -> Mask:
    h, w = shape
    b = max(round(BORDER_SHARE * max(h, w)), 2)
    m = np.zeros((h, w), np.bool_)
    m[:b], m[-b:], m[:, :b], m[:, -b:] = True, True, True, True
    return m


def background_field(lab: npt.NDArray[np.float32], void: Mask) -> npt.NDArray[np.float32]:
    """Two estimates of the background's Lab colour at every pixel, stacked.

    The border strip (along padding: the strip next to it, the original photo's edge)
    shows the background, and produce where it reaches the edge. The flat estimate is
    the border's dominant colour (its median, re-taken over the pixels near it). The
    field is a smooth quadratic fitted to the border pixels near that colour (a light
    gradient, vignetting), refitted without those far from the fit; when under half the
    border fits it, the field is the flat colour.
    """
    h, w = void.shape
    border = border_mask((h, w))
    if void.any():
        strip = max(round(BORDER_SHARE * max(h, w)), 2)
        grown = cv2.dilate(void.astype(np.uint8), np.ones((2 * strip + 1,) * 2, np.uint8))
        border = border | (grown > 0)
    border &= ~void
    if border.sum() < 0.1 * border_mask((h, w)).sum():
        border = border_mask((h, w))  # all padding: the padding is the background
    b = lab[border]
    flat = _median(b)
    for _ in range(3):
        near = _distance(b, flat) < BACKGROUND_NEAR_DELTA_E
        if near.sum() < 12:
            break
        flat = _median(b[near])
    flat_img = np.broadcast_to(flat.astype(np.float32), lab.shape)
    xs = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    ys = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    rows, cols = np.nonzero(border)
    bx, by = xs[0, cols], ys[rows, 0]
    a = np.stack([np.ones_like(bx), bx, by, bx * bx, bx * by, by * by], axis=-1)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    keep = _distance(b, flat) < 2 * BACKGROUND_NEAR_DELTA_E
    for _ in range(3):
        if keep.sum() < 0.5 * len(b):
            return np.stack([flat_img, flat_img])
        coef = _least_squares(a64[keep], b64[keep])
        keep = _distance((a64 @ coef).astype(np.float32), b) < BACKGROUND_FIT_DELTA_E
    if keep.sum() < 0.5 * len(b):
        return np.stack([flat_img, flat_img])
    # The quadratic at every pixel: the terms of x alone per column, of y alone per row,
    # and the one cross term, so only two passes run over the whole image.
    c = coef.astype(np.float32)
    x1, y1 = xs[0][:, None], ys[:, 0][:, None]
    by_col = c[0] + x1 * c[1] + x1 * x1 * c[3]  # (w, 3)
    by_row = y1 * c[2] + y1 * y1 * c[5]  # (h, 3)
    out = np.empty((2, h, w, 3), np.float32)
    field = out[0]
    np.multiply((ys * xs)[..., None], c[4], out=field)
    field += by_row[:, None, :]
    field += by_col[None, :, :]
    np.clip(field[..., 0], 0.0, 100.0, out=field[..., 0])
    out[1] = flat
    return out


def _median(px: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The median of each channel of ``px`` (pixels x 3); channel-major, as the median of
    a column is several times slower."""
    return np.asarray(np.median(np.ascontiguousarray(px.T), axis=1), np.float32)


def _least_squares(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> Floats:
    """The coefficients minimising |a @ coef - b| (a: pixels x 6 basis terms), by the
    6 x 6 normal equations in float64: a few times faster than an SVD of ``a`` (cv2.solve),
    which the station paid three times a photo; on a border strip the basis is well
    conditioned, and the features came out the same on grading-dev)."""
    gram = a.T @ a + 1e-9 * np.eye(a.shape[1])
    return np.asarray(np.linalg.solve(gram, a.T @ b), np.float64)


def _distance(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Colour difference with lightness weighted by LIGHTNESS_WEIGHT (shadows, vignetting)."""
    d = np.subtract(x, y, dtype=np.float32)
    np.square(d, out=d)
    # Channel by channel: numpy's sum over a last axis of 3 is several times slower.
    out: npt.NDArray[np.float32] = d[..., 0] * np.float32(LIGHTNESS_WEIGHT**2)
    out += d[..., 1]
    out += d[..., 2]
    return np.sqrt(out, out=out)


def marker_mask(marker: Marker, scale: float, shape: tuple[int, int]) -> Mask:
    """The marker and its white quiet zone (1.6x the marker), at feature resolution."""
    pts = (np.asarray(marker.corners, np.float32) + 0.5) * scale - 0.5
    centre = pts.mean(axis=0)
    grown = (centre + (pts - centre) * 1.6).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, grown, 1)
    out: Mask = m > 0
    return out


def foreground(
    bgr: Image, lab: npt.NDArray[np.float32], exclude: Mask | None = None
) -> tuple[Mask, Mask, npt.NDArray[np.float32]]:
    """Produce mask, void mask and the background's colour estimates (see
    :func:`background_field`) of a feature-resolution photo."""
    void = void_mask(bgr)
    fields = background_field(lab, void)
    dist = np.minimum(_distance(lab, fields[0]), _distance(lab, fields[1]))
    dist = np.asarray(cv2.medianBlur(dist, 3), np.float32)
    fg: npt.NDArray[np.uint8] = ((dist > FOREGROUND_DELTA_E) & ~void).astype(np.uint8)
    if exclude is not None:
        fg[exclude] = 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    fg = np.asarray(cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel), np.uint8)
    fg = np.asarray(cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel, iterations=2), np.uint8)
    h, w = fg.shape
    area = fg.size
    # Small holes inside produce (spots the background's colour) belong to it.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(1 - fg, connectivity=4)
    x, y, bw, bh, a = (stats[:, i] for i in range(5))
    hole = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h) & (a <= MAX_HOLE_SHARE * area)
    hole[0] = False  # label 0: the produce itself
    fg[hole[labels]] = 1
    _, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= 0.3 * MIN_PRODUCE_SHARE * area
    big[0] = False
    mask: Mask = big[labels]
    if exclude is not None:
        mask &= ~exclude
    return mask, void, fields


def balance(bgr: Image, fields: npt.NDArray[np.float32]) -> Image:
    """Divide out the light's strength: where the background is near neutral (a tray,
    paper), every channel of each pixel is scaled by one gain so that the background's
    lightness there becomes BALANCE_GREY's, as a grey card's would: the exposure and the
    light's gradient (vignetting, a lamp to one side) do not reach the features.

    The gain is the same for the three channels. Dividing each channel by the
    background's (a full white balance) would write the backdrop's tint into the
    produce's colour: potatoes on yellowish paper came out bluer than the same potatoes
    on white, and a model learnt the paper (measured on grading-dev: the background-only
    control fell from 0.90 to 0.80 and the produce's group-aware macro-F1 rose from 0.947
    to 0.965 when the gain became one per pixel). The light's colour is left to the
    calibration's white-balance copies (augment.py). A coloured background gives no
    reference at all: the photo is left as it is."""
    flat = fields[1, 0, 0]
    if math.hypot(float(flat[1]), float(flat[2])) > NEUTRAL_CHROMA:
        return bgr
    light = cv2.cvtColor(np.ascontiguousarray(fields[0]), cv2.COLOR_Lab2BGR) * 255.0
    grey = ((light[..., 0] + light[..., 1] + light[..., 2]) / 3.0)[..., None]
    gains = BALANCE_GREY / np.maximum(grey, 8.0)
    return cast(Image, cv2.convertScaleAbs(bgr.astype(np.float32) * gains))


def region_features(bgr: Image, lab: npt.NDArray[np.float32], region: Mask) -> Floats | None:
    """The feature vector (FEATURE_NAMES order) of the pixels in ``region``.

    ``lab`` is the Lab image of ``bgr`` (both balanced, see :func:`balance`). Shape
    figures describe the region's largest part. ``None`` when the region is empty.
    """
    n = int(region.sum())
    if n < 10:
        return None
    px = lab[region].astype(np.float64)
    L, a, b = px[:, 0], px[:, 1], px[:, 2]
    chroma = np.hypot(a, b)
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV_FULL)[region].astype(np.float64)
    hue = hsv[:, 0] * (360.0 / 256.0)
    sat, val = hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    coloured = sat > SATURATED
    hue_shares = []
    for _, lo, hi in HUE_BANDS:
        inside = (hue >= lo) & (hue < hi) if lo < hi else (hue >= lo) | (hue < hi)
        hue_shares.append(float((inside & coloured).sum()) / n)
    med_l = float(np.median(L))
    dark = med_l * DARK_RATIO > L
    very_dark = med_l * VERY_DARK_RATIO > L
    brown = coloured & (hue >= 10) & (hue < 50) & (val < 0.55)
    green = coloured & (hue >= 70) & (hue < 170)
    yellow = coloured & (hue >= 40) & (hue < 70) & (val >= 0.55)
    sound = ~dark
    spot_contrast = (
        (float(L[sound].mean()) - float(L[dark].mean())) / 100.0
        if dark.any() and sound.any()
        else 0.0
    )
    angle = math.atan2(float(b.mean()), float(a.mean()))
    shape = _shape(region)
    edges = _edge_density(lab[..., 0], region)
    return np.array(
        [
            L.mean(),
            a.mean(),
            b.mean(),
            L.std(),
            a.std(),
            b.std(),
            np.percentile(L, 10),
            np.percentile(L, 90),
            chroma.mean(),
            math.cos(angle),
            math.sin(angle),
            *hue_shares,
            float((~coloured).sum()) / n,
            float(dark.sum()) / n,
            float(very_dark.sum()) / n,
            float(brown.sum()) / n,
            float(green.sum()) / n,
            float(yellow.sum()) / n,
            spot_contrast,
            edges,
            *shape,
        ],
        np.float64,
    )


def _edge_density(light: npt.NDArray[np.float32], region: Mask) -> float:
    """Share of the region's inner pixels on a strong lightness edge (spots, cuts, rot)."""
    inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not inner.any():
        return 0.0
    gx = cv2.Sobel(light, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(light, cv2.CV_32F, 0, 1)
    strong = cv2.magnitude(gx, gy) / 8.0 > 4.0  # 4 L* units per pixel
    return float((strong & inner).sum()) / float(inner.sum())


def _shape(region: Mask) -> tuple[float, float]:
    """Elongation and solidity of the region's largest part (how many items a photo
    holds says nothing of their quality, so it is not a feature)."""
    u8 = region.astype(np.uint8)
    contours, _ = cv2.findContours(u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 1.0, 1.0
    big = max(contours, key=cv2.contourArea)
    area = max(cv2.contourArea(big), 1.0)
    hull = max(cv2.contourArea(cv2.convexHull(big)), 1.0)
    (_, _), (w, h), _ = cv2.minAreaRect(big)
    elongation = max(w, h) / max(min(w, h), 1.0)
    return float(min(elongation, 10.0)), float(min(area / hull, 1.0))


def photo_features(work: WorkImage, marker: Marker | None = None) -> Features | Declined:
    """Features of the produce in a photo, or why the photo cannot give them.

    ``marker`` (the tray's ArUco marker, when found) is left out of the produce. The
    checks are on the produce, not the whole photo (a white background may clip, a
    dark one is fine): no produce found (``no_items``), over a quarter of the produce
    clipped to white or near it (``overexposed``), or the whole photo dark
    (``underexposed``). Blur is not checked: at FEATURE_SIDE pixels a blur that spoils
    a size measurement barely changes the colours and spot shares the features hold.
    """
    return produce_and_background(work.full, marker, with_background=False)[0]


def produce_and_background(
    bgr: Image, marker: Marker | None = None, with_background: bool = True
) -> tuple[Features | Declined, Floats | None, Image | None]:
    """:func:`photo_features` and :func:`background_features` (``None`` unless
    ``with_background``) of one photo from one produce mask (calibration needs both;
    the mask is most of the cost), and the backdrop's view for the pretrained network
    (the produce and its margin grey; ``None`` unless ``with_background``): the
    control's input."""
    small, scale = resize_for_features(bgr)
    lab = to_lab(small)
    exclude = None if marker is None else marker_mask(marker, scale, small.shape[:2])
    mask, void, fields = foreground(small, lab, exclude)
    balanced = balance(small, fields)
    balanced_lab = to_lab(balanced)
    # Everything but the produce, a margin round it (its blurred edge, its shadow) and
    # the padding: the backdrop alone.
    near = cv2.dilate(mask.astype(np.uint8), np.ones((BACKGROUND_MARGIN,) * 2, np.uint8)) > 0
    rest = ~near & ~void
    if exclude is not None:
        rest &= ~exclude
    background = region_features(balanced, balanced_lab, rest) if with_background else None
    backdrop = produce_view(balanced, rest) if with_background else None
    usable = max(int((~void).sum()), 1)
    share = float(mask.sum()) / usable
    if share < MIN_PRODUCE_SHARE:
        return Declined.of(Reason.NO_ITEMS, produce_share=share), background, backdrop
    clipped = float(((small[mask] >= CLIPPED_LEVEL).sum(axis=1) >= 2).mean())
    if clipped > MAX_CLIPPED_SHARE:
        return Declined.of(Reason.OVEREXPOSED, clipped_share=clipped), background, backdrop
    p99 = float(np.percentile(lab[..., 0][~void], 99)) if (~void).any() else 0.0
    if p99 < MIN_BRIGHTEST_L:
        return Declined.of(Reason.UNDEREXPOSED, lightness_p99=p99), background, backdrop
    vector = region_features(balanced, balanced_lab, mask)
    if vector is None:
        return Declined.of(Reason.NO_ITEMS, produce_share=share), background, backdrop
    return Features(vector, mask, scale, produce_view(balanced, mask)), background, backdrop


def background_features(work: WorkImage) -> Floats | None:
    """The same figures computed on everything that is NOT produce (nor padding, nor the
    marker).

    Not used for grading: a check that a model's skill comes from the produce. A model
    that grades as well from these (the CONTROL_FEATURES of them) as from
    :func:`photo_features` learned the camera.
    """
    return produce_and_background(work.full)[1]
