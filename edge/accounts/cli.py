"""``edge users``: the people who may sign in at this station.

``edge users add NAME --role lead`` is the first set-up (a lead can then add the others);
``list``, ``reset NAME`` (a new PIN, unlocks, ends their sessions), ``disable NAME`` and
``enable NAME``. A PIN is asked twice on a terminal (never echoed, never an argument:
arguments show in ``ps`` and the shell history); from a pipe it is the first line of
standard input. Changes are audited as by ``cli:<login user>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.accounts.people import ROLES, AccountError, People, check_pin
from edge.config import ConfigError, load_config
from edge.storage.db import StorageError
from edge.storage.store import Store

SubParsers = argparse._SubParsersAction  # argparse has no public name for it


@contextmanager
def _people(config: Path | None) -> Iterator[People]:
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        store = Store.open(cfg.storage.path, cfg.site.id, cfg.storage.backup_dir)
    except StorageError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    try:
        yield People(store, cfg.web.session_hours)
    finally:
        store.close()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _read_pin() -> str:
    if not sys.stdin.isatty():
        return check_pin(sys.stdin.readline().strip())
    first = getpass.getpass("PIN (4-8 digits): ")
    check_pin(first)
    if getpass.getpass("PIN again: ") != first:
        raise AccountError("pin_mismatch", "Hai lần nhập mã PIN khác nhau.", "The PINs differ.")
    return first


def _run(args: argparse.Namespace) -> int:
    try:
        with _people(args.config) as people:
            if args.users_command == "add":
                person = people.add(args.name, args.role, _read_pin(), _actor())
                print(f"added {person.name} ({person.role})")
            elif args.users_command == "list":
                rows = people.list()
                if args.json:
                    print(json.dumps(rows, ensure_ascii=False, indent=2))
                for r in [] if args.json else rows:
                    state = "disabled" if r["disabled"] else ""
                    if r["locked_until"]:
                        state = f"locked until {r['locked_until']}"
                    print(f"{r['name']:<30} {r['role']:<11} {state}".rstrip())
            elif args.users_command == "reset":
                people.reset(args.name, _read_pin(), _actor())
                print(f"new PIN set for {args.name}; their sessions have ended")
            else:
                disable = args.users_command == "disable"
                people.set_disabled(args.name, disable, _actor())
                print(f"{args.name} {'disabled' if disable else 'enabled'}")
    except AccountError as exc:
        print(f"refused: {exc.message_en}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def add_users_commands(sub: SubParsers[argparse.ArgumentParser]) -> None:
    users = sub.add_parser(
        "users",
        help="people who sign in at the station: add, list, reset, disable, enable",
        description="Manage who may sign in (the PIN is read from the terminal twice, "
        "or from the first line of standard input).",
    )
    usub = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add = usub.add_parser("add", help="add a person with a role and a PIN")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    lst = usub.add_parser("list", help="everyone, with role and state")
    lst.add_argument("--json", action="store_true")
    for name, text in (
        ("reset", "set a new PIN (unlocks; ends their sessions)"),
        ("disable", "stop a person signing in (ends their sessions; nothing is deleted)"),
        ("enable", "let a disabled person sign in again"),
    ):
        p = usub.add_parser(name, help=text)
        p.add_argument("name")
    for p in usub.choices.values():
        p.add_argument("--config", type=Path, help="station TOML file (default: embedded)")
        p.set_defaults(func=_run)
