"""Label throughput: 80 mm shipping labels from data to preview PNG and ESC/POS bytes.

Every label has its own tracking code, recipient and amount, so nothing is served from a
cache that a real run of different parcels would miss (the QR and Code 128 caches, the
measured-text cache): each round is the full work of one new label, signing included.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.printer.escpos_out import preview_png, raster_to_escpos
from edge.printer.label import render_label
from edge.printer.payload import PayloadSigner

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "labels" / "shipping.json"
SIGNER = PayloadSigner("sin-ho", bytes(range(32)))
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
STREETS = ("Vũ Ngọc Phan", "Láng Hạ", "Nguyễn Chí Thanh", "Hoàng Quốc Việt", "Trần Duy Hưng")


def shipping_data(i: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["tracking_code"] = f"VTP26{1_000_000 + i * 7919:08d}"
    data["recipient"]["address"] = f"Số {i % 200 + 1}, phố {STREETS[i % 5]}, Hà Nội"
    data["recipient"]["name"] = f"Nguyễn Thị Thu Hằng {i}"
    data["cod_dong"] = 50_000 + i * 1_000
    data["net_g"] = 500 + i
    data["gross_g"] = 800 + i
    return data


def one_label(data: dict[str, Any], split: list[float] | None = None) -> tuple[bytes, bytes]:
    """(preview PNG, ESC/POS job) of one 80 mm shipping label; ``split`` adds the seconds
    spent rendering, making the PNG and making the ESC/POS bytes."""
    t0 = time.perf_counter()
    image = render_label("shipping", data, 576, signer=SIGNER, tz=TZ)
    t1 = time.perf_counter()
    png = preview_png(image)
    t2 = time.perf_counter()
    job = raster_to_escpos(image)
    if split is not None:
        for i, seconds in enumerate((t1 - t0, t2 - t1, time.perf_counter() - t2)):
            split[i] += seconds
    return png, job


def bench_labels(n: int = 200) -> None:
    labels = [shipping_data(i) for i in range(n + 5)]
    for data in labels[n:]:  # warm up: fonts loaded, code paths imported
        one_label(data)
    size = 0
    split = [0.0, 0.0, 0.0]
    t0 = time.perf_counter()
    for data in labels[:n]:
        _, job = one_label(data, split)
        size = len(job)
    elapsed = time.perf_counter() - t0
    print(f"label_render_per_s: {n / elapsed:.0f}  (80 mm shipping, PNG + ESC/POS, target >= 50)")
    print(f"label_bytes_shipping_80mm: {size}")
    render, png, escpos = (seconds / n * 1000 for seconds in split)
    print(f"label_ms_split: render {render:.1f}, png {png:.1f}, escpos {escpos:.1f}")


if __name__ == "__main__":
    bench_labels()
