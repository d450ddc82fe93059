"""The size marker, the tray plane's homography, and the view items are measured on.

The ArUco marker (DICT_4X4_50 id 0, side ``marker_mm``) is found on the work image;
its four sides are then located at full resolution (many edge points per side, one
straight line through them) and the corners are where the lines meet. Those corners
give the homography from the tray plane (mm) to the photo.

A photo taken square-on is measured as it is, at the marker's pixels per mm. When the
homography says a single scale would be off by more than RECTIFY_ABOVE somewhere in
the photo (a camera tilted by more than a few degrees), the work image is warped to a
square-on view of the tray at about the photo's own resolution, and measured there:
sizes in mm are then right wherever the item lies. A :class:`View` carries the image
to measure and the way back to photo pixels.

Limits: the tray must be flat (the homography is the tray's plane; the items' own
height is not corrected, so tall items seen obliquely look a little longer), the lens
undistorted (a strongly curved wide-angle view bends straight lines), and the marker
big enough in the photo that its sides can be located (about 60 photo pixels or more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading.image import (
    WORK_SCALE,
    WORK_TO_PHOTO,
    Image,
    Mask,
    Matrix,
    WorkImage,
    invert,
    transform,
)
from edge.camera.grading.results import Marker

MARKER_DICT = cv2.aruco.DICT_4X4_50
MARKER_ID = 0
# A marker seen more obliquely than this (where it lies) is not trusted for a scale.
MAX_TILT_DEG = 60.0
# Covered: more than this share of the marker's white surround is not white.
COVERED_SHARE = 0.03
# Rectify when one scale for the whole photo would be off by more than this share.
RECTIFY_ABOVE = 0.01
# The rectified work image holds at most this many times the work image's pixels.
MAX_RECTIFIED_AREA = 2.0
EDGE_POINTS = 24  # edge points located on each side of the marker
EDGE_STEP = 0.25  # photo pixels between samples across an edge


@dataclass(frozen=True)
class View:
    """The image items are measured on (the work image, or its rectified view)."""

    small: Image  # BGR
    to_photo: Matrix  # this image's pixels -> photo pixels
    px_per_unit: float  # this image's pixels per reported unit (mm, or photo pixels)
    # Sizes are in mm at this many (photo-resolution) pixels per mm; None: in pixels.
    px_per_mm: float | None
    valid: Mask | None  # 255 where the image shows the photo; None: everywhere
    marker_quad: npt.NDArray[np.float32] | None  # the marker's corners in this image
    rectified: bool
    tilt_deg: float | None


def find_marker(work: WorkImage, marker_mm: float | None) -> Marker | None:
    """Find marker id 0 of DICT_4X4_50 on the work image; locate its corners at full size.

    The scale is known only with ``marker_mm``; the marker is found either way, so that
    it is never taken for an item.
    """
    found = _locate(work)
    if found is None:
        return None
    pts, usable = found
    side = float(np.linalg.norm(pts - np.roll(pts, -1, axis=0), axis=1).mean())
    return Marker(
        corners=tuple((float(x), float(y)) for x, y in pts),
        side_px=side,
        px_per_mm=side / marker_mm if marker_mm and usable else None,
        square=usable,
    )


def _locate(work: WorkImage) -> tuple[npt.NDArray[np.float64], bool] | None:
    """The marker's corners in photo pixels, and whether they can be trusted."""
    gray_small = work.small_gray
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(MARKER_DICT), cv2.aruco.DetectorParameters()
    )
    corners, ids, _ = detector.detectMarkers(gray_small)
    if ids is None:
        return None
    for quad, marker_id in zip(corners, ids.ravel(), strict=True):
        if int(marker_id) != MARKER_ID:
            continue
        rough = transform(WORK_TO_PHOTO, quad.reshape(4, 2))
        pts = refine_corners(work.full, rough)
        usable = _plausible(pts) and not _covered(gray_small, pts)
        return pts, usable
    return None


