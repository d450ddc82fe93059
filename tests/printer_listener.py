"""A fake network printer for tests: a real TCP server on 127.0.0.1 (port 9100 style).

Every accepted connection's bytes up to EOF form one job in ``jobs`` (connections that
sent nothing are only counted; connections cut off before EOF go to ``aborted``).
``stop()`` closes the listening socket, so new connects are refused, like a printer that
is switched off; ``restart()`` listens again on the same port.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

POLL_S = 0.02


class PrinterListener:
    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, stall: bool = False) -> None:
        self.host = host
        self.port = port  # 0 = pick a free port at the first start(); then kept
        self.stall = stall  # accept, then never read: a printer hung mid-job
        self.jobs: list[bytes] = []
        self.aborted: list[bytes] = []
        self.connections = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> PrinterListener:
        if self._server is not None:
            raise RuntimeError("listener already started")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.stall:  # inherited by accepted sockets: the peer's sendall blocks sooner
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            server.bind((self.host, self.port))
            server.listen(16)
        except OSError:
            server.close()
            raise
        server.settimeout(POLL_S)
        self.port = server.getsockname()[1]
        self._server = server
        self._stop.clear()
        self._spawn(self._accept_loop, server)
        return self

    def stop(self) -> None:
        """Stop accepting (connects are refused afterwards) and end open connections."""
        server, self._server = self._server, None
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if server is not None:
            server.close()

    def restart(self) -> PrinterListener:
        self.stop()
        return self.start()

    def __enter__(self) -> PrinterListener:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- results -----------------------------------------------------------------------
    def wait_for_jobs(self, n: int, timeout: float = 5.0) -> list[bytes]:
        """Wait until at least ``n`` jobs arrived; return them all (oldest first)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.jobs) >= n, timeout):
                raise TimeoutError(
                    f"expected {n} print job(s) within {timeout} s, got {len(self.jobs)} "
                    f"({self.connections} connection(s), {len(self.aborted)} aborted)"
                )
            return list(self.jobs)

    # -- threads -----------------------------------------------------------------------
    def _spawn(self, target: Callable[[socket.socket], None], arg: socket.socket) -> None:
        thread = threading.Thread(target=target, args=(arg,), daemon=True, name="printer-sim")
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.connections += 1
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        chunks: list[bytes] = []
        complete = False
        with conn:
            conn.settimeout(POLL_S)
            while not self._stop.is_set():
                if self.stall:
                    time.sleep(POLL_S)
                    continue
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
        data = b"".join(chunks)
        with self._cond:
            if not complete:
                self.aborted.append(data)
            elif data:
                self.jobs.append(data)
            self._cond.notify_all()
