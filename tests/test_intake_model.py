"""A cooperative's calibrated model: its class names become the grades staff confirm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.camera.grading.features import FEATURE_NAMES
from edge.camera.grading.model import calibrate
from edge.camera.intake import Intake, IntakeError
from edge.config import CameraConfig, GradingConfig
from edge.storage.store import Store


def _install_model(models_dir: Path, classes: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    per_class = 6
    x = np.concatenate(
        [rng.normal(float(i), 0.1, size=(per_class, len(FEATURE_NAMES))) for i in range(3)]
    )
    y = np.repeat(np.arange(len(classes), dtype=np.intp), per_class)
    models_dir.mkdir(parents=True, exist_ok=True)
    calibrate(x, y, classes, "banana").save(models_dir / "banana.json")


def test_a_calibrated_model_sets_the_grades_and_confirmations_follow_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "station.db", "test-site")
    grading = GradingConfig(models_dir=tmp_path / "models")
    intake = Intake(store, CameraConfig(type="none", photos_dir=tmp_path / "photos"), grading)
    try:
        # Without a model, the rules' grades.
        assert intake.grades_for("banana") == ("A", "B", "C", "reject")
        _install_model(grading.models_dir, ("unripe", "ripe", "rotten"))
        assert intake.grades_for("banana") == ("unripe", "ripe", "rotten")

        producer = store.add_producer("Giàng Thị Mỷ")
        product = store.add_product("Chuối tây", 12000, grading="banana")
        lot = store.record_lot(producer["id"], product["id"], 2500, "ST,GS,+002.500kg")
        confirmed = intake.confirm(lot.id, "ripe", "Lò Thị Xuân")
        assert confirmed.grade == "ripe"
        with pytest.raises(IntakeError) as refused:
            intake.confirm(lot.id, "A", "Lò Thị Xuân")
        assert "unripe, ripe, rotten" in str(refused.value.message_en)

        # A damaged model file falls back to the rules' grades instead of failing.
        (grading.models_dir / "banana.json").write_text("{not json", encoding="utf-8")
        assert intake.grades_for("banana") == ("A", "B", "C", "reject")
    finally:
        intake.stop()
        store.close()
