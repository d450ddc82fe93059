"""Real parts for the tests: a mosquitto broker on a free port, the station's
web server in a thread, and a polling wait instead of fixed sleeps."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from edge.config import StationConfig, parse_config

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(0.02)
        last = check()
    return last


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(found).exists():
        raise RuntimeError("mosquitto is not installed; run `make test`, which installs it")
    return found


class Broker:
    """A mosquitto of our own on a free port; stop/start keeps port and persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "user root\n"  # when run as root: keep root so it can write the test's tmp dir
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)])
        wait_for(self._accepts, 10, f"mosquitto on port {self.port}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def station_config(tmp: Path, **sections: dict[str, Any]) -> StationConfig:
    """A station in ``tmp``: simulated scale, file printer, no broker, unless overridden."""
    data: dict[str, Any] = {
        "site": {
            "id": "test-site",
            "name": "Điểm thu gom Sìn Hồ",
            "key_file": str(tmp / "site.key"),
        },
        "scale": {
            "type": "simulated",
            "link": str(tmp / "scale"),
            "interval_s": 0.05,
            "stale_after_s": 1.0,
        },
        "printer": {"type": "file", "dir": str(tmp / "prints")},
        "storage": {"path": str(tmp / "station.db")},
        "web": {"port": free_port()},
    }
    for name, values in sections.items():
        data[name] = values if name in ("scale", "printer") else {**data.get(name, {}), **values}
    return parse_config(data, "test")


class StationServer:
    """The real app served by uvicorn in a thread, on the config's port."""

    def __init__(self, cfg: StationConfig) -> None:
        from edge.station import Station  # imported late: helpers stay usable without devices
        from edge.web.app import create_app

        self.cfg = cfg
        self.station = Station(cfg)
        app = create_app(cfg, self.station)
        config = uvicorn.Config(app, host="127.0.0.1", port=cfg.web.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.web.port}"

    def __enter__(self) -> StationServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 15, "the web server to start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def settle(client: Any, grams: int, timeout: float = 5.0) -> None:
    """Put ``grams`` on the station's simulated scale and wait until the scale has
    settled on it as a new weighing (an httpx.Client on the station's URL). Putting
    the same weight on again is a new weighing too: the simulator goes unstable
    first, so the stable state from before must not count."""
    before = client.get("/api/state").json()["scale"]["weighing"]
    client.post("/api/simulator", json={"weight_g": grams})

    def reached() -> bool:
        scale = client.get("/api/state").json()["scale"]
        return bool(
            scale["status"] == "stable"
            and scale["weight_g"] == grams
            and scale["weighing"] > before
        )

    wait_for(reached, timeout, f"a new stable weighing of {grams} g")
