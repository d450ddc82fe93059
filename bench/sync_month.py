"""A month of a collection point on the metered link: ``sync_month_bytes_500_per_day``.

What is simulated: 30 days of a station recording 500 lots a day (the first
between 06:30 and 07:00 local time, then one every 20-120 s, so a day's lots
take about ten hours), with the shipped ``[mqtt]`` defaults whatever they are
(read from edge.config.MqttConfig: keepalive, telemetry period, batch size and
age, link schedule, back-off), telemetry made by the station's own collector,
and the link dropped twice a day at random times (its TCP connection shut
down), after which the link reconnects by itself: TCP and TLS handshakes,
CONNECT, SUBSCRIBE, the online status.

How time is compressed: the station's link worker and stores run in a process
of their own (bench/sync_month_station.py) on a simulated clock: the wall clock,
uptime, the worker's monotonic clock, and paho's clock, which times the MQTT
keepalive. The clock stands still while the station waits on the network and
jumps to the next event once nothing does, so every byte is real traffic: the
real link code and paho, real mutual TLS to the shipped mosquitto, ``edge
central ingest`` storing the batches and publishing the acks. Round trips take
no simulated time (a fast link) but real time (40-80 ms each here: the month's
35,000 events would take over half an hour one after the other), so it is cut into
:data:`STATIONS` stretches of consecutive days (3 days each by default) run side
by side by as many station processes, each with its own site id of the same
length, its own database and its own namespace and veth pair; the figure is
their sum. Each stretch starts with a connect and its own 30 farmers and 5
products: 9 more TLS connects and 315 more records than one station running
the month through (about 0.07 MB).

Keepalive: on the simulated clock too, so each PINGREQ/PINGRESP the shipped
keepalive would send while the link is up is on the wire and counted; nothing
is estimated or scaled. paho (2.2) refreshes its "last message out" time only
when it pings, not when it sends anything else, so it pings every
``keepalive_s`` even while batches and telemetry flow.

What is counted: every IP byte through the stations' veth pairs in both
directions, as bench/sync_wire.py counts (or the stations' TCP_INFO meters
without namespaces), from the first connect to the end of the month and the
closing offline status and DISCONNECT. Each station also attributes the bytes of
its own device to the event that caused them (lot batches, telemetry, keepalive
pings, drops and reconnects); the note shows the split. MB = 10^6 bytes, as the
budget counts. ``python -m bench.sync_month --set KEY=VALUE`` runs the month with
other ``[mqtt]`` settings (what-if; the printed figure is the shipped one only
without ``--set``).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.sync_common import SITE, CentralRig, StationRun, run_stations, station_config
from edge.config import StationConfig
from rigs.helpers import Pki
from rigs.netns import STATION_DEV, village_link

DAYS = 30
STATIONS = 10
LOTS_PER_DAY = 500
DROPS_PER_DAY = 2
DAY_START_S = 6.5 * 3600
TARGET_MB = 3.0
KINDS = {"records": "lot batches", "telemetry": "telemetry", "keepalive": "keepalive"}


def scratch_dir() -> str | None:
    """tmpfs when there is one: the month's fsyncs cost no time there (bytes only)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def split(bytes_by: dict[str, int]) -> dict[str, int]:
    """The bytes per cause, events that fell together joined under the first cause:
    telemetry with a ping counts as telemetry; drop and reconnect as reconnects."""
    out: dict[str, int] = {}
    for what, n in bytes_by.items():
        parts = set(what.split("+"))
        if parts & {"drop", "reconnect"}:
            key = "reconnects"
        elif "start" in parts or "close" in parts:
            key = "connect and close"
        else:
            key = next((KINDS[k] for k in KINDS if k in parts), "other")
        out[key] = out.get(key, 0) + n
    return out


def site_id(k: int) -> str:
    """Station k's site id, as long as :data:`SITE` (it is in every topic)."""
    return f"{SITE[:-2]}{k + 1:02d}"


