"""``edge grade``: exit 0 graded, 1 declined, 2 bad input; calibrate and eval end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera.grade_cli import print_calibration
from edge.camera.grading import Declined, WorkImage, decode_jpeg
from edge.camera.grading.grade import model_input, model_vector
from edge.camera.grading.model import Model
from edge.camera.scenes import ItemSpec, jpeg, make_scene
from edge.cli import main
from tests.test_grading_model import make_folder

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

BANANAS = tuple(ItemSpec("yellow", 170, 36, (180, 40 + i * 50), 3) for i in range(4))


@pytest.fixture(scope="module")
def tray_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "tray.jpg"
    path.write_bytes(jpeg(make_scene(BANANAS).image))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["grade", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_photo_is_graded_with_its_reasons_as_json(capsys, tray_photo):
    code, out, _ = run(capsys, str(tray_photo), "--product", "banana", "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["product"], data["grade"], data["method"]) == ("banana", "A", "rules")
    assert 0.5 <= data["confidence"] < 1
    assert {r["key"] for r in data["decisions"]} >= {"dark_share_mean", "length_mm_min"}
    assert 1 <= len(data["reasons"]) <= 3 and data["reasons"][0]["deciding"]
    assert data["measurements"]["item_count"] == 4
    assert data["measurements"]["length_mm_min"] == pytest.approx(170, rel=0.03)


def test_a_photo_is_graded_in_readable_text(capsys, tray_photo):
    code, out, _ = run(capsys, str(tray_photo), "--product", "banana", "--weight-g", "1500")
    assert code == 0
    assert out.startswith("banana: grade A (confidence ")
    found = re.search(r"smallest length \(mm\) = ([0-9.]+), met \(\1 ≥ 140\)", out)
    assert found and float(found.group(1)) == pytest.approx(170, rel=0.03)
    assert "chiều dài (mm) nhỏ nhất" in out  # the Vietnamese line under each reason


def test_a_declined_photo_exits_1_with_the_reason(capsys, tmp_path):
    blurred = tmp_path / "blurred.jpg"
    blurred.write_bytes(jpeg(make_scene(BANANAS, blur_sigma=6.0).image))
    code, out, err = run(capsys, str(blurred), "--product", "banana", "--json")
    assert code == 1
    assert json.loads(out)["declined"] == "blurred"
    assert "declined (blurred)" in err and "Ảnh bị mờ" in err


def test_annotate_draws_the_measurement(capsys, tray_photo, tmp_path):
    out_png = tmp_path / "annotated.png"
    code, _, _ = run(capsys, str(tray_photo), "--product", "banana", "--annotate", str(out_png))
    assert code == 0
    picture = cv2.imread(str(out_png))
    original = cv2.imread(str(tray_photo))
    assert picture is not None and original is not None
    assert picture.shape[1] == original.shape[1]
    assert picture.shape[0] > original.shape[0]  # the caption band below the photo
    assert (cv2.absdiff(picture[: original.shape[0]], original) > 60).any()  # outlines drawn


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["{missing}", "--product", "banana"], "not a readable image"),
        (["{text}", "--product", "banana"], "not a readable image"),
        (["{photo}", "--product", "mango"], "products with rules in"),
        (["{photo}", "--product", "banana", "--model", "{text}"], "not a model file"),
        (["calibrate", "--product", "banana", "--out", "{out}"], "needs a folder"),
        (["calibrate", "{empty}", "--product", "banana"], "needs --out"),
        (["calibrate", "{empty}", "--product", "banana", "--out", "{out}"], "no subfolders"),
        (["eval", "{nowhere}", "--product", "banana"], "not a folder"),
        (["{photo}", "extra", "--product", "banana"], "unexpected argument"),
        (["eval", "{empty}", "--product", "banana", "--annotate", "{out}"], "one photo"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, tray_photo, tmp_path, argv, words):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    (tmp_path / "empty").mkdir()
    names = {
        "missing": str(tmp_path / "missing.jpg"),
        "text": str(text),
        "photo": str(tray_photo),
        "out": str(tmp_path / "m.json"),
        "empty": str(tmp_path / "empty"),
        "nowhere": str(tmp_path / "nowhere"),
    }
    code, _, err = run(capsys, *(a.format(**names) for a in argv))
    assert code == 2
    assert err.startswith("edge grade: ") and words in err


def potato_folder(root: Path, per_class: int) -> Path:
    """root/<good|bad>/<n>.jpg: brown, roundish items (another product than bananas)."""
    for ci, grade in enumerate(("bad", "good")):
        (root / grade).mkdir(parents=True)
        for n in range(per_class):
            rng = np.random.default_rng(300 + 10 * ci + n)
            items = tuple(
                ItemSpec(
                    "brown",
                    float(rng.uniform(55, 70)),
                    float(rng.uniform(42, 50)),
                    (150 + 120 * (i % 2), 70 + 100 * (i // 2)),
                    float(rng.uniform(0, 90)),
                )
                for i in range(3)
            )
            scene = make_scene(items, size=(640, 480), px_per_mm=2.0, seed=n)
            (root / grade / f"{n}.jpg").write_bytes(jpeg(scene.image))
    return root


def test_calibrate_then_eval_through_the_cli(capsys, tmp_path):
    train = make_folder(tmp_path / "banana", 3, seed0=11)
    potato_folder(tmp_path / "potato", 3)  # a sibling product: the product check's others
    test = make_folder(tmp_path / "test", 2, seed0=900)
    (train / "unripe" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    model = tmp_path / "coop.json"
    code, out, _ = run(
        capsys, "calibrate", str(train), "--product", "banana", "--out", str(model), "--json"
    )
    assert code == 0, out
    report = json.loads(out)
    assert report["photos_used"] == {"ripe": 3, "rotten": 3, "unripe": 3}
    assert [(Path(s["path"]).name, s["reason"]) for s in report["skipped_photos"]] == [
        ("broken.jpg", "not_an_image")
    ]
    assert report["bytes"] == model.stat().st_size < 200_000
    assert report["inputs"] == "figures+efficientnet-lite0-192"
    assert set(report["cv_macro_f1"]) == set(report["control_macro_f1"])
    assert report["macro_f1"] == max(report["cv_macro_f1"].values())
    assert report["groups"] >= 2 and 2 <= report["folds"] <= 5 and report["temperature"] > 0
    assert report["check"]["others"] == {"potato": 6}
    assert report["check"]["oof_accuracy"] > 0.8
    oof = report["out_of_fold"]
    # banana.toml's [costs]: the confusions costing more than a plain mistake
    assert oof["costly_confusions"] == ["ripe->unripe", "rotten->ripe", "rotten->unripe"]
    assert 0 <= oof["unsure_share"] <= 1 and oof["costly_of"] == 6
    loaded = Model.load(model)
    assert loaded.check_others == ("potato",) and 0 < loaded.check_threshold < 1
    potato = potato_folder(tmp_path / "more" / "potato", 1) / "good" / "0.jpg"
    for path, own in ((potato, False), (test / "rotten" / "000.jpg", True)):
        seen = model_input(WorkImage.of(decode_jpeg(path.read_bytes())))
        assert not isinstance(seen, Declined)
        p = loaded.product_probability(model_vector(loaded, seen[1]))
        assert p is not None and (p >= loaded.check_threshold) == own, (path, p)

    print_calibration(report)  # what calibrate prints without --json
    out = capsys.readouterr().out
    assert "group-aware macro-F1 per candidate: lite0_l2_0.03 " in out
    assert "logreg model on the figures+efficientnet-lite0-192 for banana" in out
    assert "background-only control: " in out and "temperature " in out
    assert "product check against potato 6: out-of-fold accuracy " in out
    assert re.search(r"costly confusions \(ripe->unripe, [^)]+\) [0-9.]+% \(\d+ of 6\)", out)

    code, out, _ = run(
        capsys, "eval", str(test), "--product", "banana", "--model", str(model), "--json"
    )
    assert code == 0
    ev = json.loads(out)
    assert {"accuracy", "macro_f1", "confusion", "ms_per_image", "classes"} <= set(ev)
    assert ev["classes"] == ["ripe", "rotten", "unripe"]
    assert ev["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert ev["accuracy"] == 1.0 and ev["macro_f1"] == 1.0
    assert ev["photos"] == 6 and ev["declined"] == 0 and ev["ms_per_image"] > 0
    assert ev["unsure"] == 0 and ev["costly_rate"] == 0.0 and ev["costly_of"] == 4

    code, out, _ = run(capsys, "eval", str(test), "--product", "banana", "--model", str(model))
    assert code == 0
    assert "accuracy 1.000, macro-F1 1.000" in out and "confusion (rows: true" in out
    assert "(unsure 0)" in out and "rotten->unripe): 0.0% (0 of 4)" in out


def test_eval_by_rules_needs_grade_named_folders(capsys, tmp_path):
    folder = tmp_path / "graded"
    (folder / "A").mkdir(parents=True)
    (folder / "A" / "1.jpg").write_bytes(jpeg(make_scene(BANANAS).image))
    no_marker = jpeg(make_scene(BANANAS, marker_mm=None).image)
    (folder / "A" / "2.jpg").write_bytes(no_marker)
    code, out, _ = run(capsys, "eval", str(folder), "--product", "banana", "--json")
    assert code == 0
    ev = json.loads(out)
    assert ev["classes"] == ["A", "B", "C", "reject"]
    assert ev["confusion"][0] == [1, 0, 0, 0] and len(ev["confusion"]) == 4
    assert ev["declined"] == 1
    assert ev["declined_photos"][0]["reason"] == "marker_missing"

    (folder / "ripe").mkdir()
    code, _, err = run(capsys, "eval", str(folder), "--product", "banana")
    assert code == 2
    assert "class folder 'ripe' is not a grade of" in err and "A, B, C, reject" in err


def test_the_edge_command_has_grade(tray_photo):
    def grade(product: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge", "grade", str(tray_photo), "--product", product],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = grade("banana")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("banana: grade ")
    # The same bananas as potatoes: declined (exit 1), saying what the photo shows.
    done = grade("potato")
    assert done.returncode == 1, done.stdout
    assert "declined (not_the_product)" in done.stderr
    assert "Ảnh không giống khoai tây (thấy quả dài màu vàng như chuối)" in done.stderr
