"""Pure measurement of a tray photo: normalise, segment, measure items and the lot.

Everything here is a function of the image (a BGR ``uint8`` array) and a few
numbers; no camera, no files. Work is done on a half-resolution copy (the
"work" image) to keep a 1280x960 photo well inside the time budget; lengths go
back to full-resolution pixels, then to millimetres when an ArUco marker of
known size (DICT_4X4_50) is on the tray.

Shares are fractions (0..1). Colours are reported as CIE L*a*b* (L 0..100,
a/b signed) and HSV (hue in degrees 0..360, saturation and value 0..1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Contour = npt.NDArray[np.int32]
ScaleSource = Literal["aruco", "pixels"]

WORK_SCALE = 2  # the work image is 1/WORK_SCALE of the photo on each side
TRAY_TARGET = 200.0  # the tray is normalised to this neutral grey (each of B, G, R)
WHITE_TARGET = 235.0  # with a white reference, white is shown as this (each of B, G, R)
MARKER_DICT = cv2.aruco.DICT_4X4_50
MARKER_ID = 0
MARKER_SQUARENESS = 0.06  # sides (and diagonals) may differ by this share: camera tilt
COLOUR_CLASSES = ("yellow", "green", "brown", "red", "pale", "other")
# A pixel may belong to an item when, after normalisation, its item_score (colourfulness,
# or darkness beyond a shadow's) exceeds this; see :func:`segment`.
ITEM_SCORE = 35
SHADOW_ALLOWANCE = 50  # of TRAY_TARGET's 200 grey levels: a 25 % darker tray is still tray
MIN_ITEM_WORK_PX = 150  # smaller blobs are crumbs or noise
SPLIT_BELOW_SOLIDITY = 0.96  # a blob less convex than this may be touching items
SPLIT_PEAK = 0.45  # an item's core: deeper than this share of the blob's deepest point
DARK_SPOT_RATIO = 0.6  # a pixel darker than this times the item's median L* is a dark spot


@dataclass(frozen=True)
class WorkImage:
    """A photo and its half-resolution working copy."""

    full: Image
    small: Image

    @staticmethod
    def of(bgr: npt.NDArray[Any]) -> WorkImage:
        """Wrap a BGR ``uint8`` photo (checked here, so any array type is accepted)."""
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError("expected a BGR uint8 image")
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, (w // WORK_SCALE, h // WORK_SCALE), interpolation=cv2.INTER_AREA)
        return WorkImage(cast(Image, bgr), cast(Image, small))

    @property
    def small_gray(self) -> Image:
        return cast(Image, cv2.cvtColor(self.small, cv2.COLOR_BGR2GRAY))


@dataclass(frozen=True)
class Marker:
    """The ArUco marker found on the tray, corners in full-resolution pixels."""

    corners: tuple[tuple[float, float], ...]
    side_px: float
    px_per_mm: float | None  # None when the size was not given or the marker is not square
    square: bool  # False: partly covered or badly distorted, so no scale from it


@dataclass(frozen=True)
class Item:
    """One item's measurements; sizes in ``unit`` (``mm`` with a marker, else ``px``)."""

    index: int
    unit: Literal["mm", "px"]
    length: float  # extent along the principal (long) axis of the outline
    width: float  # extent across it
    area: float  # mm² or px²
    centre_px: tuple[float, float]  # full-resolution pixels
    colour_class: str
    lab: tuple[float, float, float]  # mean L*, a*, b* of the sound (non-defect) area
    hue_deg: float  # median hue of the sound area
    saturation: float
    value: float
    dark_share: float  # dark spots, rot
    green_share: float  # greening (always 0 for a green item)
    defect_share: float
    elongation: float  # length / width
    solidity: float  # area / convex hull area
    circularity: float  # 4πA / P²
    at_edge: bool  # touches the photo's border: partly out of view, sizes too small


