"""``edge central orders import``, ``edge central tracking assign`` and ``edge central
catalogue push`` (docs/orders.md): what central owns, put in the store and queued
down to the points (the running ``edge central ingest`` sends it; with ``--broker``
the command publishes it at once).

Exit codes: 0 the file was read and what was good is stored (rejected rows are
reported, not an error); 2 a file, mapping, catalogue, argument or database that
cannot be used (the message says what to do); 1 stored, but publishing with
``--broker`` failed (the running central sends it later).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge.central.core import BrokerUrlError, DbUrlError, parse_broker_url, parse_db_url
from edge.central.orders.exports import MAX_FILE_BYTES, ExportError, clean, read_export, read_table
from edge.central.orders.mapping import SITE, MappingError, Sku, parse_mapping
from edge.central.orders.plan import Plan, parse_dong, plan_orders
from edge.central.store import CentralStore, StoreError, open_store

DB_HELP = (
    "database URL: sqlite:///REL/PATH.db, sqlite:////ABS/PATH.db, or postgresql://USER@HOST:PORT/DB"
)
CATALOGUE_COLUMNS = ("name", "unit_price_dong", "grading", "pack_tolerance_g", "sites")
MAX_BLOCK = 1_000_000
_PREFIX = re.compile(r"^[A-Z0-9]{1,12}$")
_GRADING = re.compile(r"^[a-z0-9_-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Refusal(Exception):
    """Exit 2: the message says what is wrong and what to do."""


def _read(path: str, what: str) -> bytes:
    file = Path(path)
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise Refusal(f"{path}: not a file")
        if size > MAX_FILE_BYTES:
            raise Refusal(
                f"{path}: {size:,} bytes, more than {MAX_FILE_BYTES:,}: "
                f"this is not a {what}, or far too big a one (split it)"
            )
        return file.read_bytes()
    except OSError as exc:
        raise Refusal(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def _store(url: str) -> CentralStore:
    try:
        parse_db_url(url)
        return open_store(url)
    except DbUrlError as exc:
        raise Refusal(f"--db {url}: {exc}") from None
    except StoreError as exc:
        raise Refusal(
            f"the database {url} cannot be opened ({exc}): is it running, and is --db right?"
        ) from None


# -- publishing (--broker) ------------------------------------------------------------


def _add_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        help="publish what is queued at once: mqtt://HOST:PORT, or mqtts://HOST:PORT with "
        "--tls-*; without it the running `edge central ingest` sends it",
    )
    parser.add_argument(
        "--mqtt-prefix",
        default="edge",
        help="the stations' [mqtt] prefix (what `edge central ingest --prefix` is given)",
    )
    parser.add_argument("--tls-ca", help="CA certificate of the broker (PEM)")
    parser.add_argument("--tls-cert", help="central's client certificate (PEM)")
    parser.add_argument("--tls-key", help="its private key (PEM)")
    parser.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="allow a plain mqtt:// broker on another machine (only on a trusted test network)",
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=10.0,
        help="with --broker: how long to wait for the points' acknowledgements after "
        "publishing (0: only until the broker has taken everything)",
    )


def _check_broker(args: argparse.Namespace) -> None:
    """Refusal for broker options that cannot work, before anything is stored."""
    if args.broker is None:
        return
    from edge.central.cli import _tls
    from edge.netaddr import is_loopback_host

    try:
        tls = _tls(args)
        address = parse_broker_url(args.broker)
    except BrokerUrlError as exc:
        raise Refusal(str(exc)) from None
    if address.tls and tls is None:
        raise Refusal(f"{args.broker} is TLS: give --tls-ca, --tls-cert and --tls-key")
    if tls is None and not is_loopback_host(address.host) and not args.insecure_plaintext:
        raise Refusal(
            f"{args.broker} is plain MQTT to another machine: the orders would cross the "
            "network unencrypted; use mqtts:// with --tls-*, or pass --insecure-plaintext "
            "on a trusted test network"
        )
    if not 0 <= args.timeout_s <= 3600:
        raise Refusal("--timeout-s must be within 0..3600 seconds")


def _publish(store: CentralStore, args: argparse.Namespace, command: str) -> Any:
    """Publish the queued downlink with ``edge.central.downlink.send_pending``: what it
    reports, ``{"error": ...}`` (told on stderr) when that failed, or None without
    --broker."""
    if args.broker is None:
        return None
    try:
        return _send(store, args)
    except Exception as exc:
        print(
            f"edge central {command}: stored, but publishing to {args.broker} failed "
            f"({type(exc).__name__}: {exc}); the running `edge central ingest` sends it, "
            "or run the command again with --broker",
            file=sys.stderr,
        )
        return {"error": f"{type(exc).__name__}: {exc}"}


def _send(store: CentralStore, args: argparse.Namespace) -> dict[str, Any]:
    from edge.central.cli import _tls
    from edge.central.downlink import send_pending

    return send_pending(
        store, args.broker, tls=_tls(args), prefix=args.mqtt_prefix, timeout_s=args.timeout_s
    )


# -- orders import --------------------------------------------------------------------


def _summary(path: str, plan: Plan, counts: Mapping[str, int], sent: Any) -> str:
    orders = len(plan.orders) + plan.refused_orders + len(plan.skipped)
    lines = [f"{path}: {orders:,} orders read"]
    sites = Counter(o["site"] for o in plan.orders)
    width = 10
    for key, what in (
        ("accepted", "new, queued for their point"),
        ("updated", "changed since the last import, queued again"),
        ("cancelled", "cancelled, the point is told"),
        ("unchanged", "as imported before, nothing to do"),
    ):
        lines.append(f"  {key:<{width}} {counts.get(key, 0):>7,}  {what}")
    statuses = Counter(s["reason"].split(":")[0].removeprefix("status ") for s in plan.skipped)
    shown = ", ".join(f"{s} {n:,}" for s, n in statuses.most_common())
    lines.append(
        f"  {'skipped':<{width}} {len(plan.skipped):>7,}  not for a point"
        + (f" ({shown})" if shown else "")
    )
    lines.append(f"  {'refused':<{width}} {plan.refused_orders:>7,}  orders with a bad row")
    if sites:
        lines.append("  points: " + ", ".join(f"{s} {n:,}" for s, n in sorted(sites.items())))
    for note in plan.notes:
        lines.append(f"  note: {note}")
    if sent is not None:
        lines.append(f"  published: {json.dumps(sent, ensure_ascii=False)}")
    if plan.rejected:
        lines.append("")
        lines.append(f"{len(plan.rejected):,} bad rows (row numbers as the spreadsheet shows):")
        for r in plan.rejected:
            order = f"order {r['order_id']}" if r["order_id"] else "no order id"
            lines.append(f"  row {r['row']:>6}  {order}: {r['reason']}")
        lines.append("")
        lines.append(
            "Fix those rows (or the mapping) and import the file again: orders already "
            "stored stay as they are, the fixed ones are added."
        )
    return "\n".join(lines)


def cmd_import(args: argparse.Namespace) -> int:
    sent: Any = None
    try:
        _check_broker(args)
        data = _read(args.file, "order export")
        if args.mapping is None:
            skus = _console_mapping(args.db)
        else:
            mapping = _read(args.mapping, "mapping file")
            try:
                skus = parse_mapping(mapping)
            except MappingError as exc:
                raise Refusal(
                    "the mapping cannot be used:\n"
                    + "\n".join("  " + p.text(args.mapping) for p in exc.problems)
                    + "\nFix it (docs/orders.md, 'The mapping file') and run the import again."
                ) from None
        try:
            export = read_export(data)
        except ExportError as exc:
            raise Refusal(f"{args.file}: {exc}") from None
        carrier = " ".join((args.default_carrier or "").split()) or None
        plan = plan_orders(export, skus, carrier)
        with _store(args.db) as store:
            try:
                counts = store.import_orders(plan.orders)
            except (StoreError, ValueError) as exc:
                raise Refusal(f"the database did not take the orders ({exc}): try again") from None
            sent = _publish(store, args, "orders import")
    except Refusal as exc:
        print(f"edge central orders import: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out: dict[str, Any] = {
            "accepted": counts.get("accepted", 0),
            "updated": counts.get("updated", 0),
            "cancelled": counts.get("cancelled", 0),
            "rejected": plan.rejected,
            "unchanged": counts.get("unchanged", 0),
            "refused": plan.refused_orders,
            "skipped": plan.skipped,
        }
        if sent is not None:
            out["published"] = sent
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(_summary(args.file, plan, counts, sent))
    return _failed(sent)


def _console_mapping(url: str) -> dict[str, Sku]:
    """The SKU mapping the console stores (edge central serve, /catalogue), for an
    import without --mapping; Refusal when there is none."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise Refusal(
            "without --mapping the mapping is the console's, on PostgreSQL: give --mapping"
        )
    from edge.central.console.catalogue_store import stored_mapping

    try:
        skus = stored_mapping(url)
    except LookupError:
        skus = {}
    except Exception as exc:
        raise Refusal(f"the database {url} cannot be read ({exc}): is --db right?") from None
    if not skus:
        raise Refusal(
            "no SKU mapping is stored in the console (edge central serve, Catalogue page): "
            "upload one there, or give --mapping MAP.csv"
        )
    return skus


