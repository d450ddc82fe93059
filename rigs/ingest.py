"""``edge central ingest`` as a real subprocess, for tests and benchmarks."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

from rigs.helpers import wait_for

STATUS_URL = re.compile(r"status on (http://[^\s/]+:(\d+)/status)")


class IngestProcess:
    """``edge central ingest`` as a real subprocess, its log collected. Its status
    server binds port 0 and the process logs the port it got, so there is no port to
    pick beforehand and lose to another process."""

    def __init__(self, broker_port: int, db: str, client_id: str, *extra: str) -> None:
        self.args = [
            sys.executable, "-m", "edge", "central", "ingest",
            "--broker", f"mqtt://127.0.0.1:{broker_port}", "--db", db,
            "--client-id", client_id, "--status-port", "0", *extra,
        ]  # fmt: skip
        self.lines: list[str] = []
        self._first_line = 0  # where the running process's lines begin in ``lines``
        self.proc: subprocess.Popen[str] | None = None
        self._reader = threading.Thread()

    def start(self, wait: bool = True) -> IngestProcess:
        self._first_line = len(self.lines)
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._collect, args=(self.proc,), daemon=True)
        self._reader.start()
        if wait:
            wait_for(lambda: self.saw("subscribed to"), 20, f"{self.args[7]} subscribed")
        return self

    def _collect(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                self.lines.append(line)

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def _status_line(self) -> re.Match[str] | None:
        for line in list(self.lines)[self._first_line :]:
            if found := STATUS_URL.search(line):
                return found
        return None

    def _status(self) -> re.Match[str]:
        found = wait_for(self._status_line, 20, f"{self.args[7]} to log its status port")
        assert found is not None
        return found

    @property
    def status_port(self) -> int:
        """The port the running process's status server got (it says so in its log)."""
        return int(self._status().group(2))

    def status(self) -> dict[str, Any]:
        url = self._status().group(1)
        with urllib.request.urlopen(url, timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)
        self.lines.clear()

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(15)
        self._reader.join(10)
        return code
