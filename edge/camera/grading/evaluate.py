"""Calibrate a model from, and evaluate a grader on, a folder of graded photos.

The folder has one subfolder per grade a person gave; the subfolder names are the
class names. Photos that cannot be used (not an image, declined) are listed with the
reason, never silently dropped. The metrics are pure functions of the labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.camera.grading.grade import Graded, model_input
from edge.camera.grading.measure import WorkImage, decode_jpeg
from edge.camera.grading.model import Model, calibrate
from edge.camera.grading.quality import Declined

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MIN_CLASS_PHOTOS = 3


class DatasetError(Exception):
    """A calibration or evaluation folder that cannot be used, and what to do."""


@dataclass(frozen=True)
class Skipped:
    path: str
    label: str
    reason: str  # a Declined reason code, or "not_an_image"
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "path": self.path,
            "class": self.label,
            "reason": self.reason,
            "message": self.message,
        }


def labelled_photos(root: Path) -> dict[str, list[Path]]:
    """Class name -> its photo files (by name), from ``root``'s subfolders."""
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (expected one subfolder per grade)")
    out: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        out[sub.name] = files
    if not out:
        raise DatasetError(
            f"{root}: no subfolders; put each grade's photos in a subfolder named after it"
        )
    return out


def read_photo(path: Path) -> WorkImage:
    """A photo file as a WorkImage; ``ValueError`` when it is not a readable image."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror}") from None
    return WorkImage.of(decode_jpeg(data))


@dataclass
class CalibrationResult:
    model: Model
    used: dict[str, int]  # photos per class that went into the model
    skipped: list[Skipped] = field(default_factory=list)


def calibrate_folder(root: Path, product: str, marker_mm: float | None = 40.0) -> CalibrationResult:
    """Fit a model on ``root`` (one subfolder per grade); refuses fewer than two classes
    or a class with fewer than MIN_CLASS_PHOTOS usable photos."""
    folders = labelled_photos(root)
    if len(folders) < 2:
        raise DatasetError(
            f"{root}: only one class ({', '.join(folders)}); a model needs at least two "
            "subfolders of graded photos"
        )
    rows: list[npt.NDArray[np.float64]] = []
    labels: list[int] = []
    skipped: list[Skipped] = []
    classes = tuple(folders)
    for ci, (label, files) in enumerate(folders.items()):
        for path in files:
            try:
                work = read_photo(path)
            except ValueError as exc:
                skipped.append(Skipped(str(path), label, "not_an_image", str(exc)))
                continue
            seen = model_input(work, marker_mm)
            if isinstance(seen, Declined):
                skipped.append(Skipped(str(path), label, seen.reason.value, seen.message_en))
                continue
            rows.append(seen[1].vector)
            labels.append(ci)
    y = np.asarray(labels, np.intp)
    used = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    short = [c for c, n in used.items() if n < MIN_CLASS_PHOTOS]
    if short:
        detail = ", ".join(f"{c}: {used[c]}" for c in short)
        raise DatasetError(
            f"{root}: too few usable photos in {detail} (each class needs at least "
            f"{MIN_CLASS_PHOTOS}; {len(skipped)} photos were skipped as unusable)"
        )
    model = calibrate(np.vstack(rows), y, classes, product)
    return CalibrationResult(model, used, skipped)


@dataclass
class Evaluation:
    classes: tuple[str, ...]
    confusion: npt.NDArray[np.int64]  # rows: true class, columns: predicted
    ms_per_image: float
    photos: int
    skipped: list[Skipped]

    def to_json(self) -> dict[str, Any]:
        acc, f1, per_class = metrics(self.confusion, self.classes)
        return {
            "classes": list(self.classes),
            "accuracy": round(acc, 4),
            "macro_f1": round(f1, 4),
            "confusion": self.confusion.tolist(),
            "ms_per_image": round(self.ms_per_image, 2),
            "photos": self.photos,
            "graded": int(self.confusion.sum()),
            "declined": sum(1 for s in self.skipped if s.reason != "not_an_image"),
            "unreadable": sum(1 for s in self.skipped if s.reason == "not_an_image"),
            "per_class": per_class,
            "declined_photos": [s.to_json() for s in self.skipped],
        }


def metrics(
    confusion: npt.NDArray[np.int64], classes: tuple[str, ...]
) -> tuple[float, float, dict[str, dict[str, float]]]:
    """Accuracy, macro-F1 (over the classes that occur as truth or prediction) and
    per-class photos, precision, recall and F1."""
    total = int(confusion.sum())
    acc = float(np.trace(confusion)) / total if total else 0.0
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, c in enumerate(classes):
        tp = float(confusion[i, i])
        true_n, pred_n = float(confusion[i].sum()), float(confusion[:, i].sum())
        precision = tp / pred_n if pred_n else 0.0
        recall = tp / true_n if true_n else 0.0
        f1 = 2 * tp / (true_n + pred_n) if true_n + pred_n else 0.0
        per_class[c] = {
            "photos": int(true_n),
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }
        if true_n or pred_n:
            f1s.append(f1)
    return acc, float(np.mean(f1s)) if f1s else 0.0, per_class


Grader = Callable[[WorkImage], Graded | Declined]


def evaluate_folder(root: Path, grader: Grader, classes: tuple[str, ...], what: str) -> Evaluation:
    """Grade every photo under ``root`` and compare with its subfolder's name.

    ``classes`` are the grader's classes in order (the confusion's rows and columns);
    a subfolder that is not one of them is an error naming ``what`` (the rules file or
    the model). ``ms_per_image`` is the mean time to decode and grade one photo.
    """
    folders = labelled_photos(root)
    foreign = [c for c in folders if c not in classes]
    if foreign:
        raise DatasetError(
            f"{root}: class folder {foreign[0]!r} is not a grade of {what} "
            f"(its grades: {', '.join(classes)}); name the subfolders after those grades"
        )
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    skipped: list[Skipped] = []
    elapsed = 0.0
    photos = 0
    for label, files in folders.items():
        for path in files:
            photos += 1
            start = time.perf_counter()
            try:
                work = read_photo(path)
            except ValueError as exc:
                elapsed += time.perf_counter() - start
                skipped.append(Skipped(str(path), label, "not_an_image", str(exc)))
                continue
            result = grader(work)
            elapsed += time.perf_counter() - start
            if isinstance(result, Declined):
                skipped.append(Skipped(str(path), label, result.reason.value, result.message_en))
                continue
            confusion[index[label], index[result.grade]] += 1
    return Evaluation(classes, confusion, 1000.0 * elapsed / max(photos, 1), photos, skipped)
