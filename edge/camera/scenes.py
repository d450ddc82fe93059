"""Deterministic tray scenes with known truth (simulated camera, grading tests, benchmark).

A plain light tray (mild lighting gradient, a warm colour cast, sensor noise), an
ArUco marker (DICT_4X4_50 id 0) of known size on a white sticker, and ellipse
items of known length, width and colour with dark spots of known area. Camera
problems (blur, over- or under-exposure) are applied last, as a camera would.

The tray is drawn top-down at ``px_per_mm``; a camera that is tilted (``tilt_deg``
towards ``tilt_dir_deg``) or turned about its axis (``rotate_deg``) sees it through a
known homography (:func:`camera_homography`), a pinhole camera ``camera_mm`` from the
tray's centre. The truth stays in millimetres; item centres are given in photo pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

KIND_BGR: dict[str, tuple[int, int, int]] = {
    "yellow": (40, 210, 235),  # banana
    "brown": (70, 115, 160),  # potato
    "green": (50, 160, 70),  # lime, cucumber
}
TRAY_BGR = (200, 208, 214)
SPOT_BGR = {"dark": (25, 30, 35), "green": (60, 150, 90)}  # rot; greening
SHIFT = 4  # sub-pixel bits for cv2 drawing
SUPERSAMPLE = 3  # an oblique view is rendered this much finer, then averaged down


@dataclass(frozen=True)
class Spot:
    """A defect spot, centred at (along, across) mm from the item's centre in its own axes."""

    along_mm: float
    across_mm: float
    radius_mm: float
    kind: str = "dark"  # a key of SPOT_BGR


@dataclass(frozen=True)
class ItemSpec:
    kind: str  # a key of KIND_BGR, which is also the expected colour class
    length_mm: float
    width_mm: float
    centre_mm: tuple[float, float]
    angle_deg: float
    spots: tuple[Spot, ...] = ()


@dataclass(frozen=True)
class ItemTruth:
    kind: str
    length_mm: float
    width_mm: float
    area_mm2: float
    defect_share: float  # rendered spot pixels / rendered item pixels
    centre_px: tuple[float, float]


