"""A TCP proxy for tests that breaks the link on command.

Put it between a client and a server (``FaultProxy(server_port)``, then connect
the client to ``proxy.port``) and it forwards bytes both ways, counting them,
until told to misbehave:

- ``cut()`` closes every current connection at once (``reset=True``: with RST);
- ``cut_after(n, "up")`` lets ``n`` more bytes through in that direction (summed
  over all connections), then cuts, so a transfer breaks mid-message;
- ``stall(seconds)`` holds every byte for that long (``stall(0)`` releases them);
  nothing is lost, as on a link that stops without breaking;
- ``latency(ms)`` delays every byte by ``ms`` in each direction;
- ``refuse(True)`` accepts new connections only to reset them at once
  (established ones go on); ``refuse(False)`` lets them through again.

"up" is client to server, "down" is server to client. Each direction of each
connection has a reader thread (bytes in, time-stamped into a queue) and a
writer thread (bytes out when due), so latency delays without limiting
throughput. Every method is safe to call from any thread; ``close()`` stops
everything and joins the threads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

Direction = Literal["up", "down"]
_CHUNK = 65536


@dataclass(frozen=True)
class ProxyStats:
    bytes_up: int
    bytes_down: int
    accepted: int  # connections forwarded to the server
    refused: int  # connections reset at once (refuse mode, or server unreachable)
    cuts: int  # connections closed by cut() or cut_after()
    active: int


def _abort(sock: socket.socket, reset: bool) -> None:
    """Close ``sock`` now, waking any thread blocked on it; ``reset``: send RST."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@dataclass
class _Pipe:
    direction: Direction
    src: socket.socket
    dst: socket.socket
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    done: bool = False