@dataclass(frozen=True)
class TrayMeasurement:
    """What a photo measured: the items, the scale and the estimated tray colour."""

    items: tuple[Item, ...]
    scale_source: ScaleSource
    px_per_mm: float | None
    marker: Marker | None
    tray_bgr: tuple[float, float, float]  # median tray colour before normalisation
    tray_share: float  # share of the photo that looked like tray
    # Colours are true colours when the marker's white surround served as the white
    # reference ("marker_white"); otherwise the tray is taken to be neutral grey ("tray").
    colour_reference: Literal["marker_white", "tray"]
    image_size: tuple[int, int]  # width, height of the photo

    @property
    def unit(self) -> Literal["mm", "px"]:
        return "mm" if self.scale_source == "aruco" else "px"

    def lot(self, weight_g: int | None = None) -> dict[str, float]:
        """Flat named measurements of the lot, for threshold rules (see :func:`lot_summary`)."""
        return lot_summary(self, weight_g)


def lot_summary(m: TrayMeasurement, weight_g: int | None = None) -> dict[str, float]:
    """Item count, count per kg, size spread and colour-class shares as one flat dict.

    Keys: ``item_count``; ``weight_g`` and ``count_per_kg`` (only with a positive
    ``weight_g``); ``{length,width}_{mm|px}_{mean,min,max,cv}`` and
    ``area_{mm|px}2_{mean,min,max,cv}`` (with items); ``defect_share_{mean,max}``,
    ``dark_share_mean``, ``green_share_mean``, ``elongation_mean``, ``solidity_min``,
    ``items_at_edge`` (with items); ``colour_share_<class>`` for every class in
    COLOUR_CLASSES. Size keys carry their unit, so a rule written in millimetres cannot
    silently compare pixels. Spreads (``_cv``) are std / mean; shares are 0..1.
    """
    u = m.unit
    items = m.items
    out: dict[str, float] = {"item_count": float(len(items))}
    if weight_g is not None and weight_g > 0:
        per_kg = Decimal(len(items)) * 1000 / Decimal(weight_g)
        out["weight_g"] = float(weight_g)
        out["count_per_kg"] = float(per_kg.quantize(Decimal("0.01"), ROUND_HALF_EVEN))
    for name, values in (
        (f"length_{u}", [i.length for i in items]),
        (f"width_{u}", [i.width for i in items]),
        (f"area_{u}2", [i.area for i in items]),
    ):
        arr = np.asarray(values, dtype=np.float64)
        if arr.size:
            mean = float(arr.mean())
            out[f"{name}_mean"] = mean
            out[f"{name}_min"] = float(arr.min())
            out[f"{name}_max"] = float(arr.max())
            out[f"{name}_cv"] = float(arr.std() / mean) if mean > 0 else 0.0
    if items:
        out["defect_share_mean"] = float(np.mean([i.defect_share for i in items]))
        out["defect_share_max"] = max(i.defect_share for i in items)
        out["dark_share_mean"] = float(np.mean([i.dark_share for i in items]))
        out["green_share_mean"] = float(np.mean([i.green_share for i in items]))
        out["elongation_mean"] = float(np.mean([i.elongation for i in items]))
        out["solidity_min"] = min(i.solidity for i in items)
        out["items_at_edge"] = float(sum(1 for i in items if i.at_edge))
    for cls in COLOUR_CLASSES:
        n = sum(1 for i in items if i.colour_class == cls)
        out[f"colour_share_{cls}"] = n / len(items) if items else 0.0
    return out


