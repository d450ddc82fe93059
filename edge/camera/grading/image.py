"""The photo and its half-resolution working copy, and JPEG decoding.

Work is done on a half-resolution copy (the "work" image) to keep a 1280x960 photo
well inside the time budget. Pixel coordinates are pixel centres throughout: work
pixel ``p`` is photo pixel ``(p + 0.5) * WORK_SCALE - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.uint8]  # 0 or 255
Contour = npt.NDArray[np.int32]
Matrix = npt.NDArray[np.float64]  # a 3x3 homography

WORK_SCALE = 2  # the work image is 1/WORK_SCALE of the photo on each side

# Work pixels -> photo pixels (pixel centres), as a homography.
WORK_TO_PHOTO: Matrix = np.array(
    [
        [WORK_SCALE, 0.0, (WORK_SCALE - 1) / 2],
        [0.0, WORK_SCALE, (WORK_SCALE - 1) / 2],
        [0.0, 0.0, 1.0],
    ]
)


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


def decode_jpeg(data: bytes) -> Image:
    """Decode a JPEG (or PNG) photo to BGR; ``ValueError`` when it is not an image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image")
    return cast(Image, image)


def invert(hom: npt.ArrayLike) -> Matrix:
    """The inverse of a homography."""
    return np.asarray(np.linalg.inv(np.asarray(hom, np.float64)), np.float64)


def transform(hom: Matrix, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Points (N x 2) through a homography (N x 2)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h = pts @ hom[:, :2].T + hom[:, 2]
    out: npt.NDArray[np.float64] = h[:, :2] / h[:, 2:]
    return out
