"""annotate(): outlines, defects, marker and a Vietnamese caption drawn on the photo."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pytest

from edge.camera.grading import TrayMeasurement, measure_tray
from edge.camera.grading.annotate import (
    BAD_MARKER_BGR,
    MARKER_BGR,
    MAX_CAPTION_LINES,
    annotate,
)
from edge.camera.scenes import DEFAULT_ITEMS, ItemSpec, make_scene

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

VIEWS: dict[str, dict[str, Any]] = {
    "square-on": {},
    "oblique": {"tilt_deg": 30.0, "tilt_dir_deg": 45.0, "rotate_deg": 20.0},
}


def _measured(**kw: Any) -> tuple[np.ndarray, TrayMeasurement]:
    image = make_scene(**kw).image
    return image, measure_tray(image)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.any(a != b, axis=2), bool)


@pytest.mark.parametrize("name", VIEWS)
def test_outlines_are_drawn_on_the_items_and_nothing_far_away_changes(name):
    photo, m = _measured(**VIEWS[name])
    before = photo.copy()
    out = annotate(photo, m)
    assert np.array_equal(photo, before)  # pure: the photo is left alone
    assert out.shape == photo.shape and out.dtype == np.uint8
    changed = _changed(out, photo)
    h, w = photo.shape[:2]
    near = np.zeros((h, w), np.uint8)
    for item in m.items:
        band = np.zeros((h, w), np.uint8)
        cv2.polylines(band, [np.asarray(item.outline, np.int32)], True, 255, 1)
        on_line = band > 0
        assert changed[on_line].mean() > 0.9, item.index
        # Everything drawn for an item stays near it: outline, defects, and its label
        # (up to about three label heights above the outline).
        x, y, bw, bh = cv2.boundingRect(np.asarray(item.outline, np.int32))
        cv2.rectangle(near, (x - 120, y - 90), (x + bw + 120, y + bh + 20), 255, -1)
    assert m.marker is not None
    mx, my, mw, mh = cv2.boundingRect(np.asarray(m.marker.corners, np.float32))
    cv2.rectangle(near, (mx - 10, my - 10), (mx + mw + 10, my + mh + 10), 255, -1)
    far = near == 0
    assert far.mean() > 0.2  # a real area was checked ...
    assert not changed[far].any()  # ... and nothing there was touched


def test_defects_are_tinted_red_and_sound_skin_is_not():
    scene = make_scene()
    m = measure_tray(scene.image)
    out = annotate(scene.image, m)
    spec = DEFAULT_ITEMS[1]  # the potato with one spot of 7 mm radius
    truth = scene.items[1]
    a = math.radians(spec.angle_deg)
    s = spec.spots[0]
    sx = spec.centre_mm[0] + s.along_mm * math.cos(a) - s.across_mm * math.sin(a)
    sy = spec.centre_mm[1] + s.along_mm * math.sin(a) + s.across_mm * math.cos(a)
    ((px, py),) = scene.to_photo([[sx, sy]]).round().astype(int)
    r0 = int(scene.image[py, px, 2])
    b1, g1, r1 = (int(v) for v in out[py, px])
    assert r1 - r0 > 40 and r1 > g1 + 40 and r1 > b1 + 40
    # The far side of the item from the spot keeps its colour.
    ox, oy = (round(2 * c - d) for c, d in zip(truth.centre_px, (px, py), strict=True))
    assert np.array_equal(out[oy, ox], scene.image[oy, ox])


def test_the_marker_is_outlined_blue_when_it_gave_the_scale_and_red_when_not():
    photo, m = _measured()
    assert m.marker is not None and m.marker.px_per_mm is not None
    out = annotate(photo, m)
    (x0, y0), (x1, y1) = m.marker.corners[0], m.marker.corners[1]
    mid = (round((x0 + x1) / 2), round((y0 + y1) / 2))
    assert np.abs(out[mid[1], mid[0]].astype(int) - MARKER_BGR).max() < 60
    covered = (ItemSpec("brown", 24, 20, (66, 66), 0), ItemSpec("yellow", 120, 35, (200, 150), 10))
    photo, m = _measured(items=covered)
    assert m.marker is not None and m.marker.px_per_mm is None
    out = annotate(photo, m)
    (x0, y0), (x1, y1) = m.marker.corners[0], m.marker.corners[1]
    mid = (round((x0 + x1) / 2), round((y0 + y1) / 2))
    assert np.abs(out[mid[1], mid[0]].astype(int) - BAD_MARKER_BGR).max() < 60


VI = "Loại A: khoai tây đạt chuẩn, 5 củ, không dập"
ASCII = "Loai A: khoai tay dat chuan, 5 cu, khong dap"


def test_a_vietnamese_caption_is_rendered_in_a_band_below_the_photo():
    photo, m = _measured()
    plain = annotate(photo, m)
    vi = annotate(photo, m, VI)
    ascii_ = annotate(photo, m, ASCII)
    h = photo.shape[0]
    assert vi.shape[0] > h and vi.shape[1] == photo.shape[1]
    assert np.array_equal(vi[:h], plain)  # the caption only adds the band
    band_vi, band_ascii = vi[h:], ascii_[h:]
    assert band_vi.shape == band_ascii.shape
    ink = (band_vi > 128).all(axis=2)  # white text on the dark band
    assert ink.mean() > 0.01
    # The diacritics are drawn: same letters without them render differently, and
    # the difference is ink, not a missing-glyph box of a different size.
    diff = _changed(band_vi, band_ascii)
    assert diff.sum() > 200
    assert abs(int(ink.sum()) - int((band_ascii > 128).all(axis=2).sum())) < ink.sum() * 0.5


def test_a_long_caption_wraps_and_is_cut_with_an_ellipsis():
    photo, m = _measured()
    one = annotate(photo, m, "Loại B")
    two = annotate(photo, m, " ".join(["Nông sản đạt chuẩn"] * 6))
    many = annotate(photo, m, " ".join(["Nông sản đạt chuẩn"] * 60))
    h = photo.shape[0]
    line = two.shape[0] - one.shape[0]
    assert line > 10  # a second line made the band taller
    assert many.shape[0] - h == (one.shape[0] - h) + (MAX_CAPTION_LINES - 1) * line


def test_annotating_the_wrong_photo_is_refused():
    photo, m = _measured()
    with pytest.raises(ValueError, match="annotate the photo that was measured"):
        annotate(photo[:480, :640].copy(), m)
    with pytest.raises(ValueError, match="BGR"):
        annotate(photo[..., 0].copy(), m)


def test_items_cut_off_by_the_frame_are_drawn_differently():
    items = (ItemSpec("yellow", 120, 35, (300, 120), 0), ItemSpec("brown", 60, 45, (160, 130), 0))
    photo, m = _measured(items=items)
    out = annotate(photo, m)
    colours = []
    for item in m.items:
        band = np.zeros(photo.shape[:2], np.uint8)
        cv2.polylines(band, [np.asarray(item.outline, np.int32)], True, 255, 1)
        colours.append((item.at_edge, tuple(np.median(out[band > 0], axis=0))))
    assert {edge for edge, _ in colours} == {True, False}
    assert colours[0][1] != colours[1][1]
