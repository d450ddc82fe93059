"""Printing benchmark: from ``POST /api/lots`` to the label's first and last byte at the printer.

``bench_api_to_printer()`` runs the real station (uvicorn, the scale reader on a real
pseudo-terminal, SQLite, the printer worker) with its printer at a real TCP listener
that answers status queries as an ESC/POS printer does (rigs/printer_listener.py).
Each round puts a new stable weight on the scale, waits until the API shows it, then
times ``POST /api/lots`` until the first byte *of the job* reaches the listener (after
the worker's DLE EOT status queries, which arrive earlier) and until its last byte has
(the whole label received: what staff wait for). Target: p95 <= 100 ms.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.station import bench_station, median_p95_ms, until
from edge.scale.protocols import SimState, get_protocol
from rigs.printer_listener import PrinterListener

ROUNDS = 40


def _rounds(
    client: httpx.Client, write: Callable[[bytes], None], printer: PrinterListener
) -> tuple[list[float], list[float]]:
    """Seconds from the POST to each label's first and to its last byte at the printer."""
    encode = get_protocol("stgs").encode
    producer = client.post("/api/producers", json={"name": "Giàng Thị Mỷ"}).json()["id"]
    product = client.post("/api/products", json={"name": "Sâm Lai Châu"}).json()["id"]
    samples: list[float] = []
    last: list[float] = []
    for i in range(ROUNDS):
        grams = 1000 + 10 * i
        write(encode(SimState(grams)) * 2)

        def stable(g: int = grams) -> bool:
            scale = client.get("/api/state").json()["scale"]
            return bool(scale["status"] == "stable" and scale["weight_g"] == g)

        until(stable, 5, f"{grams} g stable")
        started = time.perf_counter()
        r = client.post("/api/lots", json={"producer_id": producer, "product_id": product})
        if r.status_code != 201:
            raise RuntimeError(f"bench: lot refused: {r.text}")

        def first_byte(n: int = i + 1) -> bool:
            return len(printer.first_job_byte_at) >= n

        until(first_byte, 5, "the label's first byte", pause=0.002)
        samples.append(printer.first_job_byte_at[i] - started)
        printer.wait_for_jobs(i + 1, timeout=5)  # the whole job, before the next round
        last.append(printer.last_job_byte_at[i] - started)
    return samples, last


def bench_api_to_printer() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir, PrinterListener() as printer:
        target = {"uri": f"tcp://127.0.0.1:{printer.port}", "profile": "generic-58mm"}
        with bench_station(Path(tmp_dir), target, readings=1) as (client, write):
            samples, last = _rounds(client, write, printer)
        queries = len(printer.status_queries)
        size = sum(map(len, printer.jobs)) // len(printer.jobs)
    median, p95 = median_p95_ms(samples)
    print(
        f"label_api_to_printer_ms_p95: {p95:.2f}  (first byte; median {median:.2f} ms, "
        f"{ROUNDS} lot labels, 384 dots, {queries} status queries answered first)"
    )
    median, p95 = median_p95_ms(last)
    print(
        f"label_api_to_printer_last_byte_ms_p95: {p95:.2f}  (target <= 100; median "
        f"{median:.2f} ms, {size} bytes a label over TCP)"
    )


if __name__ == "__main__":
    bench_api_to_printer()
