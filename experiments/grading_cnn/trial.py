"""A small convolutional network for grading, measured against the classical path.

Issue 17, item 4: does a MobileNet-class network trained from scratch on a cooperative's
own photos grade better than the classical features + linear model, on splits that keep
photo sessions and backdrops apart, within the station's time budget? This script is the
measurement, not product code: it writes nothing into the repository (the photos may
not be redistributed, and neither may a model trained on them).

Two steps, two virtual environments:

- ``run`` (the separate torch venv, see README.md): for each product folder
  (DATA/<product>/<grade>/<photos>), crop the produce with the project's own foreground
  mask (edge.camera.grading.features), grey out everything that is not produce (so the
  network cannot learn the backdrop), train on the group-aware folds of
  edge.camera.grading.groups and print the out-of-fold macro-F1 and bad-called-good
  rate; then train on all photos and export to ONNX under --out (in /tmp).
- ``time`` (the project's venv, no torch): load each exported model with OpenCV's dnn
  module and time one inference and the whole per-photo path (decode + mask + crop +
  net), median ms over --runs runs, beside the classical path's model_input on the
  same photos.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from edge.camera.grading.embed import GREY, square_window  # noqa: E402
from edge.camera.grading.evaluate import labelled_photos, metrics  # noqa: E402
from edge.camera.grading.features import (  # noqa: E402
    MIN_PRODUCE_SHARE,
    balance,
    foreground,
    resize_for_features,
    to_lab,
)
from edge.camera.grading.groups import group_folds, photo_groups  # noqa: E402
from edge.camera.grading.image import decode_jpeg  # noqa: E402

if TYPE_CHECKING:
    from torch import Tensor, nn

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float32]

CACHE_SIDE = 128  # crops are kept at this side; augmentation then resizes to --side
INPUT_MEAN = 128.0  # the net sees (bgr - INPUT_MEAN) / INPUT_SCALE (cv2.dnn.blobFromImage)
INPUT_SCALE = 64.0
MARGIN = 0.08  # the crop reaches this share of the produce's box beyond it
FOLDS = 5
# The costly mistake per product: that class graded as any other class.
BAD_CLASS = {"potato": "bad", "banana": "rotten"}


@dataclass(frozen=True)
class Crop:
    """The produce of one photo: a square BGR crop with non-produce greyed out, its
    mask, and whether the foreground mask found produce (else the whole photo)."""

    image: Image  # CACHE_SIDE x CACHE_SIDE x 3
    mask: Mask  # CACHE_SIDE x CACHE_SIDE
    masked: bool


@dataclass
class Product:
    name: str
    classes: tuple[str, ...]
    photos: list[Path]
    labels: npt.NDArray[np.intp]
    crops: list[Crop]


def produce_crop(bgr: Image, side: int = CACHE_SIDE, *, control: bool = False) -> Crop:
    """Crop the produce as the classical path sees it: the photo at the features'
    resolution, the light divided out where the backdrop is neutral, the box around
    the foreground mask squared and padded; pixels outside the mask become GREY. When
    the mask finds too little produce the whole photo is used, unmasked.

    ``control``: the opposite, for the background-only control: the whole photo with
    the produce (and padding) greyed out. A net that grades as well from that learned
    the session, and the folds did not keep sessions apart."""
    small, _ = resize_for_features(bgr)
    lab = to_lab(small)
    mask, void, fields = foreground(small, lab)
    balanced = balance(small, fields)
    usable = max(int((~void).sum()), 1)
    masked = float(mask.sum()) / usable >= MIN_PRODUCE_SHARE
    if control:
        mask = ~void & ~(mask if masked else np.zeros_like(mask))
        img, keep = square_window(balanced, mask, side, 0.0, box=np.ones_like(mask))
        return Crop(img, keep, masked)
    if not masked:
        mask = ~void
    if not mask.any():
        mask = np.ones(small.shape[:2], np.bool_)
    img, keep = square_window(balanced, mask, side, MARGIN)
    return Crop(img, keep, masked)


def load_product(folder: Path, *, control: bool = False) -> Product:
    by_class = labelled_photos(folder)
    classes = tuple(by_class)
    photos: list[Path] = []
    labels: list[int] = []
    crops: list[Crop] = []
    for ci, files in enumerate(by_class.values()):
        for path in files:
            try:
                bgr = decode_jpeg(path.read_bytes())
            except ValueError:
                print(f"  skipped (not an image): {path}")
                continue
            photos.append(path)
            labels.append(ci)
            crops.append(produce_crop(bgr, control=control))
    return Product(folder.name, classes, photos, np.asarray(labels, np.intp), crops)


def augment(rng: np.random.Generator, crop: Crop, side: int) -> Image:
    """One training view: any rotation, flips, scale 0.8-1.2, exposure 0.7-1.3, white
    balance 0.88-1.12 per channel, a little gamma; the backdrop stays GREY."""
    s = CACHE_SIDE
    angle = float(rng.uniform(0, 360))
    zoom = float(rng.uniform(0.8, 1.2)) * side / s
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, zoom)
    m[:, 2] += (side - s) / 2 + rng.uniform(-0.06, 0.06, 2) * side
    img = cv2.warpAffine(crop.image, m, (side, side), borderValue=(GREY,) * 3)
    msk = cv2.warpAffine(crop.mask.astype(np.uint8) * 255, m, (side, side)) >= 128
    if rng.random() < 0.5:
        img, msk = img[:, ::-1], msk[:, ::-1]
    if rng.random() < 0.5:
        img, msk = img[::-1], msk[::-1]
    gains = rng.uniform(0.7, 1.3) * rng.uniform(0.88, 1.12, 3)
    gamma = float(rng.uniform(0.8, 1.25))
    f = (img.astype(np.float32) / 255.0) ** gamma * 255.0 * gains.astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    out[~msk] = GREY
    return cast(Image, out)


def centred(crop: Crop, side: int) -> Image:
    """The view the station grades: the crop resized to ``side``."""
    img = cv2.resize(crop.image, (side, side), interpolation=cv2.INTER_AREA)
    msk = cv2.resize(crop.mask.astype(np.uint8) * 255, (side, side)) >= 128
    img[~msk] = GREY
    return cast(Image, img)


def build_net(n_classes: int, width: float = 1.0) -> nn.Module:
    """MobileNet-v1-style: a 3x3 stem, depthwise-separable blocks (3x3 depthwise +
    1x1 pointwise, BatchNorm, ReLU6), global average pooling, dropout, a linear head."""
    from torch import nn

    def c(n: int) -> int:
        return max(8, round(n * width / 8) * 8)

    def ds(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        ]

    # The first block already halves the size again: at 96 px a full-size 48x48 block
    # would cost more than the rest of the net on two cores.
    plan = [(16, 32, 2), (32, 48, 1), (48, 96, 2), (96, 96, 1), (96, 160, 2)]
    plan += [(160, 160, 1), (160, 256, 2), (256, 256, 1)]
    layers: list[nn.Module] = [
        nn.Conv2d(3, c(16), 3, 2, 1, bias=False),
        nn.BatchNorm2d(c(16)),
        nn.ReLU6(inplace=True),
    ]
    for cin, cout, stride in plan:
        layers += ds(c(cin), c(cout), stride)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c(256), n_classes)]
    return nn.Sequential(*layers)


def to_tensor(images: Sequence[Image]) -> Tensor:
    import torch

    x = np.stack(images).astype(np.float32)
    x = (x - INPUT_MEAN) / INPUT_SCALE
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def train(
    crops: Sequence[Crop],
    y: npt.NDArray[np.intp],
    n_classes: int,
    *,
    side: int,
    epochs: int,
    seed: int,
) -> nn.Module:
    """AdamW with a one-cycle learning rate, class-balanced cross-entropy with a little
    label smoothing (the classes are uneven: 56 good potatoes, 163 bad)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_net(n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    weights = torch.from_numpy(counts.sum() / (n_classes * np.maximum(counts, 1.0)))
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    batch = 32
    steps = epochs * max(1, -(-len(y) // batch))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            if len(idx) < 2:
                continue  # BatchNorm needs two
            x = to_tensor([augment(rng, crops[i], side) for i in idx])
            target = torch.from_numpy(y[idx].astype(np.int64))
            opt.zero_grad()
            loss = loss_fn(net(x), target)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def predict(net: nn.Module, crops: Sequence[Crop], side: int) -> Floats:
    import torch

    with torch.no_grad():
        logits = net(to_tensor([centred(c, side) for c in crops]))
        return cast(Floats, torch.softmax(logits, 1).numpy())


def bad_called_good(product: str, classes: tuple[str, ...], conf: npt.NDArray[np.int64]) -> str:
    bad = BAD_CLASS.get(product)
    if bad not in classes:
        return "n/a (no bad class known for this product)"
    b = classes.index(bad)
    missed = int(conf[b].sum() - conf[b, b])
    total = int(conf[b].sum())
    return f"{missed}/{total} = {100.0 * missed / max(total, 1):.1f} % ({bad} graded as another)"


def run_product(folder: Path, args: argparse.Namespace) -> dict[str, object]:
    """Cross-validate on group-aware folds and print the figures, then export the final
    model (``--no-export``: not; ``--export-only``: no cross-validation)."""
    t0 = time.perf_counter()
    p = load_product(folder, control=args.control)
    load_s = time.perf_counter() - t0
    groups = photo_groups(p.photos, p.labels.tolist())
    folds = np.asarray(group_folds(groups, p.labels.tolist(), args.folds), np.intp)
    unmasked = sum(not c.masked for c in p.crops)
    print(
        f"{p.name}: {len(p.photos)} photos, classes {', '.join(p.classes)} "
        f"({', '.join(str(int(n)) for n in np.bincount(p.labels))}); "
        f"{len(set(groups))} groups, {int(folds.max()) + 1} group-aware folds; mask found no "
        f"produce in {unmasked} (whole photo used); crops in {load_s:.1f} s"
    )
    n_params = sum(int(t.numel()) for t in build_net(len(p.classes)).parameters())
    result: dict[str, object] = {
        "product": p.name,
        "control": args.control,
        "classes": list(p.classes),
        "params": n_params,
        "side": args.side,
        "epochs": args.epochs,
    }
    if not args.export_only:
        result |= cross_validate(p, folds, args)
        print(
            f"  parameters {n_params}; input {args.side}x{args.side}; {args.epochs} epochs; "
            f"cross-validation training {result['cv_seconds']:.0f} s (2 threads)"
        )
    if not (args.control or args.no_export):
        result |= export(p, args)
    return result


def cross_validate(
    p: Product, folds: npt.NDArray[np.intp], args: argparse.Namespace
) -> dict[str, object]:
    """Every photo graded by the net trained on the folds that held its group out."""
    k = int(folds.max()) + 1
    oof = np.zeros((len(p.photos), len(p.classes)), np.float32)
    t1 = time.perf_counter()
    for f in range(k):
        tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        net = train(
            [p.crops[i] for i in tr],
            p.labels[tr],
            len(p.classes),
            side=args.side,
            epochs=args.epochs,
            seed=args.seed + f,
        )
        oof[te] = predict(net, [p.crops[i] for i in te], args.side)
        fold_acc = float((oof[te].argmax(1) == p.labels[te]).mean())
        print(f"  fold {f}: {len(te)} held out, accuracy {fold_acc:.3f}", flush=True)
    cv_s = time.perf_counter() - t1
    pred = oof.argmax(1)
    conf = np.zeros((len(p.classes),) * 2, np.int64)
    np.add.at(conf, (p.labels, pred), 1)
    acc, f1, per_class = metrics(conf, p.classes)
    what = "BACKGROUND-ONLY CONTROL" if args.control else "CNN"
    print(f"  {what} out-of-fold (group-aware, {k} folds): macro-F1 {f1:.4f}, accuracy {acc:.4f}")
    print(f"  confusion (rows true, columns graded; {', '.join(p.classes)}): {conf.tolist()}")
    f1s = ", ".join(f"{c} {v['f1']:.3f}" for c, v in per_class.items())
    print(f"  per-class F1: {f1s}")
    print(f"  bad-called-good: {bad_called_good(p.name, p.classes, conf)}")
    masked = np.array([c.masked for c in p.crops])
    if masked.any() and not masked.all():
        sub = np.zeros_like(conf)
        np.add.at(sub, (p.labels[masked], pred[masked]), 1)
        print(
            f"  on the {int(masked.sum())} photos the mask found produce in (as the classical "
            f"path grades them): macro-F1 {metrics(sub, p.classes)[1]:.4f}"
        )
    return {
        "macro_f1": round(f1, 4),
        "accuracy": round(acc, 4),
        "confusion": conf.tolist(),
        "cv_seconds": round(cv_s, 1),
    }


def export(p: Product, args: argparse.Namespace) -> dict[str, object]:
    """Train on all photos, export to ONNX under --out and check it through cv2.dnn."""
    import torch

    t2 = time.perf_counter()
    net = train(
        p.crops, p.labels, len(p.classes), side=args.side, epochs=args.epochs, seed=args.seed
    )
    final_s = time.perf_counter() - t2
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{p.name}.onnx"
    view = centred(p.crops[0], args.side)
    dummy = to_tensor([view])
    torch.onnx.export(
        net,
        (dummy,),
        str(onnx_path),
        dynamo=False,
        opset_version=13,
        input_names=["image"],
        output_names=["logits"],
    )
    # The exported graph must give what torch gives, through the runtime the station has.
    cv_net = cv2.dnn.readNetFromONNX(str(onnx_path))
    cv_net.setInput(cv2.dnn.blobFromImage(view, 1 / INPUT_SCALE, mean=(INPUT_MEAN,) * 3))
    with torch.no_grad():
        diff = float(np.abs(cv_net.forward() - net(dummy).numpy()).max())
    meta = {"classes": list(p.classes), "side": args.side, "mean": INPUT_MEAN, "scale": INPUT_SCALE}
    onnx_path.with_suffix(".json").write_text(json.dumps(meta))
    print(
        f"  final model on all {len(p.photos)} photos: {final_s:.0f} s; ONNX {onnx_path} "
        f"({onnx_path.stat().st_size // 1024} KiB, opset 13); cv2.dnn vs torch max |diff| "
        f"{diff:.2e}",
        flush=True,
    )
    return {"final_seconds": round(final_s, 1), "onnx": str(onnx_path)}


def product_folders(data: Path, only: Sequence[str]) -> list[Path]:
    """DATA itself when it is a product folder (grade subfolders of photos), else its
    product subfolders."""
    subs = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subs and any(q.is_file() for q in subs[0].iterdir()):
        return [data]
    return [p for p in subs if not only or p.name in only]


def time_product(onnx_path: Path, folder: Path, runs: int) -> None:
    """Median ms of one cv2.dnn inference, of the whole per-photo path (read the file,
    decode, mask, crop, net, softmax), and of the classical path's model_input on the
    same photos."""
    from edge.camera.grading.grade import model_input
    from edge.camera.grading.measure import WorkImage

    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    side, mean, scale = int(meta["side"]), float(meta["mean"]), float(meta["scale"])
    net = cv2.dnn.readNetFromONNX(str(onnx_path))
    photos = [p for files in labelled_photos(folder).values() for p in files]
    rng = np.random.default_rng(0)
    pick = [photos[i] for i in rng.choice(len(photos), size=min(10, len(photos)), replace=False)]

    def whole(path: Path) -> int:
        crop = produce_crop(decode_jpeg(path.read_bytes()))
        blob = cv2.dnn.blobFromImage(centred(crop, side), 1 / scale, mean=(mean,) * 3)
        net.setInput(blob)
        logits = net.forward()[0]
        return int(np.argmax(logits))

    def classical(path: Path) -> object:
        return model_input(WorkImage.of(decode_jpeg(path.read_bytes())))

    blob = cv2.dnn.blobFromImage(
        np.full((side, side, 3), GREY, np.uint8), 1 / scale, mean=(mean,) * 3
    )
    for path in pick:  # warm-up
        whole(path)
    net_ms, whole_ms, classical_ms = [], [], []
    for i in range(runs):
        t = time.perf_counter()
        net.setInput(blob)
        net.forward()
        net_ms.append(1000 * (time.perf_counter() - t))
        path = pick[i % len(pick)]
        t = time.perf_counter()
        whole(path)
        whole_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        classical(path)
        classical_ms.append(1000 * (time.perf_counter() - t))
    print(
        f"{folder.name}: cv2.dnn {cv2.__version__} ({cv2.getNumThreads()} threads), "
        f"median of {runs}: net {statistics.median(net_ms):.2f} ms; whole per-photo path "
        f"(read + decode + mask + crop + net) {statistics.median(whole_ms):.2f} ms; "
        f"classical model_input (measure + features) {statistics.median(classical_ms):.2f} ms"
    )


def classical_product(folder: Path) -> None:
    """The classical path's figures in the CNN's terms: ``calibrate_folder`` (what
    ``edge grade calibrate`` runs: its own group-aware folds, altered copies, candidate
    choice) and its chosen candidate's out-of-fold grades taken as the most probable
    class, without costs or "unsure", as the CNN's are."""
    from edge.camera.grading.evaluate import calibrate_folder

    result = calibrate_folder(folder, folder.name)
    cal = result.calibration
    if cal is None:
        print(f"{folder.name}: no out-of-fold evidence from the calibration")
        return
    classes = result.model.classes
    conf = np.zeros((len(classes),) * 2, np.int64)
    np.add.at(conf, (cal.labels, cal.oof_proba.argmax(1)), 1)
    acc, f1, _ = metrics(conf, classes)
    print(
        f"{folder.name}: classical ({result.model.kind}) out-of-fold, most probable grade: "
        f"macro-F1 {f1:.4f}, accuracy {acc:.4f}, confusion {conf.tolist()} "
        f"({', '.join(classes)}); bad-called-good {bad_called_good(folder.name, classes, conf)}; "
        f"{len(result.skipped)} photos declined; {cal.groups} groups"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="step", required=True)
    run = sub.add_parser("run", help="cross-validate, print, export ONNX (torch venv)")
    run.add_argument("data", type=Path, help="DATA/<product>/<grade>/ or one product folder")
    run.add_argument("--products", nargs="*", default=[])
    run.add_argument("--side", type=int, default=80)
    run.add_argument("--epochs", type=int, default=40)
    run.add_argument("--folds", type=int, default=FOLDS)
    run.add_argument("--seed", type=int, default=17)
    run.add_argument("--out", type=Path, default=Path("/tmp/grading-cnn"))
    run.add_argument("--control", action="store_true", help="background-only control")
    run.add_argument("--no-export", action="store_true")
    run.add_argument("--export-only", action="store_true", help="no cross-validation")
    tm = sub.add_parser("time", help="time the exported models with cv2.dnn (project venv)")
    tm.add_argument("data", type=Path)
    tm.add_argument("--products", nargs="*", default=[])
    tm.add_argument("--out", type=Path, default=Path("/tmp/grading-cnn"))
    tm.add_argument("--runs", type=int, default=50)
    cl = sub.add_parser("classical", help="the classical path's figures alike (project venv)")
    cl.add_argument("data", type=Path)
    cl.add_argument("--products", nargs="*", default=[])
    cl.add_argument("--out", type=Path, default=Path("/tmp/grading-cnn"))
    args = ap.parse_args(argv)
    if args.out.resolve().is_relative_to(REPO):
        ap.error(f"--out {args.out} is inside the repository; models stay outside it (/tmp)")
    folders = product_folders(args.data, args.products)
    if args.step == "classical":
        for folder in folders:
            classical_product(folder)
        return 0
    if args.step == "time":
        for folder in folders:
            time_product(args.out / f"{folder.name}.onnx", folder, args.runs)
        return 0
    import torch

    torch.set_num_threads(2)
    results = [run_product(folder, args) for folder in folders]
    args.out.mkdir(parents=True, exist_ok=True)
    name = "control.json" if args.control else "results.json"
    (args.out / name).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
