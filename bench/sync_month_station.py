"""The station's side of the month benchmark (bench/sync_month.py), run as a process
of its own inside the metered link's namespace:
``python -m bench.sync_month_station JOB.json``.

One thread drives everything on a simulated clock (a discrete-event simulation
around the real link code and real network traffic):

- the station's clocks are :class:`MonthClock`: the stores' wall clock (record
  times, batch ages, telemetry times), ``edge.ids.uptime_s``, the link worker's
  monotonic clock (telemetry period, reconnect back-off, ack time-outs), and
  paho's own clock (``paho.mqtt.client.time_func``: the MQTT keepalive), so a
  PINGREQ goes on the wire whenever the shipped keepalive would send one;
- the link worker (edge.sync.link_setup.build_link, as the station wires it:
  telemetry, the month's byte count, the link policy) is not started as a thread:
  the driver calls its ``step()``;
- the clock stands still while anything waits on the network (a publish without
  PUBACK, rows central has not confirmed, a PINGREQ without PINGRESP, a
  connection being opened): those take real time, no simulated time, as on a
  fast link. Then it jumps to the next thing that would happen: a lot recorded,
  a partial batch growing old enough, the telemetry timer, the keepalive, a
  link drop, a reconnect after the back-off, the end of the month. (Stuck for
  more than 5 s of real time, the clock runs at real speed, so time-outs fire.)
- a link drop shuts the station's TCP connection down (a FIN each way, as if
  the carrier had reset it); the link notices and reconnects after its back-off:
  TCP and TLS handshakes, CONNECT with the persistent session, SUBSCRIBE, the
  online status.

Prints one JSON line: counts (records, telemetry, pings, connects, drops), the
station link's own TCP_INFO meter, and the IP bytes of the namespace's device
per kind of event that caused them (``bytes_by``).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho_client

from bench.sync_common import record_one_lot
from edge import ids
from edge.config import parse_config
from edge.storage.store import Store
from edge.sync.link_setup import build_link
from edge.sync.usage import LinkUsage
from rigs.netns import ETHERNET_HEADER

DAY_S = 86_400.0
MONO0 = 50_000.0
"""The simulated monotonic clock at the start of the month."""
STUCK_S = 5.0
GIVE_UP_S = 300.0


class MonthClock:
    """Seconds since the start of the month, moved by the driver; after
    :meth:`run_free` it follows real time (for closing the link)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t = 0.0
        self._free_since: float | None = None

    def elapsed(self) -> float:
        if self._free_since is None:
            return self.t
        return self.t + time.monotonic() - self._free_since

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed())

    def monotonic(self) -> float:
        return MONO0 + self.elapsed()

    def uptime_s(self) -> float:
        return round(4_000.0 + self.elapsed(), 3)

    def advance_to(self, t: float) -> None:
        self.t = max(self.t, t)

    def run_free(self) -> None:
        self._free_since = time.monotonic()


@dataclass
class Plan:
    """When lots are recorded and when the link drops, in seconds from the start."""

    lots: list[float]
    drops: list[float]


def make_plan(
    days: int, lots_per_day: int, drops_per_day: int, day_start_s: float, seed: int
) -> Plan:
    """Each day: the first lot 0-30 min after ``day_start_s`` (local time of day),
    then one every 20-120 s; ``drops_per_day`` drops at random times of the day."""
    rng = random.Random(seed)
    lots: list[float] = []
    drops: list[float] = []
    for day in range(days):
        t = day * DAY_S + day_start_s + rng.uniform(0, 1_800)
        for _ in range(lots_per_day):
            lots.append(t)
            t += rng.randint(20, 120)
        drops += sorted(day * DAY_S + rng.uniform(0, DAY_S) for _ in range(drops_per_day))
    return Plan(lots, drops)


