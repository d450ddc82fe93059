"""Scale benchmark: how soon the page's API shows a weight once the scale settles.

``bench_stable_to_api()`` runs the real station (uvicorn, the reader thread, SQLite) on
a real pseudo-terminal with a "ST,GS" scale whose stability window wants three stable
frames. Each round writes an unstable frame and two stable ones (the API then says
``settling``), takes the time, writes the third stable frame (the one that completes
the window) and polls ``GET /api/state`` until it reports ``stable`` with that weight.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from edge.config import parse_config
from edge.scale.protocols import SimState, get_protocol
from edge.station import Station
from edge.web.app import create_app

ROUNDS = 50
PROFILE = """\
title = "Bench: three stable frames"
protocol = "stgs"
capacity_g = 150000
division_g = 10

[stability]
readings = 3
tolerance_g = 0
settle_s = 0.0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")


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

        _until(settling, 5, f"{grams} g settling")
        started = time.perf_counter()
        write(encode(SimState(grams)))

        def stable(g: int = grams) -> bool:
            scale = _scale(client)
            return bool(scale["status"] == "stable" and scale["weight_g"] == g)

        _until(stable, 5, f"{grams} g stable")
        samples.append(time.perf_counter() - started)
    return samples


def bench_stable_to_api() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
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
                "printer": {"type": "file", "dir": str(tmp / "prints")},
                "storage": {"path": str(tmp / "bench.db")},
                "web": {"port": _free_port()},
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
                samples = _run_rounds(client, lambda data: _write_all(master, data))
        finally:
            server.should_exit = True
            thread.join(15)
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    median = statistics.median(ordered) * 1000
    print(f"scale_stable_to_api_ms_p95: {p95:.2f}  (median {median:.2f} ms, {ROUNDS} rounds)")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
