"""Sync benchmarks: what the station-broker link costs the user in bytes and time.

``python -m bench.sync`` prints every sync figure; ``make bench`` calls the three
functions below. Every byte figure counts what a carrier bills on the village
link, the station-broker leg only: IP and TCP headers, TCP ACKs, SYN/FIN, TLS
handshakes and records, MQTT (CONNECT, SUBSCRIBE, status, batches, PUBACKs,
central's acks), keepalives and retransmissions, both ways. The station runs in
a network namespace of its own and reaches the broker over a veth pair whose
interface counters are read (rigs/netns.py: MTU 1,500, one TCP segment a
packet, Ethernet headers taken off); central ingest talks to the broker over
loopback, uncounted. Where namespaces cannot be made, the station's own
TCP_INFO meter is used instead, and each line says which (``veth`` or
``tcp_info``).

- :func:`bench_sync` (bench/sync_wire.py): ``sync_wire_bytes_per_record_b1``,
  ``_b10``, ``_b100``, ``_b1000``: a backlog drained at batch size N, bytes per
  record from the TLS handshake to the DISCONNECT.
- :func:`bench_sync_month` (bench/sync_month.py): ``sync_month_bytes_500_per_day``:
  a simulated month at 500 lots a day with the shipped ``[mqtt]`` defaults,
  telemetry, keepalive and two link drops a day, in MB.
- :func:`bench_sync_drain` (bench/sync_drain.py): ``sync_drain_7day_s`` (3,500
  lots over a shaped poor mobile link: 300 ms each way, 256 kbit/s, 1 % of
  segments a retransmission time-out late), the same done the way common
  gateways do it (``sync_drain_7day_baseline_s``,
  ``sync_wire_bytes_per_record_baseline``: one JSON record a QoS 1 message, 20
  in flight), and the ratios ``sync_drain_speedup`` and ``sync_bytes_saving``.
"""

from __future__ import annotations

from bench.sync_drain import bench_sync_drain
from bench.sync_month import bench_sync_month
from bench.sync_wire import bench_sync_wire


def bench_sync() -> None:
    """The wire bytes per record at batch sizes 1 to 1,000."""
    bench_sync_wire()


__all__ = ["bench_sync", "bench_sync_drain", "bench_sync_month"]


if __name__ == "__main__":
    bench_sync()
    bench_sync_month()
    bench_sync_drain()
