"""Grading latency: decode a 1280x960 JPEG and grade it (checks + measurement).

Scenes come from the project's own generator (edge/camera/scenes.py), so the figure is
reproducible. The target is a median of at most 40 ms on the station. A second figure
times photos taken at an angle (15-30 degrees), which are rectified before measuring.
The whole per-photo path (upload to stored grade) is timed by the shipped rules and,
as the station grades once a cooperative has calibrated, by a calibrated model.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.camera import scenes
from edge.camera.capture import generated_tray
from edge.camera.grading import Declined, TrayMeasurement, assess, decode_jpeg
from edge.camera.grading.evaluate import calibrate_folder
from edge.camera.grading.model import EMBEDDED, FIGURES
from edge.camera.intake import Intake
from edge.camera.scenes import Spot, jpeg, make_scene
from edge.config import parse_config
from edge.storage.store import Store

RUNS = 100
SCENES = 5


def _time(photos: list[bytes], runs: int, *, rectified: bool) -> list[float]:
    for data in photos:  # warm-up, and a check that the scenes are gradeable
        result = assess(decode_jpeg(data), require_marker=True)
        if isinstance(result, Declined):
            raise AssertionError(f"bench scene declined: {result.reason}")
        assert isinstance(result, TrayMeasurement)
        if result.rectified != rectified:
            raise AssertionError(f"bench scene rectified={result.rectified}, not {rectified}")
    samples = []
    for i in range(runs):
        data = photos[i % len(photos)]
        t0 = time.perf_counter()
        assess(decode_jpeg(data), require_marker=True)
        samples.append(time.perf_counter() - t0)
    return sorted(samples)


def bench_grading(runs: int = RUNS) -> None:
    photos = [jpeg(make_scene(seed=seed, noise=2.5 + seed).image) for seed in range(SCENES)]
    ordered = _time(photos, runs, rectified=False)
    median = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    print(f"grade_ms_median: {median:.2f}")
    print(f"grade_ms_p95: {p95:.2f}")
    oblique = [
        jpeg(
            make_scene(
                seed=seed,
                tilt_deg=15.0 + 15.0 * seed / (SCENES - 1),
                tilt_dir_deg=72.0 * seed,
                rotate_deg=10.0 * seed - 20.0,
            ).image
        )
        for seed in range(SCENES)
    ]
    ordered = _time(oblique, runs, rectified=True)
    median = statistics.median(ordered) * 1000
    print(f"grade_oblique_ms_median: {median:.2f}   (15-30 degree tilt, rectified first)")


PHOTO_RUNS = 40
MODEL_PHOTOS = 5  # calibration photos per class for the bench's model


def _upload_ms(runs: int, models_dir: Path | None) -> tuple[float, int, str]:
    """Median ms of :meth:`Intake.upload` over ``runs`` uploads (after one warm-up), how
    many were graded, and the method the last one was graded by."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        grading: dict[str, str] = {} if models_dir is None else {"models_dir": str(models_dir)}
        cfg = parse_config(
            {
                "storage": {"path": str(folder / "station.db")},
                "camera": {"type": "none", "photos_dir": str(folder / "photos")},
                "site": {"key_file": str(folder / "site.key")},
                "grading": grading,
            },
            "bench",
        )
        store = Store.open(cfg.storage.path, "bench-site")
        intake = Intake(store, cfg.camera, cfg.grading)
        producer = store.add_producer("Giàng Thị Mỷ")["id"]
        product = store.add_product("Chuối tây", grading="banana")["id"]
        uploads = [jpeg(generated_tray(seed, (1280, 960), "yellow")) for seed in range(SCENES)]
        samples = []
        graded = 0
        method = ""
        for i in range(runs + 1):
            lot = store.record_lot(producer, product, 1500 + i, "ST,GS,+001.500kg").id
            t0 = time.perf_counter()
            view = intake.upload(lot, uploads[i % len(uploads)], "image/jpeg")
            if i:  # the first is a warm-up
                samples.append(time.perf_counter() - t0)
            grading_view = view["photos"][0]["grading"]
            graded += grading_view["status"] == "graded"
            method = str(grading_view.get("method", method))
        intake.stop()
        store.close()
    return statistics.median(samples) * 1000, graded, method


def bench_grade_photo(runs: int = PHOTO_RUNS) -> None:
    """``grade_photo_ms_median``: the station's whole per-photo path as a phone upload
    pays for it (:meth:`edge.camera.intake.Intake.upload`): decode the JPEG, fit it to
    the camera size, encode the stored JPEG and its thumbnail, write both durably
    (fsync'd) with the photo row, decode the stored JPEG and grade it, store the grade
    proposal. The lot's product has the shipped banana rules; SQLite and the photo
    folder are on this machine's disk. Then the same with a calibrated model
    (:func:`bench_grade_photo_model`), as `make bench` runs this part alone."""
    median, graded, _ = _upload_ms(runs, None)
    print(
        f"grade_photo_ms_median: {median:.2f}  (upload to stored grade: decode, grade, JPEG + "
        f"thumbnail, fsync'd write; {graded}/{runs + 1} graded)"
    )
    bench_grade_photo_model(runs)


def _calibration_folder(root: Path) -> Path:
    """root/banana/<ripe|rotten|unripe>/ (the classes banana.toml's [costs] names) and
    root/potato/<good|bad>/: generated tray photos, MODEL_PHOTOS per class."""
    spots = (Spot(-14, 0, 7), Spot(12, 3, 6), Spot(0, -5, 5))
    for ci, (product, grade, kind) in enumerate(
        (
            ("banana", "ripe", "yellow"),
            ("banana", "rotten", "yellow"),
            ("banana", "unripe", "green"),
            ("potato", "good", "brown"),
            ("potato", "bad", "brown"),
        )
    ):
        folder = root / product / grade
        folder.mkdir(parents=True)
        for n in range(MODEL_PHOTOS):
            rng = np.random.default_rng(1000 * ci + n)
            items = scenes.random_items(rng, count=int(rng.integers(3, 6)), kind=kind)
            if grade in ("rotten", "bad"):
                items = tuple(replace(item, spots=spots) for item in items)
            image = make_scene(items, size=(640, 480), px_per_mm=2.0, seed=n).image
            (folder / f"{n:03d}.jpg").write_bytes(jpeg(image))
    return root / "banana"


def bench_grade_photo_model(runs: int = PHOTO_RUNS) -> None:
    """``grade_photo_model_ms_median``: :func:`bench_grade_photo`'s whole per-photo path
    with a model on the pretrained network's embedding (the kind calibration chose for
    grading-dev's bananas), and ``grade_photo_model_figures_ms_median`` with one on the
    produce figures alone. Each is a calibrated model (``edge grade calibrate``'s code:
    group-aware candidates, altered copies, temperature, product check against
    generated potatoes) in the station's grading models_dir; the model path adds the
    produce features, the product check and the cost-aware decision to the
    measurement."""
    for inputs, name in (
        (EMBEDDED, "grade_photo_model_ms_median"),
        (FIGURES, "grade_photo_model_figures_ms_median"),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            photos = _calibration_folder(root / "photos")
            result = calibrate_folder(
                photos, "banana", others=[root / "photos" / "potato"], inputs=inputs
            )
            models = root / "models"
            models.mkdir()
            result.model.save(models / "banana.json")
            median, graded, method = _upload_ms(runs, models)
        print(
            f"{name}: {median:.2f}  (the same path graded by a calibrated model on the "
            f"{inputs} with its product check; {graded}/{runs + 1} graded, by {method or '?'})"
        )


if __name__ == "__main__":
    bench_grading()
    bench_grade_photo()
