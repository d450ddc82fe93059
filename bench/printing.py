"""Printing benchmark: from ``POST /api/lots`` to the label's first byte at the printer.

``bench_api_to_printer()`` runs the real station (uvicorn, the scale reader on a real
pseudo-terminal, SQLite, the printer worker) with its printer at a real TCP listener
that answers status queries as an ESC/POS printer does (tests/printer_listener.py).
Each round puts a new stable weight on the scale, waits until the API shows it, then
times ``POST /api/lots`` until the first byte *of the job* reaches the listener (after
the worker's DLE EOT status queries, which arrive earlier). Target: p95 <= 100 ms.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

from edge.config import parse_config
from edge.scale.protocols import SimState, get_protocol
from edge.station import Station
from edge.web.app import create_app
from tests.helpers import free_port
from tests.printer_listener import PrinterListener

ROUNDS = 40
PROFILE = """\
title = "Bench: one stable frame"
protocol = "stgs"
capacity_g = 150000
division_g = 10

[stability]
readings = 1
tolerance_g = 0
settle_s = 0.0
"""


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        time.sleep(0.002)


def _rounds(client: httpx.Client, fd: int, printer: PrinterListener) -> list[float]:
    encode = get_protocol("stgs").encode
    producer = client.post("/api/producers", json={"name": "Giàng Thị Mỷ"}).json()["id"]
    product = client.post("/api/products", json={"name": "Sâm Lai Châu"}).json()["id"]
    samples = []
    for i in range(ROUNDS):
        grams = 1000 + 10 * i
        os.write(fd, encode(SimState(grams)) * 2)

        def stable(g: int = grams) -> bool:
            scale = client.get("/api/state").json()["scale"]
            return bool(scale["status"] == "stable" and scale["weight_g"] == g)

        _until(stable, 5, f"{grams} g stable")
        started = time.perf_counter()
        r = client.post("/api/lots", json={"producer_id": producer, "product_id": product})
        if r.status_code != 201:
            raise RuntimeError(f"bench: lot refused: {r.text}")

        def first_byte(n: int = i + 1) -> bool:
            return len(printer.first_job_byte_at) >= n

        _until(first_byte, 5, "the label's first byte")
        samples.append(printer.first_job_byte_at[i] - started)
        printer.wait_for_jobs(i + 1, timeout=5)  # the whole job, before the next round
    return samples


def bench_api_to_printer() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir, PrinterListener() as printer:
        tmp = Path(tmp_dir)
        master, slave = os.openpty()
        tty.setraw(slave)
        link = tmp / "scale"
        link.symlink_to(os.ttyname(slave))
        (tmp / "bench.toml").write_text(PROFILE, encoding="utf-8")
        cfg = parse_config(
            {
                "site": {"id": "bench-site"},
                "scale": {"type": "serial", "port": str(link), "profile": str(tmp / "bench.toml")},
                "printer": {"uri": f"tcp://127.0.0.1:{printer.port}", "profile": "generic-58mm"},
                "storage": {"path": str(tmp / "bench.db")},
                "web": {"port": free_port()},
            },
            "bench",
        )
        app = create_app(cfg, Station(cfg))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=cfg.web.port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            _until(lambda: server.started, 15, "the web server")
            with httpx.Client(base_url=f"http://127.0.0.1:{cfg.web.port}") as client:
                samples = _rounds(client, master, printer)
        finally:
            server.should_exit = True
            thread.join(15)
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        queries = len(printer.status_queries)
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    median = statistics.median(ordered) * 1000
    print(
        f"label_api_to_printer_ms_p95: {p95:.2f}  (median {median:.2f} ms, {ROUNDS} lot "
        f"labels, 384 dots, {queries} status queries answered first)"
    )


if __name__ == "__main__":
    bench_api_to_printer()
