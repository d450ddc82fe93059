"""Calibrate a model from, and evaluate a grader on, a folder of graded photos.

The folder has one subfolder per grade a person gave; the subfolder names are the
class names. Photos that cannot be used (not an image, declined) are listed with the
reason, never silently dropped. The metrics are pure functions of the labels.

Calibration reads every photo once and keeps, per photo: the produce features (as the
station computes them), the background's figures (for the leak control), the session
cues (for the photo groups, unless a ``groups.csv`` gives them) and the features of
augment.COPIES altered copies (light, white balance, scale, rotation). Other products'
photos (``others``) train the product check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.grading import augment
from edge.camera.grading.embed import backbone
from edge.camera.grading.features import (
    FEATURE_NAMES,
    FEATURE_SIDE,
    Features,
    border_mask,
    marker_mask,
    produce_and_background,
)
from edge.camera.grading.grade import Graded
from edge.camera.grading.groups import (
    cluster_groups,
    group_folds,
    read_groups_file,
    session_cues,
)
from edge.camera.grading.measure import WorkImage, decode_jpeg, measure_tray
from edge.camera.grading.model import (
    EMBEDDED,
    FIGURES,
    FOLDS,
    INPUTS,
    Calibration,
    Model,
    calibrate_full,
    joined,
)
from edge.camera.grading.productcheck import CheckResult, train_check
from edge.camera.grading.quality import Declined

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MIN_CLASS_PHOTOS = 3
MAX_OTHER_PHOTOS = 300  # other products' photos the product check learns from (evenly taken)
ANY = "any"  # calibrate_folder's inputs: every candidate competes
AUGMENT_SIDE = FEATURE_SIDE  # copies are made from the photo at the features' size
WORKERS = min(4, os.cpu_count() or 1)


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


@dataclass(frozen=True)
class Seen:
    """What calibration keeps of one photo."""

    features: Features | Declined
    background: npt.NDArray[np.float64] | None
    cues: npt.NDArray[np.float64]
    copies: tuple[npt.NDArray[np.float64], ...]  # the altered copies' features
    # With the embedding: the produce's and the backdrop's (else None).
    embedded: npt.NDArray[np.float64] | None = None
    background_embedded: npt.NDArray[np.float64] | None = None


def see_photo(
    data: bytes, marker_mm: float | None, index: int, copies: int, embedding: bool = False
) -> Seen:
    """The features of one calibration photo (exactly as :func:`grade.model_input`
    computes them at the station), its background figures, its session cues and, for
    ``copies`` > 0, its altered copies' features (``index`` seeds them); with
    ``embedding``, the pretrained network's embeddings of the produce and of the
    backdrop (:mod:`embed`). ``ValueError`` when it is not an image."""
    work = WorkImage.of(decode_jpeg(data))
    m = measure_tray(work, marker_mm)
    seen, background, backdrop = produce_and_background(work.full, m.marker)
    cues = session_cues(data)
    out: list[npt.NDArray[np.float64]] = []
    if copies and not isinstance(seen, Declined):
        base = _augment_base(work.full, m.marker)
        for copy in augment.copies(base, index, copies):
            f, _, _ = produce_and_background(copy, with_background=False)
            if not isinstance(f, Declined):
                out.append(f.vector)
    if not embedding or isinstance(seen, Declined) or backdrop is None:
        return Seen(seen, background, cues, tuple(out))
    rows = backbone().embed([seen.view, backdrop])
    return Seen(seen, background, cues, tuple(out), rows[0], rows[1])


def _augment_base(bgr: npt.NDArray[np.uint8], marker: Any) -> npt.NDArray[np.uint8]:
    """The photo at AUGMENT_SIDE (the copies need no more: features are computed at
    that size), with the tray marker and its quiet zone painted the backdrop's colour
    (a turned copy's marker could not be found again and would pass for produce)."""
    h, w = bgr.shape[:2]
    scale = min(1.0, AUGMENT_SIDE / max(h, w))
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    resized = bgr if scale >= 1 else cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    small: npt.NDArray[np.uint8] = np.ascontiguousarray(resized, dtype=np.uint8)
    if marker is not None:
        hole = marker_mask(marker, scale, small.shape[:2])
        colour = np.median(small[border_mask(small.shape[:2]) & ~hole], axis=0)
        small = small.copy()
        small[hole] = colour.astype(np.uint8)
    return small


def _see_all(
    paths: Sequence[Path],
    marker_mm: float | None,
    copies: int,
    first_index: int = 0,
    embedding: bool = False,
) -> list[Seen | str]:
    """:func:`see_photo` of each path (a reason string where it cannot be read), on
    WORKERS threads (OpenCV lets go of the interpreter), results in order."""

    def one(i: int) -> Seen | str:
        try:
            data = paths[i].read_bytes()
        except OSError as exc:
            return f"cannot read: {exc.strerror}"
        try:
            return see_photo(data, marker_mm, first_index + i, copies, embedding)
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(one, range(len(paths))))


