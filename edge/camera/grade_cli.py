"""``edge grade``: grade a photo, calibrate a model from graded photos, evaluate a grader.

    edge grade IMAGE --product P [--model M] [--weight-g N] [--rules-dir D] [--json]
                     [--annotate OUT.png]
    edge grade calibrate DIR --product P --out MODEL
    edge grade eval DIR --product P [--model MODEL] [--json]

Exit status: 0 graded (or done), 1 the photo was declined (the reason code and message
are printed), 2 bad input (not an image, unknown product, bad rules or model file, an
unusable folder) with a message saying what to do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.camera.dataset_cli import add_dataset_command
from edge.camera.grading.evaluate import (
    DatasetError,
    calibrate_folder,
    evaluate_folder,
    read_photo,
)
from edge.camera.grading.grade import (
    Graded,
    GradingError,
    grade_work,
    load_grading_model,
    load_grading_rules,
    load_lookalikes,
)
from edge.camera.grading.measure import WorkImage
from edge.camera.grading.quality import Declined
from edge.config import GradingConfig

EXIT_OK, EXIT_DECLINED, EXIT_BAD_INPUT = 0, 1, 2
DESCRIPTION = """\
Grade a produce photo by the product's rules (<rules-dir>/<product>.toml, by default
the rules shipped in the package) or by a model a cooperative calibrated; calibrate such a
model; evaluate a grader.

  edge grade IMAGE --product P [--model M] [--weight-g N] [--json] [--annotate OUT.png]
      the grade, a confidence and the measurements that decided it
  edge grade calibrate DIR --product P --out MODEL [--json]
      fit a model on DIR (one subfolder of photos per grade; the names are the classes)
  edge grade eval DIR --product P [--model MODEL] [--json]
      accuracy, macro_f1, confusion (rows true, columns predicted), ms_per_image;
      without --model the rules are evaluated and the subfolders must be grade names

