"""A small JSON status for operations: ``GET /status`` (stdlib HTTP server, one
thread per request, read-only).

    {"sites": [{"site", "last_seen", "online", "status", "streams":
                {stream: {"confirmed_upto", "records", "highest_seq"}}, "telemetry",
                "epoch_conflict": null or {"stored", "seen", "at"}}],
     "ingest": {"batches", "records", "duplicates", "rejected", "epoch_conflicts"},
     "rejected_by_site": {site: {"total", "by_reason": {reason: count}, "garbage",
                                 "last": {"reason", "detail", "at"}}}}

``ingest`` and ``rejected_by_site`` count what this process did since it started
(``edge.central.guard``: ``garbage`` flags a site that keeps sending what cannot be
stored); ``sites`` comes from the database, so every ingest process sharing it
shows the same fleet.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edge.central.store import StoreError

log = logging.getLogger(__name__)

Snapshot = Callable[[], dict[str, Any]]


class Counters:
    """What this process has done since it started (GET /status ``ingest``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {
            "batches": 0,
            "records": 0,
            "duplicates": 0,
            "rejected": 0,
            "epoch_conflicts": 0,
        }

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._values[name] += delta

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


def _handler(snapshot: Snapshot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/status", "/status/"):
                self._send(404, {"error": f"no such path {self.path!r}; try GET /status"})
                return
            try:
                body = snapshot()
            except StoreError as exc:
                self._send(503, {"error": f"database unavailable: {exc}"})
                return
            self._send(200, body)

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("status %s: " + format, self.client_address[0], *args)

    return Handler


class StatusServer:
    """Serves ``snapshot()`` on http://host:port/status in a daemon thread;
    port 0 picks a free port (see ``.port``)."""

    def __init__(self, snapshot: Snapshot, host: str = "127.0.0.1", port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _handler(snapshot))
        self.httpd.daemon_threads = True
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="central-status", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/status"

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)