@dataclass
class CalibrationResult:
    model: Model
    used: dict[str, int]  # photos per class that went into the model
    skipped: list[Skipped] = field(default_factory=list)
    calibration: Calibration | None = None
    check: CheckResult | None = None
    others: dict[str, int] = field(default_factory=dict)  # other products' photos used


def other_products(root: Path, known: Callable[[str], bool]) -> list[Path]:
    """``root``'s sibling folders that are products (``known(name)``) with at least two
    grade subfolders: the other products the product check learns to tell apart."""
    parent = root.resolve().parent
    out = []
    for sib in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sib.resolve() == root.resolve() or not known(sib.name):
            continue
        if sum(1 for q in sib.iterdir() if q.is_dir() and not q.name.startswith(".")) >= 2:
            out.append(sib)
    return out


def calibrate_folder(
    root: Path,
    product: str,
    marker_mm: float | None = 40.0,
    others: Sequence[Path] = (),
    copies: int = augment.COPIES,
    inputs: str = EMBEDDED,
) -> CalibrationResult:
    """Fit a model on ``root`` (one subfolder per grade); refuses fewer than two classes
    or a class with fewer than MIN_CLASS_PHOTOS usable photos. ``others``: other
    products' calibration folders (one subfolder per grade), for the product check.
    ``inputs``: EMBEDDED (the default: the candidates on the pretrained network's
    embedding, :mod:`embed`, which won on grading-dev's nested group-aware folds),
    FIGURES (the produce figures' candidates) or ANY (both compete);
    ``BackboneError`` when the network is needed and cannot be loaded."""
    if inputs not in (ANY, *INPUTS):
        raise ValueError(f"inputs: {inputs!r} is not one of {ANY!r}, {FIGURES!r}, {EMBEDDED!r}")
    embedding = inputs != FIGURES
    if inputs == EMBEDDED:
        copies = 0  # only the figures' candidates learn from altered copies
    if embedding:
        backbone()  # a missing network is said before minutes of work
    folders = labelled_photos(root)
    if len(folders) < 2:
        raise DatasetError(
            f"{root}: only one class ({', '.join(folders)}); a model needs at least two "
            "subfolders of graded photos"
        )
    classes = tuple(folders)
    paths = [p for files in folders.values() for p in files]
    names = [label for label, files in folders.items() for _ in files]
    seen_all = _see_all(paths, marker_mm, copies, embedding=embedding)
    rows: list[npt.NDArray[np.float64]] = []
    emb: list[npt.NDArray[np.float64]] = []
    bg_emb: list[npt.NDArray[np.float64]] = []
    backgrounds: list[npt.NDArray[np.float64]] = []
    cues: list[npt.NDArray[np.float64]] = []
    aug: list[npt.NDArray[np.float64]] = []
    aug_of: list[int] = []
    labels: list[int] = []
    used_paths: list[Path] = []
    skipped: list[Skipped] = []
    for path, label, seen in zip(paths, names, seen_all, strict=True):
        if isinstance(seen, str):
            skipped.append(Skipped(str(path), label, "not_an_image", seen))
            continue
        if isinstance(seen.features, Declined):
            d = seen.features
            skipped.append(Skipped(str(path), label, d.reason.value, d.message_en))
            continue
        for v in seen.copies:
            aug.append(v)
            aug_of.append(len(rows))
        if seen.embedded is not None:
            emb.append(seen.embedded)
            bg_emb.append(cast(npt.NDArray[np.float64], seen.background_embedded))
        rows.append(seen.features.vector)
        nan = np.full(len(FEATURE_NAMES), np.nan)
        backgrounds.append(seen.background if seen.background is not None else nan)
        cues.append(seen.cues)
        labels.append(classes.index(label))
        used_paths.append(path)
    y = np.asarray(labels, np.intp)
    used = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    short = [c for c, n in used.items() if n < MIN_CLASS_PHOTOS]
    if short:
        detail = ", ".join(f"{c}: {used[c]}" for c in short)
        raise DatasetError(
            f"{root}: too few usable photos in {detail} (each class needs at least "
            f"{MIN_CLASS_PHOTOS}; {len(skipped)} photos were skipped as unusable)"
        )
    try:
        groups = read_groups_file(root, used_paths)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if groups is None:
        groups = cluster_groups(np.vstack(cues), labels)
    x = np.vstack(rows)
    embedded = np.vstack(emb) if embedding else None
    cal = calibrate_full(
        x,
        y,
        classes,
        product,
        groups,
        np.vstack(aug) if aug else None,
        np.asarray(aug_of, np.intp),
        np.vstack(backgrounds),
        embedded,
        np.vstack(bg_emb) if embedding else None,
        None if inputs == ANY else inputs,
    )
    result = CalibrationResult(cal.model, used, skipped, cal)
    if others:
        own = joined(x, embedded) if cal.model.embedded else x
        _train_check(result, own, labels, groups, others, marker_mm)
    return result