@dataclass(frozen=True)
class Scene:
    image: Image
    items: tuple[ItemTruth, ...]
    px_per_mm: float  # of the top-down drawing; the photo's own scale when not tilted
    marker_mm: float | None
    # Tray millimetres -> photo pixels (3x3, row-major); diag(px_per_mm, px_per_mm, 1)
    # for a square-on photo.
    homography: tuple[tuple[float, float, float], ...] = ()
    tilt_deg: float = 0.0

    def to_photo(self, points_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Tray points (N x 2, mm) as photo pixels (N x 2)."""
        return _project(np.asarray(self.homography, np.float64), points_mm)


def _project(hom: npt.NDArray[np.float64], points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h = np.c_[pts, np.ones(len(pts))] @ hom.T
    out: npt.NDArray[np.float64] = h[:, :2] / h[:, 2:]
    return out


def _rot(axis: str, deg: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float64)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


def camera_homography(
    size: tuple[int, int],
    px_per_mm: float,
    *,
    tilt_deg: float = 0.0,
    tilt_dir_deg: float = 0.0,
    rotate_deg: float = 0.0,
    camera_mm: float = 450.0,
    fill: float = 0.97,
) -> npt.NDArray[np.float64]:
    """Tray millimetres -> photo pixels for a pinhole camera aimed at the tray's centre.

    The tray area is the photo's size at ``px_per_mm`` (320 x 240 mm by default). The
    camera stands ``camera_mm`` from the tray's centre, its axis tilted ``tilt_deg``
    from the vertical; with ``tilt_dir_deg`` 0 the top of the photo is the far side
    (90: the right side). ``rotate_deg`` turns the camera about its own axis. The focal
    length is chosen so that the whole tray area fills ``fill`` of the photo. Square-on
    and unturned, this is just ``diag(px_per_mm, px_per_mm, 1)``.
    """
    if tilt_deg == 0 and rotate_deg == 0:
        return np.diag([px_per_mm, px_per_mm, 1.0])
    if not 0 <= tilt_deg < 60:
        raise ValueError(f"tilt_deg must be in 0..60, got {tilt_deg}")
    w, h = size
    tray_w, tray_h = w / px_per_mm, h / px_per_mm
    centre = np.array([tray_w / 2, tray_h / 2, 0.0])
    # Camera -> world; world: x right, y down the top-down drawing, z into the tray.
    cam_to_world = (
        _rot("z", tilt_dir_deg) @ _rot("x", tilt_deg) @ _rot("z", -tilt_dir_deg)
    ) @ _rot("z", rotate_deg)
    position = centre - camera_mm * cam_to_world[:, 2]
    world_to_cam = cam_to_world.T
    # Plane (X, Y, 1) -> camera coordinates.
    plane = np.c_[world_to_cam[:, :2], -world_to_cam @ position]
    corners = np.array([[0, 0], [tray_w, 0], [tray_w, tray_h], [0, tray_h]], np.float64)
    normalised = _project(plane, corners)
    focal = fill * min(
        (w / 2) / float(np.abs(normalised[:, 0]).max()),
        (h / 2) / float(np.abs(normalised[:, 1]).max()),
    )
    intrinsics = np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]])
    hom = intrinsics @ plane
    return np.asarray(hom / hom[2, 2], np.float64)


DEFAULT_ITEMS: tuple[ItemSpec, ...] = (
    ItemSpec("yellow", 170, 36, (175, 45), 8, (Spot(-40, 3, 4), Spot(35, -2, 3))),
    ItemSpec("brown", 75, 55, (70, 130), -30, (Spot(10, 5, 7),)),
    ItemSpec("green", 120, 40, (170, 130), 75),
    ItemSpec("brown", 62, 48, (262, 150), 10, (Spot(-8, 0, 5), Spot(12, 6, 4))),
    ItemSpec("yellow", 90, 30, (85, 205), -5, (Spot(0, 0, 6),)),
)


def _ellipse(
    img: Image,
    centre_px: tuple[float, float],
    axes_px: tuple[float, float],
    angle: float,
    colour: int | tuple[int, int, int],
) -> None:
    # cv2 fills the pixels its outline passes through, so a filled shape comes out one
    # pixel wider than asked; half a pixel off each half-axis puts the area within 0.2 %.
    f = 1 << SHIFT
    cv2.ellipse(
        img,
        (round(centre_px[0] * f), round(centre_px[1] * f)),
        (round((axes_px[0] - 0.5) * f), round((axes_px[1] - 0.5) * f)),
        angle,
        0,
        360,
        colour,
        -1,
        cv2.LINE_8,
        SHIFT,
    )


def make_scene(
    items: tuple[ItemSpec, ...] = DEFAULT_ITEMS,
    *,
    size: tuple[int, int] = (1280, 960),
    px_per_mm: float = 4.0,
    marker_mm: float | None = 40.0,
    marker_at_mm: tuple[float, float] = (20.0, 20.0),
    blur_sigma: float = 0.0,
    gain: float = 1.0,
    noise: float = 2.5,
    shadow: float = 0.0,
    tray_bgr: tuple[int, int, int] = TRAY_BGR,
    cast: tuple[float, float, float] = (0.96, 1.0, 1.05),
    seed: int = 0,
    tilt_deg: float = 0.0,
    tilt_dir_deg: float = 0.0,
    rotate_deg: float = 0.0,
    camera_mm: float = 450.0,
    fill: float = 0.97,
) -> Scene:
    """Render a tray photo (BGR uint8, ``size`` = width, height) and its truth.

    Everything (tray, marker sticker, items) is lit by the same light: a gradient
    brighter to the right and bottom of the tray, with the colour ``cast`` (warm by
    default). ``shadow`` darkens the tray by that share in a soft shadow beside each
    item (light from the top left). With ``tilt_deg`` or ``rotate_deg`` the camera
    looks at the tray obliquely or turned (see :func:`camera_homography`; ``fill`` above
    1 zooms in so the tray area's edges are out of view). The tray continues, plain,
    beyond its drawn area, so the photo shows tray everywhere; items must lie inside
    the drawn area (``size`` / ``px_per_mm``) to be whole.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Reflectances first (what the scene looks like under even white light) ...
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.array(tray_bgr, np.float32)

    if marker_mm is not None:
        side = round(marker_mm * px_per_mm)
        quiet = round(side / 6)  # one marker cell of white all round
        x0, y0 = round(marker_at_mm[0] * px_per_mm), round(marker_at_mm[1] * px_per_mm)
        img[y0 - quiet : y0 + side + quiet, x0 - quiet : x0 + side + quiet] = 245.0
        big = cv2.aruco.generateImageMarker(
            cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), 0, side * 6
        )
        small = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
        img[y0 : y0 + side, x0 : x0 + side] = (small.astype(np.float32) * 0.9 + 15)[..., None]

    if shadow > 0:
        shade = np.zeros((h, w), np.uint8)
        for spec in items:
            centre = ((spec.centre_mm[0] + 3) * px_per_mm, (spec.centre_mm[1] + 4) * px_per_mm)
            axes = (spec.length_mm * px_per_mm / 2, spec.width_mm * px_per_mm / 2)
            _ellipse(shade, centre, axes, spec.angle_deg, 255)
        soft = cv2.GaussianBlur(shade.astype(np.float32) / 255, (0, 0), 2.5 * px_per_mm)
        img *= (1.0 - shadow * soft)[..., None]

    truths = []
    for spec in items:
        cx, cy = spec.centre_mm[0] * px_per_mm, spec.centre_mm[1] * px_per_mm
        axes = (spec.length_mm * px_per_mm / 2, spec.width_mm * px_per_mm / 2)
        item_mask = np.zeros((h, w), np.uint8)
        _ellipse(item_mask, (cx, cy), axes, spec.angle_deg, 255)
        spot_masks = {kind: np.zeros((h, w), np.uint8) for kind in SPOT_BGR}
        a = math.radians(spec.angle_deg)
        for s in spec.spots:
            sx = cx + (s.along_mm * math.cos(a) - s.across_mm * math.sin(a)) * px_per_mm
            sy = cy + (s.along_mm * math.sin(a) + s.across_mm * math.cos(a)) * px_per_mm
            r = s.radius_mm * px_per_mm
            _ellipse(spot_masks[s.kind], (sx, sy), (r, r), 0, 255)
        spot_mask = np.zeros((h, w), np.uint8)
        for m in spot_masks.values():
            spot_mask |= m
        spot_mask &= item_mask
        inside = item_mask > 0
        # Shading: an item is a little darker towards its rim.
        u = ((xx - cx) * math.cos(a) + (yy - cy) * math.sin(a)) / axes[0]
        v = (-(xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)) / axes[1]
        shade = 1.0 - 0.12 * np.clip(u * u + v * v, 0, 1)
        colour = np.array(KIND_BGR[spec.kind], np.float32)
        img[inside] = colour * shade[inside][:, None]
        for kind, m in spot_masks.items():  # later kinds cover earlier ones
            img[(m & item_mask) > 0] = np.array(SPOT_BGR[kind], np.float32)
        truths.append(
            ItemTruth(
                kind=spec.kind,
                length_mm=spec.length_mm,
                width_mm=spec.width_mm,
                area_mm2=math.pi / 4 * spec.length_mm * spec.width_mm,
                defect_share=float((spot_mask > 0).sum()) / float(inside.sum()),
                centre_px=(cx, cy),
            )
        )

    # ... then the light (on the tray), the camera's view, the lens and the sensor.
    hom = camera_homography(
        size,
        px_per_mm,
        tilt_deg=tilt_deg,
        tilt_dir_deg=tilt_dir_deg,
        rotate_deg=rotate_deg,
        camera_mm=camera_mm,
        fill=fill,
    )
    if tilt_deg == 0 and rotate_deg == 0:
        light = 0.9 + 0.12 * xx / w + 0.05 * yy / h
    else:
        # Sensor pixels integrate light over their area: render SUPERSAMPLE times finer
        # and average down (point sampling would alias the hard edges).
        n = SUPERSAMPLE
        fine = np.array([[n, 0, (n - 1) / 2], [0, n, (n - 1) / 2], [0, 0, 1]], np.float64)
        top_down_to_fine = fine @ hom @ np.diag([1 / px_per_mm, 1 / px_per_mm, 1.0])
        warped = cv2.warpPerspective(
            img,
            top_down_to_fine,
            (w * n, h * n),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=tuple(float(c) for c in tray_bgr),
        )
        img = np.asarray(cv2.resize(warped, (w, h), interpolation=cv2.INTER_AREA), np.float32)
        mm = _project(
            np.asarray(np.linalg.inv(hom), np.float64), np.c_[xx.ravel(), yy.ravel()]
        ).astype(np.float32)
        across = mm[:, 0].reshape(h, w) * (px_per_mm / w)  # 0..1 over the tray area
        down = mm[:, 1].reshape(h, w) * (px_per_mm / h)
        light = 0.9 + 0.12 * across + 0.05 * down
        truths = [replace(t, centre_px=_centre(hom, t.centre_px, px_per_mm)) for t in truths]
    img *= light[..., None] * np.array(cast, np.float32)
    seen = np.asarray(cv2.GaussianBlur(img, (0, 0), 0.7), np.float32)  # lens
    if blur_sigma > 0:
        seen = np.asarray(cv2.GaussianBlur(seen, (0, 0), blur_sigma), np.float32)
    seen = seen * gain + rng.normal(0.0, noise, seen.shape).astype(np.float32)
    out = np.clip(seen, 0, 255).astype(np.uint8)
    rows = tuple((float(r[0]), float(r[1]), float(r[2])) for r in hom)
    return Scene(out, tuple(truths), px_per_mm, marker_mm, rows, tilt_deg)


def _centre(
    hom: npt.NDArray[np.float64], top_down_px: tuple[float, float], px_per_mm: float
) -> tuple[float, float]:
    x, y = _project(hom, [[top_down_px[0] / px_per_mm, top_down_px[1] / px_per_mm]])[0]
    return float(x), float(y)


def _shape_of(rng: np.random.Generator, kind: str) -> tuple[float, float]:
    """Length and width (mm) of one item shaped like its produce: a banana finger, a
    potato tuber, a lime."""
    if kind == "yellow":
        return float(rng.uniform(110, 190)), float(rng.uniform(28, 40))
    if kind == "brown":
        length = float(rng.uniform(45, 95))
        return length, length * float(rng.uniform(0.6, 0.9))
    width = float(rng.uniform(38, 58))
    return width * float(rng.uniform(1.0, 1.15)), width


def random_items(
    rng: np.random.Generator,
    count: int = 5,
    tray_mm: tuple[float, float] = (320, 240),
    kind: str | None = None,
) -> tuple[ItemSpec, ...]:
    """Up to ``count`` non-touching items of random kind, size, place, angle and spots,
    clear of the marker's corner (the top-left 75 mm square). With ``kind`` (a key of
    KIND_BGR) every item is of that kind and shaped like its produce (long bananas,
    rounder potatoes, round limes); without, kinds and shapes are mixed at random."""
    items: list[ItemSpec] = []
    for _ in range(400):
        if len(items) == count:
            break
        if kind is None:
            item_kind = ("yellow", "brown", "green")[int(rng.integers(3))]
            length = float(rng.uniform(45, 85) if item_kind == "brown" else rng.uniform(50, 160))
            width = float(rng.uniform(25, min(length * 0.8, 60)))
        else:
            item_kind = kind
            length, width = _shape_of(rng, kind)
        half = length / 2 + 5
        cx = float(rng.uniform(half, tray_mm[0] - half))
        cy = float(rng.uniform(half, tray_mm[1] - half))
        if cx - half < 75 and cy - half < 75:
            continue
        if any(
            math.hypot(cx - o.centre_mm[0], cy - o.centre_mm[1]) < (length + o.length_mm) / 2 + 4
            for o in items
        ):
            continue
        spots = tuple(
            Spot(
                float(rng.uniform(-length / 4, length / 4)),
                float(rng.uniform(-width / 6, width / 6)),
                float(rng.uniform(2, width / 5)),
            )
            for _ in range(int(rng.integers(0, 3)))
        )
        angle = float(rng.uniform(-90, 90))
        items.append(ItemSpec(item_kind, length, width, (cx, cy), angle, spots))
    return tuple(items)


def jpeg(image: Image, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())