def _failed(sent: Any) -> int:
    """1 when publishing failed (told already), else 0."""
    return 1 if isinstance(sent, dict) and "error" in sent else 0


def _queue(store: CentralStore, site: str, records: list[dict[str, Any]]) -> list[int]:
    try:
        return store.queue_down(site, records)
    except (StoreError, ValueError) as exc:
        raise Refusal(f"the database did not queue them ({exc}): try again") from None


# -- tracking assign ------------------------------------------------------------------


def tracking_block(
    carrier: str, prefix: str, first: int, count: int, digits: int
) -> dict[str, Any]:
    """A ``tracking_block`` record, or Refusal naming the argument that is wrong."""
    carrier = " ".join(carrier.split())
    if not carrier or len(carrier) > 100 or _CONTROL.search(carrier):
        raise Refusal("--carrier must be the carrier's name (1 to 100 characters)")
    if not _PREFIX.match(prefix):
        raise Refusal(f"--prefix {prefix!r} must be 1 to 12 capital letters or digits (JTVN)")
    if not 1 <= digits <= 18:
        raise Refusal("--digits must be within 1..18")
    if first < 0:
        raise Refusal("--first must be 0 or more")
    if not 1 <= count <= MAX_BLOCK:
        raise Refusal(f"--count must be within 1..{MAX_BLOCK:,}")
    last = first + count - 1
    if last >= 10**digits:
        raise Refusal(
            f"the block ends at {last}, which has more than --digits {digits} digits: "
            "give more digits or a smaller --first/--count"
        )
    return {
        "type": "tracking_block",
        "id": str(uuid.uuid4()),
        "carrier": carrier,
        "prefix": prefix,
        "first": first,
        "last": last,
        "digits": digits,
    }


