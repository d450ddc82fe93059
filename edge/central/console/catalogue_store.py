"""The catalogue's SQL (console catalogue page, ``edge central orders import``).

A product edit is ONE transaction on the console's connection: a ``catalogue_versions``
row (who, what), the ``catalogue_products`` row, a ``console_audit`` row, and a
``product`` downlink record queued to every point (``points`` ∪ ``sites``) by central
store's own queue function (``PgStore._queue``: the site's ``down_progress`` row locked,
seqs without gaps), each recorded in ``catalogue_sent`` (site, version, seq). A version
is applied at a point once the seq that carried it is <= the point's
``down_progress.acked_upto``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from edge.central.console.db import ConsoleDb
from edge.central.downqueue import queued_rows
from edge.central.orders.mapping import SITE, Sku
from edge.central.pg_store import PgStore

LOCK = "edge-console-catalogue"
"""pg_advisory_xact_lock key (hashtext): one catalogue change at a time, so versions and
each point's seqs go up together."""

POINTS_SQL = "SELECT site FROM points UNION SELECT site FROM sites ORDER BY site"


@dataclass(frozen=True)
class Product:
    name: str
    unit_price_dong: int | None
    grading: str | None
    pack_tolerance_g: int | None

    def record(self) -> dict[str, Any]:
        """The downlink ``product`` record (docs/mqtt.md "Downlink record types")."""
        return {
            "type": "product",
            "name": self.name,
            "unit_price_dong": self.unit_price_dong,
            "grading": self.grading,
            "pack_tolerance_g": self.pack_tolerance_g,
        }


@dataclass(frozen=True)
class Edited:
    version: int
    queued: dict[str, int]
    """site -> the downlink seq that carries this version."""


def products(db: ConsoleDb) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT name, unit_price_dong, grading, pack_tolerance_g, version, updated_at, "
        "updated_by FROM catalogue_products ORDER BY name"
    )


def versions(db: ConsoleDb, limit: int = 20) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT version, at, username, change FROM catalogue_versions "
        "ORDER BY version DESC LIMIT %s",
        (limit,),
    )


def latest_version(db: ConsoleDb) -> int:
    return int(db.scalar("SELECT coalesce(max(version), 0) FROM catalogue_versions"))


def edit_product(db: ConsoleDb, username: str, product: Product) -> Edited:
    """Store ``product`` as a new catalogue version and queue it to every point, all in
    one transaction (nothing is stored when anything fails)."""
    now = datetime.now(UTC)
    with db.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK,))
        before = conn.execute(
            "SELECT unit_price_dong, grading, pack_tolerance_g, version "
            "FROM catalogue_products WHERE name = %s",
            (product.name,),
        ).fetchone()
        change = {
            "product": product.name,
            "was": None if before is None else {k: before[k] for k in _FIELDS},
            "now": {k: getattr(product, k) for k in _FIELDS},
        }
        row = conn.execute(
            "INSERT INTO catalogue_versions (at, username, change) VALUES (%s, %s, %s) "
            "RETURNING version",
            (now, username, json.dumps(change, ensure_ascii=False)),
        ).fetchone()
        assert row is not None
        version = int(row["version"])
        conn.execute(
            "INSERT INTO catalogue_products AS c (name, unit_price_dong, grading, "
            "pack_tolerance_g, version, updated_at, updated_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "unit_price_dong = excluded.unit_price_dong, grading = excluded.grading, "
            "pack_tolerance_g = excluded.pack_tolerance_g, version = excluded.version, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (
                product.name,
                product.unit_price_dong,
                product.grading,
                product.pack_tolerance_g,
                version,
                now,
                username,
            ),
        )
        queued = _queue_to_points(conn, product, version, now)
        detail = {**change, "version": version, "points": len(queued)}
        conn.execute(
            "INSERT INTO console_audit (at, username, action, detail) VALUES (%s, %s, %s, %s)",
            (now, username, "catalogue.product", json.dumps(detail, ensure_ascii=False)),
        )
    return Edited(version, queued)


_FIELDS = ("unit_price_dong", "grading", "pack_tolerance_g")


def _queue_to_points(
    conn: psycopg.Connection[dict[str, Any]], product: Product, version: int, now: datetime
) -> dict[str, int]:
    rows = queued_rows([product.record()])
    sites = [str(r["site"]) for r in conn.execute(POINTS_SQL).fetchall()]
    queued: dict[str, int] = {}
    with conn.cursor(row_factory=tuple_row) as cur:
        for site in sites:  # sorted: one global order of down_progress row locks
            if not SITE.match(site):
                continue
            (seq,) = PgStore._queue(cur, site, rows, now)
            queued[site] = seq
        if queued:
            cur.execute(
                "INSERT INTO catalogue_sent (site, version, seq) "
                "SELECT site, %s, seq FROM unnest(%s::text[], %s::bigint[]) AS t(site, seq)",
                (version, list(queued), list(queued.values())),
            )
    return queued


