"""The learned grader: features key on the produce, calibrate -> eval round trips on
generated graded folders, and bad model files or folders are clear errors."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from edge.camera.grading import Declined, GradingError, WorkImage, decode_jpeg, grade_photo
from edge.camera.grading.evaluate import (
    DatasetError,
    calibrate_folder,
    evaluate_folder,
    labelled_photos,
    metrics,
)
from edge.camera.grading.features import FEATURE_NAMES, Features, photo_features
from edge.camera.grading.grade import (
    Graded,
    grade_work,
    load_grading_model,
    load_grading_rules,
    model_input,
)
from edge.camera.grading.model import (
    EMBEDDED,
    FIGURES,
    Model,
    ModelError,
    calibrate,
    calibrate_full,
    explain,
    fit_temperature,
    macro_f1,
)
from edge.camera.scenes import ItemSpec, Spot, jpeg, make_scene
from edge.config import GradingConfig

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

RULES = GradingConfig().rules_dir
SLOTS = ((170.0, 62.0), (268.0, 80.0), (90.0, 168.0), (215.0, 178.0))
BIG_SPOTS = (Spot(-12, 0, 7), Spot(10, 3, 6), Spot(0, -4, 5))
# class name -> (item kind, spots)
CLASSES: dict[str, tuple[str, tuple[Spot, ...]]] = {
    "unripe": ("green", ()),
    "ripe": ("yellow", ()),
    "rotten": ("yellow", BIG_SPOTS),
}


def scene_items(kind: str, spots: tuple[Spot, ...], seed: int) -> tuple[ItemSpec, ...]:
    """Three or four items of one kind at jittered slots, random size and angle."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, 5))
    out = []
    for cx, cy in SLOTS[:count]:
        length = float(rng.uniform(60, 85))
        width = float(rng.uniform(28, 36))
        centre = (cx + float(rng.uniform(-6, 6)), cy + float(rng.uniform(-6, 6)))
        out.append(ItemSpec(kind, length, width, centre, float(rng.uniform(-40, 40)), spots))
    return tuple(out)


def photo(cls: str, seed: int, **scene_kw: object) -> bytes:
    kind, spots = CLASSES[cls]
    kw: dict[str, object] = {"size": (640, 480), "px_per_mm": 2.0, "seed": seed, **scene_kw}
    return jpeg(make_scene(scene_items(kind, spots, seed), **kw).image)  # type: ignore[arg-type]


def make_folder(
    root: Path, per_class: int, seed0: int, classes: tuple[str, ...] = tuple(CLASSES), **kw: object
) -> Path:
    """``root/<class>/<n>.jpg``: ``per_class`` generated tray photos per class."""
    for ci, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            seed = seed0 + 100 * ci + n
            (root / cls / f"{n:03d}.jpg").write_bytes(photo(cls, seed, **kw))
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("graded")
    train = make_folder(base / "train", 5, seed0=1)
    # The test photos: other items, another tray colour and a cooler light.
    test = make_folder(
        base / "test", 3, seed0=5000, tray_bgr=(185, 200, 222), cast=(1.06, 1.0, 0.92)
    )
    return train, test


