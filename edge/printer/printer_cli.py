"""``edge printer status|selftest URI`` and ``edge label print``: talk to a printer directly.

These commands do not use the station's queue: they open the printer URI
(:mod:`edge.printer.uri`), ask its status (DLE EOT), and print. Exit codes:

* ``printer status``: 0 ready (paper near its end still counts), 1 the printer reports a
  problem (paper out, cover open, error, off-line), 2 unreachable or a bad URI/profile,
  3 status unknown (the printer or its connection does not answer status queries);
* ``printer selftest`` and ``label print``: 0 sent, 1 not sent because the printer
  reports a problem, or bad label data, 2 unreachable, bad URI/profile/configuration,
  4 cut off mid-job (the page may be partly printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.printer.profiles import PrinterProfile, PrinterProfileError, find_profile
from edge.printer.status import StatusReport
from edge.printer.transport import PrinterInterrupted, PrinterUnavailable, Transport, transport_for
from edge.printer.uri import PrinterUriError, parse_printer_uri

SubParsers = argparse._SubParsersAction  # argparse has no public name for it
WIDTHS = {"58": 384, "80": 576, "100": 800}  # 100: 100 x 150 mm label stock
EXIT_READY, EXIT_PROBLEM, EXIT_SETUP, EXIT_UNKNOWN, EXIT_CUT = 0, 1, 2, 3, 4


class _Setup(Exception):
    """A bad URI, profile or configuration: exit 2."""


def _printer(args: argparse.Namespace) -> tuple[Transport, PrinterProfile]:
    try:
        uri = parse_printer_uri(args.printer)
        profile = find_profile(args.profile, args.profiles_dir)
    except (PrinterUriError, PrinterProfileError) as exc:
        raise _Setup(str(exc)) from None
    return transport_for(uri, status_timeout_s=args.status_timeout), profile


def _report_line(report: StatusReport) -> str:
    vi, en = report.message()
    return f"{report.condition.value}: {vi} / {en}"


def cmd_status(args: argparse.Namespace) -> int:
    try:
        transport, _ = _printer(args)
        report = transport.status()
    except _Setup as exc:
        print(exc, file=sys.stderr)
        return EXIT_SETUP
    except PrinterUnavailable as exc:
        print(json.dumps({"printer": args.printer, "reachable": False, "error": str(exc)}))
        print(f"unreachable: {exc}", file=sys.stderr)
        return EXIT_SETUP
    out: dict[str, Any] = {"printer": args.printer, "reachable": True, **report.as_json()}
    print(json.dumps(out, ensure_ascii=False))
    print(_report_line(report), file=sys.stderr)
    if report.blocks_printing:
        return EXIT_PROBLEM
    return EXIT_UNKNOWN if report.condition.value == "unknown" else EXIT_READY


def _send(transport: Transport, job_id: str, data: bytes, png: bytes, ask: bool) -> int:
    """Status first (unless ``ask`` is False), then the job; prints what happened."""
    try:
        with transport.connect() as conn:
            report = conn.status() if ask else None
            if report is not None:
                print(_report_line(report), file=sys.stderr)
                if report.blocks_printing:
                    print("not sent: fix the printer, then run the command again", file=sys.stderr)
                    return EXIT_PROBLEM
            conn.send(job_id, data, png)
    except PrinterInterrupted as exc:
        print(f"cut off: {exc}", file=sys.stderr)
        return EXIT_CUT
    except PrinterUnavailable as exc:
        print(f"not sent: {exc}", file=sys.stderr)
        return EXIT_SETUP
    print(f"sent {len(data)} bytes to {transport.description}")
    return EXIT_READY


def cmd_selftest(args: argparse.Namespace) -> int:
    from edge.printer.textjob import selftest_page

    try:
        transport, profile = _printer(args)
    except _Setup as exc:
        print(exc, file=sys.stderr)
        return EXIT_SETUP
    page = selftest_page(profile, args.printer)
    return _send(transport, "selftest", page, b"", ask=profile.status and not args.no_status)


def cmd_label_print(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from edge.config import ConfigError, load_config
    from edge.printer.escpos_out import preview_png, raster_to_escpos
    from edge.printer.label import render_label
    from edge.printer.label_cli import site_key_file
    from edge.printer.payload import KeyFileError, PayloadSigner, ensure_site_key

    try:
        transport, profile = _printer(args)
        cfg = load_config(args.config)
        key = ensure_site_key(args.key_file or site_key_file(cfg))
        signer = PayloadSigner(args.site or cfg.site.id, key)
    except (_Setup, ConfigError, KeyFileError, OSError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_SETUP
    width = WIDTHS[args.width] if args.width else profile.paper_dots
    try:
        data = args.data.read_bytes()
        image = render_label(args.kind, data, width, signer=signer, tz=ZoneInfo(cfg.site.timezone))
    except OSError as exc:
        print(f"{args.data}: cannot read: {exc.strerror}", file=sys.stderr)
        return EXIT_PROBLEM
    except ValueError as exc:  # LabelDataError, LayoutError: name the field / the problem
        for line in str(exc).splitlines():
            print(f"{args.data}: {line}", file=sys.stderr)
        return EXIT_PROBLEM
    job = raster_to_escpos(image)
    return _send(transport, args.kind, job, preview_png(image), ask=profile.status)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", help="printer profile name or .toml path (default: generic-58mm)"
    )
    parser.add_argument(
        "--profiles-dir",
        type=Path,
        help="folder of printer profiles (default: the package's edge/defaults/printers)",
    )
    parser.add_argument(
        "--status-timeout",
        type=float,
        default=0.5,
        help="seconds to wait for each status reply (default 0.5)",
    )


URI_HELP = (
    "printer URI: tcp://HOST[:PORT], usb://VID:PID, serial:///dev/ttyUSB0?baud=9600, "
    "file:///dev/usb/lp0 (or file:///folder/ for the simulated printer), cups://QUEUE"
)


def add_printer_commands(sub: SubParsers[argparse.ArgumentParser]) -> None:
    """Add the ``printer`` group (status, selftest) to the ``edge`` command."""
    printer = sub.add_parser(
        "printer",
        help="ask a printer its status, print a self-test page",
        description="Talk to an ESC/POS printer directly (not through the station's queue).",
    )
    psub = printer.add_subparsers(dest="printer_command", required=True, metavar="COMMAND")
    status = psub.add_parser(
        "status",
        help="ask the printer's real-time status (DLE EOT); JSON on stdout",
        description="Ask the printer's real-time status (DLE EOT 1, 2, 4) and print it as "
        "JSON. No answer is 'unknown', never 'fine'. Exit 0 ready, 1 the printer reports a "
        "problem (paper out, cover open, error, off-line), 2 unreachable or bad URI, "
        "3 unknown.",
    )
    status.add_argument("printer", metavar="URI", help=URI_HELP)
    _connection_options(status)
    status.set_defaults(func=cmd_status)

    selftest = psub.add_parser(
        "selftest",
        help="print a page with raster and native code-page Vietnamese text",
        description="Print a self-test page: Vietnamese text as a raster (always right), "
        "then the same text in TCVN-3 and CP1258 with the profile's code page numbers, to "
        "see which native encoding the printer gets right (set native_text in its "
        "profile). Exit 0 sent, 1 the printer reports a problem, 2 unreachable, 4 cut off.",
    )
    selftest.add_argument("printer", metavar="URI", help=URI_HELP)
    _connection_options(selftest)
    selftest.add_argument("--no-status", action="store_true", help="do not ask the status first")
    selftest.set_defaults(func=cmd_selftest)


def add_label_print(lsub: SubParsers[argparse.ArgumentParser]) -> None:
    """Add ``print`` to the ``label`` group (the action add_label_commands returns)."""
    from edge.printer.kinds import KINDS

    lprint = lsub.add_parser(
        "print",
        help="print a label from a JSON data file on a printer URI",
        description="Render a label (as `edge label preview` does, QR codes signed with the "
        "site key) and print it on the printer, after asking its status. Exit 0 sent, 1 bad "
        "data or the printer reports a problem, 2 unreachable or bad URI/configuration, "
        "4 cut off mid-job.",
    )
    lprint.add_argument("--kind", required=True, choices=list(KINDS))
    lprint.add_argument("--data", required=True, type=Path, help="the label's data (JSON)")
    lprint.add_argument("--printer", required=True, metavar="URI", help=URI_HELP)
    lprint.add_argument("--width", choices=list(WIDTHS), help="paper mm (default: the profile's)")
    lprint.add_argument("--config", type=Path, help="station TOML (site id, zone, key file)")
    lprint.add_argument("--key-file", type=Path, help="site key file (default: the config's)")
    lprint.add_argument("--site", help="site id in the QR codes (default: the config's)")
    _connection_options(lprint)
    lprint.set_defaults(func=cmd_label_print)