PER_POINT = (
    "WITH p AS (SELECT site FROM points UNION SELECT site FROM sites) "
    "SELECT p.site, pt.name, pt.province, d.acked_upto, d.acked_at, s.sent, a.applied, "
    "coalesce(s.sent, 0) > coalesce(a.applied, 0) AS waiting "
    "FROM p LEFT JOIN points pt ON pt.site = p.site "
    "LEFT JOIN down_progress d ON d.site = p.site "
    "LEFT JOIN LATERAL (SELECT max(version) AS sent FROM catalogue_sent c "
    "  WHERE c.site = p.site) s ON true "
    "LEFT JOIN LATERAL (SELECT max(version) AS applied FROM catalogue_sent c "
    "  WHERE c.site = p.site AND c.seq <= coalesce(d.acked_upto, 0)) a ON true"
)
"""Per point: ``sent`` the latest catalogue version queued to it, ``applied`` the latest
whose seq it acknowledged, ``waiting`` sent > applied (index lookups per point on
catalogue_sent's key (site, version))."""


def point_versions(db: ConsoleDb, limit: int = 500) -> list[dict[str, Any]]:
    """:data:`PER_POINT`, waiting points first, then by site, at most ``limit``."""
    return db.rows(f"{PER_POINT} ORDER BY waiting DESC, p.site LIMIT %s", (limit,))


def version_counts(db: ConsoleDb) -> dict[str, int]:
    """How many points have applied the latest version they were sent, and how many wait."""
    row = db.one(
        "SELECT count(*) FILTER (WHERE sent IS NOT NULL AND NOT waiting) AS current, "
        f"count(*) FILTER (WHERE waiting) AS waiting FROM ({PER_POINT}) v"
    )
    assert row is not None
    return {"current": int(row["current"]), "waiting": int(row["waiting"])}


# -- SKU mapping ---------------------------------------------------------------------------


def mapping(db: ConsoleDb, limit: int = 2000) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT seller_sku, product, grade, pack_net_g, pack_tare_g, site, updated_at, "
        "updated_by FROM sku_mapping ORDER BY seller_sku LIMIT %s",
        (limit,),
    )


def mapping_count(db: ConsoleDb) -> int:
    return int(db.scalar("SELECT count(*) FROM sku_mapping"))


def save_mapping(db: ConsoleDb, username: str, skus: list[Sku], source: str) -> int:
    """Insert or update the mapping rows of ``skus`` (SKUs not among them stay), with a
    console_audit row; how many rows were written."""
    now = datetime.now(UTC)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO sku_mapping AS m (seller_sku, product, grade, pack_net_g, pack_tare_g, "
            "site, updated_at, updated_by) "
            "SELECT sku, product, grade, net, tare, site, %s, %s FROM unnest(%s::text[], "
            "%s::text[], %s::text[], %s::int[], %s::int[], %s::text[]) "
            "AS t(sku, product, grade, net, tare, site) "
            "ON CONFLICT (seller_sku) DO UPDATE SET product = excluded.product, "
            "grade = excluded.grade, pack_net_g = excluded.pack_net_g, "
            "pack_tare_g = excluded.pack_tare_g, site = excluded.site, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (
                now,
                username,
                [s.seller_sku for s in skus],
                [s.product for s in skus],
                [s.grade for s in skus],
                [s.pack_net_g for s in skus],
                [s.pack_tare_g for s in skus],
                [s.site for s in skus],
            ),
        )
        detail: dict[str, Any] = {"source": source, "rows": len(skus)}
        if len(skus) <= 20:
            detail["skus"] = [
                [s.seller_sku, s.product, s.grade, s.pack_net_g, s.pack_tare_g, s.site]
                for s in skus
            ]
        conn.execute(
            "INSERT INTO console_audit (at, username, action, detail) VALUES (%s, %s, %s, %s)",
            (now, username, "catalogue.mapping", json.dumps(detail, ensure_ascii=False)),
        )
    return len(skus)


def stored_mapping(url: str) -> dict[str, Sku]:
    """The SKU mapping the console stores, for ``edge central orders import`` without
    ``--mapping``: empty when the console never stored one (LookupError when its table
    does not exist)."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('sku_mapping')").fetchone()
        if exists is None or exists[0] is None:
            raise LookupError("no console tables in this database")
        rows = conn.execute(
            "SELECT seller_sku, product, grade, pack_net_g, pack_tare_g, site "
            "FROM sku_mapping ORDER BY seller_sku"
        ).fetchall()
    return {
        str(sku): Sku(str(sku), str(product), grade, int(net), int(tare), str(site), n)
        for n, (sku, product, grade, net, tare, site) in enumerate(rows, start=1)
    }
