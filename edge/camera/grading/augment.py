"""Altered copies of a calibration photo, so a model learns the produce and not the session.

A cooperative's calibration photos come from few sessions: one lamp, one phone, one
paper. Another station's photos differ in exactly those ways, so each training photo
is also shown to the model as copies with

- the light's strength changed (one gain on all channels, LIGHT_GAIN),
- the white balance changed (a gain per channel, WHITE_BALANCE),
- the scale changed (downsized to SCALE of its size, never under MIN_SIDE pixels, and
  back: the detail a small or distant photo loses),
- the orientation changed (a quarter turn or more, plus a small angle up to
  SMALL_ANGLE_DEG; the corners the turn uncovers are black padding, which the
  features leave out as they do for a rotated copy).

The image is altered first and the features computed from it afterwards, exactly as
for a real photo. Each copy comes from a generator seeded by (seed, photo, copy), so
the same photos give the same copies, the same model and the same scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

COPIES = 3  # altered copies per training photo
SEED = 17
LIGHT_GAIN = (0.7, 1.3)
WHITE_BALANCE = (0.85, 1.15)  # each channel's gain, relative to the others
SCALE = (0.3, 1.0)  # the copy's size relative to the photo (log-uniform)
MIN_SIDE = 96  # the long side a copy is never made smaller than
SMALL_ANGLE_DEG = 12.0


def rng_for(seed: int, photo: int, copy: int) -> np.random.Generator:
    return np.random.default_rng([seed, photo, copy])


def augment(bgr: Image, rng: np.random.Generator) -> Image:
    """One altered copy of ``bgr`` (see the module); the same generator state gives the
    same copy."""
    light = rng.uniform(*LIGHT_GAIN)
    balance = rng.uniform(*WHITE_BALANCE, size=3)
    balance /= balance.mean()
    scale = math.exp(rng.uniform(math.log(SCALE[0]), math.log(SCALE[1])))
    quarter = int(rng.integers(0, 4))
    angle = rng.uniform(-SMALL_ANGLE_DEG, SMALL_ANGLE_DEG)
    out = (bgr.astype(np.float32) * (light * balance).astype(np.float32)).clip(0, 255)
    img = out.astype(np.uint8)
    img = rescale(img, scale)
    img = np.ascontiguousarray(np.rot90(img, quarter))
    return rotate(img, angle)


def rescale(bgr: Image, scale: float) -> Image:
    """Down to ``scale`` of the size (not under MIN_SIDE on the long side) and back up:
    the photo keeps its pixel size and loses the detail."""
    h, w = bgr.shape[:2]
    s = max(scale, min(1.0, MIN_SIDE / max(h, w)))
    if s >= 0.999:
        return bgr
    small = cv2.resize(
        bgr, (max(round(w * s), 1), max(round(h * s), 1)), interpolation=cv2.INTER_AREA
    )
    return cast(Image, cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def rotate(bgr: Image, angle_deg: float) -> Image:
    """Rotated by ``angle_deg`` about the centre, on a canvas that holds all of it; the
    uncovered corners are black (padding)."""
    if abs(angle_deg) < 1e-6:
        return bgr
    h, w = bgr.shape[:2]
    rad = math.radians(angle_deg)
    cw = round(abs(w * math.cos(rad)) + abs(h * math.sin(rad)))
    ch = round(abs(w * math.sin(rad)) + abs(h * math.cos(rad)))
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    m[0, 2] += (cw - w) / 2.0
    m[1, 2] += (ch - h) / 2.0
    return cast(
        Image,
        cv2.warpAffine(
            bgr, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        ),
    )


def copies(bgr: Image, photo: int, n: int = COPIES, seed: int = SEED) -> Sequence[Image]:
    """``n`` altered copies of photo number ``photo`` (its index in the calibration)."""
    return [augment(bgr, rng_for(seed, photo, i)) for i in range(n)]
