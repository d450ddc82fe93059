"""``edge central parcel WHO`` (who holds a parcel) and ``edge central manifest ID``
(which parcels a courier took on a manifest), read from central's store
(edge.central.parcels; docs/orders.md "Parcels back at central").

Exit codes: 0 answered; 1 no site central knows has that parcel or manifest; 2 a
database or argument that cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge.central.core import DbUrlError, parse_db_url
from edge.central.parcels import HANDED_OVER, PACKED, RETURNED, holder, manifest
from edge.central.store import CentralStore, StoreError, open_store

DB_HELP = (
    "database URL: sqlite:///REL/PATH.db, sqlite:////ABS/PATH.db, or postgresql://USER@HOST:PORT/DB"
)


def _open(url: str, command: str) -> CentralStore | None:
    try:
        parse_db_url(url)
        return open_store(url)
    except DbUrlError as exc:
        print(f"edge central {command}: --db {url}: {exc}", file=sys.stderr)
    except StoreError as exc:
        print(
            f"edge central {command}: the database {url} cannot be opened ({exc}): "
            "is it running, and is --db right?",
            file=sys.stderr,
        )
    return None


def describe_holder(found: dict[str, Any]) -> str:
    """One line a person reads: which parcel, and where it is."""
    head = (
        f"{found['tracking']} (parcel {found['parcel_id']}, order {found['order_id']}, "
        f"{found['carrier'] or 'no carrier'}, point {found['site']}): "
    )
    state = found["state"]
    if state == HANDED_OVER:
        where = (
            f"handed over to {found['courier']} at {found['at']} on manifest {found['manifest_id']}"
        )
    elif state == RETURNED:
        where = (
            f"returned at {found['at']} by {found['courier']} (reason: {found['reason']}), "
            f"back at the point; it went out on manifest {found['manifest_id']}"
        )
    elif state == PACKED:
        where = f"packed at {found['at']}, at the point, not handed over"
    else:
        where = f"voided at {found['at']} (reason: {found['reason']})"
    return head + where


def describe_manifest(found: dict[str, Any], manifest_id: str) -> str:
    rec = found["record"]
    parcels = found["parcels"]
    lines = []
    if rec is None:
        lines.append(
            f"Manifest {manifest_id} (point {found['site']}): its manifest record has not "
            f"reached central yet; {len(parcels)} parcels handed over on it so far"
        )
    else:
        lines.append(
            f"Manifest {manifest_id} (point {found['site']}): {rec['carrier']}, courier "
            f"{rec['courier']}, closed {rec['closed_at']} by {rec['by']}, confirmed with "
            f"{rec['confirmed_with']}; {rec['count']} parcels, {rec['total_g'] / 1000:.1f} kg, "
            f"COD {rec['cod_dong']:,} đ, {rec['missing']} missing (not handed over)"
        )
    for item in parcels:
        lines.append(f"  {item['tracking']}  {item['state']}  {item['parcel_id']}")
    return "\n".join(lines)


def cmd_parcel(args: argparse.Namespace) -> int:
    store = _open(args.db, "parcel")
    if store is None:
        return 2
    with store:
        found = holder(store, args.site, args.who)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    elif found is None:
        where = f"point {args.site}" if args.site else "any point"
        print(f"no parcel {args.who!r} at {where}", file=sys.stderr)
    else:
        print(describe_holder(found))
    return 0 if found is not None else 1


def cmd_manifest(args: argparse.Namespace) -> int:
    store = _open(args.db, "manifest")
    if store is None:
        return 2
    with store:
        found = manifest(store, args.site, args.id)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    elif found is None:
        print(f"no manifest {args.id!r} at any point central knows", file=sys.stderr)
    else:
        print(describe_manifest(found, args.id))
    return 0 if found is not None else 1


def add_parcel_commands(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parcel = csub.add_parser(
        "parcel",
        help="who holds a parcel: packed, handed over (to which courier), returned, voided",
        description="Find a parcel by tracking number or parcel id in the records the "
        "points sent, and say where it is: packed at its point, handed over (courier, "
        "time, manifest id), returned by the courier (why) or voided. Exit 1 when no "
        "point has it.",
    )
    parcel.add_argument("who", metavar="WHO", help="a tracking number or a parcel id")
    parcel.add_argument("--db", required=True, help=DB_HELP)
    parcel.add_argument("--site", help="only this point (default: every point)")
    parcel.add_argument(
        "--json",
        action="store_true",
        help='print {"state", "parcel_id", "tracking", "order_id", "carrier", "courier", '
        '"manifest_id", "at", "site", "reason"} (null when not found)',
    )
    parcel.set_defaults(func=cmd_parcel)

    man = csub.add_parser(
        "manifest",
        help="a courier manifest and the parcels handed over on it",
        description="Print a handover's manifest (carrier, courier, totals, missing) and "
        "every parcel handed over on it with its state now. Exit 1 when no point has it.",
    )
    man.add_argument("id", metavar="ID", help="the manifest id (a UUID)")
    man.add_argument("--db", required=True, help=DB_HELP)
    man.add_argument("--site", help="only this point (default: every point)")
    man.add_argument(
        "--json",
        action="store_true",
        help='print {"site", "record" (the manifest record), "parcels": [{"parcel_id", '
        '"tracking", "state"}]} (null when not found)',
    )
    man.set_defaults(func=cmd_manifest)
