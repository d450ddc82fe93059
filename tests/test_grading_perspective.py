"""Perspective correction: trays photographed at an angle are measured in true mm.

Scenes come from edge/camera/scenes.py: the tray is drawn top-down with known truth in
millimetres, then seen through a pinhole camera tilted by ``tilt_deg`` (towards
``tilt_dir_deg``) and turned by ``rotate_deg``; the scene's homography says where every
tray point lands in the photo.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pytest

from edge.camera.grading import Item, TrayMeasurement, WorkImage, decode_jpeg, measure_tray
from edge.camera.grading.perspective import find_marker
from edge.camera.scenes import (
    DEFAULT_ITEMS,
    ItemSpec,
    ItemTruth,
    Scene,
    Spot,
    camera_homography,
    jpeg,
    make_scene,
    random_items,
)

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

SIZE_TOL = 0.03  # relative
DEFECT_TOL = 0.02  # share, i.e. 2 percentage points
TILT_TOL = 2.0  # degrees
CENTRE_TOL = 3.0  # photo pixels


def _pair(scene: Scene, m: TrayMeasurement) -> list[tuple[ItemTruth, Item]]:
    """Each true item with the measured item nearest its centre (one-to-one)."""
    assert len(m.items) == len(scene.items)
    pairs = [
        (t, min(m.items, key=lambda i: math.dist(i.centre_px, t.centre_px))) for t in scene.items
    ]
    assert len({id(i) for _, i in pairs}) == len(scene.items)
    return pairs


OBLIQUE: dict[str, dict[str, Any]] = {
    "tilt-8": {"tilt_deg": 8.0},
    "tilt-15-towards-200": {"tilt_deg": 15.0, "tilt_dir_deg": 200.0, "seed": 1},
    "tilt-20-sideways": {"tilt_deg": 20.0, "tilt_dir_deg": 90.0, "seed": 2},
    "tilt-25-turned": {"tilt_deg": 25.0, "tilt_dir_deg": -60.0, "rotate_deg": -15.0, "seed": 3},
    "tilt-30": {"tilt_deg": 30.0, "seed": 4},
    "tilt-30-turned": {"tilt_deg": 30.0, "tilt_dir_deg": 45.0, "rotate_deg": 20.0, "seed": 5},
    "tilt-30-jpeg-q85": {"tilt_deg": 30.0, "tilt_dir_deg": 180.0, "jpeg_quality": 85},
    "tilt-30-far-camera": {"tilt_deg": 30.0, "tilt_dir_deg": 270.0, "camera_mm": 700.0},
    "tilt-30-dim-shadows": {"tilt_deg": 30.0, "tilt_dir_deg": 120.0, "gain": 0.65, "shadow": 0.3},
}


@pytest.mark.parametrize("name", OBLIQUE)
def test_oblique_photos_are_rectified_and_measured_in_true_mm(name):
    kw = dict(OBLIQUE[name])
    quality = kw.pop("jpeg_quality", None)
    scene = make_scene(**kw)
    image = decode_jpeg(jpeg(scene.image, quality)) if quality else scene.image
    m = measure_tray(image, marker_mm=40.0)
    assert m.rectified
    assert m.scale_source == "aruco" and m.unit == "mm"
    assert m.tilt_deg == pytest.approx(scene.tilt_deg, abs=TILT_TOL)
    for truth, item in _pair(scene, m):
        assert item.length == pytest.approx(truth.length_mm, rel=SIZE_TOL)
        assert item.width == pytest.approx(truth.width_mm, rel=SIZE_TOL)
        assert item.area == pytest.approx(truth.area_mm2, rel=2 * SIZE_TOL)
        assert abs(item.defect_share - truth.defect_share) <= DEFECT_TOL
        assert item.colour_class == truth.kind
        assert math.dist(item.centre_px, truth.centre_px) <= CENTRE_TOL
        assert not item.at_edge


@pytest.mark.parametrize("seed", range(3))
def test_random_layouts_seen_obliquely(seed):
    rng = np.random.default_rng(2000 + seed)
    items = random_items(rng)
    assert len(items) >= 3
    tilt = float(rng.uniform(15, 30))
    scene = make_scene(
        items,
        seed=seed,
        tilt_deg=tilt,
        tilt_dir_deg=float(rng.uniform(0, 360)),
        rotate_deg=float(rng.uniform(-30, 30)),
        shadow=float(rng.uniform(0, 0.3)),
        gain=float(rng.uniform(0.7, 1.05)),
    )
    m = measure_tray(scene.image)
    assert m.rectified
    assert m.tilt_deg == pytest.approx(tilt, abs=TILT_TOL)
    for truth, item in _pair(scene, m):
        assert item.length == pytest.approx(truth.length_mm, rel=SIZE_TOL)
        assert item.width == pytest.approx(truth.width_mm, rel=SIZE_TOL)
        assert abs(item.defect_share - truth.defect_share) <= DEFECT_TOL
        assert item.colour_class == truth.kind


def test_one_scale_for_an_oblique_photo_would_be_wrong():
    # What rectification corrects: the marker's own pixels per mm, applied to the items
    # where they lie in a 30-degree view, misses the truth by far more than 3 %.
    scene = make_scene(tilt_deg=30.0)
    m = measure_tray(scene.image)
    assert m.marker is not None and m.marker.px_per_mm is not None
    naive = []
    for truth, item in _pair(scene, m):
        pts = np.asarray(item.outline, np.float64)
        _, (a, b), _ = cv2.minAreaRect(pts.astype(np.float32))
        naive.append(max(a, b) / m.marker.px_per_mm / truth.length_mm - 1)
    assert max(abs(e) for e in naive) > 0.1


SQUARE_ON: dict[str, dict[str, Any]] = {
    "default": {},
    "coarser-3px-per-mm": {"px_per_mm": 3.0, "seed": 1},
    "noisy-slightly-soft": {"noise": 5.0, "blur_sigma": 1.0, "seed": 3},
    "marker-elsewhere": {"marker_at_mm": (250.0, 190.0), "seed": 4},
    "turned-30-not-tilted": {"rotate_deg": 30.0, "seed": 6},
}


@pytest.mark.parametrize("name", SQUARE_ON)
def test_square_on_photos_are_not_warped(name):
    scene = make_scene(**SQUARE_ON[name])
    m = measure_tray(scene.image)
    assert not m.rectified
    assert m.tilt_deg is not None and m.tilt_deg < 5.0
    assert m.marker is not None
    assert m.px_per_mm == m.marker.px_per_mm
    for truth, item in _pair(scene, m):
        assert item.length == pytest.approx(truth.length_mm, rel=SIZE_TOL)
        assert item.width == pytest.approx(truth.width_mm, rel=SIZE_TOL)


@pytest.mark.parametrize("kw", [{}, {"tilt_deg": 30.0, "tilt_dir_deg": 45.0, "rotate_deg": 20.0}])
def test_marker_corners_are_located_to_a_fraction_of_a_pixel(kw):
    scene = make_scene(**kw)
    marker = find_marker(WorkImage.of(scene.image), 40.0)
    assert marker is not None and marker.square
    # The scene draws the marker from the edge of pixel (80, 80) of the top-down
    # drawing, i.e. half a pixel before 20 mm.
    start = 20.0 - 0.5 / scene.px_per_mm
    truth = scene.to_photo(np.array([[0, 0], [40, 0], [40, 40], [0, 40]]) + start)
    assert np.abs(np.asarray(marker.corners) - truth).max() < 0.15


def test_a_covered_marker_in_an_oblique_photo_gives_no_scale():
    items = (ItemSpec("brown", 24, 20, (66, 66), 0), ItemSpec("yellow", 120, 35, (200, 150), 10))
    m = measure_tray(make_scene(items, tilt_deg=25.0, tilt_dir_deg=100.0).image)
    assert m.marker is not None
    assert not m.marker.square and m.marker.px_per_mm is None
    assert m.scale_source == "pixels" and not m.rectified and m.tilt_deg is None
    assert len(m.items) == 2


def test_without_the_marker_size_an_oblique_photo_is_measured_in_pixels():
    scene = make_scene(tilt_deg=20.0)
    m = measure_tray(scene.image, marker_mm=None)
    assert m.scale_source == "pixels" and not m.rectified
    assert m.tilt_deg == pytest.approx(20.0, abs=TILT_TOL)  # the shape alone gives the tilt
    assert len(m.items) == len(scene.items)


@pytest.mark.parametrize(
    "kw",
    [
        {"tilt_deg": 20.0, "fill": 1.25},
        {"tilt_deg": 25.0, "tilt_dir_deg": 330.0, "rotate_deg": 10.0, "fill": 1.2},
    ],
    ids=["far-side-up", "turned"],
)
def test_an_item_cut_off_by_an_oblique_frame_is_flagged(kw):
    items = (ItemSpec("yellow", 120, 35, (250, 200), 20), ItemSpec("brown", 60, 45, (160, 130), 0))
    scene = make_scene(items, **kw)
    m = measure_tray(scene.image)
    assert m.rectified
    assert len(m.items) == 2
    # The whole potato is nearer the photo's centre than the banana running out of view.
    whole, cut = sorted(m.items, key=lambda i: math.dist(i.centre_px, (640, 480)))
    assert not whole.at_edge and cut.at_edge
    assert whole.length == pytest.approx(60, rel=SIZE_TOL)
    assert cut.length < 0.96 * 120  # only the part in view


def _ellipse_radius(spec: ItemSpec, scene: Scene, points_px):
    """Photo points in the item's own normalised frame: 1.0 is on the true outline."""
    inv = np.linalg.inv(np.asarray(scene.homography))
    h = np.c_[points_px, np.ones(len(points_px))] @ inv.T
    d = h[:, :2] / h[:, 2:] - np.asarray(spec.centre_mm)
    a = math.radians(spec.angle_deg)
    u = (d[:, 0] * math.cos(a) + d[:, 1] * math.sin(a)) / (spec.length_mm / 2)
    v = (-d[:, 0] * math.sin(a) + d[:, 1] * math.cos(a)) / (spec.width_mm / 2)
    return np.sqrt(u * u + v * v)