def find_marker(work: WorkImage, marker_mm: float | None) -> Marker | None:
    """Find marker id 0 of DICT_4X4_50 on the work image; refine its corners at full size.

    The scale is known only with ``marker_mm``; the marker is found either way, so that
    it is never taken for an item.
    """
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(MARKER_DICT), cv2.aruco.DetectorParameters()
    )
    corners, ids, _ = detector.detectMarkers(work.small_gray)
    if ids is None:
        return None
    for quad, marker_id in zip(corners, ids.ravel(), strict=True):
        if int(marker_id) != MARKER_ID:
            continue
        # Corner pixel centres of the work image -> full-resolution coordinates.
        pts = (quad.reshape(4, 2).astype(np.float32) + 0.5) * WORK_SCALE - 0.5
        h, w = work.full.shape[:2]
        x0, y0 = (max(int(v) - 12, 0) for v in pts.min(axis=0))
        x1, y1 = (int(v) + 12 for v in pts.max(axis=0))
        gray = cv2.cvtColor(work.full[y0 : min(y1, h), x0 : min(x1, w)], cv2.COLOR_BGR2GRAY)
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.01)
        local = (pts - np.array([x0, y0], np.float32)).reshape(4, 1, 2)
        refined = cv2.cornerSubPix(gray, local, (5, 5), (-1, -1), criteria)
        pts = np.asarray(refined, np.float32).reshape(4, 2) + np.array([x0, y0], np.float32)
        sides = np.linalg.norm(pts - np.roll(pts, -1, axis=0), axis=1)
        diagonals = np.linalg.norm(pts[:2] - pts[2:], axis=1)
        # A partly covered (or badly distorted) marker is still kept out of the items,
        # but its size cannot be trusted.
        square = max(_spread(sides), _spread(diagonals)) <= MARKER_SQUARENESS
        side = float(sides.mean())
        return Marker(
            corners=tuple((float(x), float(y)) for x, y in pts),
            side_px=side,
            px_per_mm=side / marker_mm if marker_mm and square else None,
            square=square,
        )
    return None


def _spread(values: npt.NDArray[np.floating[Any]]) -> float:
    return float((values.max() - values.min()) / max(float(values.mean()), 1e-9))


