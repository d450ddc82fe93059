"""The shaping proxy (rigs/shaper.py): rate, latency, lost segments, and the bytes
arriving intact and in order. Bounds are generous: the machine may be busy."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from rigs.shaper import Shape, Shaper


class Sink:
    """Echoes every byte back (``echo``) or just reads them, noting when the n-th
    byte arrived."""

    def __init__(self, echo: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.echo = echo
        self.received = bytearray()
        self.arrivals: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                while data := conn.recv(65536):
                    with self.lock:
                        self.received += data
                        self.arrivals.append((time.monotonic(), len(self.received)))
                    if self.echo:
                        conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def reached(self, n: int) -> float | None:
        with self.lock:
            return next((t for t, total in self.arrivals if total >= n), None)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink(echo=False)
    yield s
    s.close()


@pytest.fixture
def echo() -> Iterator[Sink]:
    s = Sink(echo=True)
    yield s
    s.close()


def recv_exactly(s: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def wait_until(check: object, timeout: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_256_kbit_s_moves_64_kb_in_about_2_s(sink: Sink) -> None:
    with Shaper(sink.port, shape=Shape(rate_bps=256_000)) as shaper:
        with socket.create_connection(("127.0.0.1", shaper.port), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(os.urandom(65_536))
            wait_until(lambda: sink.reached(65_536) is not None, 15)
        arrived = sink.reached(65_536)
        assert arrived is not None
        # 65,536 bytes + 46 segments x 52 header bytes at 256 kbit/s: 2.12 s
        assert 1.6 < arrived - t0 < 5.0
        stats = shaper.stats()
        assert (stats.bytes_up, stats.segments_up, stats.lost_up) == (65_536, 46, 0)


def test_latency_is_added_each_way(echo: Sink) -> None:
    with Shaper(echo.port, shape=Shape(latency_ms=150)) as shaper:
        with socket.create_connection(("127.0.0.1", shaper.port), timeout=10) as s:
            rtts = []
            for i in range(3):
                t0 = time.monotonic()
                s.sendall(b"ping %d" % i)
                assert recv_exactly(s, 6) == b"ping %d" % i
                rtts.append(time.monotonic() - t0)
        assert all(0.29 < rtt < 2.0 for rtt in rtts), rtts


def test_lost_segments_arrive_late_intact_and_in_order(echo: Sink) -> None:
    shape = Shape(latency_ms=5, loss=0.2, rto_s=0.05)
    data = os.urandom(400_000)
    with Shaper(echo.port, shape=shape, seed=3) as shaper:
        with socket.create_connection(("127.0.0.1", shaper.port), timeout=20) as s:
            writer = threading.Thread(target=s.sendall, args=(data,))
            writer.start()
            back = recv_exactly(s, len(data))
            writer.join(20)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(10) == b""  # the end of the stream passed on, after the data
        stats = shaper.stats()
    assert back == data
    assert bytes(echo.received) == data
    assert stats.bytes_up == stats.bytes_down == len(data)
    assert stats.lost_up > 0 and stats.lost_down > 0
    assert stats.lost_up < stats.segments_up / 2


def test_a_lost_segment_arrives_a_retransmission_time_out_late(sink: Sink) -> None:
    shape = Shape(loss=0.999, rto_s=0.6)
    with (
        Shaper(sink.port, shape=shape) as shaper,
        socket.create_connection(("127.0.0.1", shaper.port), timeout=10) as s,
    ):
        t0 = time.monotonic()
        s.sendall(b"x" * 3_000)  # three segments, each lost once
        wait_until(lambda: sink.reached(3_000) is not None, 15)
    first = sink.reached(1)
    assert first is not None and 0.5 < first - t0 < 5.0
    assert shaper.stats().lost_up == 3
