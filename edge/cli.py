"""The ``edge`` command. Every subcommand has ``--help``."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from edge.accounts.cli import add_users_commands
from edge.camera.cli import add_scan_command
from edge.camera.grade_cli import add_grade_commands
from edge.central.cli import add_central_commands
from edge.config import ConfigError, StationConfig, load_config
from edge.ops.cli import add_ops_commands
from edge.printer.label_cli import add_label_commands
from edge.printer.printer_cli import add_label_print, add_printer_commands
from edge.scale.cli import add_scale_commands
from edge.sync.certs_cli import add_certs_commands
from edge.sync.downlink_cli import add_downlink_commands
from edge.sync.outbox_cli import add_outbox_commands


def _load(path: Path | None) -> StationConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from edge.web.app import create_app
    from edge.web.events import Server

    cfg = _load(args.config)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # python-escpos calls basicConfig() at import
    )
    where = args.config or "the embedded default configuration"
    logging.getLogger("edge").info("starting station %s from %s", cfg.site.id, where)
    config = uvicorn.Config(
        create_app(cfg), host=cfg.web.host, port=cfg.web.port, log_level="warning"
    )
    Server(config).run()  # uvicorn's, ending the page's event streams when it stops
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK (site {cfg.site.id}, scale {cfg.scale.type}, printer {cfg.printer.type})"
    )
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    print(json.dumps(cfg.model_dump(mode="json"), ensure_ascii=False, indent=2))
    return 0


def cmd_simulator(args: argparse.Namespace) -> int:
    body: dict[str, object] = {}
    if args.weight is not None:
        body["weight_g"] = args.weight
    if args.unstable:
        body["unstable"] = True
    if args.stable:
        body["unstable"] = False
    if args.unplug:
        body["connected"] = False
    if args.replug:
        body["connected"] = True
    base = args.url.rstrip("/")
    pin = os.environ.get("EDGE_PIN") or getpass.getpass(f"PIN of {args.name}: ")
    login = urllib.request.Request(
        f"{base}/api/login",
        data=json.dumps({"name": args.name, "pin": pin}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(login, timeout=10) as resp:
            cookie = resp.headers.get("set-cookie", "").split(";", 1)[0]
        req = urllib.request.Request(
            f"{base}/api/simulator",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Cookie": cookie},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            print(resp.read().decode())
    except urllib.error.HTTPError as exc:
        print(f"station refused: {exc.read().decode()}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"cannot reach the station at {args.url}: {exc}; is `make run` running?",
            file=sys.stderr,
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Collection-point station.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="start the station (web UI, scale, printer, sync)",
        description="Start the station. Without --config it runs the embedded "
        "default: SQLite in var/, simulated scale, printer writing to var/prints/, "
        "no broker (records wait in the outbox), web UI on http://127.0.0.1:8080.",
    )
    run.add_argument("--config", type=Path, help="station TOML file")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_run)

    config = sub.add_parser(
        "config",
        help="check or show a station configuration",
        description="Check or show a station configuration file.",
    )
    csub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = csub.add_parser(
        "check",
        help="validate a TOML file; exit 1 on any error",
        description="Validate a station TOML file. Prints each problem as "
        "FILE: KEY: REASON and exits 1, or prints OK and exits 0.",
    )
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_config_check)
    show = csub.add_parser(
        "show",
        help="print the effective configuration as JSON",
        description="Print the configuration with every default filled in.",
    )
    show.add_argument("file", type=Path, nargs="?", help="TOML file (default: embedded default)")
    show.set_defaults(func=cmd_config_show)

    add_scale_commands(sub)
    add_label_print(add_label_commands(sub))
    add_printer_commands(sub)
    add_scan_command(sub)
    add_grade_commands(sub)
    add_certs_commands(sub)
    add_central_commands(sub)

    sim = sub.add_parser(
        "simulator",
        help="set the running station's simulated scale",
        description="Change the simulated scale of a running station "
        "(the embedded default) through its HTTP API.",
    )
    sim.add_argument("--url", default="http://127.0.0.1:8080")
    sim.add_argument(
        "--name",
        required=True,
        help="who you are (edge users); the PIN is read from EDGE_PIN or asked",
    )
    sim.add_argument("--weight", type=int, help="weight in grams")
    sim.add_argument("--unstable", action="store_true", help="hold the reading unstable")
    sim.add_argument("--stable", action="store_true", help="let the reading settle")
    sim.add_argument("--unplug", action="store_true", help="make the scale's port disappear")
    sim.add_argument("--replug", action="store_true", help="bring the scale's port back")
    sim.set_defaults(func=cmd_simulator)

    add_outbox_commands(sub)
    add_downlink_commands(sub)
    add_users_commands(sub)
    add_ops_commands(sub)  # health, backup, restore: the station as a service
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