def device_ip_bytes(dev: str | None) -> int:
    """IP bytes both ways through ``dev`` so far (0 without a device)."""
    if dev is None:
        return 0
    base = Path("/sys/class/net") / dev / "statistics"
    if not base.exists():
        return 0
    total = 0
    for way in ("rx", "tx"):
        octets = int((base / f"{way}_bytes").read_text())
        packets = int((base / f"{way}_packets").read_text())
        total += octets - ETHERNET_HEADER * packets
    return total


@dataclass
class MonthDriver:
    job: dict[str, Any]
    clock: MonthClock
    plan: Plan
    dev: str | None
    counts: Counter[str] = field(default_factory=Counter)
    bytes_by: Counter[str] = field(default_factory=Counter)
    real_by: dict[str, float] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        cfg = parse_config(json.loads(Path(self.job["config"]).read_text()), "month")
        self.cfg = cfg
        self.end = float(self.job["days"]) * DAY_S
        self.link_store = Store.open(cfg.storage.path, cfg.site.id, now=self.clock.now)
        self.rec_store = Store.open(cfg.storage.path, cfg.site.id, now=self.clock.now)
        self.rng = random.Random(int(self.job["seed"]))
        self.producers = [self.rec_store.add_producer(f"Nông dân {i}")["id"] for i in range(30)]
        self.products = [
            self.rec_store.add_product(f"Sản phẩm {i}", 10_000)["id"] for i in range(5)
        ]
        self.sync = build_link(cfg, self.link_store)
        self.sync._mono = self.clock.monotonic  # the simulated clock (see the docstring)
        client = self.sync.client
        self.client = client
        send_pingreq = client._send_pingreq
        on_connect = client.on_connect

        def counted_pingreq() -> Any:
            self.counts["pings"] += 1
            return send_pingreq()

        def counted_connect(*args: Any) -> None:
            self.counts["connects"] += 1
            if on_connect is not None:
                on_connect(*args)

        setattr(client, "_send_pingreq", counted_pingreq)  # noqa: B010 - a method
        client.on_connect = counted_connect
        self.lot_i = self.drop_i = 0
        self.wakes = [cfg.mqtt.batch_max_age_s + 0.001]  # the farmers and products

    # -- the link's state --------------------------------------------------------------

    def state(self) -> str:
        return str(self.sync._state.value)

    def quiet(self) -> bool:
        """Nothing waits on the network: only simulated time moves things on now."""
        state = self.state()
        if state == "down":
            return True
        if state == "connecting":
            return False
        client = self.client
        if self.sync._flights or client._out_packet or client._out_messages or client._ping_t:
            return False
        rows = self.link_store.rows("SELECT count(*) AS n FROM outbox WHERE status = 'sent'")
        return int(rows[0]["n"]) == 0

    def settle(self) -> None:
        """Step the worker until :meth:`quiet` (see the docstring for when stuck)."""
        started = last = time.monotonic()
        self.sync.idle_s = 0.0  # the first step must not wait: maybe nothing is coming
        while True:
            self.sync.step()
            self.sync.idle_s = 0.05  # then select() returns as soon as anything arrives
            if self.quiet():
                return
            real = time.monotonic()
            if real - started > GIVE_UP_S:
                raise RuntimeError(f"the link did not settle in {GIVE_UP_S} s ({self.state()})")
            if real - started > STUCK_S:
                self.clock.advance_to(self.clock.t + (real - last))
            last = real

    def next_event(self) -> tuple[float, str]:
        """The time of the next thing that happens, and what it is."""
        sync, client = self.sync, self.client
        candidates: list[tuple[float, str]] = [(self.end, "end")]
        if self.lot_i < len(self.plan.lots):
            candidates.append((self.plan.lots[self.lot_i], "lot"))
        if self.drop_i < len(self.plan.drops):
            candidates.append((self.plan.drops[self.drop_i], "drop"))
        candidates += [(t, "records") for t in self.wakes]
        timers = sync._timer_next
        if "telemetry" in timers:
            due = max(timers["telemetry"], timers.get("telemetry-check", 0.0))
            candidates.append((due - MONO0, "telemetry"))
        state = self.state()
        if state == "online":
            last = min(client._last_msg_out, client._last_bytes_received)
            candidates.append((last + client._keepalive - MONO0 + 0.001, "keepalive"))
        elif state == "down":
            candidates.append((sync._next_attempt - MONO0, "reconnect"))
        t = max(min(c[0] for c in candidates), self.clock.t + 0.001)
        what = "+".join(sorted({name for at, name in candidates if at <= t + 0.001}))
        return t, what

    # -- events --------------------------------------------------------------------------

    def fire(self) -> None:
        """Record the lots due by now (their batch is due ``batch_max_age_s`` later);
        drop the link if a drop is due."""
        now = self.clock.t
        while self.lot_i < len(self.plan.lots) and self.plan.lots[self.lot_i] <= now:
            record_one_lot(self.rec_store, self.rng, self.producers, self.products)
            self.wakes.append(now + self.cfg.mqtt.batch_max_age_s + 0.001)
            self.lot_i += 1
        self.wakes = [t for t in self.wakes if t > now]
        while self.drop_i < len(self.plan.drops) and self.plan.drops[self.drop_i] <= now:
            self.drop_i += 1
            sock = self.client.socket()
            if self.state() == "online" and sock is not None:
                raw = socket.socket(fileno=os.dup(sock.fileno()))
                try:
                    raw.shutdown(socket.SHUT_RDWR)  # the link is gone; paho finds out
                finally:
                    raw.close()
                self.counts["drops"] += 1

    def run(self) -> dict[str, Any]:
        t_real = time.monotonic()
        what = "start"
        while True:
            before, t0 = device_ip_bytes(self.dev), time.monotonic()
            self.fire()
            self.settle()
            self.bytes_by[what] += device_ip_bytes(self.dev) - before
            self.real_by[what] = self.real_by.get(what, 0.0) + time.monotonic() - t0
            self.events[what] += 1
            if self.clock.t >= self.end:
                break
            t, what = self.next_event()
            self.clock.advance_to(min(t, self.end))
        return self.finish(time.monotonic() - t_real)

    def finish(self, real_s: float) -> dict[str, Any]:
        before = device_ip_bytes(self.dev)
        self.clock.run_free()
        self.sync.close()  # the offline status and DISCONNECT, the byte count saved
        self.bytes_by["close"] += device_ip_bytes(self.dev) - before
        streams = self.link_store.rows(
            "SELECT stream, count(*) AS n, sum(status = 'confirmed') AS ok FROM outbox "
            "GROUP BY stream"
        )
        meter = sum(m.total for m in LinkUsage(self.link_store).history())
        self.link_store.close()
        self.rec_store.close()
        return {
            "days": self.end / DAY_S,
            "streams": {r["stream"]: {"rows": r["n"], "confirmed": r["ok"]} for r in streams},
            "counts": dict(self.counts),
            "bytes_by": dict(self.bytes_by),
            "meter_bytes": meter,
            "events": dict(self.events),
            "real_by": {k: round(v, 1) for k, v in self.real_by.items()},
            "real_s": real_s,
        }


def main(job_file: Path) -> None:
    job = json.loads(job_file.read_text())
    zone = ZoneInfo(job.get("timezone", "Asia/Ho_Chi_Minh"))
    start = datetime(2026, 6, 1, tzinfo=zone) + timedelta(days=int(job.get("first_day", 0)))
    clock = MonthClock(start)
    plan = make_plan(
        math.ceil(float(job["days"])),
        int(job["lots_per_day"]),
        int(job["drops_per_day"]),
        float(job["day_start_s"]),
        int(job["seed"]),
    )
    with (
        mock.patch.object(ids, "uptime_s", clock.uptime_s),
        mock.patch.object(paho_client, "time_func", clock.monotonic),
    ):
        result = MonthDriver(job, clock, plan, job.get("device")).run()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