def _spot_centres(spec: ItemSpec) -> list[tuple[float, float]]:
    a = math.radians(spec.angle_deg)
    return [
        (
            spec.centre_mm[0] + s.along_mm * math.cos(a) - s.across_mm * math.sin(a),
            spec.centre_mm[1] + s.along_mm * math.sin(a) + s.across_mm * math.cos(a),
        )
        for s in spec.spots
    ]


OUTLINE_SCENES: dict[str, dict[str, Any]] = {
    "square-on": {},
    "tilt-20": {"tilt_deg": 20.0},
    "tilt-30-turned": {"tilt_deg": 30.0, "tilt_dir_deg": 45.0, "rotate_deg": 20.0},
}


@pytest.mark.parametrize("name", OUTLINE_SCENES)
def test_outlines_lie_on_the_items_in_the_original_photo(name):
    scene = make_scene(**OUTLINE_SCENES[name])
    m = measure_tray(scene.image)
    for spec, (_, item) in zip(DEFAULT_ITEMS, _pair(scene, m), strict=True):
        poly = np.asarray(item.outline, np.float64)
        assert 8 <= len(poly) <= 120  # simplified, yet a shape
        assert all(isinstance(c, int) for pt in item.outline for c in pt)
        r = _ellipse_radius(spec, scene, poly)
        assert r.min() > 0.92 and r.max() < 1.03, (r.min(), r.max())
        # The outline's centroid is the true outline's (perspective moves an area's
        # centroid away from its projected centre, so compare like with like).
        t = np.linspace(0, 2 * math.pi, 720, endpoint=False)
        a = math.radians(spec.angle_deg)
        ex = np.c_[np.cos(t) * spec.length_mm / 2, np.sin(t) * spec.width_mm / 2]
        ex = ex @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        true_poly = scene.to_photo(ex + np.asarray(spec.centre_mm)).astype(np.float32)
        mt = cv2.moments(true_poly)
        mo = cv2.moments(poly.astype(np.float32))
        true_c = (mt["m10"] / mt["m00"], mt["m01"] / mt["m00"])
        assert math.dist((mo["m10"] / mo["m00"], mo["m01"] / mo["m00"]), true_c) < CENTRE_TOL
        # Every spot is inside one of the item's defect outlines, and there are no others.
        spots = scene.to_photo(_spot_centres(spec)) if spec.spots else np.empty((0, 2))
        assert len(item.defect_outlines) == len(spec.spots)
        for sx, sy in spots:
            assert any(
                cv2.pointPolygonTest(np.asarray(d, np.float32), (float(sx), float(sy)), False) >= 0
                for d in item.defect_outlines
            )


def test_greening_is_outlined_as_a_defect():
    items = (ItemSpec("brown", 80, 60, (160, 120), 20, (Spot(10, 5, 9, "green"),)),)
    scene = make_scene(items, tilt_deg=20.0, tilt_dir_deg=300.0)
    (item,) = measure_tray(scene.image).items
    assert item.green_share > 0.05
    (region,) = item.defect_outlines
    ((sx, sy),) = scene.to_photo(np.asarray(_spot_centres(items[0])))
    assert cv2.pointPolygonTest(np.asarray(region, np.float32), (float(sx), float(sy)), False) > 0


def test_square_on_camera_is_the_top_down_drawing():
    assert np.array_equal(camera_homography((1280, 960), 4.0), np.diag([4.0, 4.0, 1.0]))
    flat = make_scene()
    assert np.allclose(flat.to_photo([[10.0, 20.0]]), [[40.0, 80.0]])
    with pytest.raises(ValueError, match="tilt_deg"):
        camera_homography((1280, 960), 4.0, tilt_deg=75.0)