class _Connection:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.pipes = (_Pipe("up", client, server), _Pipe("down", server, client))
        self.closed = False


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._cond = threading.Condition()
        self._conns: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._counts = {"up": 0, "down": 0}
        self._accepted = self._refused = self._cuts = 0
        self._latency_s = 0.0
        self._stall_until = 0.0
        self._budget: tuple[Direction, int] | None = None
        self._refusing = False
        self._closing = False
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept")

    # --- life cycle -------------------------------------------------------
    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, cut every connection and join every thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._acceptor.is_alive():
            self._acceptor.join(5)
        self._listener.close()
        self._cut(reset=False, count=False)
        with self._cond:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    # --- faults -----------------------------------------------------------
    def cut(self, reset: bool = False) -> int:
        """Close every current connection at once; how many there were."""
        return self._cut(reset, count=True)

    def cut_after(self, n_bytes: int, direction: Direction) -> None:
        """Cut every connection once ``n_bytes`` more have gone ``direction``."""
        if n_bytes < 0 or direction not in ("up", "down"):
            raise ValueError("cut_after needs n_bytes >= 0 and direction 'up' or 'down'")
        with self._cond:
            self._budget = (direction, n_bytes)
        if n_bytes == 0:
            self.cut()

    def stall(self, seconds: float) -> None:
        """Hold all bytes (queued and new) for ``seconds`` from now; 0 releases."""
        with self._cond:
            self._stall_until = time.monotonic() + max(0.0, seconds)
            self._cond.notify_all()

    def latency(self, ms_each_way: float) -> None:
        """Delay bytes read from now on by ``ms_each_way`` in each direction."""
        with self._cond:
            self._latency_s = max(0.0, ms_each_way) / 1000
            self._cond.notify_all()

    def refuse(self, on: bool = True) -> None:
        with self._cond:
            self._refusing = on

    # --- observation ------------------------------------------------------
    def stats(self) -> ProxyStats:
        with self._cond:
            return ProxyStats(
                self._counts["up"],
                self._counts["down"],
                self._accepted,
                self._refused,
                self._cuts,
                len(self._conns),
            )

    @property
    def bytes_up(self) -> int:
        return self.stats().bytes_up

    @property
    def bytes_down(self) -> int:
        return self.stats().bytes_down

    @property
    def active(self) -> int:
        return self.stats().active

    def pending(self, direction: Direction) -> int:
        """Bytes read from one side but not yet written to the other."""
        with self._cond:
            return sum(
                len(data)
                for conn in self._conns
                for pipe in conn.pipes
                if pipe.direction == direction
                for _due, data in pipe.queue
            )

    def reset_counts(self) -> None:
        with self._cond:
            self._counts = {"up": 0, "down": 0}

    # --- the work ---------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
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
            with self._cond:
                refusing = self._refusing or self._closing
                if refusing:
                    self._refused += 1
            if refusing:
                _abort(client, reset=True)
                continue
            self._spawn(partial(self._open, client), "faultproxy-open")

    def _open(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
        except OSError:
            with self._cond:
                self._refused += 1
            _abort(client, reset=True)
            return
        conn = _Connection(client, server)
        with self._cond:
            if self._closing:
                _abort(client, reset=True)
                _abort(server, reset=False)
                return
            self._conns.add(conn)
            self._accepted += 1
        for pipe in conn.pipes:
            self._spawn(partial(self._read, conn, pipe), f"faultproxy-read-{pipe.direction}")
            self._spawn(partial(self._write, conn, pipe), f"faultproxy-write-{pipe.direction}")

    def _read(self, conn: _Connection, pipe: _Pipe) -> None:
        while True:
            try:
                data = pipe.src.recv(_CHUNK)
            except OSError:
                self._close(conn, reset=True)
                return
            with self._cond:
                if conn.closed:
                    return
                pipe.queue.append((time.monotonic() + self._latency_s, data))
                self._cond.notify_all()
            if not data:
                return

    def _next(self, conn: _Connection, pipe: _Pipe) -> tuple[bytes, int, bool] | None:
        """Wait for the next chunk that is due; (chunk, bytes to send, cut after it)."""
        with self._cond:
            while True:
                if conn.closed:
                    return None
                if pipe.queue:
                    due = max(pipe.queue[0][0], self._stall_until)
                    now = time.monotonic()
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                else:
                    self._cond.wait()
            _due, data = pipe.queue.popleft()
            take, cut = len(data), False
            if self._budget is not None and self._budget[0] == pipe.direction and data:
                left = self._budget[1]
                take, cut = min(take, left), take >= left
                self._budget = None if cut else (pipe.direction, left - take)
            return data, take, cut

    def _write(self, conn: _Connection, pipe: _Pipe) -> None:
        while True:
            item = self._next(conn, pipe)
            if item is None:
                return
            data, take, cut = item
            if not data:  # end of stream from src: pass the half-close on
                self._half_close(conn, pipe)
                return
            with self._cond:  # counted first: once the peer has them, the count shows them
                self._counts[pipe.direction] += take
            try:
                pipe.dst.sendall(data[:take])
            except OSError:
                self._close(conn, reset=True)
                return
            if cut:
                self.cut()
                return

    def _half_close(self, conn: _Connection, pipe: _Pipe) -> None:
        with contextlib.suppress(OSError):
            pipe.dst.shutdown(socket.SHUT_WR)
        with self._cond:
            pipe.done = True
            finished = all(p.done for p in conn.pipes)
        if finished:
            self._close(conn, reset=False)

    def _close(self, conn: _Connection, reset: bool, cut: bool = False) -> bool:
        with self._cond:
            if conn.closed:
                return False
            conn.closed = True
            self._conns.discard(conn)
            self._cuts += cut  # with the removal: stats() never shows one without the other
            self._cond.notify_all()
        _abort(conn.client, reset)
        _abort(conn.server, reset)
        return True

    def _cut(self, reset: bool, count: bool) -> int:
        with self._cond:
            conns = list(self._conns)
        return sum(self._close(conn, reset, cut=count) for conn in conns)
