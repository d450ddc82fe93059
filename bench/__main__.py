"""Benchmarks: `make bench`. Prints one `name value unit` line per figure."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.station import median_p95_ms
from edge.storage.store import Store


def bench_record_lot(n: int = 300) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db", "bench-site")
        producer = store.add_producer("Giàng Thị Mỷ")["id"]
        product = store.add_product("Sâm Lai Châu")["id"]
        samples = []
        for i in range(n):
            t0 = time.perf_counter()
            store.record_lot(producer, product, 1000 + i, "ST,GS,+001.000kg")
            samples.append(time.perf_counter() - t0)
        store.close()
    median, p95 = median_p95_ms(samples)
    print(f"record_lot_ms_median {median:.2f} ms  (lot + print job + outbox + audit, fsync'd)")
    print(f"record_lot_ms_p95 {p95:.2f} ms")


PARTS = (
    ("bench.__main__", "bench_record_lot"),
    ("bench.labels", "bench_labels"),
    ("bench.printing", "bench_api_to_printer"),
    ("bench.scale_parse", "bench_parse"),
    ("bench.scale", "bench_stable_to_api"),
    ("bench.page_weight", "bench_page_weight"),
    ("bench.grading", "bench_grading"),
    ("bench.grading", "bench_grade_photo"),
    ("bench.scan", "bench_scan"),
    ("bench.ingest", "bench_ingest"),
    ("bench.sync", "bench_sync"),
    ("bench.sync", "bench_sync_month"),
    ("bench.sync", "bench_sync_drain"),
    ("bench.orders_import", "bench_orders_import"),
    ("bench.orders_downlink", "bench_orders_downlink"),
    ("bench.station_rss", "bench_station_rss"),
    ("bench.farmer_search", "bench_farmer_search"),
    ("bench.packing", "bench_pack_to_label"),
    ("bench.handover_page", "bench_handover_feedback"),
    ("bench.handover", "bench_manifest_render"),
    ("bench.console_fleet", "bench_console_fleet"),
    ("bench.console_search", "bench_console_search"),
)
"""Each part in a process of its own, one after the other: what one part leaves behind
(a station's threads, a warm cache, a fragmented heap) cannot slow or speed the next."""


def main() -> int:
    failed = 0
    for module, function in PARTS:
        code = f"from {module} import {function}; {function}()"
        failed += subprocess.run([sys.executable, "-c", code], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