def _train_check(
    result: CalibrationResult,
    own: npt.NDArray[np.float64],
    own_labels: Sequence[int],
    own_groups: Sequence[int],
    others: Sequence[Path],
    marker_mm: float | None,
) -> None:
    """The product check against ``others`` (each a product's calibration folder), put
    into ``result.model``; other products' photos that cannot be used are left out."""
    paths: list[Path] = []
    names: list[str] = []
    kinds: list[int] = []  # each other product's grade is a class of its own
    for folder in others:
        for files in labelled_photos(folder).values():
            kind = len(set(kinds))
            paths += files
            names += [folder.name] * len(files)
            kinds += [kind] * len(files)
    if len(paths) > MAX_OTHER_PHOTOS:
        take = np.linspace(0, len(paths) - 1, MAX_OTHER_PHOTOS).round().astype(int)
        paths, names = [paths[i] for i in take], [names[i] for i in take]
        kinds = [kinds[i] for i in take]
    rows, emb, cues, used_names, used_kinds = [], [], [], [], []
    embedding = result.model.embedded
    seen_all = _see_all(paths, marker_mm, 0, embedding=embedding)
    for seen, name, kind in zip(seen_all, names, kinds, strict=True):
        if isinstance(seen, str) or isinstance(seen.features, Declined):
            continue
        rows.append(seen.features.vector)
        if seen.embedded is not None:
            emb.append(seen.embedded)
        cues.append(seen.cues)
        used_names.append(name)
        used_kinds.append(kind)
    if not rows:
        return
    # Renumber the other classes 0..m-1 in order (some may have had no usable photo).
    order = {k: i for i, k in enumerate(sorted(set(used_kinds)))}
    other_labels = [order[k] for k in used_kinds]
    top = max(own_groups) + 1
    other_groups = [top + g for g in cluster_groups(np.vstack(cues), other_labels)]
    groups = [*own_groups, *other_groups]
    t = [1] * len(own) + [0] * len(rows)
    folds = group_folds(groups, t, FOLDS)
    other = joined(np.vstack(rows), np.vstack(emb)) if embedding else np.vstack(rows)
    check = train_check(own, own_labels, other, other_labels, folds, used_names)
    result.check = check
    result.model = replace(result.model, check=check.check)
    result.others = {n: used_names.count(n) for n in sorted(set(used_names))}


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


def cost_figures(
    y: npt.NDArray[np.intp],
    decided: npt.NDArray[np.intp],
    classes: tuple[str, ...],
    costly: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    """What cost-aware decisions did on labelled photos: ``decided`` is a class per
    photo or -1 (unsure, asked the lead).

    ``costly_rate`` (the bad-called-good rate): of the photos whose true class has a
    costly confusion, the share graded as that costly class (``None`` when no
    confusion is costly); ``unsure_share``; ``graded_macro_f1`` over the graded photos;
    ``graded_accuracy``."""
    nc = len(classes)
    graded = decided >= 0
    confusion = np.zeros((nc, nc), np.int64)
    np.add.at(confusion, (y[graded], decided[graded]), 1)
    acc, f1, _ = metrics(confusion, classes)
    exposed = sorted({i for i, _ in costly})
    at_risk = int(np.isin(y, exposed).sum())
    wrong = sum(int(((y == i) & (decided == j)).sum()) for i, j in costly)
    return {
        "costly_confusions": [f"{classes[i]}->{classes[j]}" for i, j in costly],
        "costly_count": wrong,
        "costly_of": at_risk,
        "costly_rate": round(wrong / at_risk, 4) if costly and at_risk else None,
        "unsure": int((~graded).sum()),
        "unsure_share": round(float((~graded).mean()), 4) if len(y) else 0.0,
        "graded_macro_f1": round(f1, 4),
        "graded_accuracy": round(acc, 4),
    }
