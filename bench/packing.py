"""Packing benchmark: from the settled check-weight to the shipping label's last byte at
the printer (issue 13: ``pack_stable_to_label_last_byte_ms_p95``, target <= 300 ms).

``bench_pack_to_label()`` runs the real station (uvicorn, the scale reader on a real
pseudo-terminal, SQLite, the printer worker) with its printer at a real TCP listener
that answers status queries as an ESC/POS printer does (rigs/printer_listener.py), on
80 mm paper. The station holds what a livestream leaves: 2,500 open orders from the
downlink and 300 graded lots to pack them from. Each round is measured as bench/scale.py
measures the scale for lots: an unstable frame and two stable ones are written (the
station says ``settling``), the clock starts, the frame that completes the stability
window is written; then, as the page does, ``GET /api/state`` until it shows the stable
weight, ``POST /api/orders/{id}/pack`` (check-weigh, the parcel's one transaction, the
printer woken), and the wait for the label's last byte at the listener.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.station import bench_server, median_p95_ms, until
from edge.orders.apply import HANDLERS
from edge.scale.protocols import SimState, get_protocol
from edge.storage.grades import Grades
from edge.storage.store import Store
from rigs.order_records import order_record, tracking_block
from rigs.printer_listener import PrinterListener

ROUNDS = 50
ORDERS = 2500
LOTS = 300
TEA = "Chè Shan tuyết"


def _order(n: int) -> dict[str, Any]:
    return order_record(
        n,
        id=f"578{n:015d}",
        address=f"Số {n}, ngõ 25 Láng Hạ",
        buyer_message="Gọi trước khi giao",
        created_at=f"2026-12-06T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
    )


def _seed(store: Store) -> None:
    """Orders, the product and a number block as the downlink applies them; graded lots."""
    with store.write() as db:
        HANDLERS["product"](db, {"type": "product", "name": TEA, "unit_price_dong": 85000,
                                 "pack_tolerance_g": 20})  # fmt: skip
        for n in range(ORDERS):
            HANDLERS["order"](db, _order(n))
        HANDLERS["tracking_block"](db, tracking_block(first=1, last=99999, block_id="bench-block"))
    farmer = store.add_producer("Giàng Thị Mỷ")["id"]
    product = store.rows("SELECT id FROM products WHERE name = ?", (TEA,))[0]["id"]
    grades = Grades(store)
    for i in range(LOTS):
        lot = store.record_lot(farmer, product, 4000 + i, "ST,GS,+004.000kg")
        grades.confirm(lot.id, "A", "bench")


def _rounds(
    client: httpx.Client, write: Callable[[bytes], None], printer: PrinterListener
) -> tuple[list[float], int]:
    """Seconds from the stable frame to each label's last byte at the printer, and the
    labels' mean size in bytes."""
    encode = get_protocol("stgs").encode
    samples: list[float] = []
    done = len(printer.wait_for_jobs(LOTS, timeout=120))  # the lots' own labels first
    for i in range(ROUNDS):
        order_id = _order(i)["id"]
        grams = 1070 + i % 20  # within 1,080 g ± 40 g, a new weighing each round
        write(encode(SimState(grams, stable=False)))
        write(encode(SimState(grams)) * 2)

        def settling(g: int = grams) -> bool:
            scale = client.get("/api/state").json()["scale"]
            return bool(scale["status"] == "settling" and scale["weight_g"] == g)

        until(settling, 5, f"{grams} g settling")
        started = time.perf_counter()
        write(encode(SimState(grams)))

        def stable(g: int = grams) -> bool:
            scale = client.get("/api/state").json()["scale"]
            return bool(scale["status"] == "stable" and scale["weight_g"] == g)

        until(stable, 5, f"{grams} g stable")
        r = client.post(f"/api/orders/{order_id}/pack", json={})
        if r.status_code != 201:
            raise RuntimeError(f"bench: parcel refused: {r.text}")
        printer.wait_for_jobs(done + i + 1, timeout=5)
        samples.append(printer.last_job_byte_at[done + i] - started)
    labels = printer.jobs[done:]
    return samples, sum(map(len, labels)) // len(labels)


def bench_pack_to_label() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir, PrinterListener() as printer:
        target = {"uri": f"tcp://127.0.0.1:{printer.port}", "profile": "generic-80mm"}
        with bench_server(Path(tmp_dir), target, readings=3) as (server, write):
            _seed(server.station.db)
            with server.client("staff") as client:
                samples, size = _rounds(client, write, printer)
    median, p95 = median_p95_ms(samples)
    print(
        f"pack_stable_to_label_last_byte_ms_p95 {p95:.2f}  (target <= 300; median "
        f"{median:.2f} ms, {ROUNDS} parcels of {ORDERS} open orders, 80 mm shipping labels "
        f"of {size} bytes over TCP)"
    )


if __name__ == "__main__":
    bench_pack_to_label()
