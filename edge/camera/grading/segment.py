"""Segmentation of the items on a normalised tray image (work-image pixels).

A pixel may belong to an item when it is colourful, or darker than a shadow can make
the tray (:func:`item_score`); blobs are re-thresholded each at half their own score,
and concave blobs of touching items are split at the cores of their distance transform.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading.image import Contour, Image, Mask
from edge.camera.grading.normalise import TRAY_TARGET

# A pixel may belong to an item when, after normalisation, its item_score (colourfulness,
# or darkness beyond a shadow's) exceeds this; see :func:`segment`.
ITEM_SCORE = 35
SHADOW_ALLOWANCE = 50  # of TRAY_TARGET's 200 grey levels: a 25 % darker tray is still tray
MIN_ITEM_WORK_PX = 150  # smaller blobs are crumbs or noise
SPLIT_BELOW_SOLIDITY = 0.96  # a blob less convex than this may be touching items
SPLIT_PEAK = 0.45  # an item's core: deeper than this share of the blob's deepest point
MARKER_SURROUND = 1.6  # the marker and its white quiet zone, as a multiple of its size


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


def exclusion(
    shape: tuple[int, int], quad: npt.NDArray[np.float32] | None, valid: Mask | None
) -> Mask | None:
    """Where no item may be: the marker with its quiet zone, and outside ``valid``."""
    if quad is None and valid is None:
        return None
    mask = np.zeros(shape, np.uint8) if valid is None else cv2.bitwise_not(valid)
    if quad is not None:
        centre = quad.mean(axis=0)
        grown = (centre + (quad - centre) * MARKER_SURROUND).astype(np.int32)
        cv2.fillConvexPoly(mask, grown, 255)
    return cast(Mask, mask)


def segment(score: Image, exclude: Mask | None = None) -> list[Contour]:
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
        fine = (crop > level) & (cv2.dilate(coarse, kernel, iterations=3) > 0)
        if exclude is not None:
            fine &= exclude[y0:y1, x0:x1] == 0
        fine_u8 = cv2.morphologyEx(fine.astype(np.uint8), cv2.MORPH_CLOSE, kernel, iterations=2)
        parts, _ = cv2.findContours(
            fine_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(x0, y0)
        )
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
