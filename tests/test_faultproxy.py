"""The fault-injecting proxy itself, between real sockets and a real echo server."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from rigs.faultproxy import FaultProxy
from rigs.helpers import PortHold, wait_for


class EchoServer:
    """Echoes every byte back; counts what each connection received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.received: list[int] = []
        self.finished: list[bool] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                index = len(self.received)
                self.received.append(0)
                self.finished.append(False)
            threading.Thread(target=self._echo, args=(conn, index), daemon=True).start()

    def _echo(self, conn: socket.socket, index: int) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    with self.lock:
                        self.received[index] += len(data)
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        with self.lock:
            self.finished[index] = True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.port) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise AssertionError(f"connection ended after {len(out)} of {n} bytes")
        out += chunk
    return out


def is_turned_away(proxy: FaultProxy) -> bool:
    """A new connection ends without a byte (the reset may even beat connect())."""
    try:
        s = connect(proxy)
    except ConnectionResetError:
        return True
    with s:
        return recv_until_closed(s)[0] == b""


def recv_until_closed(s: socket.socket) -> tuple[bytes, str]:
    """Everything until the connection ends, and how it ended ('eof' or 'reset')."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out, "reset"
        if not chunk:
            return out, "eof"
        out += chunk


def test_forwards_both_ways_byte_for_byte_and_counts(proxy: FaultProxy, echo: EchoServer):
    data = os.urandom(200_000)
    with connect(proxy) as s:
        s.sendall(data)
        assert recv_exactly(s, len(data)) == data
    wait_for(lambda: proxy.active == 0, what="the proxy to drop the finished connection")
    stats = proxy.stats()
    assert (stats.bytes_up, stats.bytes_down, stats.accepted) == (200_000, 200_000, 1)
    assert echo.received == [200_000]


def test_a_half_close_passes_through(proxy: FaultProxy, echo: EchoServer):
    with connect(proxy) as s:
        s.sendall(b"last words")
        s.shutdown(socket.SHUT_WR)
        assert recv_until_closed(s) == (b"last words", "eof")
    wait_for(lambda: proxy.active == 0, what="the proxy to drop the finished connection")
    wait_for(lambda: echo.finished == [True], what="the server to see the end")


def test_cut_closes_every_current_connection_at_once(proxy: FaultProxy, echo: EchoServer):
    clients = [connect(proxy) for _ in range(3)]
    for i, s in enumerate(clients):
        s.sendall(b"hello %d" % i)
        assert recv_exactly(s, 7) == b"hello %d" % i
    assert proxy.cut() == 3
    for s in clients:
        assert recv_until_closed(s) == (b"", "eof")
        s.close()
    wait_for(lambda: all(echo.finished), what="the server side to be closed too")
    assert proxy.stats().cuts == 3 and proxy.active == 0
    with connect(proxy) as s:  # new connections still work
        s.sendall(b"again")
        assert recv_exactly(s, 5) == b"again"


def test_cut_with_reset_sends_rst(proxy: FaultProxy):
    with connect(proxy) as s:
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
        proxy.cut(reset=True)
        assert recv_until_closed(s) == (b"", "reset")


def test_cut_after_n_bytes_up_breaks_mid_transfer(proxy: FaultProxy, echo: EchoServer):
    proxy.cut_after(300, "up")
    with connect(proxy) as s:
        s.sendall(os.urandom(1000))
        received, _how = recv_until_closed(s)
    wait_for(lambda: echo.finished == [True], what="the server side to end")
    assert echo.received == [300]  # exactly 300 bytes reached the server
    assert len(received) <= 300
    assert proxy.stats().bytes_up == 300 and proxy.stats().cuts == 1


def test_cut_after_n_bytes_down_delivers_exactly_n(proxy: FaultProxy):
    data = os.urandom(1000)
    proxy.cut_after(400, "down")
    with connect(proxy) as s:
        s.sendall(data)
        assert recv_until_closed(s) == (data[:400], "eof")
    assert proxy.stats().bytes_down == 400


def test_cut_after_counts_over_all_connections(proxy: FaultProxy, echo: EchoServer):
    first, second = connect(proxy), connect(proxy)
    proxy.cut_after(150, "up")
    first.sendall(b"a" * 100)
    assert recv_exactly(first, 100) == b"a" * 100  # 50 bytes of budget left
    second.sendall(b"b" * 100)
    assert recv_until_closed(second)[1] == "eof"
    assert recv_until_closed(first) == (b"", "eof")  # cut too: every connection goes
    first.close()
    second.close()
    wait_for(lambda: echo.finished == [True, True], what="the server side to end")
    assert sorted(echo.received) == [50, 100]


def test_stall_holds_bytes_without_losing_them(proxy: FaultProxy, echo: EchoServer):
    data = os.urandom(500)
    with connect(proxy) as s:
        proxy.stall(600)
        s.sendall(data)
        wait_for(lambda: proxy.pending("up") == 500, what="the proxy to hold the bytes")
        assert proxy.bytes_up == 0 and sum(echo.received) == 0
        proxy.stall(0)
        assert recv_exactly(s, 500) == data
    assert proxy.stats().bytes_up == 500


def test_latency_delays_each_direction(proxy: FaultProxy):
    """A lower bound only: the round trip can never beat the delay added each way."""
    proxy.latency(100)
    with connect(proxy) as s:
        start = time.monotonic()
        s.sendall(b"ping")
        assert recv_exactly(s, 4) == b"ping"
        assert time.monotonic() - start >= 0.2
    proxy.latency(0)


def test_refuse_resets_new_connections_only(proxy: FaultProxy):
    with connect(proxy) as established:
        established.sendall(b"hi")
        assert recv_exactly(established, 2) == b"hi"  # it is through the proxy
        proxy.refuse(True)
        assert is_turned_away(proxy)
        established.sendall(b"still here")
        assert recv_exactly(established, 10) == b"still here"
        proxy.refuse(False)
        with connect(proxy) as fresh:
            fresh.sendall(b"ok")
            assert recv_exactly(fresh, 2) == b"ok"
    assert proxy.stats().refused == 1 and proxy.stats().accepted == 2


def test_an_unreachable_server_resets_the_client():
    with PortHold() as closed, FaultProxy(closed.port) as p:  # held: refused, nobody else's
        assert is_turned_away(p)
        assert p.stats().refused == 1


def test_concurrent_clients_are_counted_exactly(proxy: FaultProxy):
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            payload = bytes([i]) * 20_000
            with connect(proxy) as s:
                for k in range(0, len(payload), 1000):
                    s.sendall(payload[k : k + 1000])
                    assert recv_exactly(s, 1000) == payload[k : k + 1000]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    stats = proxy.stats()
    assert (stats.bytes_up, stats.bytes_down, stats.accepted) == (160_000, 160_000, 8)


def test_close_stops_everything(echo: EchoServer):
    p = FaultProxy(echo.port).start()
    s = connect(p)
    s.sendall(b"x")
    assert recv_exactly(s, 1) == b"x"
    p.close()
    assert recv_until_closed(s) == (b"", "eof")
    s.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("faultproxy")]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.port), timeout=2).close()
