"""Wire bytes per record: ``sync_wire_bytes_per_record_bN`` for N = 1, 10, 100, 1000.

The station (its SQLite database and link worker, edge.sync.mqtt, records only)
runs in a network namespace of its own and reaches the shipped mutual-TLS
mosquitto over a veth pair (rigs/netns.py); ``edge central ingest`` (SQLite)
stores the batches and publishes the acknowledgements from the root namespace,
over loopback, so only the station-broker leg, the metered village link, is
counted. The figure is every IP byte the pair carried both ways (IP and TCP
headers, SYN/FIN, TCP ACKs, TLS handshake and records, MQTT CONNECT, SUBSCRIBE,
the retained online/offline status, batches, PUBACKs, central's acks and the
station's PUBACKs for them, any retransmission) from before the station process
starts until it has exited (after the offline status and DISCONNECT) and its
connection has closed, divided by the records. MTU 1,500, one TCP segment a
packet; Ethernet headers taken off. Batch size N (``batch_max_records``),
otherwise the shipped ``[mqtt]`` defaults (100 a batch, 20 in flight, 2 s batch
age). Without namespaces the station's own TCP_INFO meter is used instead
(bench/sync_common.py); the line says which.

The lots are recorded through the station's store on a simulated clock: one
every 20-120 s, 30 farmers, 5 products, a quarter with a scale tare.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.sync_common import drain_metered
from rigs.helpers import Pki
from rigs.netns import village_link

WIRE_RUNS: tuple[tuple[int, int], ...] = ((1, 2_000), (10, 2_000), (100, 2_000), (1_000, 5_000))


def bench_sync_wire() -> None:
    with tempfile.TemporaryDirectory() as name, village_link() as link:
        tmp = Path(name)
        pki = Pki(tmp / "pki")
        for batch, records in WIRE_RUNS:
            run, _ = drain_metered(
                link, pki, tmp / f"wire-{batch}", records, seed=batch, batch_max_records=batch
            )
            per_record = run.wire_bytes / records
            target = "target <= 30; " if batch == 100 else ""
            packets = f", {run.counters.packets} packets" if run.counters else ""
            print(
                f"sync_wire_bytes_per_record_b{batch} {per_record:.1f} B  ({target}{records} "
                f"lots, IP bytes both ways on the station-broker link ({run.method}"
                f"{packets}), TLS handshake to DISCONNECT; station's own meter "
                f"{run.result['meter_bytes'] / records:.1f}; drained in "
                f"{run.result['seconds']:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:  # e.g. `python -m bench.sync_wire 100`: one batch size only
        WIRE_RUNS = tuple(r for r in WIRE_RUNS if str(r[0]) in sys.argv[1:])
    bench_sync_wire()
