"""The console's own tables and indexes, beside central's store (PostgreSQL only).

:func:`ensure_schema` opens central's store once (which makes or migrates its tables),
then creates what the console adds, idempotently, under an advisory lock so two consoles
starting at once do not race. Nothing here changes a table the ingest writes, except
indexes on ``records`` that the trace search needs (lots by id, parcels by tracking
number, what refers to a parcel or a lot).
"""

from __future__ import annotations

from edge.central.console.db import ConsoleDb
from edge.central.store import open_store

LOCK_KEY = 0x0C0501E  # pg_advisory_xact_lock key of the console's schema

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS console_meta (key text PRIMARY KEY, value text NOT NULL)",
    # The points central knows by name and place (edge central points import).
    """CREATE TABLE IF NOT EXISTS points (
        site text PRIMARY KEY,
        name text NOT NULL,
        province text NOT NULL,
        district text,
        updated_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS points_province ON points (province, site)",
    # Operator accounts and their sessions (edge central operator add).
    """CREATE TABLE IF NOT EXISTS operators (
        username text PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
        password_hash text NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        failed int NOT NULL DEFAULT 0,
        locked_until timestamptz,
        created_at timestamptz NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS operator_sessions (
        token_hash text PRIMARY KEY,
        username text NOT NULL REFERENCES operators (username),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL)""",
    # What operators changed (catalogue, mapping, operators), newest last.
    """CREATE TABLE IF NOT EXISTS console_audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL,
        username text NOT NULL,
        action text NOT NULL,
        detail jsonb NOT NULL)""",
    # Alerts: one row per (site, rule) firing; ended_at is null while it lasts.
    """CREATE TABLE IF NOT EXISTS alerts (
        id bigserial PRIMARY KEY,
        site text NOT NULL,
        rule text NOT NULL,
        severity text NOT NULL,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        detail text NOT NULL,
        value double precision)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (site, rule) WHERE ended_at IS NULL",
    "CREATE INDEX IF NOT EXISTS alerts_started ON alerts (started_at DESC)",
    # The catalogue central owns: one row per product, and a version per change.
    """CREATE TABLE IF NOT EXISTS catalogue_products (
        name text PRIMARY KEY,
        unit_price_dong bigint,
        grading text,
        pack_tolerance_g integer,
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL,
        updated_by text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS catalogue_versions (
        version bigserial PRIMARY KEY,
        at timestamptz NOT NULL,
        username text NOT NULL,
        change jsonb NOT NULL)""",
    # Which downlink seq carried which catalogue version to which point.
    """CREATE TABLE IF NOT EXISTS catalogue_sent (
        site text NOT NULL,
        version bigint NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (site, version))""",
    """CREATE TABLE IF NOT EXISTS sku_mapping (
        seller_sku text PRIMARY KEY,
        product text NOT NULL,
        grade text,
        pack_net_g integer NOT NULL,
        pack_tare_g integer NOT NULL,
        site text NOT NULL,
        updated_at timestamptz NOT NULL,
        updated_by text NOT NULL)""",
    # The trace search (search.py): records by id, parcels by tracking number, and the
    # records that refer to a parcel or a lot.
    "CREATE INDEX IF NOT EXISTS records_record_id ON records (record_id)",
    "CREATE INDEX IF NOT EXISTS records_parcel_tracking ON records ((body->>'tracking')) "
    "WHERE kind = 'parcel'",
    "CREATE INDEX IF NOT EXISTS records_parcel_ref ON records ((body->>'parcel_id')) "
    "WHERE kind IN ('parcel_void', 'parcel_label', 'parcel_handover', 'parcel_return')",
    "CREATE INDEX IF NOT EXISTS records_lot_ref ON records ((body->>'lot_id')) "
    "WHERE kind IN ('grade', 'lot_void', 'lot_correction')",
    # The trace search and the business view (trace.py): the parcels that packed a lot,
    # an order's parcels, a manifest's handovers, a farmer's or product's edits and
    # merges, a point's lots by day, orders by when they were imported.
    "CREATE INDEX IF NOT EXISTS records_parcel_lots ON records "
    "USING gin (((body::jsonb)->'lots') jsonb_path_ops) WHERE kind = 'parcel'",
    "CREATE INDEX IF NOT EXISTS records_parcel_order ON records ((body->>'order_id')) "
    "WHERE kind = 'parcel'",
    "CREATE INDEX IF NOT EXISTS records_manifest_ref ON records ((body->>'manifest_id')) "
    "WHERE kind IN ('parcel_handover', 'parcel_return')",
    "CREATE INDEX IF NOT EXISTS records_producer_ref ON records ((body->>'producer_id')) "
    "WHERE kind = 'producer_update'",
    "CREATE INDEX IF NOT EXISTS records_product_ref ON records ((body->>'product_id')) "
    "WHERE kind = 'product_update'",
    "CREATE INDEX IF NOT EXISTS records_merge_ref ON records ((body->>'merged_id')) "
    "WHERE kind = 'producer_merge'",
    "CREATE INDEX IF NOT EXISTS records_lot_day ON records (site, (body->>'recorded_at')) "
    "WHERE kind = 'lot'",
    "CREATE INDEX IF NOT EXISTS orders_imported ON orders (site, imported_at)",
    # The exports (exports.py): a point's parcels by packing time and manifests by closing
    # time (lots: records_lot_day), and its farmers' and products' records (names).
    "CREATE INDEX IF NOT EXISTS records_parcel_day ON records (site, (body->>'packed_at')) "
    "WHERE kind = 'parcel'",
    "CREATE INDEX IF NOT EXISTS records_manifest_day ON records (site, (body->>'closed_at')) "
    "WHERE kind = 'manifest'",
    "CREATE INDEX IF NOT EXISTS records_names ON records (site, seq) WHERE kind IN "
    "('producer', 'product', 'producer_update', 'product_update', 'producer_merge')",
]


def ensure_schema(db: ConsoleDb) -> None:
    """Central's store and the console's tables exist on ``db``'s database. Without the
    console's statement time limit: on the first start over a large ``records`` table the
    indexes take minutes to build (the ingest's inserts wait for them meanwhile)."""
    open_store(db.url).close()
    with db.transaction() as conn:
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for statement in SCHEMA:
            conn.execute(statement)
