"""Bytes the link used, per calendar month (UTC), for the monthly budget.

Two parts:

* :class:`LinkMeter` counts what crossed the MQTT connection. It reads the
  kernel's own per-connection counters (``TCP_INFO``: bytes sent including
  retransmissions, bytes received, segments each way) from paho's socket when
  it opens, whenever the worker samples it, and just before it closes
  (paho's ``on_socket_open`` / ``on_socket_close``). That is exact for
  everything above TCP: TLS handshakes and records, MQTT headers, PINGs,
  resends. IP and TCP headers are not in those counters; they are added as
  ``segments x header_bytes`` (52 for IPv4 with timestamps, 72 for IPv6),
  which is what a carrier bills. Where ``TCP_INFO`` cannot be read (not
  Linux, not a TCP socket) :attr:`LinkMeter.exact` is False and the worker
  adds estimates from :func:`publish_packet_size`.
* :class:`LinkUsage` keeps the totals in SQLite (``link_usage``, migration
  0006): :meth:`LinkUsage.add` runs in a write transaction and adds to the
  row of the month ``now`` falls in, so a new month starts at zero.

Pure parts: :func:`parse_tcp_info`, :func:`month_of`, :func:`publish_packet_size`.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.ids import iso
from edge.storage.store import Store

# struct tcp_info (linux/tcp.h): offsets of the counters used here
_BYTES_ACKED = 120  # __u64 tcpi_bytes_acked   (Linux 4.1)
_BYTES_RECEIVED = 128  # __u64 tcpi_bytes_received (Linux 4.1)
_SEGS_OUT = 136  # __u32 tcpi_segs_out, tcpi_segs_in (Linux 4.2)
_BYTES_SENT = 200  # __u64 tcpi_bytes_sent (Linux 4.19): includes retransmissions
_FIN_RECEIVED = frozenset({6, 8, 9, 11})  # tcpi_state TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING
TCP_INFO_LEN = 256
"""Bytes asked of getsockopt; the kernel returns as many as it has."""

HEADER_BYTES_IPV4 = 52  # IPv4 20 + TCP 20 + timestamp option 12
HEADER_BYTES_IPV6 = 72  # IPv6 40 + TCP 20 + timestamp option 12

PUBACK_SIZE = 4
"""An MQTT 3.1.1 PUBACK (and a v5 PUBACK with reason 0 and no properties)."""
PINGREQ_SIZE = PINGRESP_SIZE = 2


@dataclass(frozen=True)
class TcpCounts:
    """One connection's counters since it opened (TCP payload bytes, segments)."""

    bytes_out: int
    bytes_in: int
    segs_out: int
    segs_in: int


def parse_tcp_info(raw: bytes) -> TcpCounts | None:
    """The counters from a ``TCP_INFO`` reply, or None when the kernel's struct is too
    old to have them. ``bytes_sent`` (4.19+) is preferred; before it ``bytes_acked``.
    The SYN and FIN, which the kernel counts as one byte each, are left out."""
    if len(raw) < _SEGS_OUT + 8:
        return None
    (received,) = struct.unpack_from("=Q", raw, _BYTES_RECEIVED)
    if raw[0] in _FIN_RECEIVED and received > 0:
        received -= 1  # the peer's FIN takes one sequence number but carries no byte
    segs_out, segs_in = struct.unpack_from("=II", raw, _SEGS_OUT)
    if len(raw) >= _BYTES_SENT + 8:
        (sent,) = struct.unpack_from("=Q", raw, _BYTES_SENT)
    else:
        (acked,) = struct.unpack_from("=Q", raw, _BYTES_ACKED)
        sent = max(0, acked - 1)  # bytes_acked counts the SYN
    return TcpCounts(sent, received, segs_out, segs_in)


def read_tcp_counts(sock: Any) -> TcpCounts | None:
    """The kernel's counters of a TCP socket (plain or TLS), or None when unreadable."""
    getsockopt = getattr(sock, "getsockopt", None)
    tcp_info = getattr(socket, "TCP_INFO", None)
    if getsockopt is None or tcp_info is None:
        return None
    try:
        raw = getsockopt(socket.IPPROTO_TCP, tcp_info, TCP_INFO_LEN)
    except (OSError, ValueError):
        return None
    return parse_tcp_info(raw) if isinstance(raw, bytes) else None


def header_bytes_for(sock: Any) -> int:
    family = getattr(sock, "family", socket.AF_INET)
    return HEADER_BYTES_IPV6 if family == socket.AF_INET6 else HEADER_BYTES_IPV4


def _varint_len(n: int) -> int:
    size = 1
    while n > 127:
        n //= 128
        size += 1
    return size


def publish_packet_size(topic: str, payload_len: int, qos: int = 1, mqtt_v5: bool = False) -> int:
    """Bytes of one MQTT PUBLISH packet (no properties): the fallback estimate when
    the kernel's counters cannot be read."""
    if qos not in (0, 1, 2) or payload_len < 0:
        raise ValueError(f"bad publish: qos {qos}, payload length {payload_len}")
    remaining = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + payload_len
    remaining += 1 if mqtt_v5 else 0  # property length 0
    return 1 + _varint_len(remaining) + remaining


