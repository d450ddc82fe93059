"""Decline unusable tray photos, with a reason code and a message in Vietnamese and English.

:func:`assess` is the station's entry point: it checks exposure and focus, measures
the tray (:func:`edge.camera.grading.measure.measure_tray`), then declines a photo
with no items, or without the size marker when the caller's rules need sizes in mm.
Everything is a pure function of the image.

:func:`unsure` is the other kind of refusal: a usable photo whose calibrated model
found no grade cheaper than asking the station lead (costs.py). It is not the
photo's fault, so its message never says to retake it; it names the two likeliest
grades and how likely each is, for the lead who decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading.measure import TrayMeasurement, WorkImage, measure_tray
from edge.gradenames import Lang, grade_label

# Thresholds on the half-resolution grey image; see PhotoStats.
OVEREXPOSED_SHARE = 0.25  # more than this share of pixels at 250 or above
UNDEREXPOSED_MEAN = 60.0  # mean grey below this ...
UNDEREXPOSED_P99 = 100.0  # ... or even the brightest 1 % below this
MIN_CONTRAST = 45.0  # p99 - p1 below this: a bare tray, nothing to judge focus on
MIN_SHARPNESS = 0.25  # steepest edges (p99.9 gradient per pixel) / contrast
MIN_TRAY_SHARE = 0.2  # less tray than this in the photo: no tray in view


class Reason(StrEnum):
    NO_ITEMS = "no_items"
    BLURRED = "blurred"
    OVEREXPOSED = "overexposed"
    UNDEREXPOSED = "underexposed"
    MARKER_MISSING = "marker_missing"
    NOT_THE_PRODUCT = "not_the_product"  # other produce than the lot's (plausible.py)
    UNSURE = "unsure"  # a usable photo, but no grade is sure enough: a lead decides


MESSAGES: dict[Reason, tuple[str, str]] = {
    Reason.NO_ITEMS: (
        "Không thấy khay hoặc nông sản trong ảnh. Đặt nông sản lên khay rồi chụp lại.",
        "No tray or produce found in the photo. Put the produce on the tray and retake.",
    ),
    Reason.BLURRED: (
        "Ảnh bị mờ. Giữ yên máy, lau ống kính rồi chụp lại.",
        "The photo is blurred. Hold the camera still, clean the lens and retake.",
    ),
    Reason.OVEREXPOSED: (
        "Ảnh quá sáng. Tránh nắng chiếu thẳng hoặc giảm đèn rồi chụp lại.",
        "The photo is overexposed. Avoid direct sun or dim the light and retake.",
    ),
    Reason.UNDEREXPOSED: (
        "Ảnh quá tối. Bật đèn hoặc ra chỗ sáng hơn rồi chụp lại.",
        "The photo is underexposed. Turn on the light or move somewhere brighter and retake.",
    ),
    Reason.MARKER_MISSING: (
        "Không thấy thẻ đo kích thước trên khay. Đặt thẻ vào chỗ cũ, không che, rồi chụp lại.",
        "The size marker is not visible on the tray. Put it back, uncovered, and retake.",
    ),
    Reason.NOT_THE_PRODUCT: (  # plausible.py says what it saw instead
        "Ảnh không giống sản phẩm của lô. Kiểm tra lô và chụp lại.",
        "The photo does not look like the lot's product. Check the lot and retake.",
    ),
    Reason.UNSURE: (  # unsure() names the two likeliest grades (and has the dash in English)
        "Không chắc chắn — nhờ trưởng trạm xem và chọn hạng.",
        "Not sure - ask the station lead to look and choose the grade.",
    ),
}
NBSP = "\u00a0"  # "55 %": a number never parts from its unit


@dataclass(frozen=True)
class Declined:
    """A photo the station will not grade, and why."""

    reason: Reason
    message: str  # Vietnamese
    message_en: str
    detail: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def of(reason: Reason, **detail: float) -> Declined:
        vi, en = MESSAGES[reason]
        return Declined(reason, vi, en, dict(detail))


@dataclass(frozen=True)
class PhotoStats:
    """Exposure and focus figures of a photo (half-resolution grey image)."""

    mean: float
    bright_share: float  # share of pixels at 250 or above
    p1: float
    p99: float
    sharpness: float  # p99.9 of the gradient magnitude per pixel / (p99 - p1)

    @property
    def contrast(self) -> float:
        return self.p99 - self.p1


def _percentile_u8(hist: npt.NDArray[np.intp], q: float) -> float:
    cum = np.cumsum(hist)
    return float(np.searchsorted(cum, q * float(cum[-1])))


def photo_stats(work: WorkImage) -> PhotoStats:
    """Exposure and sharpness figures, by histograms (no sorting of pixels)."""
    gray = work.small_gray
    hist = np.bincount(gray.ravel(), minlength=256)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    # Sobel's 3x3 kernels weigh a one-grey-level-per-pixel slope as 8.
    mag = cv2.convertScaleAbs(cv2.magnitude(gx, gy), alpha=1 / 8)
    grad_hist = np.bincount(mag.ravel(), minlength=256)
    p1, p99 = _percentile_u8(hist, 0.01), _percentile_u8(hist, 0.99)
    steep = _percentile_u8(grad_hist, 0.999)
    return PhotoStats(
        mean=float(gray.mean()),
        bright_share=float(hist[250:].sum()) / gray.size,
        p1=p1,
        p99=p99,
        sharpness=steep / max(p99 - p1, 1.0),
    )


def check_photo(work: WorkImage) -> Declined | None:
    """Exposure and focus checks that need no measurement; ``None`` when the photo is usable."""
    s = photo_stats(work)
    if s.bright_share > OVEREXPOSED_SHARE:
        return Declined.of(Reason.OVEREXPOSED, bright_share=s.bright_share)
    if s.mean < UNDEREXPOSED_MEAN or s.p99 < UNDEREXPOSED_P99:
        return Declined.of(Reason.UNDEREXPOSED, mean=s.mean, p99=s.p99)
    if s.contrast < MIN_CONTRAST:
        return Declined.of(Reason.NO_ITEMS, contrast=s.contrast)
    if s.sharpness < MIN_SHARPNESS:
        return Declined.of(Reason.BLURRED, sharpness=s.sharpness)
    return None


def assess(
    photo: npt.NDArray[Any], *, marker_mm: float | None = 40.0, require_marker: bool = False
) -> TrayMeasurement | Declined:
    """Check a tray photo (BGR) and measure it, or say why it cannot be graded.

    ``require_marker`` is for callers whose rules need sizes in millimetres: a photo
    without the marker is then declined with ``marker_missing`` instead of being
    measured in pixels.
    """
    work = WorkImage.of(photo)
    declined = check_photo(work)
    if declined is not None:
        return declined
    m = measure_tray(work, marker_mm)
    if m.tray_share < MIN_TRAY_SHARE or not m.items:
        return Declined.of(Reason.NO_ITEMS, items=float(len(m.items)), tray_share=m.tray_share)
    if require_marker and m.scale_source != "aruco":
        return Declined.of(Reason.MARKER_MISSING)
    return m


def _likely(grade: str, share: float, lang: Lang) -> str:
    """ "hạng B (55 %)": a grade in a sentence and its chance in whole percent."""
    label = grade_label(grade, lang)
    return f"{label[:1].lower()}{label[1:]} ({round(100 * share)}{NBSP}%)"


def unsure(classes: Sequence[str], proba: Sequence[float]) -> Declined:
    """The refusal for a photo the station is not sure of, naming the two likeliest
    grades with their chance ("Không chắc chắn — nhờ trưởng trạm xem: có thể là hạng
    good (55 %) hoặc hạng bad (45 %)."); ``detail`` holds every class's probability
    (``p_<class>``)."""
    ranked = sorted(range(len(classes)), key=lambda i: -float(proba[i]))[:2]
    vi = " hoặc ".join(_likely(classes[i], float(proba[i]), "vi") for i in ranked)
    en = " or ".join(_likely(classes[i], float(proba[i]), "en") for i in ranked)
    return Declined(
        Reason.UNSURE,
        f"Không chắc chắn — nhờ trưởng trạm xem: có thể là {vi}.",
        f"Not sure — ask the station lead to look: {en}.",
        {f"p_{c}": float(p) for c, p in zip(classes, proba, strict=True)},
    )