exit status: 0 graded (or done), 1 the photo was declined (reason code and message
printed), 2 bad input (not an image, unknown product, bad rules or model file, an
unusable folder)"""
COMMANDS = ("calibrate", "eval")


def _fail(message: str) -> int:
    print(f"edge grade: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_grade(args: argparse.Namespace) -> int:
    if args.target in COMMANDS:
        if args.annotate is not None:
            return _fail("--annotate is for grading one photo: edge grade IMAGE --annotate OUT.png")
        if args.folder is None:
            return _fail(f"`edge grade {args.target}` needs a folder: edge grade {args.target} DIR")
        if args.target == "calibrate":
            return _calibrate(args)
        return _eval(args)
    if args.folder is not None:
        return _fail(f"unexpected argument {str(args.folder)!r} after the image")
    if args.out is not None:
        return _fail("--out is for `edge grade calibrate DIR --out MODEL`")
    return _grade_image(args)


def _grade_image(args: argparse.Namespace) -> int:
    image = Path(args.target)
    try:
        rules = load_grading_rules(args.rules_dir, args.product)
        model = load_grading_model(args.model, args.product) if args.model else None
    except GradingError as exc:
        return _fail(str(exc))
    try:
        work = read_photo(image)
    except ValueError as exc:
        return _fail(f"{image}: not a readable image ({exc})")
    try:
        result = grade_work(
            work,
            rules,
            model,
            weight_g=args.weight_g,
            marker_mm=args.marker_mm,
            lookalikes=load_lookalikes(args.rules_dir, args.product),
        )
    except GradingError as exc:
        return _fail(str(exc))
    if isinstance(result, Declined):
        return _declined(args, image, result)
    if args.annotate is not None:
        code = _annotate(work, result, args.annotate)
        if code != EXIT_OK:
            return code
    if args.json:
        _print_json(result.to_json())
    else:
        _print_text(result)
    return EXIT_OK


def _declined(args: argparse.Namespace, image: Path, d: Declined) -> int:
    if args.json:
        _print_json(
            {
                "declined": d.reason.value,
                "message": d.message,
                "message_en": d.message_en,
                "detail": {k: float(v) for k, v in d.detail.items()},
            }
        )
    print(f"edge grade: {image}: declined ({d.reason.value}): {d.message_en}", file=sys.stderr)
    print(f"  {d.message}", file=sys.stderr)
    return EXIT_DECLINED


def _print_text(g: Graded) -> None:
    print(f"{g.product}: grade {g.grade} (confidence {g.confidence:.2f}, by {g.method})")
    for r in g.staff:
        print(f"  {'*' if r.deciding else ' '} {r.text_en}")
        print(f"    {r.text_vi}")
    print("  every comparison:")
    for d in g.reasons:
        print(f"  {'+' if d.passed else '-'} {d.text_en}")
        print(f"    {d.text_vi}")
    m = g.measurement
    print(f"  items: {len(m.items)}, sizes in {m.unit}")


def _annotate(work: WorkImage, g: Graded, out: Path) -> int:
    """Draw the outlines, the marker and the defects, with the grade as the caption."""
    import cv2

    from edge.camera.grading.annotate import annotate

    caption = f"{g.product}: hạng {g.grade} / grade {g.grade} ({g.confidence:.0%}, {g.method})"
    picture = annotate(work.full, g.measurement, caption)
    try:
        ok = cv2.imwrite(str(out), picture)
    except cv2.error as exc:
        return _fail(f"--annotate {out}: cannot write ({exc})")
    if not ok:
        return _fail(
            f"--annotate {out}: cannot write (use a .png or .jpg name in a folder that exists)"
        )
    return EXIT_OK


def _calibrate(args: argparse.Namespace) -> int:
    if args.out is None:
        return _fail("calibrate needs --out MODEL.json (where to save the model)")
    if args.model is not None:
        return _fail("calibrate makes a model: give --out, not --model")
    try:
        load_grading_rules(args.rules_dir, args.product)  # the product must be known
        result = calibrate_folder(Path(args.folder), args.product, args.marker_mm)
    except (GradingError, DatasetError) as exc:
        return _fail(str(exc))
    try:
        result.model.save(args.out)
    except OSError as exc:
        return _fail(f"{args.out}: cannot write the model: {exc.strerror}")
    info = result.model.info
    report = {
        "model": str(args.out),
        "product": args.product,
        "kind": result.model.kind,
        "classes": list(result.model.classes),
        "photos_used": result.used,
        "skipped": len(result.skipped),
        "skipped_photos": [s.to_json() for s in result.skipped],
        "cv_macro_f1": info.get("cv_macro_f1", {}),
        "bytes": args.out.stat().st_size,
    }
    if args.json:
        _print_json(report)
    else:
        used = ", ".join(f"{c} {n}" for c, n in result.used.items())
        print(f"{args.out}: {result.model.kind} model for {args.product} ({report['bytes']} bytes)")
        print(f"  photos used per class: {used}")
        print(f"  cross-validated macro-F1 per candidate: {report['cv_macro_f1']}")
        print(f"  skipped as unusable: {len(result.skipped)}")
        for s in result.skipped:
            print(f"    {s.path}: {s.reason}: {s.message}")
    return EXIT_OK


def _eval(args: argparse.Namespace) -> int:
    if args.out is not None:
        return _fail("--out is for `edge grade calibrate`")
    try:
        rules = load_grading_rules(args.rules_dir, args.product)
        model = load_grading_model(args.model, args.product) if args.model else None
    except GradingError as exc:
        return _fail(str(exc))
    classes = model.classes if model else rules.grades
    what = str(args.model) if model else rules.file

    lookalikes = load_lookalikes(args.rules_dir, args.product)

    def grader(work: WorkImage) -> Graded | Declined:
        return grade_work(
            work,
            rules,
            model,
            weight_g=args.weight_g,
            marker_mm=args.marker_mm,
            lookalikes=lookalikes,
        )

    try:
        ev = evaluate_folder(Path(args.folder), grader, classes, what)
    except (DatasetError, GradingError) as exc:
        return _fail(str(exc))
    report = {"product": args.product, "method": "model" if model else "rules", **ev.to_json()}
    if args.json:
        _print_json(report)
        return EXIT_OK
    print(
        f"{args.product} by {report['method']} ({what}): accuracy {report['accuracy']:.3f}, "
        f"macro-F1 {report['macro_f1']:.3f}, {report['ms_per_image']:.1f} ms per photo"
    )
    print(
        f"  photos {report['photos']}, graded {report['graded']}, declined {report['declined']}, "
        f"unreadable {report['unreadable']}"
    )
    width = max(len(c) for c in classes) + 2
    print("  confusion (rows: true, columns: predicted)")
    print("  " + " " * width + "".join(c.rjust(width) for c in classes))
    for c, row in zip(classes, report["confusion"], strict=True):
        print("  " + c.ljust(width) + "".join(str(v).rjust(width) for v in row))
    return EXIT_OK


def add_grade_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grade = sub.add_parser(
        "grade",
        help="grade a produce photo; calibrate or evaluate a grader",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    grade.add_argument("target", metavar="IMAGE|calibrate|eval", help="the photo, or a subcommand")
    grade.add_argument(
        "folder", nargs="?", metavar="DIR", help="(calibrate, eval) one subfolder per grade"
    )
    grade.add_argument("--product", required=True, help="product name, e.g. banana")
    grade.add_argument("--model", type=Path, help="a calibrated model (JSON) instead of the rules")
    grade.add_argument("--weight-g", type=int, help="the lot's weight in grams (count per kg)")
    grade.add_argument(
        "--rules-dir",
        type=Path,
        default=GradingConfig().rules_dir,
        help="folder of <product>.toml rules (default: %(default)s)",
    )
    grade.add_argument(
        "--marker-mm", type=float, default=40.0, help="the tray marker's side in mm (default 40)"
    )
    grade.add_argument("--json", action="store_true", help="print JSON")
    grade.add_argument("--annotate", type=Path, metavar="OUT.png", help="draw what was measured")
    grade.add_argument("--out", type=Path, metavar="MODEL", help="(calibrate) where to save")
    grade.set_defaults(func=cmd_grade)
    add_dataset_command(grade)  # edge grade dataset export (edge/camera/dataset_cli.py)