class LinkMeter:
    """Bytes of the MQTT connection since the last :meth:`take`, from TCP_INFO.

    Thread-safe: paho calls :meth:`opened` and :meth:`closed` from its network
    thread, the worker calls :meth:`sample` and :meth:`take` from its own.
    ``header_bytes``: per-segment IP + TCP header estimate added to the payload
    bytes; None picks it from the socket's family, 0 counts payload only.
    """

    def __init__(self, header_bytes: int | None = None) -> None:
        self.header_bytes = header_bytes
        self.exact = True
        """False once a connection's counters could not be read."""
        self._lock = threading.Lock()
        self._sock: Any = None
        self._last = TcpCounts(0, 0, 0, 0)
        self._out = 0
        self._in = 0

    @property
    def tracking(self) -> bool:
        """True while a connection is open and counted."""
        with self._lock:
            return self._sock is not None

    def attach(self, client: Any) -> None:
        """Hook into a paho client (``on_socket_open`` / ``on_socket_close``)."""
        client.on_socket_open = lambda _c, _u, sock: self.opened(sock)
        client.on_socket_close = lambda _c, _u, sock: self.closed(sock)

    def opened(self, sock: Any) -> None:
        with self._lock:
            self._sock = sock
            self._last = TcpCounts(0, 0, 0, 0)  # a new connection counts from zero
            self._read_locked()

    def closed(self, sock: Any) -> None:
        """Called just before ``sock`` closes: its final counts."""
        with self._lock:
            if sock is self._sock:
                self._read_locked()
                self._sock = None

    def sample(self) -> None:
        """Read the open connection's counters now (call before :meth:`take`)."""
        with self._lock:
            if self._sock is not None:
                self._read_locked()

    def add_estimate(self, bytes_out: int, bytes_in: int) -> None:
        """Add bytes counted another way (when :attr:`exact` is False)."""
        with self._lock:
            self._out += bytes_out
            self._in += bytes_in

    def take(self) -> tuple[int, int]:
        """(bytes out, bytes in) since the previous take; resets them."""
        with self._lock:
            out, in_ = self._out, self._in
            self._out = self._in = 0
            return out, in_

    def _read_locked(self) -> None:
        counts = read_tcp_counts(self._sock)
        if counts is None:
            self.exact = False
            return
        last = self._last
        header = self.header_bytes
        if header is None:
            header = header_bytes_for(self._sock)
        # counters only grow within a connection; max() guards a reused object
        d_out = max(0, counts.bytes_out - last.bytes_out)
        d_in = max(0, counts.bytes_in - last.bytes_in)
        d_segs_out = max(0, counts.segs_out - last.segs_out)
        d_segs_in = max(0, counts.segs_in - last.segs_in)
        self._out += d_out + d_segs_out * header
        self._in += d_in + d_segs_in * header
        self._last = counts


# -- persisted monthly totals ---------------------------------------------------------------


def month_of(now: datetime) -> str:
    """The UTC calendar month of ``now`` as ``YYYY-MM``; ``now`` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError(f"{now!r} has no time zone; pass an aware datetime (UTC)")
    return now.astimezone(UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class MonthUsage:
    month: str
    bytes_out: int
    bytes_in: int

    @property
    def total(self) -> int:
        return self.bytes_out + self.bytes_in


class LinkUsage:
    """Monthly link byte totals in the station database (table ``link_usage``).

    The month is ``now``'s UTC month. While the clock is not synchronised
    (``clock_synced=False``: a Pi after a power cut without network restarts
    from its last saved time) the month never goes back before the latest one
    already recorded, so an old month is not charged again and the current one
    does not look unused.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def _key(self, now: datetime, clock_synced: bool) -> str:
        month = month_of(now)
        if clock_synced:
            return month
        rows = self.store.rows("SELECT max(month) AS latest FROM link_usage")
        latest = rows[0]["latest"] if rows else None
        return max(month, latest) if latest else month

    def add(self, bytes_out: int, bytes_in: int, now: datetime, clock_synced: bool = True) -> None:
        """Add to the month ``now`` falls in, in one write transaction."""
        for name, value in (("bytes_out", bytes_out), ("bytes_in", bytes_in)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        month = self._key(now, clock_synced)
        if bytes_out == 0 and bytes_in == 0:
            return
        with self.store.write() as db:
            db.execute(
                "INSERT INTO link_usage(month, bytes_out, bytes_in, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(month) DO UPDATE SET "
                "bytes_out = bytes_out + excluded.bytes_out, "
                "bytes_in = bytes_in + excluded.bytes_in, updated_at = excluded.updated_at",
                [month, bytes_out, bytes_in, iso(now)],
            )

    def month(self, now: datetime, clock_synced: bool = True) -> MonthUsage:
        """The totals of the month ``now`` falls in (zero when nothing was sent yet)."""
        key = self._key(now, clock_synced)
        rows = self.store.rows(
            "SELECT month, bytes_out, bytes_in FROM link_usage WHERE month = ?", (key,)
        )
        return MonthUsage(**rows[0]) if rows else MonthUsage(key, 0, 0)

    def used_this_month(self, now: datetime, clock_synced: bool = True) -> int:
        """Bytes out plus in this month: what the budget policy takes."""
        return self.month(now, clock_synced).total

    def history(self, months: int = 12) -> list[MonthUsage]:
        """The latest ``months`` months with traffic, newest first."""
        rows = self.store.rows(
            "SELECT month, bytes_out, bytes_in FROM link_usage ORDER BY month DESC LIMIT ?",
            (months,),
        )
        return [MonthUsage(**r) for r in rows]