def refine_corners(photo: Image, rough: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Corners where the marker's four outer edges meet, each edge a line fitted through
    EDGE_POINTS points where the dark border meets the white surround (half-way level).

    Falls back to ``rough`` for a side that cannot be located (covered, too small).
    """
    centre = rough.mean(axis=0)
    side = float(np.linalg.norm(rough - np.roll(rough, -1, axis=0), axis=1).mean())
    reach = min(max(0.08 * side, 2.0), 8.0)
    offsets = np.arange(-reach, reach + 1e-9, EDGE_STEP)
    h, w = photo.shape[:2]
    pad = int(reach) + 4
    x0, y0 = (max(int(v) - pad, 0) for v in rough.min(axis=0))
    x1, y1 = (min(int(v) + pad + 1, lim) for v, lim in zip(rough.max(axis=0), (w, h), strict=True))
    gray = cv2.cvtColor(photo[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    origin = np.array([x0, y0], np.float64)
    Line = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # point, direction
    lines: list[Line | None] = []
    for i in range(4):
        a, b = rough[i], rough[(i + 1) % 4]
        d = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
        n = np.array([d[1], -d[0]])
        if np.dot(n, (a + b) / 2 - centre) < 0:
            n = -n  # outwards
        t = np.linspace(0.12, 0.88, EDGE_POINTS)
        along = a + t[:, None] * (b - a) - origin
        grid = along[:, None, :] + offsets[None, :, None] * n  # points x offsets x 2
        prof = cv2.remap(
            gray,
            grid[..., 0].astype(np.float32),
            grid[..., 1].astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float64)
        edge = _edge_points(prof, offsets)
        ok = ~np.isnan(edge)
        if ok.sum() < EDGE_POINTS // 3:
            lines.append(None)
            continue
        pts = along[ok] + origin + edge[ok, None] * n
        vx, vy, px, py = cv2.fitLine(pts.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01)
        lines.append(
            (np.array([float(px[0]), float(py[0])]), np.array([float(vx[0]), float(vy[0])]))
        )
    out = rough.copy()
    for i in range(4):
        before, after = lines[i - 1], lines[i]
        if before is None or after is None:
            continue
        corner = _intersect(before, after)
        if corner is not None and np.linalg.norm(corner - rough[i]) <= max(3.0, 0.05 * side):
            out[i] = corner
    return out


def _edge_points(
    prof: npt.NDArray[np.float64], offsets: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per profile (dark inside -> bright outside), the offset where it crosses half-way
    between its two ends; NaN where there is no clear edge."""
    dark = prof[:, :3].mean(axis=1)
    bright = prof[:, -3:].mean(axis=1)
    mid = (dark + bright)[:, None] / 2
    ups = (prof[:, :-1] < mid) & (prof[:, 1:] >= mid)
    # Of several crossings (noise), the one nearest the rough edge.
    j = np.where(ups, np.abs(offsets[:-1]), np.inf).argmin(axis=1)
    rows = np.arange(len(prof))
    lo, hi = prof[rows, j], prof[rows, j + 1]
    step = offsets[1] - offsets[0]
    out = offsets[j] + (mid[:, 0] - lo) / np.maximum(hi - lo, 1e-9) * step
    clear = ups.any(axis=1) & (bright - dark >= 30)
    return np.where(clear, out, np.nan)


def _intersect(
    l1: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    l2: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> npt.NDArray[np.float64] | None:
    (p1, d1), (p2, d2) = l1, l2
    det = d1[0] * -d2[1] + d2[0] * d1[1]
    if abs(det) < 1e-6:
        return None
    diff = p2 - p1
    s = (diff[0] * -d2[1] + d2[0] * diff[1]) / det
    out: npt.NDArray[np.float64] = p1 + s * d1
    return out


def marker_homography(corners: npt.ArrayLike, side: float = 1.0) -> Matrix:
    """Marker plane (its own frame, ``side`` per marker side) -> photo pixels."""
    square = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    return cast(
        Matrix,
        cv2.getPerspectiveTransform(square, np.asarray(corners, np.float32)).astype(np.float64),
    )


def jacobian(hom: Matrix, plane_point: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """d(photo)/d(plane) of a homography at a plane point (2x2)."""
    x, y = np.asarray(plane_point, np.float64).reshape(2)
    u, v, s = hom @ np.array([x, y, 1.0])
    out: npt.NDArray[np.float64] = (hom[:2, :2] - np.outer([u / s, v / s], hom[2, :2])) / s
    return out


def tilt_deg(hom: Matrix, photo_point: npt.ArrayLike) -> float:
    """How obliquely the plane is seen at a photo point: acos of the ratio of the local
    scales. At the photo's centre (the optical axis) this is the camera's tilt."""
    plane = transform(invert(hom), photo_point)[0]
    s = np.linalg.svd(jacobian(hom, plane), compute_uv=False)
    return math.degrees(math.acos(min(float(s[1] / max(s[0], 1e-12)), 1.0)))


def _plausible(pts: npt.NDArray[np.float64]) -> bool:
    """A convex quadrilateral, not seen more obliquely than MAX_TILT_DEG where it lies."""
    edges = np.roll(pts, -1, axis=0) - pts
    cross = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    if not (np.all(cross > 0) or np.all(cross < 0)):
        return False
    return tilt_deg(marker_homography(pts), pts.mean(axis=0)) <= MAX_TILT_DEG


def _covered(gray_small: Image, pts: npt.NDArray[np.float64]) -> bool:
    """Whether something lies on the marker's white surround (a band just outside it,
    well inside the one-cell quiet zone, mapped through the marker's homography)."""
    hom = invert(WORK_TO_PHOTO) @ marker_homography(pts)  # marker units -> work px
    outer = transform(hom, _square(-0.13, 1.13))
    inner = transform(hom, _square(-0.04, 1.04))
    h, w = gray_small.shape
    x0, y0 = (max(int(v), 0) for v in outer.min(axis=0))
    x1, y1 = (min(int(v) + 2, lim) for v, lim in zip(outer.max(axis=0), (w, h), strict=True))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return True  # the surround is out of view
    origin = np.array([x0, y0], np.float64)
    ring = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(ring, np.round(outer - origin).astype(np.int32), 255)
    cv2.fillConvexPoly(ring, np.round(inner - origin).astype(np.int32), 0)
    values = gray_small[y0:y1, x0:x1][ring > 0]
    if values.size < 40:
        return True
    white = float(np.percentile(values, 90))
    return float((values < 0.8 * white).mean()) > COVERED_SHARE


def _square(lo: float, hi: float) -> npt.NDArray[np.float64]:
    return np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], np.float64)


def plan_view(work: WorkImage, marker: Marker | None, marker_mm: float | None) -> View:
    """The image to measure: the work image, or a square-on view of the tray when the
    marker (usable, of known size) shows the photo was taken at an angle.

    An oblique photo that cannot be rectified (it reaches the tray's horizon) is
    measured in pixels: one scale would not hold across it.
    """
    h, w = work.full.shape[:2]
    to_work = invert(WORK_TO_PHOTO)
    quad = None
    tilt = None
    if marker is not None:
        quad = transform(to_work, marker.corners).astype(np.float32)
    if marker is not None and marker.square:
        hom = marker_homography(marker.corners, marker_mm or 1.0)
        tilt = tilt_deg(hom, ((w - 1) / 2, (h - 1) / 2))
        if (
            marker_mm
            and marker.px_per_mm
            and _single_scale_error(hom, (w, h), marker.px_per_mm) > RECTIFY_ABOVE
        ):
            view = _rectify(work, hom, marker_mm, tilt)
            if view is not None:
                return view
            return View(work.small, WORK_TO_PHOTO, 1 / WORK_SCALE, None, None, quad, False, tilt)
    ppm = marker.px_per_mm if marker is not None else None
    scale = (ppm or 1.0) / WORK_SCALE
    return View(work.small, WORK_TO_PHOTO, scale, ppm, None, quad, False, tilt)


def _single_scale_error(hom: Matrix, size: tuple[int, int], px_per_mm: float) -> float:
    """How far the local scale (either direction) strays from ``px_per_mm`` over the photo."""
    w, h = size
    inv = invert(hom)
    worst = 0.0
    for fx in (0.0, 0.5, 1.0):
        for fy in (0.0, 0.5, 1.0):
            plane = transform(inv, (fx * (w - 1), fy * (h - 1)))[0]
            s = np.linalg.svd(jacobian(hom, plane), compute_uv=False)
            worst = max(worst, float(np.abs(s / px_per_mm - 1).max()))
    return worst


def _rectify(work: WorkImage, hom: Matrix, marker_mm: float, tilt: float) -> View | None:
    """Warp the work image to a square-on view of the tray plane.

    The view keeps the photo's resolution and orientation at its centre, and covers all
    of the photo (bounded by MAX_RECTIFIED_AREA). ``None`` when the photo reaches the
    plane's horizon.
    """
    h, w = work.full.shape[:2]
    inv = invert(hom)
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    if np.any(np.c_[corners, np.ones(4)] @ inv[2] <= 0):
        return None
    centre = transform(inv, ((w - 1) / 2, (h - 1) / 2))[0]  # mm
    jac = jacobian(hom, centre)
    along_x = np.linalg.solve(jac, [1.0, 0.0])  # the photo's x direction, in mm
    angle = -math.atan2(along_x[1], along_x[0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    scale = math.sqrt(abs(float(np.linalg.det(jac)))) / WORK_SCALE  # work px per mm
    footprint = transform(inv, corners) @ rot.T  # mm, turned to the photo's orientation
    lo, hi = footprint.min(axis=0), footprint.max(axis=0)
    small_area = work.small.shape[0] * work.small.shape[1]
    area = float(np.prod(hi - lo)) * scale * scale
    if area > MAX_RECTIFIED_AREA * small_area:
        scale *= math.sqrt(MAX_RECTIFIED_AREA * small_area / area)
    # mm -> rectified work pixels
    to_view = np.eye(3)
    to_view[:2, :2] = scale * rot
    to_view[:2, 2] = -scale * lo
    size = (math.ceil((hi[0] - lo[0]) * scale), math.ceil((hi[1] - lo[1]) * scale))
    small_to_view = to_view @ inv @ WORK_TO_PHOTO
    view = cv2.warpPerspective(
        work.small,
        small_to_view,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    sh, sw = work.small.shape[:2]
    outline = transform(small_to_view, [[0, 0], [sw - 1, 0], [sw - 1, sh - 1], [0, sh - 1]])
    valid = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillConvexPoly(valid, np.round(outline * 16).astype(np.int32), 255, cv2.LINE_8, 4)
    valid = cast(Mask, cv2.erode(valid, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))))
    quad = transform(to_view, _square(0.0, marker_mm)).astype(np.float32)
    return View(
        small=cast(Image, view),
        to_photo=invert(to_view @ inv),
        px_per_unit=scale,
        px_per_mm=scale * WORK_SCALE,
        valid=valid,
        marker_quad=quad,
        rectified=True,
        tilt_deg=tilt,
    )