@pytest.fixture(scope="module")
def calibrated(folders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = calibrate_folder(folders[0], "banana")
    assert result.used == {"unripe": 5, "ripe": 5, "rotten": 5}
    assert result.skipped == []
    path = tmp_path_factory.mktemp("model") / "banana.json"
    result.model.save(path)
    return path


@pytest.fixture(scope="module")
def calibrated_figures(
    folders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A model on the produce figures alone (``--inputs figures``)."""
    result = calibrate_folder(folders[0], "banana", inputs=FIGURES)
    assert result.model.inputs == FIGURES
    path = tmp_path_factory.mktemp("model") / "banana-figures.json"
    result.model.save(path)
    return path


def test_calibrate_then_eval_grades_the_held_out_photos(folders, calibrated):
    model = Model.load(calibrated)
    assert model.classes == ("ripe", "rotten", "unripe")  # the subfolder names, sorted
    assert model.inputs == EMBEDDED  # the default: the pretrained network's embedding
    assert 20_000 < calibrated.stat().st_size < 200_000  # 1310 numbers per class and more
    rules = load_grading_rules(RULES, "banana")
    ev = evaluate_folder(
        folders[1], lambda w: grade_work(w, rules, model), model.classes, str(calibrated)
    )
    report = ev.to_json()
    assert report["confusion"] == [[3, 0, 0], [0, 3, 0], [0, 0, 3]], report
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0
    assert report["photos"] == 9 and report["graded"] == 9 and report["declined"] == 0
    assert report["ms_per_image"] > 0


def test_a_graded_photo_by_model_explains_itself(calibrated):
    data = photo("rotten", 777)
    g = grade_photo(decode_jpeg(data), "banana", rules_dir=RULES, model_path=calibrated)
    assert isinstance(g, Graded)
    assert (g.method, g.grade) == ("model", "rotten")
    assert 0.5 < g.confidence <= 1.0
    assert g.reasons and all(d.grade == "rotten" and d.key in FEATURE_NAMES for d in g.reasons)
    assert all(d.text_vi != d.text_en and "'rotten'" in d.text_en for d in g.reasons)
    assert {f"feature_{n}" for n in FEATURE_NAMES} <= set(g.measurements)
    assert g.measurements["item_count"] >= 3  # the tray measurement comes along
    json.dumps(g.to_json(), allow_nan=False)


def test_calibration_is_deterministic(folders, calibrated, tmp_path):
    again = calibrate_folder(folders[0], "banana").model
    again.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == calibrated.read_bytes()


def _features(data: bytes) -> Features:
    seen = model_input(WorkImage.of(decode_jpeg(data)))
    assert not isinstance(seen, Declined), seen
    return seen[1]


def test_features_describe_the_produce_not_the_tray_or_light():
    """The same items on a lighter tray under a dimmer light, or on a tinted paper, give
    nearly the same features; other items (another class) differ far more. The tint is
    not divided out of the produce (that wrote the paper's colour into it)."""
    base = _features(photo("ripe", 42))
    dimmer = _features(photo("ripe", 42, tray_bgr=(215, 215, 212), gain=0.8))
    tinted = _features(photo("ripe", 42, tray_bgr=(170, 205, 225)))
    other_class = _features(photo("rotten", 42))
    scale = np.array([max(abs(v), 0.05) for v in base.vector])
    different = np.abs((other_class.vector - base.vector) / scale).mean()
    for same in (dimmer, tinted):
        change = np.abs((same.vector - base.vector) / scale).mean()
        assert change < 0.15 * different, (change, different)
    # The mask covers the items and leaves out the marker and its white sticker.
    assert 0.05 < base.mask.mean() < 0.5
    h, w = base.mask.shape
    assert not base.mask[: h // 6, : w // 7].any()  # the marker's corner of the tray


def test_an_empty_tray_has_no_features():
    empty = make_scene((), size=(640, 480), px_per_mm=2.0).image
    seen = model_input(WorkImage.of(empty))  # the marker and its sticker are not produce
    assert isinstance(seen, Declined) and seen.reason.value == "no_items"
    blank = np.full((480, 640, 3), 190, np.uint8)
    result = photo_features(WorkImage.of(blank))
    assert isinstance(result, Declined) and result.reason.value == "no_items"


def test_metrics_on_a_known_confusion():
    conf = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]], np.int64)
    acc, f1, per_class = metrics(conf, ("a", "b", "c"))
    assert acc == pytest.approx(17 / 20)
    f1_a, f1_b = 2 * 8 / (10 + 9), 2 * 9 / (10 + 11)
    assert f1 == pytest.approx((f1_a + f1_b) / 2)  # "c" never occurs: not averaged
    assert per_class["a"]["recall"] == 0.8 and per_class["b"]["precision"] == round(9 / 11, 4)
    y = np.array([0, 0, 1, 1, 2, 2])
    assert macro_f1(y, y, 3) == 1.0
    assert macro_f1(y, np.zeros(6, np.intp), 3) == pytest.approx((2 * 2 / 8) / 3)


def test_the_model_learns_the_telling_feature_and_names_it():
    rng = np.random.default_rng(3)
    nf = len(FEATURE_NAMES)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0, 1, (3 * n, nf))
        y = np.repeat(np.arange(3), n)
        x[:, 5] += 8 * y  # only feature 5 tells the classes apart
        return x, y

    x, y = draw(50)
    model = calibrate(x, y, ("a", "b", "c"), "potato")
    x_new, y_new = draw(50)
    assert (np.argmax(model.logits(x_new), axis=1) == y_new).mean() > 0.95
    proba = model.predict_proba(x_new[0])
    assert proba.shape == (3,) and math.isclose(float(proba.sum()), 1.0)
    sample = x_new[120]  # a "c"
    best = int(np.argmax(model.predict_proba(sample)))
    assert model.classes[best] == "c"
    top = explain(model, sample, best)
    assert top and top[0].key == FEATURE_NAMES[5] and top[0].op == ">"


