"""A real station for the benchmarks: the app served by uvicorn (rigs.helpers.StationServer)
with its scale port a raw pseudo-terminal the benchmark writes frames into itself, so
the time a frame is written is known exactly."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from edge.config import parse_config
from rigs.helpers import StationServer, free_port

PROFILE = """\
title = "Bench: {readings} stable frame(s)"
protocol = "stgs"
capacity_g = 150000
division_g = 10

[stability]
readings = {readings}
tolerance_g = 0
settle_s = 0.0
"""


@contextlib.contextmanager
def bench_station(
    tmp: Path, printer: dict[str, Any], readings: int
) -> Iterator[tuple[httpx.Client, Callable[[bytes], None]]]:
    """(an HTTP client on the station, a function writing bytes into its scale port)."""
    with bench_server(tmp, printer, readings) as (server, write), server.client() as client:
        yield client, write


@contextlib.contextmanager
def bench_server(
    tmp: Path, printer: dict[str, Any], readings: int
) -> Iterator[tuple[StationServer, Callable[[bytes], None]]]:
    """(the running station, a function writing bytes into its scale port)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    link = tmp / "scale"
    link.symlink_to(os.ttyname(slave))
    (tmp / "bench.toml").write_text(PROFILE.format(readings=readings), encoding="utf-8")
    cfg = parse_config(
        {
            "site": {"id": "bench-site", "key_file": str(tmp / "site.key")},
            "scale": {"type": "serial", "port": str(link), "profile": str(tmp / "bench.toml")},
            "printer": printer,
            "storage": {"path": str(tmp / "bench.db")},
            "web": {"port": free_port()},
        },
        "bench",
    )

    def write(data: bytes) -> None:
        while data:
            data = data[os.write(master, data) :]

    try:
        with StationServer(cfg) as server:
            yield server, write
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def until(check: Callable[[], bool], timeout: float, what: str, pause: float = 0.0) -> None:
    """Poll ``check`` (an HTTP call paces itself; a cheap check wants a ``pause``)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        if pause:
            time.sleep(pause)


def median_p95_ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000
