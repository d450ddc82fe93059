"""Ten phones uploading large photos at once to a station running as its own process
(``python -m edge run``), with the station process's resident memory watched: for
tests/test_station_rss.py and the bench part ``station_rss`` (bench/station_rss.py).

The station is measured alone, in its own process, not inside pytest: VmHWM (the peak
resident set the kernel recorded) from ``/proc/<pid>/status`` after the uploads, and
VmRSS sampled while they run. The photos are 12-megapixel JPEGs (4000 x 3000) of a tray
of bananas with sensor-like noise, so they are as large as a phone's (about 7 MB each).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from edge.camera.capture import generated_tray
from rigs.helpers import PortHold, process_client, settle, wait_for

PHONE_SIZE = (4000, 3000)  # 12 MP


def phone_jpegs(count: int, size: tuple[int, int] = PHONE_SIZE, quality: int = 95) -> list[bytes]:
    """``count`` different JPEGs of ``size``: one banana tray, scaled up, each with its
    own crop of a noise field (what a phone's sensor adds; it is what makes them big)."""
    w, h = size
    tray = cv2.resize(
        generated_tray(7, (1280, 960), "yellow"), (w, h), interpolation=cv2.INTER_CUBIC
    )
    rng = np.random.default_rng(12)
    noise = rng.normal(0.0, 14.0, (h + count, w + count, 3)).astype(np.int16)
    out = []
    for i in range(count):
        shot = np.clip(tray + noise[i : i + h, i : i + w], 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", shot, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        out.append(buf.tobytes())
    return out


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@dataclass
class StationProcess:
    url: str
    db: Path
    site: str
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client signed in as a lead (sign-in: rigs.helpers.process_client)."""
        return process_client(self.url, self.db, self.site, "lead", **kwargs)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/state", timeout=2).status_code < 500
    except httpx.TransportError:
        return False


@contextmanager
def station_process(
    tmp: Path, camera: dict[str, int | float] | None = None
) -> Iterator[StationProcess]:
    """A station (simulated scale and camera, file printer, no broker) as its own process;
    ``camera``: settings of its ``[camera]`` section besides the photos' folder."""
    camera_lines = "".join(f"{key} = {value}\n" for key, value in (camera or {}).items())
    web = PortHold()  # held here while the station binds it beside (SO_REUSEADDR)
    config = tmp / "station.toml"
    config.write_text(
        f"""
[site]
id = "rss-site"
name = "Điểm thu gom Sìn Hồ"
key_file = "{tmp / "site.key"}"
[scale]
type = "simulated"
link = "{tmp / "scale"}"
interval_s = 0.05
[printer]
type = "file"
dir = "{tmp / "prints"}"
[storage]
path = "{tmp / "station.db"}"
[camera]
photos_dir = "{tmp / "photos"}"
{camera_lines}[web]
port = {web.port}
""",
        encoding="utf-8",
    )
    log = tmp / "station.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{web.port}"
    try:
        wait_for(lambda: proc.poll() is not None or _up(url), 30, "the station process")
        if proc.poll() is not None:
            raise RuntimeError(f"the station process exited: {log.read_text()[-2000:]}")
        yield StationProcess(url, tmp / "station.db", "rss-site", proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        web.close()


@dataclass
class LoadResult:
    idle_mb: float  # VmRSS before the uploads
    peak_mb: float  # VmHWM after them: the highest the station's resident memory went
    sampled_peak_mb: float  # the highest VmRSS seen while sampling
    photo_mb: float  # the mean upload size
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # no HTTP answer at all
    seconds: float = 0.0

    def tally(self) -> str:
        parts = [f"{n} x {status}" for status, n in sorted(self.statuses.items())]
        parts += [f"{n} x {code}" for code, n in sorted(self.codes.items())]
        parts += [f"{len(self.failures)} without an answer"] if self.failures else []
        return ", ".join(parts)


_BATCH = itertools.count(1)


def lots_for_uploads(c: httpx.Client, count: int) -> list[str]:
    """``count`` lots of bananas (graded by the shipped rules), one per weighing, for a
    new farmer and product each call (a station asks before taking a duplicate)."""
    n = next(_BATCH)
    farmer = {"name": f"Lò Thị Xuân {n}", "village": "Bản Lướt"}
    producer = c.post("/api/producers", json=farmer)
    product = c.post("/api/products", json={"name": f"Chuối tây {n}", "grading": "banana"})
    assert producer.status_code == product.status_code == 201, product.text
    ids = {"producer_id": producer.json()["id"], "product_id": product.json()["id"]}
    lots = []
    for i in range(count):
        settle(c, 1500 + 10 * i)
        r = c.post("/api/lots", json=ids)
        assert r.status_code == 201, r.text
        lots.append(r.json()["id"])
    return lots


def upload_at_once(
    station: StationProcess, photos: list[bytes], timeout: float = 180
) -> LoadResult:
    """Each photo uploaded to its own lot by its own connection, all started together,
    the station's memory sampled every 5 ms meanwhile."""
    with station.client(timeout=60) as c:
        lots = lots_for_uploads(c, len(photos))
        cookies = dict(c.cookies)
    pid = station.proc.pid
    idle, _ = memory_mb(pid)
    result = LoadResult(idle, 0.0, idle, sum(map(len, photos)) / len(photos) / 2**20)
    lock = threading.Lock()
    start = threading.Barrier(len(photos) + 1)

    def phone(lot: str, photo: bytes) -> None:
        # One connection per phone, sharing the lead's session (ten sign-ins from one
        # address inside a minute would be slowed by the sign-in limit).
        with httpx.Client(base_url=station.url, cookies=cookies, timeout=timeout) as p:
            start.wait()
            try:
                r = p.post(
                    f"/api/lots/{lot}/photos", content=photo, headers={"Content-Type": "image/jpeg"}
                )
            except httpx.HTTPError as exc:
                with lock:
                    result.failures.append(f"{type(exc).__name__}: {exc}")
                return
        with lock:
            result.statuses[r.status_code] += 1
            if r.status_code != 201:
                result.codes[str(r.json().get("error", {}).get("code"))] += 1

    threads = [threading.Thread(target=phone, args=pair) for pair in zip(lots, photos, strict=True)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    while any(t.is_alive() for t in threads):
        result.sampled_peak_mb = max(result.sampled_peak_mb, memory_mb(pid)[0])
        time.sleep(0.005)
    result.seconds = time.monotonic() - t0
    for t in threads:
        t.join()
    result.peak_mb = memory_mb(pid)[1]
    return result
