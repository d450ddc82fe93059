"""Unusable photos are declined with the right reason; usable ones are measured."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge.camera.grading import (
    Declined,
    Reason,
    TrayMeasurement,
    WorkImage,
    assess,
    check_photo,
    decode_jpeg,
)
from edge.camera.grading.quality import MESSAGES, photo_stats
from edge.camera.scenes import ItemSpec, jpeg, make_scene

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

CASES: dict[str, tuple[dict[str, Any], dict[str, Any], Reason]] = {
    "strong-blur": ({"blur_sigma": 6.0}, {}, Reason.BLURRED),
    "moderate-blur": ({"blur_sigma": 3.5}, {}, Reason.BLURRED),
    "overexposed": ({"gain": 1.6}, {}, Reason.OVEREXPOSED),
    "underexposed": ({"gain": 0.25}, {}, Reason.UNDEREXPOSED),
    "empty-tray-with-marker": ({"items": ()}, {}, Reason.NO_ITEMS),
    "empty-tray-no-marker": ({"items": (), "marker_mm": None}, {}, Reason.NO_ITEMS),
    "marker-missing-when-required": (
        {"marker_mm": None},
        {"require_marker": True},
        Reason.MARKER_MISSING,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_unusable_photo_is_declined_with_the_reason(name):
    scene_kw, assess_kw, reason = CASES[name]
    result = assess(make_scene(**scene_kw).image, **assess_kw)
    assert isinstance(result, Declined), result
    assert result.reason is reason
    assert (result.message, result.message_en) == MESSAGES[reason]


def test_every_reason_has_a_vietnamese_and_an_english_message():
    assert set(MESSAGES) == set(Reason)
    for vi, en in MESSAGES.values():
        assert vi and en and vi != en
        assert any(ord(ch) > 127 for ch in vi)  # Vietnamese diacritics, not ASCII
        assert en.isascii()


@pytest.mark.parametrize(
    "scene_kw",
    [{}, {"blur_sigma": 1.0}, {"gain": 0.6}, {"noise": 6.0}, {"px_per_mm": 3.0}],
    ids=["sharp", "slightly-soft", "dim", "noisy", "coarse"],
)
def test_usable_photo_is_measured(scene_kw):
    scene = make_scene(**scene_kw)
    image = decode_jpeg(jpeg(scene.image))
    result = assess(image, require_marker=True)
    assert isinstance(result, TrayMeasurement), result
    assert result.scale_source == "aruco"
    assert len(result.items) == len(scene.items)


def test_a_partly_covered_marker_gives_no_scale():
    # A small potato lies over the marker's lower right corner: the marker is still
    # found (and kept out of the items), but it is not square, so its size is not trusted.
    items = (ItemSpec("brown", 24, 20, (66, 66), 0), ItemSpec("yellow", 120, 35, (200, 150), 10))
    image = make_scene(items).image
    result = assess(image, require_marker=True)
    assert isinstance(result, Declined)
    assert result.reason is Reason.MARKER_MISSING
    measured = assess(image)
    assert isinstance(measured, TrayMeasurement)
    assert measured.scale_source == "pixels"
    assert measured.marker is not None
    assert not measured.marker.square
    assert measured.marker.px_per_mm is None
    assert len(measured.items) == 2


def test_missing_marker_is_fine_when_sizes_may_be_pixels():
    result = assess(make_scene(marker_mm=None).image)
    assert isinstance(result, TrayMeasurement)
    assert result.scale_source == "pixels"


def test_undecodable_bytes_are_refused():
    with pytest.raises(ValueError, match="decodable"):
        decode_jpeg(b"not a jpeg")


def test_blank_frames_are_declined():
    black = np.zeros((960, 1280, 3), np.uint8)
    white = np.full((960, 1280, 3), 255, np.uint8)
    grey = np.full((960, 1280, 3), 180, np.uint8)
    for image, reason in (
        (black, Reason.UNDEREXPOSED),
        (white, Reason.OVEREXPOSED),
        (grey, Reason.NO_ITEMS),
    ):
        result = assess(image)
        assert isinstance(result, Declined)
        assert result.reason is reason


@pytest.mark.parametrize("seed", range(3))
def test_a_photo_without_a_tray_is_declined(seed):
    # A patchwork of colours: sharp, well exposed, but no plain tray anywhere.
    rng = np.random.default_rng(seed)
    patches = rng.integers(30, 230, (6, 8, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(patches, 160, axis=0), 160, axis=1)
    result = assess(image)
    assert isinstance(result, Declined)
    assert result.reason is Reason.NO_ITEMS
    assert result.detail["tray_share"] < 0.2


def test_sharpness_falls_with_blur():
    values = [
        photo_stats(WorkImage.of(make_scene(blur_sigma=s).image)).sharpness for s in (0, 1, 2, 4, 6)
    ]
    assert values == sorted(values, reverse=True)
    assert check_photo(WorkImage.of(make_scene().image)) is None
