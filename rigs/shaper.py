"""A TCP proxy that makes a link slow the way a poor mobile link is: latency, a
bit rate and lost segments, each direction on its own (a user-space netem).

    client ──> Shaper(listen_host, port) ──> server (target_host, target_port)

Each direction models one line shared by all connections:

- the bytes are cut into segments of at most ``segment`` bytes (1,448: a
  1,500-byte IP packet less 52 bytes of IPv4 + TCP headers with timestamps);
- a segment occupies the line for ``(len + header) * 8 / rate_bps`` seconds
  (the headers use the line too) after the previous one has left it, so a
  burst queues behind the line's rate (``rate_bps=None``: no limit);
- it arrives ``latency_ms`` after it has left the line;
- with probability ``loss`` it is "lost": a proxy inside a TCP stream cannot
  lose bytes, so a lost segment arrives ``rto_s`` later instead (the sender's
  retransmission time-out), and every later segment of that direction and
  connection waits behind it (head-of-line blocking, as TCP delivers in order).

A reader thread per direction and connection time-stamps what it reads (so
the client's own TCP stack sees a fast peer; the time the bytes take is the
proxy's model), a writer thread writes each segment when it is due. Nothing is
lost, duplicated or reordered. ``stats()`` counts payload bytes, segments and
lost segments each way; ``close()`` stops everything and joins the threads.
Parameters can be changed between connections with :meth:`shape`.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

Direction = Literal["up", "down"]
SEGMENT = 1448
HEADER = 52
_CHUNK = 65536


@dataclass(frozen=True)
class Shape:
    latency_ms: float = 0.0
    rate_bps: float | None = None
    loss: float = 0.0
    rto_s: float = 1.0
    segment: int = SEGMENT
    header: int = HEADER

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or not 0 <= self.loss < 1 or self.rto_s < 0:
            raise ValueError(f"bad shape {self}")
        if (self.rate_bps is not None and self.rate_bps <= 0) or self.segment < 1:
            raise ValueError(f"bad shape {self}")


@dataclass(frozen=True)
class ShaperStats:
    bytes_up: int
    bytes_down: int
    segments_up: int
    segments_down: int
    lost_up: int
    lost_down: int
    accepted: int
    active: int


@dataclass
class _Line:
    """One direction of the link: when it is free again, what went through it."""

    free_at: float = 0.0
    bytes: int = 0
    segments: int = 0
    lost: int = 0


@dataclass
class _Pipe:
    direction: Direction
    src: socket.socket
    dst: socket.socket
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    last_due: float = 0.0
    done: bool = False


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Connection:
    client: socket.socket
    server: socket.socket
    pipes: tuple[_Pipe, _Pipe]
    closed: bool = False


class Shaper:
    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        *,
        listen_host: str = "127.0.0.1",
        shape: Shape | None = None,
        seed: int = 1,
    ) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((listen_host, 0))
        self._listener.settimeout(0.1)
        self.host = listen_host
        self.port: int = self._listener.getsockname()[1]
        self._shape = shape or Shape()
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._lines: dict[Direction, _Line] = {"up": _Line(), "down": _Line()}
        self._conns: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._accepted = 0
        self._closing = False
        self._acceptor = threading.Thread(target=self._accept_loop, name="shaper-accept")

    # --- life cycle -------------------------------------------------------
    def start(self) -> Shaper:
        self._acceptor.start()
        return self

    def __enter__(self) -> Shaper:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._acceptor.is_alive():
            self._acceptor.join(5)
        self._listener.close()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            self._close(conn)
        with self._cond:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    # --- control and observation ------------------------------------------
    def shape(self, shape: Shape) -> None:
        """Shape bytes read from now on like this."""
        with self._cond:
            self._shape = shape

    def stats(self) -> ShaperStats:
        with self._cond:
            up, down = self._lines["up"], self._lines["down"]
            return ShaperStats(
                up.bytes,
                down.bytes,
                up.segments,
                down.segments,
                up.lost,
                down.lost,
                self._accepted,
                len(self._conns),
            )

    # --- the model ----------------------------------------------------------
    def _schedule(self, pipe: _Pipe, data: bytes, now: float) -> None:
        """Queue ``data`` (read at ``now``) segment by segment with its due times."""
        shape, line = self._shape, self._lines[pipe.direction]
        if not data:  # end of stream: after everything before it
            pipe.queue.append((max(now + shape.latency_ms / 1000, pipe.last_due), b""))
            return
        for start in range(0, len(data), shape.segment):
            piece = data[start : start + shape.segment]
            left = max(now, line.free_at)
            if shape.rate_bps is not None:
                left += (len(piece) + shape.header) * 8 / shape.rate_bps
            line.free_at = left
            due = left + shape.latency_ms / 1000
            if shape.loss and self._rng.random() < shape.loss:
                due += shape.rto_s
                line.lost += 1
            due = max(due, pipe.last_due)  # in order: behind a lost segment too
            pipe.last_due = due
            line.bytes += len(piece)
            line.segments += 1
            pipe.queue.append((due, piece))

    # --- the work ---------------------------------------------------------
    def _spawn(self, target: partial[None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._cond:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
            try:
                client, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._spawn(partial(self._open, client), "shaper-open")

    def _open(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(
            client, server, (_Pipe("up", client, server), _Pipe("down", server, client))
        )
        with self._cond:
            if self._closing:
                client.close()
                server.close()
                return
            self._conns.add(conn)
            self._accepted += 1
        for pipe in conn.pipes:
            self._spawn(partial(self._read, conn, pipe), f"shaper-read-{pipe.direction}")
            self._spawn(partial(self._write, conn, pipe), f"shaper-write-{pipe.direction}")

    def _read(self, conn: _Connection, pipe: _Pipe) -> None:
        while True:
            try:
                data = pipe.src.recv(_CHUNK)
            except OSError:
                self._close(conn)
                return
            with self._cond:
                if conn.closed:
                    return
                self._schedule(pipe, data, time.monotonic())
                self._cond.notify_all()
            if not data:
                return

    def _due(self, conn: _Connection, pipe: _Pipe) -> bytes | None:
        """Wait until the head of the queue is due; everything due by then, joined
        (b"" at the end of the stream, None once the connection is closed)."""
        with self._cond:
            while True:
                if conn.closed:
                    return None
                if pipe.queue:
                    wait = pipe.queue[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            now = time.monotonic()
            out: list[bytes] = []
            while pipe.queue and pipe.queue[0][0] <= now:
                _due, data = pipe.queue[0]
                if not data:
                    if not out:
                        pipe.queue.popleft()
                    break  # the end of the stream goes alone, after the data
                out.append(pipe.queue.popleft()[1])
            return b"".join(out)

    def _write(self, conn: _Connection, pipe: _Pipe) -> None:
        while True:
            data = self._due(conn, pipe)
            if data is None:
                return
            if not data:
                self._half_close(conn, pipe)
                return
            try:
                pipe.dst.sendall(data)
            except OSError:
                self._close(conn)
                return

    def _half_close(self, conn: _Connection, pipe: _Pipe) -> None:
        with contextlib.suppress(OSError):
            pipe.dst.shutdown(socket.SHUT_WR)
        with self._cond:
            pipe.done = True
            finished = all(p.done for p in conn.pipes)
        if finished:
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        with self._cond:
            if conn.closed:
                return
            conn.closed = True
            self._conns.discard(conn)
            self._cond.notify_all()
        for s in (conn.client, conn.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
