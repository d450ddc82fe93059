"""Importing a livestream's orders at central (issue 13, docs/orders.md).

``orders_import_2500_s``: seconds from the bytes of a 2,500-order TikTok Shop XLSX
export (rigs/orders_export.py: 1 to 3 lines an order, about 4,200 rows, 50 bad rows
of every kind) to every good order published: reading the workbook (streamed,
edge/central/orders/xlsx.py), reading the mapping, grouping and checking the rows,
storing the orders in PostgreSQL (``import_orders``, one transaction, each order
queued for its point) and publishing the queued downlink batches to a local
mosquitto until the broker has taken them all (``edge.central.downlink.send_pending``
with ``timeout_s=0``: PUBACKs, not the points' acknowledgements, which
``orders_downlink_2500_s`` measures over the poor mobile link). What ``edge central
orders import --broker`` does, less the interpreter's start. The median of
:data:`ROUNDS` rounds, each into a fresh schema (every order new), with the slowest
round printed beside it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from edge.central.downlink import send_pending
from edge.central.orders.exports import read_export
from edge.central.orders.mapping import parse_mapping
from edge.central.orders.plan import plan_orders
from edge.central.store import open_store
from rigs.helpers import Broker
from rigs.orders_export import make_export, mapping_csv

ORDERS = 2_500
BAD = 50
ROUNDS = 3
PG_URL = os.environ.get("EDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _round(data: bytes, mapping: bytes, broker: str) -> tuple[float, int, int]:
    """One timed import into a fresh schema: (seconds, orders stored, records published)."""
    import psycopg

    schema = f"bench_orders_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        with open_store(url) as store:
            t0 = time.perf_counter()
            plan = plan_orders(read_export(data), parse_mapping(mapping))
            counts = store.import_orders(plan.orders)
            sent = send_pending(store, broker, timeout_s=0)
            elapsed = time.perf_counter() - t0
        return elapsed, counts["accepted"], int(sent["published"])
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def bench_orders_import() -> None:
    gen = make_export(ORDERS, bad=BAD, fmt="xlsx")
    mapping = mapping_csv()
    times = []
    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp) / "broker") as broker:
        url = f"mqtt://127.0.0.1:{broker.port}"
        for _ in range(ROUNDS):
            elapsed, stored, published = _round(gen.data, mapping, url)
            if stored != len(gen.good) or published != len(gen.good):
                raise SystemExit(
                    f"orders_import: {stored} stored and {published} published, "
                    f"{len(gen.good)} expected"
                )
            times.append(elapsed)
    print(
        f"orders_import_2500_s {statistics.median(times):.2f}  (target <= 5; parse, validate, "
        f"store, publish: a {len(gen.data) // 1024} KiB XLSX of {gen.rows:,} rows, "
        f"{len(gen.good):,} good orders into PostgreSQL and to a local mosquitto until "
        f"PUBACKed; median of {ROUNDS}, slowest {max(times):.2f})"
    )


if __name__ == "__main__":
    bench_orders_import()
