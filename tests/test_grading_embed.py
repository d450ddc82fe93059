"""The pretrained network's embedding of the produce (issue 17): the backbone ships in
the package and runs with OpenCV, it sees the produce and not the backdrop, a model on
it is chosen when it grades better, and the station grades with such a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edge.camera.grading import Declined, GradingError, decode_jpeg
from edge.camera.grading.embed import (
    DIM,
    GREY,
    SIDE,
    Backbone,
    BackboneError,
    backbone,
    backbone_path,
    produce_view,
)
from edge.camera.grading.features import FEATURE_NAMES, Features
from edge.camera.grading.grade import (
    Graded,
    grade_work,
    load_grading_model,
    load_grading_rules,
    model_input,
    model_vector,
)
from edge.camera.grading.groups import group_folds
from edge.camera.grading.measure import WorkImage
from edge.camera.grading.model import (
    EMBEDDED,
    FIGURES,
    Model,
    ModelError,
    calibrate_full,
    cross_validate,
    fit,
    joined,
)
from edge.camera.scenes import jpeg, make_scene
from edge.config import GradingConfig
from tests.test_grading_model import BIG_SPOTS, scene_items

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

RULES = GradingConfig().rules_dir


def scene(kind: str, seed: int, spotted: bool = False, **kw: object) -> bytes:
    """A generated tray photo of three or four items of one kind (spotted: with big
    dark spots), as test_grading_model makes them."""
    items = scene_items(kind, BIG_SPOTS if spotted else (), seed)
    args: dict[str, object] = {"size": (640, 480), "px_per_mm": 2.0, "seed": seed, **kw}
    return jpeg(make_scene(items, **args).image)  # type: ignore[arg-type]


def features_of(data: bytes) -> Features:
    """The features as the station computes them (the tray's marker left out)."""
    seen = model_input(WorkImage.of(decode_jpeg(data)))
    assert not isinstance(seen, Declined), seen
    return seen[1]


def test_the_backbone_ships_inside_the_package_and_embeds_a_batch():
    path = backbone_path()
    assert path.is_file() and "edge/defaults/grading/backbone" in path.as_posix()
    assert (path.parent / "NOTICE").read_text().count("Apache License") >= 2
    views = [features_of(scene(k, s)).view for k, s in (("green", 1), ("yellow", 2))]
    rows = backbone().embed(views)
    assert rows.shape == (2, DIM) and np.isfinite(rows).all()
    assert np.allclose(backbone().embed(views[1:])[0], rows[1], atol=1e-5)  # batch = one by one
    assert backbone().embed([]).shape == (0, DIM)


def test_the_view_is_the_produce_alone_filling_the_square():
    f = features_of(scene("yellow", 3))
    assert f.view.shape == (SIDE, SIDE, 3)
    grey = (f.view == GREY).all(axis=2)
    assert 0.5 < grey.mean() < 0.97  # the items and grey round them
    # The crop is the items' box squared: produce near two opposite edges of the square.
    rows = not grey[:20].all() and not grey[-20:].all()
    cols = not grey[:, :20].all() and not grey[:, -20:].all()
    assert rows or cols
    # Everything that is not grey is produce (yellow: red and green above blue; neither
    # the cream tray nor the black and white marker).
    px = f.view[~grey].astype(int)
    yellow = (px[:, 2] - px[:, 0] > 40) & (px[:, 1] - px[:, 0] > 40)
    assert yellow.mean() > 0.95
    # An empty mask gives the whole photo, resized.
    whole = produce_view(np.full((50, 80, 3), 200, np.uint8), np.zeros((50, 80), np.bool_))
    assert whole.shape == (SIDE, SIDE, 3) and (whole == 200).all()


def test_the_embedding_keys_on_the_produce_not_the_backdrop():
    """The same kind of produce on another tray colour under another light stays closer
    to itself than to another kind on the same tray."""

    def emb(kind: str, seed: int, **kw: object) -> npt.NDArray[np.float64]:
        row = backbone().embed([features_of(scene(kind, seed, False, **kw)).view])[0]
        out: npt.NDArray[np.float64] = row / np.linalg.norm(row)
        return out

    other_tray = {"tray_bgr": (185, 200, 222), "cast": (1.06, 1.0, 0.92)}
    green, green_elsewhere, yellow = (
        emb("green", 11),
        emb("green", 11, **other_tray),
        emb("yellow", 11),
    )
    assert float(green @ green_elsewhere) > float(green @ yellow) + 0.05


def test_a_missing_or_damaged_backbone_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneError, match="missing; reinstall the station package"):
        Backbone(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a network at all")
    with pytest.raises(BackboneError, match="not a network OpenCV can run"):
        Backbone(bad)


WIDTH = DIM


def _two_classes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Figures that say nothing about the class and an embedding that does."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n)
    x = rng.normal(size=(2 * n, len(FEATURE_NAMES)))
    e = rng.normal(size=(2 * n, WIDTH))
    e[:, :64] += 1.5 * y[:, None]
    return x, e, y, list(range(2 * n))


def test_calibration_chooses_the_embedding_when_it_grades_better():
    x, e, y, groups = _two_classes(30, 1)
    bg = np.random.default_rng(2).normal(size=x.shape)  # a backdrop that says nothing
    bge = np.random.default_rng(3).normal(size=e.shape)
    cal = calibrate_full(
        x, y, ("bad", "good"), "potato", groups, background=bg, embedded=e, background_embedded=bge
    )
    scores = cal.model.info["cv_macro_f1"]
    assert cal.model.inputs == EMBEDDED and cal.model.info["chosen"].startswith("lite0_l2_")
    assert (
        scores[cal.model.info["chosen"]]
        > 0.9
        > max(v for k, v in scores.items() if not k.startswith("lite0"))
    )
    assert max(cal.model.info["control_macro_f1"].values()) < 0.8
    assert cal.model.means.shape == (len(FEATURE_NAMES) + WIDTH,)
    # Without an embedding only the figures' candidates run.
    plain = calibrate_full(x, y, ("bad", "good"), "potato", groups)
    assert plain.model.inputs == FIGURES
    assert not any(k.startswith("lite0") for k in plain.model.info["cv_macro_f1"])


GRADES = ((0, "yellow", False), (1, "yellow", True), (2, "green", False))


def _embedded_banana_model(tmp_path: Path) -> Path:
    """A model on the figures and embedding of generated photos: green is unripe,
    yellow ripe, spotted yellow rotten."""
    rows, labels = [], []
    for i, (label, kind, spotted) in enumerate(GRADES * 5):
        f = features_of(scene(kind, 100 + i, spotted))
        rows.append(f)
        labels.append(label)
    x = np.vstack([f.vector for f in rows])
    e = backbone().embed([f.view for f in rows])
    classes = ("ripe", "rotten", "unripe")
    model = fit(joined(x, e), np.array(labels), classes, "banana", "logreg", 0.3, EMBEDDED)
    path = tmp_path / "banana.json"
    model.save(path)
    return path


def test_the_station_grades_with_an_embedding_model(tmp_path):
    path = _embedded_banana_model(tmp_path)
    data = json.loads(path.read_text())
    assert data["version"] == 3 and data["inputs"] == EMBEDDED
    assert len(data["means"]) == len(FEATURE_NAMES) + DIM
    assert data["feature_names"] == list(FEATURE_NAMES)  # the embedding's numbers have no names
    model = load_grading_model(path, "banana")
    rules = load_grading_rules(RULES, "banana")
    for label, kind, spotted in GRADES:
        grade = ("ripe", "rotten", "unripe")[label]
        work = WorkImage.of(decode_jpeg(scene(kind, 900, spotted)))
        g = grade_work(work, rules, model)
        assert isinstance(g, Graded) and (g.method, g.grade) == ("model", grade), g
        # Only named figures are given as reasons.
        assert all(d.key in FEATURE_NAMES for d in g.reasons)
    f = features_of(scene("green", 901))
    assert model_vector(model, f).shape == (len(FEATURE_NAMES) + DIM,)


def test_a_model_of_another_backbone_or_newer_format_is_refused(tmp_path):
    path = _embedded_banana_model(tmp_path)
    data = json.loads(path.read_text())
    for change, key, words in (
        ({"inputs": "figures+resnet50-224"}, "inputs", "another backbone"),
        ({"version": 4}, "version", "upgrade the station"),
        ({"kind": "quadratic"}, "kind", "figures alone"),
        ({"means": data["means"][: len(FEATURE_NAMES)]}, "means", "shape"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**data, **change}))
        with pytest.raises(ModelError) as err:
            Model.load(bad)
        assert str(err.value).startswith(f"{bad}: {key}: ") and words in str(err.value)