def _queued(store: CentralStore, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(site, record) of every queued downlink record of this type."""
    out: list[tuple[str, dict[str, Any]]] = []
    for progress in store.down_progress():
        site, after = str(progress["site"]), 0
        while True:
            page = store.down_records(site, after, 5000)
            if not page:
                break
            out += [(site, r) for r in page if r.get("type") == kind]
            after = int(page[-1]["seq"])
    return out


def _code(prefix: str, number: int, digits: int) -> str:
    return f"{prefix}{number:0{digits}d}"


def cmd_tracking_assign(args: argparse.Namespace) -> int:
    try:
        _check_broker(args)
        if not SITE.match(args.site):
            raise Refusal(f"--site {args.site!r} is not a site id (lower-case letters, digits, -)")
        block = tracking_block(args.carrier, args.prefix, args.first, args.count, args.digits)
        with _store(args.db) as store:
            for site, old in _queued(store, "tracking_block"):
                if old.get("prefix") != block["prefix"]:
                    continue
                if old["first"] <= block["last"] and block["first"] <= old["last"]:
                    digits = int(old.get("digits", block["digits"]))
                    raise Refusal(
                        f"{_code(old['prefix'], old['first'], digits)}.."
                        f"{_code(old['prefix'], old['last'], digits)} were given to {site} "
                        f"already (block {old.get('id')}): a tracking number is never issued "
                        "twice; choose another --first"
                    )
            seqs = _queue(store, args.site, [block])
            sent = _publish(store, args, "tracking assign")
    except Refusal as exc:
        print(f"edge central tracking assign: {exc}", file=sys.stderr)
        return 2
    first = _code(block["prefix"], block["first"], block["digits"])
    last = _code(block["prefix"], block["last"], block["digits"])
    if args.json:
        print(json.dumps({**block, "site": args.site, "seq": seqs[0], "published": sent}))
        return _failed(sent)
    else:
        print(
            f"tracking block {first}..{last} ({args.count:,} numbers, {block['carrier']}) "
            f"queued for {args.site} (downlink seq {seqs[0]})"
        )
    return _failed(sent)


# -- catalogue push -------------------------------------------------------------------


def parse_catalogue(
    data: bytes, known_sites: Callable[[], list[str]]
) -> dict[str, list[dict[str, Any]]]:
    """site -> product records, from a catalogue CSV (``sites`` is ``*`` for every
    point central knows, or site ids separated by spaces). Refusal listing every
    problem with its row and column."""
    try:
        header, rows = read_table(data, CATALOGUE_COLUMNS)
    except ExportError as exc:
        raise Refusal(str(exc)) from None
    at = {clean(name).casefold(): i for i, name in reversed(list(enumerate(header)))}
    missing = [c for c in CATALOGUE_COLUMNS if c not in at]
    if missing:
        raise Refusal(
            f"row 1: the header lacks {', '.join(missing)} "
            f"(it must name {','.join(CATALOGUE_COLUMNS)})"
        )
    problems: list[str] = []
    out: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, int] = {}
    everywhere: list[str] | None = None
    for number, fields in rows:
        if len(fields) != len(header):
            problems.append(
                f"row {number}: {len(fields)} fields where the header has {len(header)} "
                "(wrong delimiter or broken quoting)"
            )
            continue
        cell = {c: clean(fields[at[c]]) for c in CATALOGUE_COLUMNS}
        before = len(problems)

        def bad(column: str, reason: str, number: int = number) -> None:
            problems.append(f"row {number}, column {column}: {reason}")

        name = " ".join(cell["name"].split())
        if not name or len(name) > 120 or _CONTROL.search(name):
            bad("name", "must be a product name of 1 to 120 characters")
        elif name.casefold() in names:
            bad("name", f"{name} is on row {names[name.casefold()]} already")
        names.setdefault(name.casefold(), number)
        price: int | None = None
        if cell["unit_price_dong"]:
            price, why = parse_dong(cell["unit_price_dong"])
            if why:
                bad("unit_price_dong", why)
        grading = cell["grading"] or None
        if grading is not None and not _GRADING.match(grading):
            bad("grading", f"{grading!r} is not a grading key (lower-case letters, digits, _ -)")
        tolerance: int | None = None
        if cell["pack_tolerance_g"]:
            text = cell["pack_tolerance_g"]
            if text.isascii() and text.isdigit() and int(text) <= 100_000:
                tolerance = int(text)
            else:
                bad("pack_tolerance_g", f"{text!r} is not whole grams within 0..100000")
        sites_text = cell["sites"].split()
        if sites_text == ["*"]:
            if everywhere is None:
                everywhere = known_sites()
            if not everywhere:
                bad("sites", "* means every point central knows, and it knows none yet: name them")
            sites = everywhere
        else:
            sites = sites_text
            if not sites:
                bad("sites", "is empty: * for every point, or site ids separated by spaces")
            for site in sites:
                if not SITE.match(site):
                    bad("sites", f"{site!r} is not a site id (lower-case letters, digits, -)")
        if len(problems) == before:
            record = {
                "type": "product",
                "name": name,
                "unit_price_dong": price,
                "grading": grading,
                "pack_tolerance_g": tolerance,
            }
            for site in sites:
                out.setdefault(site, []).append(record)
    if not rows:
        problems.append("row 2: the catalogue has no product")
    if problems:
        raise Refusal("the catalogue cannot be used:\n" + "\n".join("  " + p for p in problems))
    return out


def _known_sites(store: CentralStore) -> list[str]:
    sites = {str(s["site"]) for s in store.sites()}
    sites |= {str(p["site"]) for p in store.down_progress()}
    return sorted(s for s in sites if SITE.match(s))


def cmd_catalogue_push(args: argparse.Namespace) -> int:
    try:
        _check_broker(args)
        data = _read(args.file, "catalogue")
        with _store(args.db) as store:
            try:
                per_site = parse_catalogue(data, lambda: _known_sites(store))
            except Refusal as exc:
                raise Refusal(f"{args.file}: {exc}") from None
            queued = {site: _queue(store, site, records) for site, records in per_site.items()}
            sent = _publish(store, args, "catalogue push")
    except Refusal as exc:
        print(f"edge central catalogue push: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"queued": {s: len(q) for s, q in queued.items()}, "published": sent}))
    else:
        for site, seqs in sorted(queued.items()):
            print(f"{site}: {len(seqs)} products queued (downlink seq {seqs[0]}..{seqs[-1]})")
    return _failed(sent)


# -- registration ---------------------------------------------------------------------


def add_order_commands(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    orders = csub.add_parser(
        "orders",
        help="import marketplace orders for the points",
        description="Orders from a marketplace export, for the points that pack them "
        "(docs/orders.md).",
    )
    osub = orders.add_subparsers(dest="orders_command", required=True, metavar="COMMAND")
    imp = osub.add_parser(
        "import",
        help="read an export (TikTok Shop CSV/XLSX or the own CSV), store its orders, queue "
        "them for their points",
        description="Read an order export, map each line's seller SKU to product, grade, "
        "packaging and point (--mapping, or the console's), and store the good orders "
        "(an order with a bad row is refused whole, each bad row reported with its "
        "spreadsheet row number). "
        "Re-importing the same file changes nothing; an order Cancelled in a later export "
        "is cancelled at its point. Exit 0 when the file was read (rejections included), "
        "2 when the file, mapping or database cannot be used.",
    )
    imp.add_argument("file", help="the export: .csv or .xlsx (told apart by content)")
    imp.add_argument(
        "--mapping",
        help="CSV seller_sku,product,grade,pack_net_g,pack_tare_g,site (docs/orders.md); "
        "without it, the mapping stored by the console (edge central serve, PostgreSQL)",
    )
    imp.add_argument("--db", required=True, help=DB_HELP)
    imp.add_argument(
        "--default-carrier",
        metavar="NAME",
        help="the carrier of orders whose export names none and that have no tracking "
        'number (e.g. "J&T Express"); without it such an order is refused',
    )
    imp.add_argument(
        "--json",
        action="store_true",
        help='print {"accepted", "updated", "cancelled", "rejected": [{"row", "order_id", '
        '"reason"}], "unchanged", "refused", "skipped"}',
    )
    _add_broker_options(imp)
    imp.set_defaults(func=cmd_import)

    tracking = csub.add_parser(
        "tracking", help="tracking-number blocks for the points", description="Tracking numbers."
    )
    tsub = tracking.add_subparsers(dest="tracking_command", required=True, metavar="COMMAND")
    assign = tsub.add_parser(
        "assign",
        help="give a point a block of a carrier's tracking numbers",
        description="Queue a tracking_block for a point: numbers PREFIX + FIRST.. "
        "(FIRST+COUNT-1), zero-padded to DIGITS. A block overlapping one already given "
        "(same prefix) is refused.",
    )
    assign.add_argument("--db", required=True, help=DB_HELP)
    assign.add_argument("--site", required=True, help="the point's site id")
    assign.add_argument("--carrier", required=True, help='carrier name, e.g. "J&T Express"')
    assign.add_argument("--prefix", required=True, help="the numbers' prefix, e.g. JTVN")
    assign.add_argument("--first", required=True, type=int, help="first number of the block")
    assign.add_argument("--count", required=True, type=int, help="how many numbers")
    assign.add_argument("--digits", type=int, default=8, help="digits after the prefix")
    assign.add_argument("--json", action="store_true", help="print the queued record as JSON")
    _add_broker_options(assign)
    assign.set_defaults(func=cmd_tracking_assign)

    catalogue = csub.add_parser(
        "catalogue", help="the product catalogue for the points", description="Products."
    )
    csub2 = catalogue.add_subparsers(dest="catalogue_command", required=True, metavar="COMMAND")
    push = csub2.add_parser(
        "push",
        help="queue products and prices for the points",
        description="Read a CSV name,unit_price_dong,grading,pack_tolerance_g,sites (sites: "
        "* for every point central knows, or site ids separated by spaces) and queue a "
        "product record per product for each of its points.",
    )
    push.add_argument("file", help="the catalogue CSV")
    push.add_argument("--db", required=True, help=DB_HELP)
    push.add_argument("--json", action="store_true", help="print what was queued as JSON")
    _add_broker_options(push)
    push.set_defaults(func=cmd_catalogue_push)
