"""What a network pretrained on a million photos sees in the produce: a 1280-number
embedding per photo, for the learned grader.

A model fitted on the produce figures alone (:mod:`features`) learns from a few
hundred photos per grade; a network trained from scratch on as few did worse (docs/grading.md,
"The small CNN we tried"). EfficientNet-Lite0, pretrained on ImageNet, already tells
textures, spots, bruises and ripeness colours apart: its last layer, averaged over the
image, is a description of the produce that a linear model can grade from, and that
holds on photos from other cameras far better than hand-made figures.

The network sees only the produce: :func:`produce_view` is the photo at the features'
resolution, its light divided out (:func:`features.balance`), cropped square round the
produce mask, with everything that is not produce painted grey. So it cannot learn the
backdrop, the tray or the light's colour.

The backbone ships inside the package (``edge/defaults/grading/backbone/``, about
13 MB, Apache-2.0 weights; its ``NOTICE`` says where they come from) and runs with
OpenCV's dnn module: no new dependency, nothing fetched at run time, and the same on a
Pi's arm64. One photo costs a few ms on the station.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]

NAME = "efficientnet-lite0"
SHORT = "lite0"  # in candidate names
SIDE = 192  # the network's input, pixels square
DIM = 1280  # numbers per embedding
GREY = 128  # what is not produce becomes (0 after the input normalisation)
MEAN, SCALE = 127.0, 1.0 / 128.0  # EfficientNet-Lite's input: (rgb - 127) / 128
MARGIN = 0.08  # the crop reaches this share of the produce's box beyond it
BACKBONE_FILE = f"{NAME}-{SIDE}.onnx"


class BackboneError(Exception):
    """The backbone file is missing or not a network OpenCV can run."""


def backbone_path() -> Path:
    return Path(str(resources.files("edge.defaults") / "grading" / "backbone" / BACKBONE_FILE))


class Backbone:
    """The pretrained network, loaded once. OpenCV's Net is not safe to share between
    threads, so one lock guards it; a batch of views goes through in one call."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise BackboneError(
                f"{path}: the grading backbone is missing; reinstall the station package"
            )
        try:
            self._net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise BackboneError(
                f"{path}: not a network OpenCV can run ({exc.err}); reinstall the station package"
            ) from None
        self._lock = threading.Lock()

    def embed(self, views: Sequence[Image]) -> Floats:
        """One row of DIM numbers per view (each SIDE x SIDE BGR, from :func:`produce_view`)."""
        if not views:
            return np.zeros((0, DIM))
        blob = cv2.dnn.blobFromImages(list(views), SCALE, (SIDE, SIDE), (MEAN,) * 3, swapRB=True)
        with self._lock:
            self._net.setInput(blob)
            out = np.asarray(self._net.forward(), np.float64)
        return out.reshape(len(views), DIM)


@cache
def backbone() -> Backbone:
    """The package's backbone, loaded on first use (about 0.2 s)."""
    return Backbone(backbone_path())


def produce_view(balanced: Image, mask: Mask) -> Image:
    """The square window round the produce ``mask`` (MARGIN beyond its box) of the
    balanced photo at SIDE pixels, everything outside the mask grey. An empty mask gives
    the whole photo, as it is."""
    if not mask.any():
        return cast(Image, cv2.resize(balanced, (SIDE, SIDE), interpolation=cv2.INTER_AREA))
    return square_window(balanced, mask, SIDE, MARGIN)[0]


def square_window(
    balanced: Image, mask: Mask, side: int, margin: float, box: Mask | None = None
) -> tuple[Image, Mask]:
    """The square window round ``box``'s pixels (default: the mask's), ``margin`` of its
    size beyond them on each side, at ``side`` pixels, outside ``mask`` (and outside the
    photo) GREY; and the mask at that size. ``box`` must have a pixel."""
    ys, xs = np.nonzero(mask if box is None else box)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    half = max(y1 - y0, x1 - x0) * (0.5 + margin)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    scale = side / (2 * half)
    m = np.array([[scale, 0, side / 2 - cx * scale], [0, scale, side / 2 - cy * scale]])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.warpAffine(balanced, m, (side, side), flags=interp, borderValue=(GREY,) * 3)
    inside = cv2.warpAffine(mask.astype(np.uint8) * 255, m, (side, side), flags=cv2.INTER_LINEAR)
    keep = inside >= 128
    img[~keep] = GREY
    return cast(Image, img), keep