def test_a_class_in_the_middle_of_a_range_is_learnt_by_the_quadratic_kind(tmp_path):
    """ "ok" lies in the middle of feature 7's range, "off" on both sides of it (too
    green or too brown): no straight boundary on that feature separates them."""
    rng = np.random.default_rng(11)
    nf = len(FEATURE_NAMES)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0, 1, (2 * n, nf))
        y = np.repeat(np.arange(2), n)
        side = rng.choice([-1.0, 1.0], size=n)
        x[n:, 7] = side * rng.uniform(2.5, 4.0, size=n)  # "off": far out, either side
        x[:n, 7] = rng.uniform(-1.0, 1.0, size=n)  # "ok": the middle
        return x, y

    x, y = draw(150)
    cal = calibrate_full(x, y, ("ok", "off"), "potato")
    scores = cal.model.info["cv_macro_f1"]
    assert scores["quadratic_l2_0.003"] > 0.9 and scores["logreg_l2_0.003"] < 0.75, scores
    model = cal.model
    assert model.kind == "quadratic" and model.weights.shape == (2, 2 * nf)
    x_new, y_new = draw(150)
    assert (np.argmax(model.logits(x_new), axis=1) == y_new).mean() > 0.9
    far = x_new[-1]  # an "off"
    top = explain(model, far, 1)
    assert top and top[0].key == FEATURE_NAMES[7] and top[0].grade == "off"
    model.save(tmp_path / "q.json")
    again = Model.load(tmp_path / "q.json")
    assert again.kind == "quadratic"
    assert np.allclose(again.calibrated_proba(x_new), model.calibrated_proba(x_new), atol=1e-5)
    data = json.loads((tmp_path / "q.json").read_text())
    data["weights"] = [row[:nf] for row in data["weights"]]  # a linear model's shape
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"bad.json: weights: shape \(2, 27\)"):
        Model.load(tmp_path / "bad.json")


def _write_model(tmp_path: Path, calibrated: Path, **changes: object) -> Path:
    data = json.loads(calibrated.read_text())
    data.update(changes)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"format": "something-else"}, "format", "not a grading model"),
        ({"version": 99}, "version", "not supported"),
        ({"feature_names": ["a", "b"]}, "feature_names", "calibrate the model again"),
        ({"weights": [[1.0, 2.0]]}, "weights", "shape"),
        ({"kind": "forest"}, "kind", "upgrade the station"),
        ({"bias": [float("nan")] * 3}, "bias", "non-finite"),
        ({"classes": ["only"]}, "classes", "at least two"),
        ({"scales": [0.0] * len(FEATURE_NAMES)}, "scales", "zero or negative"),
        ({"temperature": 0}, "temperature", "positive number"),
        ({"check": {"means": [1.0]}}, "check.means", "finite numbers"),
    ],
)
def test_a_bad_model_file_is_a_clear_error(tmp_path, calibrated_figures, change, key, words):
    path = _write_model(tmp_path, calibrated_figures, **change)
    with pytest.raises(ModelError) as err:
        Model.load(path)
    assert str(err.value).startswith(f"{path}: {key}: ")
    assert words in str(err.value)


def test_the_model_file_has_a_temperature_and_a_version_1_file_still_loads(
    tmp_path, calibrated_figures
):
    calibrated = calibrated_figures
    data = json.loads(calibrated.read_text())
    assert data["version"] == 3 and data["temperature"] > 0 and data["inputs"] == "figures"
    assert 500 < calibrated.stat().st_size < 6000  # a few kB
    assert data["check"] is None and data["check_others"] == []  # no other products given
    model = Model.load(calibrated)
    x = _features(photo("ripe", 5)).vector
    p = model.calibrated_proba(x)
    assert p.shape == (3,) and math.isclose(float(p.sum()), 1.0)
    assert model.product_probability(x) is None and model.check_threshold == 0.0
    assert model.info["cv_groups"] >= 2 and set(model.info["control_macro_f1"]) == set(
        model.info["cv_macro_f1"]
    )
    for key in ("temperature", "check", "check_threshold", "check_others"):
        del data[key]
    old = _write_model(tmp_path, calibrated, **{**data, "version": 1})
    v1 = Model.load(old)
    assert v1.temperature == 1.0 and v1.check is None
    assert np.allclose(v1.calibrated_proba(x), v1.predict_proba(x))


