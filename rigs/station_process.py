"""``edge run`` as its own process for the power-cut tests: started on a station
configuration, SIGKILLed, and started again on the same files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from rigs.helpers import process_client, wait_for


def station_toml(tmp: Path, site: str, web_port: int, printer: str) -> Path:
    """A station configuration in ``tmp`` (its database, key, scale link and log there):
    the simulated scale, ``printer`` (a TOML ``[printer]`` body) and the web port."""
    path = tmp / "station.toml"
    path.write_text(
        f"""
[site]
id = "{site}"
name = "Điểm thu gom Sìn Hồ"
key_file = "{tmp / "site.key"}"
[scale]
type = "simulated"
link = "{tmp / "scale"}"
initial_weight_g = 0
interval_s = 0.05
[printer]
{printer.strip()}
[storage]
path = "{tmp / "station.db"}"
[web]
port = {web_port}
""",
        encoding="utf-8",
    )
    return path


def _up(c: httpx.Client) -> bool:
    try:
        return c.get("/").status_code == 200
    except httpx.TransportError:
        return False


class StationProcess:
    """``edge run`` as its own process, killed and started again on the same files
    (``tmp``: its ``station.db`` and ``station.log``); :attr:`kills` counts the kills."""

    def __init__(self, tmp: Path, config: Path, url: str, site: str) -> None:
        self.tmp, self.config, self.url, self.site = tmp, config, url, site
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self, role: str = "staff") -> httpx.Client:
        """Start the process, wait until it serves, and sign a ``role`` client in."""
        with (self.tmp / "station.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        with httpx.Client(base_url=self.url) as probe:
            wait_for(lambda: _up(probe), 30, "the station process")
        return self.client(role)

    def client(self, role: str) -> httpx.Client:
        return process_client(self.url, self.tmp / "station.db", self.site, role=role, timeout=30)

    def kill(self) -> None:
        """SIGKILL: a power cut."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
