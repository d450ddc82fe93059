"""``edge grade``: grade a photo, calibrate a model from graded photos, evaluate a grader.

    edge grade IMAGE --product P [--model M] [--weight-g N] [--rules-dir D] [--json]
                     [--annotate OUT.png]
    edge grade calibrate DIR --product P --out MODEL [--others DIR2 ...] [--json]
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
from edge.camera.grading.costs import Costs, costs_for
from edge.camera.grading.embed import BackboneError
from edge.camera.grading.evaluate import (
    ANY,
    CalibrationResult,
    DatasetError,
    Evaluation,
    calibrate_folder,
    cost_figures,
    evaluate_folder,
    other_products,
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
from edge.camera.grading.model import EMBEDDED, FIGURES
from edge.camera.grading.quality import Declined, Reason
from edge.camera.grading.rules import Rules, RulesError
from edge.config import GradingConfig

EXIT_OK, EXIT_DECLINED, EXIT_BAD_INPUT = 0, 1, 2
DESCRIPTION = """\
Grade a produce photo by the product's rules (<rules-dir>/<product>.toml, by default
the rules shipped in the package) or by a model a cooperative calibrated; calibrate such a
model; evaluate a grader.

  edge grade IMAGE --product P [--model M] [--weight-g N] [--json] [--annotate OUT.png]
      the grade, a confidence and the measurements that decided it
  edge grade calibrate DIR --product P --out MODEL [--others DIR2 ...] [--json]
      fit a model on DIR (one subfolder of photos per grade; the names are the classes),
      scored on folds that keep photo groups apart (DIR/groups.csv, else sessions found
      from the backdrop and image size), with the background-only control beside it;
      the product check learns P against the other products' folders (--others, by
      default DIR's sibling folders named after a known product)
  edge grade eval DIR --product P [--model MODEL] [--json]
      accuracy, macro_f1, confusion (rows true, columns predicted), ms_per_image,
      unsure photos and the costly-confusion rate; without --model the rules are
      evaluated and the subfolders must be grade names

