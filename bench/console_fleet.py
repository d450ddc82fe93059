"""The console's fleet page and a point's page with 5,000 points and 30 days of hourly
telemetry (3.6 million telemetry records): the console runs as `edge central serve` in a
process of its own (client and server share no interpreter lock); a signed-in client
times GET /fleet and GET /points/{site} to the last byte.

The fleet is seeded once into the schema ``console_bench_fleet`` of the test database
(rigs.fleet_seed) and reused while its marker row says it is the same fleet seeded less
than a day ago (older, the points would all look silent and the history would thin out).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import psycopg

from bench.station import median_p95_ms
from edge.central.console.db import ConsoleDb
from edge.central.console.operators import OperatorError, add_operator
from rigs.fleet_seed import first_of, seed_fleet, site_of
from rigs.helpers import free_port, wait_for

PG_URL = os.environ.get("EDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "console_bench_fleet"
POINTS, DAYS, PERIOD_H = 5000, 30, 1
MARKER = f"fleet_bench {POINTS} points x {DAYS} days every {PERIOD_H} h v1"
PASSWORD = "mật-khẩu-đo-10"
TARGET_MS = 300.0


def _url() -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={SCHEMA}')}"


def _fleet(url: str) -> str:
    """Seeds the fleet unless the marker says it is there and fresh; says which."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        row = None
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'console_meta'",
            (SCHEMA,),
        ).fetchone()
        if exists:
            row = conn.execute(
                f"SELECT value FROM {SCHEMA}.console_meta WHERE key = 'fleet_bench'"
            ).fetchone()
        if row is not None:
            marker, _, at = row[0].rpartition(" @ ")
            seeded = datetime.fromisoformat(at)
            if marker == MARKER and datetime.now(UTC) - seeded < timedelta(days=1):
                return f"reused, seeded {seeded:%Y-%m-%d %H:%M} UTC"
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
    seed = seed_fleet(url, POINTS, DAYS, PERIOD_H)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO console_meta (key, value) VALUES ('fleet_bench', %s)",
            (f"{MARKER} @ {datetime.now(UTC).isoformat()}",),
        )
    print(
        f"console_fleet_seed_s {seed.seconds:.1f} s  ({seed.records:,} telemetry records, "
        f"{POINTS:,} points x {DAYS} days every {PERIOD_H} h, generated in PostgreSQL)"
    )
    return "seeded now"


def _time(client: httpx.Client, path: str, n: int) -> tuple[list[float], int]:
    for _ in range(5):  # warm: the pool's connections, the templates, the page cache
        assert client.get(path).status_code == 200
    samples = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        body = r.read()
        samples.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code)
        size = len(body)
    return samples, size


def bench_console_fleet(n: int = 60) -> None:
    url = _url()
    how = _fleet(url)
    db = ConsoleDb(url).open()
    try:
        with suppress(OperatorError):  # made by an earlier run
            add_operator(db, "bench", "Người đo", "viewer", PASSWORD)
    finally:
        db.close()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "edge", "central", "serve", "--db", url, "--port", str(port),
         "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/signin", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "the console to start")
        with httpx.Client(base_url=base, headers={"Origin": base}, timeout=30) as client:
            r = client.post("/signin", data={"username": "bench", "password": PASSWORD})
            assert r.status_code == 303, r.text
            fleet, fleet_size = _time(client, "/fleet", n)
            point = site_of(first_of("backlog", ("never_heard", "offline")))
            points, point_size = _time(client, f"/points/{point}", n)
    finally:
        server.terminate()
        server.wait(15)
    median, p95 = median_p95_ms(fleet)
    print(
        f"console_fleet_page_ms_p95 {p95:.1f} ms  ({POINTS:,} points, {DAYS} days of hourly "
        f"telemetry ({how}), {fleet_size:,} bytes a page of 100, {n} requests, median "
        f"{median:.1f} ms, target <= {TARGET_MS:.0f})"
    )
    median, p95 = median_p95_ms(points)
    print(
        f"console_point_page_ms_p95 {p95:.1f} ms  (one point's page: facts, alerts and three "
        f"charts from its {DAYS * 24 // PERIOD_H} telemetry records, {point_size:,} bytes, "
        f"median {median:.1f} ms)"
    )


if __name__ == "__main__":
    bench_console_fleet()
