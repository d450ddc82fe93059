"""Benchmarks: `make bench`. Prints one `name value unit` line per figure."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.grading import bench_grade_photo, bench_grading
from bench.ingest import bench_ingest
from bench.labels import bench_labels
from bench.printing import bench_api_to_printer
from bench.scale import bench_stable_to_api
from bench.scale_parse import bench_parse
from bench.scan import bench_scan
from bench.station import median_p95_ms
from bench.sync import bench_sync, bench_sync_drain, bench_sync_month
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


if __name__ == "__main__":
    bench_record_lot()
    bench_labels()
    bench_api_to_printer()
    bench_parse()
    bench_stable_to_api()
    bench_grading()
    bench_grade_photo()
    bench_scan()
    bench_ingest()
    bench_sync()
    bench_sync_month()
    bench_sync_drain()
