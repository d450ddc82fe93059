"""Benchmarks: `make bench`. Prints one `name value unit` line per figure."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.grading import bench_grading
from bench.labels import bench_labels
from bench.printing import bench_api_to_printer
from bench.scale import bench_stable_to_api
from bench.scale_parse import bench_parse
from bench.scan import bench_scan
from bench.station import median_p95_ms
from edge.printer.escpos_out import raster_to_escpos
from edge.printer.label import LotLabel, render_lot_label
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


def bench_label(n: int = 50) -> None:
    label = LotLabel(
        site_name="Điểm thu gom Sìn Hồ",
        producer_name="Giàng Thị Mỷ",
        product_name="Sâm Lai Châu",
        net_g=1250,
        recorded_at=datetime(2026, 11, 23, 10, 38, tzinfo=UTC),
        lot_id="019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11",
        seq=42,
        qr_payload="019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11",
    )
    for dots in (384, 576):
        samples = []
        size = 0
        for _ in range(n):
            t0 = time.perf_counter()
            size = len(raster_to_escpos(render_lot_label(label, dots)))
            samples.append(time.perf_counter() - t0)
        median, _ = median_p95_ms(samples)
        print(f"label_{dots}_ms_median {median:.2f} ms  (render + ESC/POS bytes)")
        print(f"label_{dots}_bytes {size} B")


if __name__ == "__main__":
    bench_record_lot()
    bench_label()
    bench_labels()
    bench_api_to_printer()
    bench_parse()
    bench_stable_to_api()
    bench_grading()
    bench_scan()
