"""Deterministic tray scenes with known truth (simulated camera, grading tests, benchmark).

A plain light tray (mild lighting gradient, a warm colour cast, sensor noise), an
ArUco marker (DICT_4X4_50 id 0) of known size on a white sticker, and ellipse
items of known length, width and colour with dark spots of known area. Camera
problems (blur, over- or under-exposure) are applied last, as a camera would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    px_per_mm: float
    marker_mm: float | None


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
) -> Scene:
    """Render a tray photo (BGR uint8, ``size`` = width, height) and its truth.

    Everything (tray, marker sticker, items) is lit by the same light: a gradient
    brighter to the right and bottom, with the colour ``cast`` (warm by default).
    ``shadow`` darkens the tray by that share in a soft shadow beside each item
    (light from the top left).
    """
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.9 + 0.12 * xx / w + 0.05 * yy / h
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

    # ... then the light, the lens and the sensor.
    img *= light[..., None] * np.array(cast, np.float32)
    seen = np.asarray(cv2.GaussianBlur(img, (0, 0), 0.7), np.float32)  # lens
    if blur_sigma > 0:
        seen = np.asarray(cv2.GaussianBlur(seen, (0, 0), blur_sigma), np.float32)
    seen = seen * gain + rng.normal(0.0, noise, seen.shape).astype(np.float32)
    out = np.clip(seen, 0, 255).astype(np.uint8)
    return Scene(out, tuple(truths), px_per_mm, marker_mm)


def random_items(
    rng: np.random.Generator, count: int = 5, tray_mm: tuple[float, float] = (320, 240)
) -> tuple[ItemSpec, ...]:
    """Up to ``count`` non-touching items of random kind, size, place, angle and spots,
    clear of the marker's corner (the top-left 75 mm square)."""
    items: list[ItemSpec] = []
    for _ in range(400):
        if len(items) == count:
            break
        kind = ("yellow", "brown", "green")[int(rng.integers(3))]
        length = float(rng.uniform(45, 85) if kind == "brown" else rng.uniform(50, 160))
        width = float(rng.uniform(25, min(length * 0.8, 60)))
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
        items.append(ItemSpec(kind, length, width, (cx, cy), float(rng.uniform(-90, 90)), spots))
    return tuple(items)


def jpeg(image: Image, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())