def month_bytes(days: int = DAYS, stations: int = STATIONS, **mqtt: Any) -> None:
    """Simulate ``days`` (``stations`` stretches side by side) and print the line."""
    stretch = -(-days // stations)
    firsts = list(range(0, days, stretch))
    with (
        tempfile.TemporaryDirectory(dir=scratch_dir()) as name,
        village_link(len(firsts)) as link,
    ):
        tmp = Path(name)
        pki = Pki(tmp / "pki")
        host = link.host if link else "127.0.0.1"
        with CentralRig(tmp / "central", pki, host) as rig:
            jobs = []
            for k, first in enumerate(firsts):
                db = tmp / f"station-{k}" / "station.db"
                db.parent.mkdir()
                cfg = station_config(db, pki, host, rig.broker.port, site_id(k), **mqtt)
                config_file = db.parent / "station-config.json"
                config_file.write_text(cfg.model_dump_json())
                jobs.append(
                    {
                        "config": str(config_file),
                        "first_day": first,
                        "days": min(stretch, days - first),
                        "lots_per_day": LOTS_PER_DAY,
                        "drops_per_day": DROPS_PER_DAY,
                        "day_start_s": DAY_START_S,
                        "seed": 30 + k,
                        "device": f"{STATION_DEV}{k}" if link else None,
                    }
                )
            try:
                run = run_stations(link, "bench.sync_month_station", jobs, tmp, 4 * 3600)
            except Exception as exc:
                raise RuntimeError(f"{exc}{rig.diagnostics()}") from None
    report(run, cfg, days, len(firsts), mqtt)


def report(
    run: StationRun, cfg: StationConfig, days: int, stretches: int, mqtt: dict[str, Any]
) -> None:
    def total(key: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for result in run.results:
            out.update(result[key])
        return out

    counts, bytes_by = total("counts"), total("bytes_by")
    records = sum(r["streams"]["records"]["rows"] for r in run.results)
    telemetry = sum(r["streams"].get("telemetry", {}).get("rows", 0) for r in run.results)
    mb = run.wire_bytes / 1e6 * DAYS / days
    parts = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in sorted(split(dict(bytes_by)).items()))
    by_cause = f"; MB by cause: {parts}" if run.counters else ""  # from the stations' devices
    scaled = "" if days == DAYS else f", scaled to {DAYS}"
    given = ", ".join(f"{k} {v}" for k, v in sorted(mqtt.items()))
    config = f"[mqtt] {given} over the shipped defaults" if mqtt else "shipped [mqtt] defaults"
    m = cfg.mqtt
    real = max(r["real_s"] for r in run.results)
    print(
        f"sync_month_bytes_500_per_day {mb:.2f} MB  (target <= {TARGET_MB:g}; {days} simulated "
        f"days{scaled} in {stretches} stretches run side by side, {config}: keepalive "
        f"{m.keepalive_s} s, telemetry every {m.telemetry_every_s:g} s, "
        f"{m.batch_max_records} a batch or {m.batch_max_age_s:g} s, connect_every_min "
        f"{m.connect_every_min:g}; {records} records, {telemetry} telemetry, "
        f"{counts['pings']} keepalive pings on the simulated clock, {counts['drops']} drops, "
        f"{counts['connects']} TLS connects; IP bytes both ways ({run.method}){by_cause}; "
        f"{real:.0f} s real)",
        flush=True,
    )


def bench_sync_month() -> None:
    month_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--days", type=int, default=DAYS, help="simulate fewer days, scaled")
    parser.add_argument("--stations", type=int, default=STATIONS, help="stretches side by side")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="an [mqtt] setting other than the shipped default (what-if runs)",
    )  # fmt: skip
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = float(value) if "." in value else int(value)
    month_bytes(args.days, args.stations, **overrides)


if __name__ == "__main__":
    main()
