"""A week's backlog over a poor mobile link, ours against a common gateway's way.

The link: rigs/shaper.py between the station and the broker, each direction
300 ms of latency, 256 kbit/s (segments of 1,448 bytes plus 52 header bytes
occupy the line in turn) and 1 % of segments lost, each lost one arriving a
retransmission time-out (1 s) late with everything behind it waiting. The
station runs in its own network namespace (rigs/netns.py) and dials the shaper
on the veth's host end; the shaper forwards to the shipped mutual-TLS mosquitto
there; ``edge central ingest`` (SQLite) answers from the root namespace.

``sync_drain_7day_s``: 3,500 lots waiting (a week at 500 a day), the shipped
``[mqtt]`` defaults (100 records a batch, 20 batches in flight), the link worker
records only: seconds from the start of the link (TCP and TLS handshakes
included) to the acknowledgement that confirms the last record.

``sync_drain_7day_baseline_s``: the same outbox, the same shaped link and TLS,
sent the way common gateways do (bench/sync_station.py ``baseline``): each record
one JSON message at QoS 1, 20 in flight, no application ack; seconds from the
connect to the broker's last PUBACK (no ingest runs: the broker's PUBACK is the
gateway's "arrived").

``sync_wire_bytes_per_record_baseline``: every IP byte of that run on the
station's link, both ways, per record, counted as the wire figures are
(bench/sync_wire.py; the veth's counters). The station's TCP stack talks to the
shaper, which answers at once, so these are the segments and ACKs of a fast
link; the 1 % losses are modelled as delays, so no retransmitted bytes are in
either figure. ``sync_drain_speedup`` and ``sync_bytes_saving`` are the baseline
divided by ours, ours' bytes counted in the same shaped run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.sync_common import drain_metered
from rigs.helpers import Pki
from rigs.netns import village_link
from rigs.shaper import Shape

DRAIN_RECORDS = 3_500
MOBILE = Shape(latency_ms=300, rate_bps=256_000, loss=0.01, rto_s=1.0)
LINK = "300 ms each way, 256 kbit/s each way, 1 % of segments 1 s late"


def bench_sync_drain() -> None:
    with tempfile.TemporaryDirectory() as name, village_link() as link:
        tmp = Path(name)
        pki = Pki(tmp / "pki")
        ours, shaped = drain_metered(link, pki, tmp / "drain", DRAIN_RECORDS, seed=7, shape=MOBILE)
        theirs, shaped_b = drain_metered(
            link, pki, tmp / "baseline", DRAIN_RECORDS, seed=7, shape=MOBILE, mode="baseline"
        )
    assert shaped is not None and shaped_b is not None
    seconds, base_seconds = ours.result["seconds"], theirs.result["seconds"]
    per_record = ours.wire_bytes / DRAIN_RECORDS
    base_per_record = theirs.wire_bytes / DRAIN_RECORDS
    lost = shaped.lost_up + shaped.lost_down
    lost_b = shaped_b.lost_up + shaped_b.lost_down
    print(
        f"sync_drain_7day_s {seconds:.2f} s  (target <= 10; {DRAIN_RECORDS} lots waiting, "
        f"{LINK} ({lost} were), shipped defaults: 100 a batch, 20 in flight; "
        f"start to the last acknowledgement; {per_record:.1f} B a record ({ours.method}))",
        flush=True,
    )
    print(
        f"sync_drain_7day_baseline_s {base_seconds:.2f} s  (the same lots, link and TLS: "
        f"one JSON record a message, QoS 1, 20 in flight, no application ack ({lost_b} "
        "segments late); connect to the last PUBACK)",
        flush=True,
    )
    print(
        f"sync_wire_bytes_per_record_baseline {base_per_record:.1f} B  (that run, IP bytes "
        f"both ways on the station-broker link ({theirs.method}), connect to DISCONNECT)",
        flush=True,
    )
    print(
        f"sync_drain_speedup {base_seconds / seconds:.1f} x  (baseline seconds / ours)",
        flush=True,
    )
    print(
        f"sync_bytes_saving {base_per_record / per_record:.1f} x  (baseline bytes a record / "
        f"ours, {base_per_record:.1f} / {per_record:.1f}, both over the shaped link)",
        flush=True,
    )


if __name__ == "__main__":
    bench_sync_drain()
