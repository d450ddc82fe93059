"""``edge central serve`` (the console) and ``edge central operator add|list|disable``."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

from edge.central.console.db import ConsoleDb, ConsoleDbError
from edge.central.console.operators import ROLES, OperatorError, add_operator, list_operators
from edge.central.console.operators import set_disabled as disable_operator
from edge.central.console.schema import ensure_schema
from edge.central.console.settings import ConsoleSettings
from edge.central.store import StoreError

PG_HELP = "central's PostgreSQL database: postgresql://USER@HOST:PORT/DB"


def _open(url: str) -> ConsoleDb:
    db = ConsoleDb(url).open()
    ensure_schema(db)
    return db


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # only the console needs it

    from edge.central.console.app import create_app

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = ConsoleSettings(
            db_url=args.db,
            allowed_hosts=args.allow_host,
            secure_cookie=args.secure_cookie,
            alerts_file=args.alerts,
            site_keys_dir=args.site_keys,
            metrics_token_file=args.metrics_token_file,
            broker_url=args.broker,
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
        _open(args.db).close()  # a wrong URL or an unreachable database: said before serving
        app = create_app(settings)
    except (ConsoleDbError, StoreError, ValueError) as exc:
        print(f"edge central serve: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise OperatorError("the two passwords differ")
    return first


def cmd_operator(args: argparse.Namespace) -> int:
    try:
        db = _open(args.db)
        try:
            if args.operator_command == "add":
                op = add_operator(db, args.username, args.name, args.role, _password(args))
                print(f"operator {op.username} ({op.role}) added")
            elif args.operator_command == "disable":
                disable_operator(db, args.username, True)
                print(f"operator {args.username} disabled; their sessions ended")
            else:
                for row in list_operators(db):
                    state = "disabled" if row["disabled"] else "active"
                    print(f"{row['username']}\t{row['role']}\t{state}\t{row['name']}")
        finally:
            db.close()
    except OperatorError as exc:
        print(f"edge central operator {args.operator_command}: {exc}", file=sys.stderr)
        return 2
    except (ConsoleDbError, StoreError) as exc:
        print(f"edge central operator {args.operator_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_console_commands(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = csub.add_parser(
        "serve",
        help="the operations console (web): fleet, alerts, search, catalogue, exports",
        description="Serve the operations console over central's PostgreSQL store "
        "(docs/console.md). Operators sign in with accounts made by `edge central "
        "operator add`.",
    )
    serve.add_argument("--db", required=True, help=PG_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8100, help="port to listen on")
    serve.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="a host name the console answers to besides IP addresses and localhost",
    )  # fmt: skip
    serve.add_argument(
        "--secure-cookie", action="store_true", help="session cookie over https only"
    )
    serve.add_argument("--alerts", type=Path, help="alert rules (TOML; docs/console.md)")
    serve.add_argument(
        "--site-keys", type=Path, help="folder of <site>.key: check signed QR payloads"
    )
    serve.add_argument(
        "--metrics-token-file", type=Path, help="bearer token that GET /metrics requires"
    )
    serve.add_argument("--broker", help="publish catalogue changes at once (else ingest does)")
    serve.add_argument("--tls-ca", type=Path, help="CA certificate of the broker (PEM)")
    serve.add_argument("--tls-cert", type=Path, help="the console's client certificate")
    serve.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(func=cmd_serve)

    operator = csub.add_parser(
        "operator",
        help="console operator accounts",
        description="Add, list or disable the accounts that sign in to the console.",
    )
    osub = operator.add_subparsers(dest="operator_command", required=True, metavar="COMMAND")
    add = osub.add_parser("add", help="a new operator (asks for the password twice)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="the name shown and kept with each change")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password")
    add.add_argument("--db", required=True, help=PG_HELP)
    listing = osub.add_parser("list", help="every operator with role and state")
    listing.add_argument("--db", required=True, help=PG_HELP)
    disable = osub.add_parser("disable", help="an operator may no longer sign in")
    disable.add_argument("username")
    disable.add_argument("--db", required=True, help=PG_HELP)
    for parser in (add, listing, disable):
        parser.set_defaults(func=cmd_operator)