def test_group_aware_folds_do_not_reward_learning_the_session():
    """Each session (group) gives its photos an offset on every feature and holds one
    class mostly; the class itself barely shows. Folds that mix a session's photos
    score the session's look; folds that hold sessions out do not."""
    rng = np.random.default_rng(3)
    nf, per, sessions = len(FEATURE_NAMES), 5, 20
    offsets = rng.normal(0, 3, (sessions, nf))
    groups = np.repeat(np.arange(sessions), per)
    y = np.where(rng.random(sessions * per) < 0.85, groups % 2, 1 - groups % 2).astype(np.intp)
    x = offsets[groups] + rng.normal(0, 1, (sessions * per, nf))
    x[:, 0] += 0.2 * y  # the produce: a faint sign
    mixed = calibrate_full(x, y, ("a", "b"), "potato")
    held = calibrate_full(x, y, ("a", "b"), "potato", groups.tolist(), background=x)
    assert max(mixed.model.info["cv_macro_f1"].values()) > 0.75
    assert max(held.model.info["cv_macro_f1"].values()) < 0.65
    assert held.groups == sessions and held.model.info["cv_folds"] == 5
    for f in set(held.folds.tolist()):  # a session is never both trained on and scored
        assert not set(groups[held.folds == f]) & set(groups[held.folds != f])
    # The background here is the features themselves: the control scores alike.
    ctrl = max(held.control.values())
    assert ctrl == pytest.approx(max(held.model.info["cv_macro_f1"].values()), abs=0.1)


def test_the_temperature_undoes_overconfident_logits():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 1.5, (3000, 3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(4.0 * logits, y) == pytest.approx(4.0, rel=0.15)
    assert fit_temperature(logits, y) == pytest.approx(1.0, rel=0.15)


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    path = tmp_path / "photo.json"
    path.write_bytes(b"\xff\xd8\xff\xe0 a jpeg, not json")
    with pytest.raises(ModelError, match=r"photo\.json: \(file\): not a model file"):
        Model.load(path)
    path.write_text('{"grades": ["A", "B"]}')
    with pytest.raises(ModelError, match=r"photo\.json: format: not a grading model"):
        Model.load(path)
    with pytest.raises(ModelError, match=r"missing\.json: \(file\): cannot read"):
        Model.load(tmp_path / "missing.json")


def test_a_model_for_another_product_is_refused(calibrated):
    image = make_scene().image
    with pytest.raises(GradingError, match="product: the model was calibrated for 'banana'"):
        grade_photo(image, "potato", rules_dir=RULES, model_path=calibrated)


def test_calibrate_refuses_one_class(tmp_path):
    make_folder(tmp_path, 3, seed0=9, classes=("ripe",))
    with pytest.raises(DatasetError, match="at least two"):
        calibrate_folder(tmp_path, "banana")


def test_calibrate_refuses_a_class_with_too_few_usable_photos(tmp_path):
    make_folder(tmp_path, 3, seed0=9, classes=("ripe", "unripe"))
    # Two more "rotten" files, but neither is usable.
    (tmp_path / "rotten").mkdir()
    (tmp_path / "rotten" / "notes.jpg").write_text("not a photo")
    empty = make_scene((), size=(640, 480), px_per_mm=2.0).image
    (tmp_path / "rotten" / "empty.jpg").write_bytes(jpeg(empty))
    (tmp_path / "rotten" / "one.jpg").write_bytes(photo("rotten", 1))
    with pytest.raises(DatasetError) as err:
        calibrate_folder(tmp_path, "banana", copies=0)
    assert "rotten: 1" in str(err.value) and "2 photos were skipped" in str(err.value)


def test_unusable_photos_are_listed_with_the_reason(tmp_path):
    make_folder(tmp_path, 3, seed0=9, classes=("ripe", "unripe"))
    (tmp_path / "unripe" / "notes.jpg").write_text("not a photo")
    empty = make_scene((), size=(640, 480), px_per_mm=2.0).image
    (tmp_path / "ripe" / "empty.png").write_bytes(jpeg(empty))
    result = calibrate_folder(tmp_path, "banana", copies=0)
    assert result.used == {"ripe": 3, "unripe": 3}
    reasons = {Path(s.path).name: (s.label, s.reason) for s in result.skipped}
    assert reasons == {"notes.jpg": ("unripe", "not_an_image"), "empty.png": ("ripe", "no_items")}


def test_labelled_photos_needs_subfolders(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        labelled_photos(tmp_path / "nope")
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no subfolders"):
        labelled_photos(tmp_path)


def test_a_changed_model_file_is_read_again(tmp_path, calibrated_figures):
    """The station keeps a loaded model while its file is unchanged, and reads it again
    once the file is replaced (a new calibration copied in)."""
    path = tmp_path / "banana.json"
    data = json.loads(calibrated_figures.read_text())
    path.write_text(json.dumps(data))
    first = load_grading_model(path, "banana")
    assert load_grading_model(path, "banana") is first  # not parsed again
    path.write_text(json.dumps({**data, "temperature": 2.5}))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = load_grading_model(path, "banana")
    assert again.temperature == 2.5 and first.temperature != 2.5
    path.write_text("{broken")
    with pytest.raises(GradingError, match="not a model file"):
        load_grading_model(path, "banana")