def tray_field(small: Image) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float]:
    """Estimate the tray's colour at every pixel (a smooth quadratic field per channel).

    Tray candidates are the bright pixels of a 1/8-size thumbnail whose chromaticity is
    that of the dominant bright surface (the tray, whatever its tint or light). Returns
    the field at ``small``'s size, at thumbnail size, and the share of the thumbnail
    that was tray.
    """
    h, w = small.shape[:2]
    th, tw = max(h // 8, 8), max(w // 8, 8)
    thumb = cv2.resize(small, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    lum = np.maximum(thumb.mean(axis=2), 1.0)
    chrom = thumb / lum[..., None]  # colour without brightness: immune to the light gradient
    ref_lum = float(np.percentile(lum, 75))
    bright = lum > 0.7 * ref_lum
    ref = np.median(chrom[bright], axis=0) if bright.any() else np.ones(3, np.float32)
    cand = bright & (np.abs(chrom - ref).max(axis=2) < 0.06)
    share = float(cand.mean())
    if cand.sum() < 12:
        level = float(np.median(thumb.reshape(-1, 3), axis=0).mean())
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


def _least_squares(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Least-squares solution of a @ x = b by OpenCV (numpy's BLAS threads stall a busy Pi)."""
    _, x = cv2.solve(a, b, flags=cv2.DECOMP_SVD)
    return np.asarray(x, np.float32)


def _apply(a: npt.NDArray[np.float32], coef: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = np.einsum("ij,jk->ik", a, coef).astype(np.float32)
    return out


def normalise(small: Image) -> tuple[Image, tuple[float, float, float], float]:
    """Flatten the lighting and remove the colour cast so the tray becomes neutral grey.

    Returns the normalised image, the tray's median colour before normalisation and
    the tray share of the image.
    """
    fld, low, share = tray_field(small)
    tray = np.median(low.reshape(-1, 3), axis=0)
    return _flatten(small, fld), (float(tray[0]), float(tray[1]), float(tray[2])), share


def _flatten(small: Image, fld: npt.NDArray[np.float32]) -> Image:
    gain = TRAY_TARGET / np.maximum(fld, 1.0)
    return cast(Image, cv2.convertScaleAbs(cv2.multiply(small.astype(np.float32), gain)))


def white_balance(
    small: Image, fld: npt.NDArray[np.float32], marker: Marker
) -> npt.NDArray[np.float32] | None:
    """Per-channel gains that turn the flattened image's colours into true ones.

    Flattening makes the tray neutral grey whatever its own colour; the marker's white
    surround is a known white, so the tray's real tint is the tray's colour over the
    white's, seen under the same light. ``None`` when the white is not usable
    (clipped, or not brighter than the tray).
    """
    pts = (np.asarray(marker.corners, dtype=np.float32) + 0.5) / WORK_SCALE - 0.5
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


def item_score(norm: Image) -> Image:
    """How unlike the tray each pixel is: colourfulness, or darkness beyond a shadow's.

    Shadows are the tray's own colour, only darker; darkness counts only past
    SHADOW_ALLOWANCE grey levels, so a soft shadow up to about 40 % is not an item.
    """
    b, g, r = cv2.split(norm)
    chroma = cv2.subtract(cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r))
    gray = cv2.cvtColor(norm, cv2.COLOR_BGR2GRAY)
    darkness = cv2.subtract(np.full_like(gray, int(TRAY_TARGET) - SHADOW_ALLOWANCE), gray)
    return cast(Image, cv2.max(darkness, chroma))


def segment(score: Image, exclude: npt.NDArray[np.uint8] | None = None) -> list[Contour]:
    """Outer contours (work-image pixels) of the items, from :func:`item_score`.

    A coarse threshold finds the items; each is then re-thresholded at half its own
    median score, so its edge lies where the blurred boundary is half item, half tray.
    """
    mask = cv2.threshold(score, ITEM_SCORE, 255, cv2.THRESH_BINARY)[1]
    if exclude is not None:
        mask = cv2.bitwise_and(mask, cv2.bitwise_not(exclude))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    h, w = score.shape[:2]
    out = []
    for c in contours:
        if cv2.contourArea(c) < MIN_ITEM_WORK_PX:
            continue
        x, y, cw, ch = cv2.boundingRect(c)
        x0, y0 = max(x - 4, 0), max(y - 4, 0)
        x1, y1 = min(x + cw + 4, w), min(y + ch + 4, h)
        coarse = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(coarse, [c - np.array([x0, y0], np.int32)], -1, 255, cv2.FILLED)
        crop = score[y0:y1, x0:x1]
        level = 0.5 * float(np.median(crop[coarse > 0]))
        fine = ((crop > level) & (cv2.dilate(coarse, kernel, iterations=3) > 0)).astype(np.uint8)
        fine = cast(Image, cv2.morphologyEx(fine, cv2.MORPH_CLOSE, kernel, iterations=2))
        parts, _ = cv2.findContours(fine, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(x0, y0))
        if parts:
            out.extend(split_touching(cast(Contour, max(parts, key=cv2.contourArea))))
    return out


def split_touching(contour: Contour) -> list[Contour]:
    """Split a blob of touching items: one item per core of the distance transform.

    Only a clearly concave blob (solidity below SPLIT_BELOW_SOLIDITY) is tried; each
    part needs a core deeper than SPLIT_PEAK of the deepest, so items side by side
    along their length, or a small item against a much bigger one, stay joined.
    """
    hull = cv2.contourArea(cv2.convexHull(contour))
    if hull <= 0 or cv2.contourArea(contour) / hull >= SPLIT_BELOW_SOLIDITY:
        return [contour]
    x, y, w, h = cv2.boundingRect(contour)
    origin = np.array([x - 1, y - 1], np.int32)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    cv2.drawContours(mask, [contour - origin], -1, 255, cv2.FILLED)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    cores = (dist > SPLIT_PEAK * float(dist.max())).astype(np.uint8)
    n, _ = cv2.connectedComponents(cores)
    if n <= 2:  # the background and one core
        return [contour]
    # Each pixel of the blob goes to its nearest core.
    _, nearest = cv2.distanceTransformWithLabels(
        1 - cores, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP
    )
    inside = mask > 0
    out = []
    for label in np.unique(nearest[inside]):
        part = (inside & (nearest == label)).astype(np.uint8)
        found, _ = cv2.findContours(
            part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(int(origin[0]), int(origin[1]))
        )
        if found:
            biggest = cast(Contour, max(found, key=cv2.contourArea))
            if cv2.contourArea(biggest) >= MIN_ITEM_WORK_PX:
                out.append(biggest)
    return out or [contour]


def colour_class(hue_deg: float, sat: float, val: float) -> str:
    """Name an item's colour from its median hue (degrees), saturation and value (0..1)."""
    if sat < 0.2:
        return "pale"
    if 70 <= hue_deg < 180:
        return "green"
    if 40 <= hue_deg < 70:
        return "yellow" if val >= 0.5 else "brown"  # dark yellow reads as brown
    if hue_deg < 40 or hue_deg >= 320:
        reddish = hue_deg < 15 or hue_deg >= 320
        return "red" if reddish and sat > 0.6 and val > 0.6 else "brown"
    return "other"


def _marker_exclusion(shape: tuple[int, int], marker: Marker) -> npt.NDArray[np.uint8]:
    """The marker and its white quiet zone (1.6x the marker), in work-image pixels."""
    pts = (np.asarray(marker.corners, dtype=np.float32) + 0.5) / WORK_SCALE - 0.5
    centre = pts.mean(axis=0)
    grown = (centre + (pts - centre) * 1.6).astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, grown, 255)
    return mask


def _measure_item(
    index: int,
    contour: Contour,
    norm: Image,
    scale: float,
    unit: Literal["mm", "px"],
    balance: tuple[Image, npt.NDArray[np.float32], npt.NDArray[np.float32]] | None,
) -> Item:
    """Measure one item; ``balance`` is (photo, tray field, white-balance gains) when the
    colours can be corrected to true ones (from the unclipped photo, not ``norm``)."""
    x, y, w, h = cv2.boundingRect(contour)
    crop = norm[y : y + h, x : x + w]
    if balance is not None:
        small, fld, gains = balance
        true = small[y : y + h, x : x + w] * (gains * TRAY_TARGET / fld[y : y + h, x : x + w])
        crop = cast(Image, cv2.convertScaleAbs(true))
    mask = np.zeros((h, w), np.uint8)
    cv2.drawContours(mask, [contour - np.array([x, y], np.int32)], -1, 255, cv2.FILLED)
    inside = mask > 0
    lab = cast(Image, cv2.cvtColor(crop, cv2.COLOR_BGR2Lab))[inside]
    hsv = cast(Image, cv2.cvtColor(crop, cv2.COLOR_BGR2HSV_FULL))[inside]
    n = max(int(inside.sum()), 1)
    dark = lab[:, 0] < DARK_SPOT_RATIO * _median_u8(lab[:, 0])
    sound = ~dark
    if not sound.any():
        sound = np.ones_like(dark)
    hue = hsv[:, 0]  # 0..255 for 0..360 degrees
    med_hue = _circular_median_hue(hue[sound])
    med_sat = _median_u8(hsv[sound, 1]) / 255.0
    med_val = _median_u8(hsv[sound, 2]) / 255.0
    cls = colour_class(med_hue, med_sat, med_val)
    greenish = sound & (hue >= 50) & (hue < 128) & (hsv[:, 1] > 64)  # 70..180 degrees
    green_share = 0.0 if cls == "green" else float(greenish.sum()) / n
    dark_share = float(dark.sum()) / n
    mean_lab = lab[sound].mean(axis=0, dtype=np.float64)
    length_px, width_px = (v * WORK_SCALE for v in _principal_extents(contour))
    area_px = n * WORK_SCALE * WORK_SCALE
    hull_area = max(cv2.contourArea(cv2.convexHull(contour)), 1.0)
    perimeter = max(cv2.arcLength(contour, True), 1.0)
    moments = cv2.moments(contour)
    m00 = max(moments["m00"], 1e-9)
    centre = (
        (moments["m10"] / m00 + 0.5) * WORK_SCALE - 0.5,
        (moments["m01"] / m00 + 0.5) * WORK_SCALE - 0.5,
    )
    return Item(
        index=index,
        unit=unit,
        length=length_px / scale,
        width=width_px / scale,
        area=area_px / (scale * scale),
        centre_px=(float(centre[0]), float(centre[1])),
        colour_class=cls,
        lab=(
            float(mean_lab[0]) * 100.0 / 255.0,
            float(mean_lab[1]) - 128.0,
            float(mean_lab[2]) - 128.0,
        ),
        hue_deg=med_hue,
        saturation=med_sat,
        value=med_val,
        dark_share=dark_share,
        green_share=green_share,
        defect_share=dark_share + green_share,
        elongation=length_px / max(width_px, 1e-9),
        solidity=min(float(inside.sum()) / hull_area, 1.0),
        circularity=min(4 * math.pi * float(inside.sum()) / (perimeter * perimeter), 1.0),
        at_edge=x <= 0 or y <= 0 or x + w >= norm.shape[1] or y + h >= norm.shape[0],
    )


def _principal_extents(contour: Contour) -> tuple[float, float]:
    """Extent along the contour's principal (long) axis and across it, in pixels.

    Pixel centres span one pixel less than the pixels do, hence the +1.
    """
    m = cv2.moments(contour)
    theta = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])
    pts = contour.reshape(-1, 2).astype(np.float64)
    along = pts @ np.array([math.cos(theta), math.sin(theta)])
    across = pts @ np.array([-math.sin(theta), math.cos(theta)])
    a = float(along.max() - along.min()) + 1.0
    b = float(across.max() - across.min()) + 1.0
    return max(a, b), min(a, b)


def _median_u8(values: npt.NDArray[np.uint8]) -> float:
    """Median of 8-bit values by histogram (no sort)."""
    if values.size == 0:
        return 0.0
    cum = np.cumsum(np.bincount(values, minlength=256))
    return float(np.searchsorted(cum, (values.size + 1) // 2))


def _circular_median_hue(hue: npt.NDArray[np.uint8]) -> float:
    """Median hue in degrees of 8-bit hues (0..255 for 0..360), taken around the circular
    mean so that reds either side of 0 do not split."""
    if hue.size == 0:
        return 0.0
    counts = np.bincount(hue, minlength=256).astype(np.float64)
    ang = np.arange(256) * (2 * math.pi / 256)
    mean = math.atan2(float(counts @ np.sin(ang)), float(counts @ np.cos(ang)))
    start = round(mean / (2 * math.pi) * 256) - 128  # the histogram bin opposite the mean
    rolled = np.roll(counts, -start)
    idx = int(np.searchsorted(np.cumsum(rolled), (hue.size + 1) // 2))
    return float(((idx + start) % 256) * 360.0 / 256.0)


def decode_jpeg(data: bytes) -> Image:
    """Decode a JPEG (or PNG) photo to BGR; ``ValueError`` when it is not an image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image")
    return cast(Image, image)


def measure_tray(
    photo: npt.NDArray[Any] | WorkImage, marker_mm: float | None = 40.0
) -> TrayMeasurement:
    """Measure every item on a tray photo (BGR).

    With ``marker_mm`` and the marker in view, sizes are millimetres and
    ``scale_source`` is ``"aruco"``; otherwise they are full-resolution pixels and
    ``scale_source`` is ``"pixels"``. The marker and its white surround are never items.
    """
    work = photo if isinstance(photo, WorkImage) else WorkImage.of(photo)
    marker = find_marker(work, marker_mm)
    fld, low, tray_share = tray_field(work.small)
    norm = _flatten(work.small, fld)
    tray = np.median(low.reshape(-1, 3), axis=0)
    gains = white_balance(work.small, fld, marker) if marker else None
    exclude = _marker_exclusion(norm.shape[:2], marker) if marker else None
    contours = segment(item_score(norm), exclude)
    contours.sort(key=lambda c: (cv2.boundingRect(c)[1], cv2.boundingRect(c)[0]))
    px_per_mm = marker.px_per_mm if marker else None
    scale = px_per_mm or 1.0
    unit: Literal["mm", "px"] = "mm" if px_per_mm else "px"
    balance = (work.small, fld, gains) if gains is not None else None
    items = tuple(_measure_item(i, c, norm, scale, unit, balance) for i, c in enumerate(contours))
    h, w = work.full.shape[:2]
    return TrayMeasurement(
        items=items,
        scale_source="aruco" if px_per_mm else "pixels",
        px_per_mm=px_per_mm,
        marker=marker,
        tray_bgr=(float(tray[0]), float(tray[1]), float(tray[2])),
        tray_share=tray_share,
        colour_reference="marker_white" if gains is not None else "tray",
        image_size=(w, h),
    )
