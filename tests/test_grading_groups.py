"""Photo groups (sessions, backdrops, cameras) and folds that keep them whole: sessions
are told apart by the backdrop and the image size, a groups.csv wins, every class stays
in every training fold, and the product check and augmentation behave."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera.grading import augment, decode_jpeg
from edge.camera.grading.groups import (
    agglomerate,
    cluster_groups,
    group_folds,
    photo_groups,
    read_groups_file,
    session_cues,
)
from edge.camera.grading.productcheck import train_check

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only


def shot(backdrop_bgr: tuple[int, int, int], size: tuple[int, int], seed: int) -> bytes:
    """A produce-like blob on a plain backdrop, with a little noise: one session's photo."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.empty((h, w, 3), np.float32)
    img[:] = backdrop_bgr
    centre = (int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.65)))
    axes = (int(w * rng.uniform(0.12, 0.2)), int(h * rng.uniform(0.1, 0.18)))
    cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, (40, 170, 200), -1)
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    ok, data = cv2.imencode(".jpg", img.clip(0, 255).astype(np.uint8))
    assert ok
    return data.tobytes()


WHITE, YELLOW_PAPER = (235, 238, 240), (170, 215, 228)
SESSIONS = (  # (backdrop, image size)
    (WHITE, (640, 480)),
    (YELLOW_PAPER, (640, 480)),
    (WHITE, (160, 100)),
)


def write_folder(root: Path) -> tuple[list[Path], list[int], list[int]]:
    """root/<class>/<n>.jpg, two classes, each photographed in every session; the
    photos, their labels and the session each was taken in."""
    photos, labels, sessions = [], [], []
    for ci, cls in enumerate(("bad", "good")):
        (root / cls).mkdir(parents=True)
        for si, (backdrop, size) in enumerate(SESSIONS):
            for n in range(3):
                path = root / cls / f"s{si}-{n}.jpg"
                path.write_bytes(shot(backdrop, size, seed=100 * ci + 10 * si + n))
                photos.append(path)
                labels.append(ci)
                sessions.append(si)
    return photos, labels, sessions


def test_session_cues_read_the_backdrop_and_the_size():
    cues = session_cues(shot(YELLOW_PAPER, (640, 480), seed=1))
    paper = np.array([[YELLOW_PAPER]], np.float32) / 255.0
    lab = np.asarray(cv2.cvtColor(paper, cv2.COLOR_BGR2Lab))[0, 0]
    assert np.allclose(cues[:3], lab, atol=2.0)
    assert cues[3] == pytest.approx(np.log(640)) and cues[4] == pytest.approx(np.log(640 / 480))
    assert (cues[6], cues[7]) == (640, 480)
    assert cues[5] > 0  # a JPEG's quantiser: log of a mean over 1
    with pytest.raises(ValueError):
        session_cues(b"not an image")


def test_photos_are_grouped_by_session_not_by_class(tmp_path):
    photos, labels, sessions = write_folder(tmp_path)
    groups = photo_groups(photos, labels)
    for i in range(len(photos)):
        for j in range(len(photos)):
            assert (groups[i] == groups[j]) == (sessions[i] == sessions[j]), (i, j)


def test_a_groups_file_wins_and_must_list_every_photo(tmp_path):
    photos, labels, _ = write_folder(tmp_path)
    rows = ["file,group"] + [
        f"{p.relative_to(tmp_path).as_posix()},day-{i % 2}" for i, p in enumerate(photos)
    ]
    (tmp_path / "groups.csv").write_text("\n".join(rows) + "\n")
    assert photo_groups(photos, labels) == [i % 2 for i in range(len(photos))]
    (tmp_path / "groups.csv").write_text("file,group\n" + "\n".join(rows[2:]) + "\n")
    with pytest.raises(ValueError, match=r"groups\.csv: does not list bad/s0-0\.jpg"):
        read_groups_file(tmp_path, photos)


def _check_folds(groups: list[int], labels: list[int], folds: list[int]) -> None:
    g, y, f = np.array(groups), np.array(labels), np.array(folds)
    for group in np.unique(g):
        assert len(np.unique(f[g == group])) == 1, "a group is split over folds"
    for fold in np.unique(f):
        assert set(y[f != fold]) == set(y), f"training fold {fold} lacks a class"


def test_folds_keep_groups_whole_and_every_class_in_training():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 12, 200).tolist()
    labels = [(g % 3 + int(r)) % 3 for g, r in zip(groups, rng.integers(0, 2, 200), strict=True)]
    folds = group_folds(groups, labels, 5)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    _check_folds(groups, labels, folds)
    assert group_folds(groups, labels, 5) == folds  # deterministic


def test_a_class_photographed_in_one_session_is_split_not_dropped():
    # Class 1 lies in one group only: its group's photos are split by order.
    groups = [0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    folds = group_folds(groups, labels, 3)
    y, f = np.array(labels), np.array(folds)
    assert len(set(f[y == 1])) == 2  # split in two
    for fold in set(folds):
        assert set(y[f != fold]) == {0, 1}
    # Session cues that can split it: the class's sub-clusters become groups.
    cues = np.zeros((10, 8))
    cues[:, 6:8] = 640, 480
    cues[:6, 2] = [0, 0, 8, 8, 16, 16]  # class 0: three backdrops
    cues[6:, 1] = [20, 20, 21.5, 21.5]  # class 1: one backdrop, two lights
    assert len(set(cluster_groups(cues, labels)[6:])) == 2


def test_agglomerate_joins_what_is_close():
    pts = np.array([0.0, 1.0, 2.0, 20.0, 21.0, 50.0])
    dist = np.abs(pts[:, None] - pts[None, :])
    assert agglomerate(dist, 5.0) == [0, 0, 0, 1, 1, 2]
    assert agglomerate(dist, 0.5) == [0, 1, 2, 3, 4, 5]
    assert agglomerate(np.zeros((0, 0)), 1.0) == []


def test_augmented_copies_are_deterministic_and_altered():
    img = decode_jpeg(shot(WHITE, (320, 240), 3))
    a = augment.copies(img, photo=7, n=3)
    b = augment.copies(img, photo=7, n=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], augment.copies(img, photo=8, n=1)[0])
    rotated = augment.rotate(img, 10.0)
    assert rotated.shape[0] > img.shape[0] and (rotated[0, 0] == 0).all()  # padded corner
    assert augment.rescale(img, 0.3).shape == img.shape


def test_the_product_check_tells_products_apart_and_keeps_its_own():
    """The product's two grades lie either side of the other product (green and black
    bananas round a brown potato): no single line separates them, the check still does."""
    rng = np.random.default_rng(2)
    own = rng.normal(0, 1, (80, 6))
    own_labels = [i % 2 for i in range(80)]
    own[:, 0] += np.where(np.array(own_labels) == 0, -5.0, 5.0)
    others = rng.normal(0, 1, (60, 6))
    folds = [i % 4 for i in range(140)]
    result = train_check(own, own_labels, others, [0] * 60, folds, ["potato"] * 60)
    assert result.oof_accuracy > 0.9 and result.oof_refused_own <= 0.02
    check = result.check
    assert (check.probability(own) >= check.threshold).mean() > 0.95
    assert (check.probability(others) < check.threshold).mean() > 0.9
    assert 0.0 <= float(check.probability(others[0])) <= 1.0  # one photo: one number
    assert check.others == ("potato",) and check.own == 2
