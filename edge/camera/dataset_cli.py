"""``edge grade dataset export``: the station's confirmed photos as calibration folders.

    edge grade dataset export OUT [--product P ...] [--since YYYY-MM-DD]
                                  [--until YYYY-MM-DD] [--config station.toml] [--json]

Reads the station database (read-only; the station may be running) and photo folder
named by the station config, writes ``OUT`` (edge.camera.dataset) and prints what it
did: photos per product and grade, and those skipped with the reason.

Exit status: 0 done (photos skipped for a reason are reported, not an error), 2 the
export could not be made (bad configuration, no database, ``OUT`` missing or not
writable, disk full) with a message saying what to do.

It sits under ``edge grade`` (whose parser takes IMAGE|calibrate|eval and its options)
by :func:`add_dataset_command`: ``edge grade``'s parser hands everything after
``dataset`` to this module's own parser, so neither parser knows the other's options.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.camera.dataset import ExportError, Filters, export
from edge.config import ConfigError, load_config

EXIT_OK, EXIT_FAILED = 0, 2
USAGE_LINE = (
    "edge grade dataset export OUT [--product P ...] [--since DAY] [--until DAY] "
    "[--config F] [--json]"
)
DESCRIPTION = """\
Gather the station's own calibration photos: every photo of a lot whose grade a person
confirmed (or a lead overrode), labelled with that confirmed grade, as
OUT/<product>/<grade>/<photo>.jpg, OUT/<product>/groups.csv (file,group: the photo's
site and local day) and OUT/manifest.csv (where each photo came from, confirmed_by as a
role, sha256). Then: edge grade calibrate OUT/<product> --product <product> --out M.json

Voided lots are left out; a corrected product counts as corrected. Running it again
into the same OUT adds only new photos (moving any whose grade was confirmed anew).

exit status: 0 done (skipped photos are reported with the reason), 2 not done (bad
configuration, no database, OUT missing or not writable, disk full)"""


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _fail(message: str) -> int:
    print(f"edge grade dataset: {message}", file=sys.stderr)
    return EXIT_FAILED


def cmd_dataset_export(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since > args.until:
        return _fail(f"--since {args.since} is after --until {args.until}: swap them")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return _fail(f"configuration error:\n{exc}")
    filters = Filters(frozenset(args.product or ()), args.since, args.until)
    try:
        summary = export(
            cfg.storage.path,
            cfg.camera.photos_dir,
            args.out,
            ZoneInfo(cfg.site.timezone),
            filters,
        )
    except ExportError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(summary.text()))
    return EXIT_OK


def dataset_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge grade dataset",
        description="The station's own photos as calibration folders.",
    )
    sub = parser.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    ex = sub.add_parser(
        "export",
        help="photos of confirmed lots, per product and grade",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    ex.add_argument("out", type=Path, metavar="OUT", help="folder to export into")
    ex.add_argument(
        "--product",
        action="append",
        metavar="P",
        help="only this product (grading key or name); repeat for more (default: all)",
    )
    ex.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="photos from this day")
    ex.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="photos up to this day")
    ex.add_argument("--config", type=Path, help="station TOML file (default: embedded)")
    ex.add_argument("--json", action="store_true", help="print JSON")
    ex.set_defaults(func=cmd_dataset_export)
    return parser


def add_dataset_command(grade: argparse.ArgumentParser) -> None:
    """Make ``edge grade dataset ...`` parse with :func:`dataset_parser`. argparse gives
    a subcommand's parser every word after its name (``parse_known_args``); this
    parser's own is wrapped so that words starting with ``dataset`` go to ours, and
    ``edge grade``'s help names the command."""
    ours = dataset_parser()
    theirs = grade.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if args and args[0] == "dataset":
            return ours.parse_known_args(list(args[1:]), namespace)
        return theirs(args, namespace)

    grade.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]
    grade.epilog = "\n".join(filter(None, [grade.epilog, f"also: {USAGE_LINE}"]))
