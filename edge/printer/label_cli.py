"""``edge label ...``: preview any label kind as a PNG and check a scanned QR payload.

``add_label_commands(sub)`` adds the ``label`` group and returns its subparsers action,
so other modules can add more subcommands (``label print``) to the same group.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.config import ConfigError, StationConfig, load_config
from edge.printer.payload import (
    KeyFileError,
    PayloadError,
    PayloadSigner,
    ensure_site_key,
    load_site_key,
    verify,
)

DEFAULT_KEY_FILE = Path("var/site.key")
WIDTHS = {"58": 384, "80": 576, "100": 800}  # 100: 100 x 150 mm label stock
# edge.printer.kinds.KINDS, imported late
KIND_NAMES = ("lot", "receipt", "shipping", "manifest", "day_summary")
SubParsers = argparse._SubParsersAction  # argparse has no public name for it


class _CannotCheck(Exception):
    """Configuration or key problems: exit 2."""


def _config(path: Path | None) -> StationConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _CannotCheck(f"configuration error:\n{exc}") from None


def site_key_file(cfg: StationConfig) -> Path:
    """``[site] key_file`` once the configuration has it, else var/site.key."""
    configured = getattr(cfg.site, "key_file", None)
    return Path(configured) if isinstance(configured, str | Path) else DEFAULT_KEY_FILE


def _key_source(args: argparse.Namespace) -> tuple[StationConfig, Path]:
    cfg = _config(args.config)
    return cfg, args.key_file or site_key_file(cfg)


def _signer(args: argparse.Namespace, cfg: StationConfig, key_file: Path) -> PayloadSigner:
    """The site's signer; the key file is created (mode 0600) on first use."""
    existed = key_file.exists()
    try:
        key = ensure_site_key(key_file)
    except (KeyFileError, OSError) as exc:
        raise _CannotCheck(f"site key: {exc}") from None
    if not existed:
        print(f"created the site key {key_file} (keep it secret)", file=sys.stderr)
    try:
        return PayloadSigner(args.site or cfg.site.id, key)
    except ValueError as exc:
        raise _CannotCheck(f"--site: {exc}") from None


def cmd_preview(args: argparse.Namespace) -> int:
    from edge.printer.escpos_out import preview_png
    from edge.printer.label import LabelDataError, LayoutError, parse_label_data, render_label

    try:
        cfg, key_file = _key_source(args)
    except _CannotCheck as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        data = parse_label_data(args.kind, args.data.read_bytes())
    except OSError as exc:
        print(f"{args.data}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    except LabelDataError as exc:
        for line in str(exc).splitlines():
            print(f"{args.data}: {line}", file=sys.stderr)
        return 1
    try:
        signer = _signer(args, cfg, key_file)  # only once the data is known to be good
    except _CannotCheck as exc:
        print(exc, file=sys.stderr)
        return 2
    width = WIDTHS[args.width] if args.width else cfg.printer.paper_dots
    try:
        image = render_label(args.kind, data, width, signer=signer, tz=ZoneInfo(cfg.site.timezone))
    except LayoutError as exc:
        print(f"{args.data}: cannot lay out this {args.kind} label: {exc}", file=sys.stderr)
        return 1
    try:
        args.out.write_bytes(preview_png(image))
    except OSError as exc:
        print(f"{args.out}: cannot write: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{args.out}: {args.kind} label, {image.width} x {image.height} dots")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        if args.key_file is not None:
            key_file, site = args.key_file, args.site
        else:
            cfg, key_file = _key_source(args)
            site = args.site or cfg.site.id
        try:
            key = load_site_key(key_file)
        except KeyFileError as exc:
            raise _CannotCheck(f"cannot check: {exc}") from None
    except _CannotCheck as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        verified = verify(args.payload.strip(), key, site=site)
    except PayloadError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"genuine: {verified.describe()}")
    return 0


def _key_options(parser: argparse.ArgumentParser, site_help: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", type=Path, help="station TOML file: its site id and key file")
    group.add_argument(
        "--key-file", type=Path, help=f"the site's key file (default: {DEFAULT_KEY_FILE})"
    )
    parser.add_argument("--site", help=site_help)


def add_label_commands(
    sub: SubParsers[argparse.ArgumentParser],
) -> SubParsers[argparse.ArgumentParser]:
    """Add ``edge label``; return its subparsers action (``label print`` goes there too)."""
    label = sub.add_parser(
        "label",
        help="preview labels, check their QR codes",
        description="Labels of every kind (lot, receipt, shipping, manifest): preview one "
        "as a PNG, or check that a scanned QR payload was issued by this site.",
    )
    lsub = label.add_subparsers(dest="label_command", required=True, metavar="COMMAND")

    preview = lsub.add_parser(
        "preview",
        help="render a label to a PNG (exactly the raster that would print)",
        description="Render a label from a JSON data file (see examples/labels/) to a PNG "
        "that is exactly the raster sent to the printer. QR codes are signed with the "
        "site key, which is created (mode 0600) if it does not exist yet. Exit 1 and "
        "FILE: FIELD: REASON for bad data, 2 for a configuration or key problem.",
    )
    preview.add_argument("--kind", required=True, choices=KIND_NAMES)
    preview.add_argument("--data", required=True, type=Path, help="the label's data (JSON)")
    preview.add_argument("--out", required=True, type=Path, help="PNG file to write")
    preview.add_argument(
        "--width", choices=list(WIDTHS), help="paper width in mm (default: printer.paper_dots)"
    )
    _key_options(preview, "site id in the QR codes (default: the configuration's site.id)")
    preview.set_defaults(func=cmd_preview)

    check = lsub.add_parser(
        "verify",
        help="check a scanned QR payload; exit 0 if genuine",
        description="Check that a QR payload (E1:SITE:KIND:REF:MAC) was issued with this "
        "site's key and not altered. Exit 0 and what it is if genuine; exit 1 and the "
        "reason if altered, forged, malformed or from another site; exit 2 if it cannot "
        "be checked (no key, bad configuration).",
    )
    check.add_argument("payload", help="the text the QR code holds")
    _key_options(
        check,
        "refuse payloads of other sites (default with --config or no option: the "
        "configuration's site.id; with --key-file: any site)",
    )
    check.set_defaults(func=cmd_verify)
    return lsub