def test_a_station_without_its_backbone_says_so_instead_of_grading(tmp_path, monkeypatch):
    path = _embedded_banana_model(tmp_path)
    monkeypatch.setattr("edge.camera.grading.embed.backbone_path", lambda: tmp_path / "gone.onnx")
    backbone.cache_clear()
    try:
        model = load_grading_model(path, "banana")
        rules = load_grading_rules(RULES, "banana")
        with pytest.raises(GradingError, match="backbone is missing"):
            grade_work(WorkImage.of(decode_jpeg(scene("green", 5))), rules, model)
    finally:
        backbone.cache_clear()


def test_a_telling_figure_is_not_drowned_by_the_embedding():
    """One figure tells the classes apart (two standard deviations; the best any grader
    can do is about 0.84) and the 1280 numbers of the embedding are noise: weighing the
    two blocks alike keeps the figure's voice (0.66 when all 1307 numbers weighed alike)."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 40)
    x = rng.normal(size=(80, len(FEATURE_NAMES)))
    x[:, 3] += 2.0 * y
    e = rng.normal(size=(80, DIM))
    fold = np.asarray(group_folds(list(range(80)), y.tolist(), 5), np.intp)
    scores = cross_validate(x, y, ("bad", "good"), fold, embedded=e, only=EMBEDDED).scores
    assert set(scores) == {"lite0_l2_0.03", "lite0_l2_0.3", "lite0_l2_3"}
    assert max(scores.values()) > 0.78, scores
