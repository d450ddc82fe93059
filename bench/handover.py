"""Manifest benchmark (issue 14): ``manifest_300_render_ms``, a courier manifest of 300
parcels from its print data to the ESC/POS bytes (target <= 1000 ms).

The data is what closing a handover queues (edge.handover.service.manifest_data, checked),
each parcel with its own tracking number, weight and COD, so no cache a real pickup would
miss serves a round; the rendering is the printer worker's own (PrinterWorker.render: the
site's signer for the manifest's QR, the layout, the raster as ESC/POS and the preview PNG
the station keeps), on 80 mm paper, in the site's zone.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.station import median_p95_ms
from edge.handover.reconcile import Expected
from edge.handover.service import manifest_data
from edge.ids import new_id
from edge.printer.payload import PayloadSigner
from edge.printer.transport import FileTransport
from edge.printer.worker import PrinterWorker, kinds_renderer
from edge.storage.store import Store

PARCELS = 300
ROUNDS = 10
TARGET_MS = 1000
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SIGNER = PayloadSigner("sin-ho", bytes(range(32)))


def manifest_job(round_no: int) -> dict[str, Any]:
    parcels = [
        Expected(
            parcel_id=new_id(), tracking=f"JTVN{round_no:02d}{i:06d}", order_id=f"5781{i:014d}",
            recipient="Nguyễn Thị Thu Hằng", gross_g=1000 + (i * 37) % 2500,
            cod_dong=0 if i % 7 == 0 else 50_000 + (i * 1_000) % 900_000,
        )
        for i in range(PARCELS)
    ]  # fmt: skip
    data = manifest_data(
        new_id(), "Điểm thu gom Sìn Hồ", "J&T Express", "Lê Văn Hùng", "Lò Thị Lan",
        datetime(2026, 12, 6, 9, 30, tzinfo=UTC), parcels,
    )  # fmt: skip
    return {"id": new_id(), "kind": "manifest", "data": json.dumps(data, ensure_ascii=False)}


def bench_manifest_render() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db", "sin-ho")
        renderer = kinds_renderer(signer=lambda: SIGNER, tz=TZ)
        worker = PrinterWorker(
            store, FileTransport(Path(tmp)), "Sìn Hồ", 576, TZ, renderer=renderer
        )
        worker.render(manifest_job(99))  # warm up: fonts loaded, code paths imported
        samples = []
        size = 0
        for r in range(ROUNDS):
            job = manifest_job(r)
            t0 = time.perf_counter()
            escpos, _png = worker.render(job)
            samples.append(time.perf_counter() - t0)
            size = len(escpos)
        store.close()
    median, p95 = median_p95_ms(samples)
    print(
        f"manifest_300_render_ms {p95:.0f}  (target <= {TARGET_MS}; p95 of {ROUNDS}, median "
        f"{median:.0f}; 300 parcels, data to ESC/POS bytes and preview as the printer "
        f"worker renders a job, 80 mm, {size // 1024} KiB)"
    )


if __name__ == "__main__":
    bench_manifest_render()
