"""Scale benchmark: how soon the page's API shows a weight once the scale settles.

``bench_stable_to_api()`` runs the real station (uvicorn, the reader thread, SQLite) on
a real pseudo-terminal with a "ST,GS" scale whose stability window wants three stable
frames. Each round writes an unstable frame and two stable ones (the API then says
``settling``), takes the time, writes the third stable frame (the one that completes
the window) and polls ``GET /api/state`` until it reports ``stable`` with that weight.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.station import bench_station, median_p95_ms, until
from edge.scale.protocols import SimState, get_protocol

ROUNDS = 50


def _scale(client: httpx.Client) -> dict[str, Any]:
    scale: dict[str, Any] = client.get("/api/state").json()["scale"]
    return scale


def _run_rounds(client: httpx.Client, write: Callable[[bytes], None]) -> list[float]:
    encode = get_protocol("stgs").encode
    samples = []
    for i in range(ROUNDS):
        grams = 1000 + 10 * i
        write(encode(SimState(grams, stable=False)))
        write(encode(SimState(grams)) * 2)

        def settling(g: int = grams) -> bool:
            scale = _scale(client)
            return bool(scale["status"] == "settling" and scale["weight_g"] == g)

        until(settling, 5, f"{grams} g settling")
        started = time.perf_counter()
        write(encode(SimState(grams)))

        def stable(g: int = grams) -> bool:
            scale = _scale(client)
            return bool(scale["status"] == "stable" and scale["weight_g"] == g)

        until(stable, 5, f"{grams} g stable")
        samples.append(time.perf_counter() - started)
    return samples


def bench_stable_to_api() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        printer = {"type": "file", "dir": str(Path(tmp_dir) / "prints")}
        with bench_station(Path(tmp_dir), printer, readings=3) as (client, write):
            samples = _run_rounds(client, write)
    median, p95 = median_p95_ms(samples)
    print(f"scale_stable_to_api_ms_p95: {p95:.2f}  (median {median:.2f} ms, {ROUNDS} rounds)")
