"""A fake network printer for tests: a real TCP server on 127.0.0.1 (port 9100 style).

Every accepted connection's bytes up to EOF form one job in ``jobs`` (connections that
sent nothing but status queries are only counted; connections cut off before EOF go to
``aborted``). ``stop()`` closes the listening socket, so new connects are refused, like a
printer that is switched off; ``restart()`` listens again on the same port. The port is
held by this listener from the first ``reserve()`` or ``start()`` until ``close()`` (or
the context's end): a socket bound to it that never listens (rigs.helpers.PortHold), so
no other process can take it while the printer is off. ``reserve()`` alone is a printer
that is off from the start, on a port known before it is switched on.

Status, as a real ESC/POS printer: real-time status requests (``DLE EOT n``, n = 1..4) at
the start of a connection are answered with one byte each, from the state set with
:meth:`set_state` (paper ok / near end / out, cover open, error) at any time; they are
counted in ``status_queries`` and are not part of the job. ``answer_status=False`` is a
printer that ignores them (python-escpos would call that "paper present").

Misbehaviour: ``stall`` accepts and never reads (hung mid-job); ``cut_after=N`` reads N
bytes of the job, then drops the connection with a reset, as a printer switched off
mid-job does (with a small receive buffer, so the sender cannot have had everything
acknowledged by then).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

from edge.printer.status import Paper, reply_bytes
from rigs.helpers import PortHold, bound_socket

POLL_S = 0.02
DLE_EOT = b"\x10\x04"


class PrinterListener:
    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        stall: bool = False,
        answer_status: bool = True,
        cut_after: int | None = None,
    ) -> None:
        self.host = host
        self.port = port  # 0 = pick a free port at the first reserve()/start(); then kept
        self._hold: PortHold | None = None
        self.stall = stall  # accept, then never read: a printer hung mid-job
        self.answer_status = answer_status
        self.cut_after = cut_after
        self.jobs: list[bytes] = []
        self.aborted: list[bytes] = []
        self.first_job_byte_at: list[float] = []  # time.perf_counter() of each job's 1st byte
        self.last_job_byte_at: list[float] = []  # ... and of its last byte (complete jobs)
        self.status_queries: list[int] = []
        self.connections = 0
        self.ended = 0  # connections served to their end (EOF, reset, cut or stop())
        self.paper = Paper.OK
        self.cover_open = False
        self.error = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------
    def reserve(self) -> PrinterListener:
        """Hold the port (port 0: a free one, read back into ``port``) without
        listening: connects are refused, as by a printer that is switched off, until
        ``start()``."""
        if self._hold is None:
            self._hold = PortHold(self.port, self.host)
            self.port = self._hold.port
        return self

    def start(self) -> PrinterListener:
        if self._server is not None:
            raise RuntimeError("listener already started")
        self.reserve()
        server = bound_socket(self.port, self.host)  # beside the hold: both SO_REUSEADDR
        if self.stall or self.cut_after is not None:  # inherited by accepted sockets
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            server.listen(16)
        except OSError:
            server.close()
            raise
        server.settimeout(POLL_S)
        self._server = server
        self._stop.clear()
        self._spawn(self._accept_loop, server)
        return self

    def stop(self) -> None:
        """Stop accepting (connects are refused afterwards) and end open connections;
        the port stays held for ``restart()`` until ``close()``."""
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

    def close(self) -> None:
        """Stop, and let the port go."""
        self.stop()
        if self._hold is not None:
            self._hold.close()
            self._hold = None

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
        self.close()

    # -- state -------------------------------------------------------------------------
    def set_state(
        self,
        *,
        paper: Paper | None = None,
        cover_open: bool | None = None,
        error: bool | None = None,
    ) -> None:
        """Change what the next status replies say (paper, cover, error)."""
        with self._cond:
            if paper is not None:
                self.paper = paper
            if cover_open is not None:
                self.cover_open = cover_open
            if error is not None:
                self.error = error

    def _reply(self, n: int) -> bytes:
        with self._cond:
            self.status_queries.append(n)
            replies = reply_bytes(cover_open=self.cover_open, paper=self.paper, error=self.error)
            self._cond.notify_all()
        return bytes([replies[n]]) if self.answer_status else b""

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

    def wait_for_queries(self, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` status queries came in."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.status_queries) >= n, timeout):
                raise TimeoutError(f"expected {n} status queries, got {len(self.status_queries)}")

    def wait_for_aborted(self, n: int, timeout: float = 5.0) -> list[bytes]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.aborted) >= n, timeout):
                raise TimeoutError(f"expected {n} aborted job(s), got {len(self.aborted)}")
            return list(self.aborted)

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
        job = bytearray()
        prefix = bytearray()  # bytes before the job: status requests (or part of one)
        in_job = False
        complete = cut = False
        last_at = 0.0
        with conn:
            conn.settimeout(POLL_S)
            while not self._stop.is_set():
                if self.stall:
                    time.sleep(POLL_S)
                    continue
                want = 65536
                if in_job and self.cut_after is not None:
                    want = max(1, self.cut_after - len(job))
                try:
                    chunk = conn.recv(want)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    complete = True
                    break
                if not in_job:
                    prefix += chunk
                    while prefix[:2] == DLE_EOT and len(prefix) >= 3 and 1 <= prefix[2] <= 4:
                        answer = self._reply(prefix[2])
                        del prefix[:3]
                        if answer:
                            conn.sendall(answer)
                    if not prefix or DLE_EOT.startswith(bytes(prefix)):
                        continue  # only queries so far, or the start of one
                    in_job = True
                    chunk, prefix = bytes(prefix), bytearray()
                    with self._cond:
                        self.first_job_byte_at.append(time.perf_counter())
                job += chunk
                last_at = time.perf_counter()
                if self.cut_after is not None and len(job) >= self.cut_after:
                    del job[self.cut_after :]  # what it printed before it went off
                    cut = True  # switched off mid-job: reset, unread bytes are lost
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
        data = bytes(job)
        with self._cond:
            if cut or not complete:
                self.aborted.append(data)
            elif data:
                self.jobs.append(data)
                self.last_job_byte_at.append(last_at)
            self.ended += 1
            self._cond.notify_all()