exit status: 0 graded (or done), 1 the photo was declined (reason code and message
printed), 2 bad input (not an image, unknown product, bad rules or model file, an
unusable folder)"""
COMMANDS = ("calibrate", "eval")
INPUT_CHOICES = {"any": ANY, "figures": FIGURES, "embedding": EMBEDDED}  # --inputs
LEAK_MARGIN = 0.1  # a background-only control within this of the produce's score: a leak


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
    root = Path(args.folder)

    def known(name: str) -> bool:
        try:
            load_grading_rules(args.rules_dir, name)
        except GradingError:
            return False
        return True

    try:
        rules = load_grading_rules(args.rules_dir, args.product)  # the product must be known
        others = list(args.others) if args.others else other_products(root, known)
        result = calibrate_folder(
            root, args.product, args.marker_mm, others, inputs=INPUT_CHOICES[args.inputs]
        )
    except (GradingError, DatasetError, BackboneError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename}: cannot read: {exc.strerror}")
    try:
        result.model.save(args.out)
    except OSError as exc:
        return _fail(f"{args.out}: cannot write the model: {exc.strerror}")
    report = calibration_report(result, rules, args)
    if args.json:
        _print_json(report)
    else:
        print_calibration(report)
    return EXIT_OK


def _costs(rules: Rules, classes: tuple[str, ...]) -> Costs | str:
    """The product's costs over the model's classes, or why they do not apply."""
    try:
        return costs_for(rules.costs, classes, rules.file)
    except RulesError as exc:
        return str(exc)


def calibration_report(
    result: CalibrationResult, rules: Rules, args: argparse.Namespace
) -> dict[str, Any]:
    model = result.model
    info = model.info
    cv: dict[str, float] = info.get("cv_macro_f1", {})
    control: dict[str, float] = info.get("control_macro_f1", {})
    best = max(cv.values()) if cv else 0.0
    control_best = max(control.values()) if control else None
    chosen = info.get("chosen")
    leak = control_best is not None and control_best >= best - LEAK_MARGIN
    report: dict[str, Any] = {
        "model": str(args.out),
        "product": args.product,
        "kind": model.kind,
        "inputs": model.inputs,
        "chosen": chosen,
        "classes": list(model.classes),
        "photos_used": result.used,
        "skipped": len(result.skipped),
        "skipped_photos": [s.to_json() for s in result.skipped],
        "groups": info.get("cv_groups"),
        "folds": info.get("cv_folds"),
        "augmented_copies": info.get("augmented_copies", 0),
        "cv_macro_f1": cv,
        "macro_f1": best,
        "control_macro_f1": control,
        "control_best": control_best,
        "leak_warning": leak,
        "temperature": round(model.temperature, 4),
        "check": None,
        "bytes": args.out.stat().st_size,
    }
    if result.check is not None:
        report["check"] = {
            "others": result.others,
            "threshold": round(model.check_threshold, 4),
            "oof_accuracy": round(result.check.oof_accuracy, 4),
            "oof_refused_own": round(result.check.oof_refused_own, 4),
            "oof_accepted_others": round(result.check.oof_accepted_others, 4),
        }
    costs = _costs(rules, model.classes)
    cal = result.calibration
    if isinstance(costs, str):
        report["costs_error"] = costs
    elif cal is not None:
        decided = costs.decide_many(cal.oof_proba)
        figures = cost_figures(cal.labels, decided, model.classes, costs.costly())
        report["out_of_fold"] = {"costs_file": rules.file, **figures}
    return report


def print_calibration(report: dict[str, Any]) -> None:
    """The calibration report (:func:`calibration_report`, as ``--json`` prints it) as text."""

    def scores(d: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.3f}" for k, v in d.items())

    used = ", ".join(f"{c} {n}" for c, n in report["photos_used"].items())
    print(
        f"{report['model']}: {report['kind']} model on the {report['inputs']} for "
        f"{report['product']} "
        f"({report['bytes']} bytes)"
    )
    print(f"  photos used per class: {used}")
    print(
        f"  groups {report['groups']}, folds {report['folds']} (a group's photos are never "
        f"both trained on and scored), {report['augmented_copies']} altered copies"
    )
    print(f"  group-aware macro-F1 per candidate: {scores(report['cv_macro_f1'])}")
    print(f"  chosen: {report['chosen']}, group-aware macro-F1 {report['macro_f1']:.3f}")
    if report["control_best"] is not None:
        print(
            f"  background-only control: {report['control_best']:.3f} "
            f"(per candidate: {scores(report['control_macro_f1'])})"
        )
    if report["leak_warning"]:
        print(
            "  WARNING: the background alone grades nearly as well as the produce "
            f"({report['control_best']:.3f} vs {report['macro_f1']:.3f}): the photos' "
            "backdrops or cameras differ by grade; photograph every grade the same way"
        )
    print(f"  temperature {report['temperature']:.3f} (probabilities calibrated out of fold)")
    check = report["check"]
    if check is None:
        print("  product check: none (no other products' photos; give --others DIR)")
    else:
        others = ", ".join(f"{k} {v}" for k, v in check["others"].items())
        print(
            f"  product check against {others}: out-of-fold accuracy "
            f"{check['oof_accuracy']:.3f} (threshold {check['threshold']:.3f}; own photos "
            f"refused {check['oof_refused_own']:.1%}, others let through "
            f"{check['oof_accepted_others']:.1%})"
        )
    oof = report.get("out_of_fold")
    if oof is not None:
        rate = oof["costly_rate"]
        costly = ", ".join(oof["costly_confusions"]) or "none listed"
        rate_text = (
            f"{rate:.1%} ({oof['costly_count']} of {oof['costly_of']})"
            if rate is not None
            else "n/a"
        )
        print(
            f"  out of fold with the costs in {oof['costs_file']}: costly confusions "
            f"({costly}) {rate_text}, unsure {oof['unsure_share']:.1%} "
            f"({oof['unsure']}), macro-F1 of the graded {oof['graded_macro_f1']:.3f}"
        )
    elif "costs_error" in report:
        print(
            "  WARNING: the product's [costs] do not fit this model's classes (the station "
            f"will not grade with it until they do): {report['costs_error']}"
        )
    print(f"  skipped as unusable: {report['skipped']}")
    for s in report["skipped_photos"]:
        print(f"    {s['path']}: {s['reason']}: {s['message']}")


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
    report.update(_eval_costs(ev, rules, classes))
    if args.json:
        _print_json(report)
        return EXIT_OK
    print(
        f"{args.product} by {report['method']} ({what}): accuracy {report['accuracy']:.3f}, "
        f"macro-F1 {report['macro_f1']:.3f}, {report['ms_per_image']:.1f} ms per photo"
    )
    print(
        f"  photos {report['photos']}, graded {report['graded']}, declined {report['declined']} "
        f"(unsure {report['unsure']}), unreadable {report['unreadable']}"
    )
    if report["costly_rate"] is not None:
        print(
            f"  costly confusions ({', '.join(report['costly_confusions'])}): "
            f"{report['costly_rate']:.1%} ({report['costly_count']} of {report['costly_of']})"
        )
    width = max(len(c) for c in classes) + 2
    print("  confusion (rows: true, columns: predicted)")
    print("  " + " " * width + "".join(c.rjust(width) for c in classes))
    for c, row in zip(classes, report["confusion"], strict=True):
        print("  " + c.ljust(width) + "".join(str(v).rjust(width) for v in row))
    return EXIT_OK


def _eval_costs(ev: Evaluation, rules: Rules, classes: tuple[str, ...]) -> dict[str, Any]:
    """Unsure photos and the costly-confusion rate: of the photos (graded or not) whose
    true class has a costly confusion, the share graded as that costly class."""
    unsure = sum(1 for s in ev.skipped if s.reason == Reason.UNSURE.value)
    costs = _costs(rules, classes)
    costly = [] if isinstance(costs, str) else costs.costly()
    exposed = {i for i, _ in costly}
    of = sum(int(ev.confusion[i].sum()) for i in exposed) + sum(
        1 for s in ev.skipped if s.reason != "not_an_image" and classes.index(s.label) in exposed
    )
    count = sum(int(ev.confusion[i, j]) for i, j in costly)
    return {
        "unsure": unsure,
        "costly_confusions": [f"{classes[i]}->{classes[j]}" for i, j in costly],
        "costly_count": count,
        "costly_of": of,
        "costly_rate": round(count / of, 4) if costly and of else None,
    }


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
    grade.add_argument(
        "--others",
        type=Path,
        nargs="+",
        metavar="DIR2",
        help="(calibrate) other products' calibration folders, for the product check "
        "(default: the folder's siblings named after a known product)",
    )
    grade.add_argument(
        "--inputs",
        choices=tuple(INPUT_CHOICES),
        default="embedding",
        help="(calibrate) which candidates compete: embedding (default: the pretrained "
        "network's embedding of the produce, with the figures), figures (the produce "
        "figures alone: quicker, for a station too slow for the network) or any (both)",
    )
    grade.set_defaults(func=cmd_grade)
    add_dataset_command(grade)  # edge grade dataset export (edge/camera/dataset_cli.py)
