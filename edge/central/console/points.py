"""The points registry: which site is which point, by name and province (table
``points``), for the console's fleet page, filters and alerts.

``edge central points import FILE.csv --db URL`` reads a spreadsheet's CSV export
(header ``site,name,province,district``; UTF-8 with or without the BOM spreadsheets
write; ``district`` may be empty or left out). Every bad row is reported with its
spreadsheet row number (the header is row 1) and the reason; the good rows are stored
all the same, and importing again updates them. ``edge central points list`` prints
the registry.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.central.console.db import ConsoleDb, ConsoleDbError
from edge.central.store import StoreError

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""The station's ``[site] id`` rule (edge.config.SiteConfig)."""
COLUMNS = ("site", "name", "province", "district")
REQUIRED = ("site", "name", "province")
MAX_NAME = 200
MAX_PLACE = 100


class PointsFileError(ValueError):
    """The file cannot be read as a points CSV at all (encoding, header)."""


@dataclass(frozen=True)
class PointRow:
    row: int  # the spreadsheet row number (header = 1)
    site: str
    name: str
    province: str
    district: str | None


@dataclass(frozen=True)
class BadRow:
    row: int
    reason: str


def parse_points_csv(data: bytes) -> tuple[list[PointRow], list[BadRow]]:
    """The good rows and the bad ones (with reasons) of a points CSV. Pure."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PointsFileError(
            f"not UTF-8 (byte {exc.start}): save the sheet as 'CSV UTF-8' and import again"
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise PointsFileError("empty: the first row must be site,name,province,district")
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    unknown = [h for h in names if h and h not in COLUMNS]
    if missing or unknown:
        said = []
        if missing:
            said.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            said.append(f"unknown column(s) {', '.join(unknown)}")
        raise PointsFileError(
            f"row 1 (header): {'; '.join(said)}; expected site,name,province,district"
        )
    index = {name: names.index(name) for name in COLUMNS if name in names}
    good: list[PointRow] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue  # an empty line (spreadsheets often end with some)
        if len(cells) > len(header):
            bad.append(BadRow(number, f"{len(cells)} cells, the header has {len(header)}"))
            continue
        value = {name: (cells[i].strip() if i < len(cells) else "") for name, i in index.items()}
        site, name, province = value["site"], value["name"], value["province"]
        district = value.get("district") or None
        reason = None
        if not site:
            reason = "site is empty"
        elif not SITE_ID.match(site):
            reason = (
                f"site {site!r} is not a station id (lower-case letters, digits and '-', "
                "at most 63, as in the station's [site] id)"
            )
        elif site in seen:
            reason = f"site {site} is already on row {seen[site]}"
        elif not name:
            reason = "name is empty"
        elif len(name) > MAX_NAME:
            reason = f"name is longer than {MAX_NAME} characters"
        elif not province:
            reason = "province is empty"
        elif len(province) > MAX_PLACE or len(district or "") > MAX_PLACE:
            reason = f"province or district is longer than {MAX_PLACE} characters"
        if reason is not None:
            bad.append(BadRow(number, reason))
            continue
        seen[site] = number
        good.append(PointRow(number, site, name, province, district))
    return good, bad


def store_points(db: ConsoleDb, rows: Sequence[PointRow], now: datetime | None = None) -> int:
    """Stores (or updates) ``rows`` in one transaction; returns how many were new."""
    now = now or datetime.now(UTC)
    new = 0
    with db.transaction() as conn:
        for r in rows:
            cur = conn.execute(
                "INSERT INTO points (site, name, province, district, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET "
                "name = excluded.name, province = excluded.province, "
                "district = excluded.district, updated_at = excluded.updated_at "
                "RETURNING (xmax = 0) AS inserted",
                (r.site, r.name, r.province, r.district, now),
            )
            row = cur.fetchone()
            new += bool(row and row["inserted"])
    return new


def list_points(db: ConsoleDb) -> list[dict[str, object]]:
    return db.rows("SELECT site, name, province, district FROM points ORDER BY province, site")


def _open(url: str) -> ConsoleDb:
    from edge.central.console.schema import ensure_schema

    db = ConsoleDb(url).open()
    ensure_schema(db)
    return db


def cmd_points(args: argparse.Namespace) -> int:
    what = f"edge central points {args.points_command}"
    try:
        if args.points_command == "import":
            try:
                good, bad = parse_points_csv(Path(args.file).read_bytes())
            except OSError as exc:
                print(f"{what}: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
                return 2
            except PointsFileError as exc:
                print(f"{what}: {args.file}: {exc}", file=sys.stderr)
                return 2
            db = _open(args.db)
            try:
                new = store_points(db, good)
            finally:
                db.close()
            for b in bad:
                print(f"{args.file}: row {b.row}: {b.reason}", file=sys.stderr)
            print(
                f"{len(good)} points stored ({new} new, {len(good) - new} updated), "
                f"{len(bad)} rows refused"
            )
            return 1 if bad else 0
        db = _open(args.db)
        try:
            for r in list_points(db):
                print(f"{r['site']}\t{r['province']}\t{r['district'] or ''}\t{r['name']}")
        finally:
            db.close()
    except (ConsoleDbError, StoreError) as exc:
        print(f"{what}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_points_commands(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    points = csub.add_parser(
        "points",
        help="the points registry: names and provinces of the sites (console)",
        description="Register the points by name, province and district (docs/console.md "
        '"Fleet"): the console shows and filters the fleet by them.',
    )
    psub = points.add_subparsers(dest="points_command", required=True, metavar="COMMAND")
    imp = psub.add_parser(
        "import",
        help="store or update points from a CSV (site,name,province,district)",
        description="Read a CSV (UTF-8, with or without BOM; header site,name,province,"
        "district) and store every good row (updating points already registered). Bad rows "
        "are reported with their spreadsheet row number and reason; exit 1 when any was "
        "refused, 2 when the file cannot be read at all.",
    )
    imp.add_argument("file", type=Path, help="the CSV file (docs/points-example.csv)")
    imp.add_argument("--db", required=True, help="central's PostgreSQL database")
    listing = psub.add_parser("list", help="every registered point: site, province, name")
    listing.add_argument("--db", required=True, help="central's PostgreSQL database")
    for parser in (imp, listing):
        parser.set_defaults(func=cmd_points)
