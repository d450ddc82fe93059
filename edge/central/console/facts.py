"""What central knows about each point now, in one query: the facts the fleet page, the
alert rules and ``/metrics`` all read (:func:`load_facts`), and the pure reading of a
telemetry record into them (:func:`point_facts`).

A point is every site central heard from (``sites``) and every point registered by name
and province (``points``), heard from or not. Sources: the retained status (online or
offline, version, config hash), the latest telemetry record (docs/mqtt.md: disk, memory,
CPU temperature, outbox backlog, devices, clock, downlink, and ``link``: the month's
bytes against the budget), the uplink progress (epoch conflicts), refusals, and the
downlink progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.central.console.db import ConsoleDb
from edge.ids import parse_iso

STREAMS = ("records", "telemetry", "bulk")

FACTS_SQL = """
SELECT coalesce(s.site, p.site) AS site, p.name, p.province, p.district,
       s.last_seen, s.status, s.status_at, s.telemetry, s.telemetry_at,
       g.conflicts, g.confirmed_upto, coalesce(r.refused, 0) AS refused, r.refused_at,
       d.queued_upto, d.acked_upto, d.acked_at
FROM sites s
FULL JOIN points p ON p.site = s.site
LEFT JOIN (
    SELECT site, count(*) FILTER (WHERE conflict_epoch IS NOT NULL) AS conflicts,
           jsonb_object_agg(stream, contiguous_seq) AS confirmed_upto
    FROM progress GROUP BY site) g ON g.site = coalesce(s.site, p.site)
LEFT JOIN (
    SELECT site, sum(times) AS refused, max(last_at) AS refused_at
    FROM refused GROUP BY site) r ON r.site = coalesce(s.site, p.site)
LEFT JOIN down_progress d ON d.site = coalesce(s.site, p.site)
"""


@dataclass(frozen=True)
class PointFacts:
    site: str
    name: str | None = None
    province: str | None = None
    district: str | None = None
    online: bool | None = None  # the retained status says online (None: never said)
    status_at: datetime | None = None  # when the retained status last changed
    last_seen: datetime | None = None  # the last message central stored from it
    version: str | None = None
    config_hash: str | None = None
    telemetry_at: datetime | None = None  # when central stored the latest telemetry
    recorded_at: datetime | None = None  # the telemetry's own (station) time
    clock_synced: bool | None = None
    disk_free_mb: int | None = None
    disk_total_mb: int | None = None
    disk_low: bool | None = None
    mem_avail_mb: int | None = None
    mem_total_mb: int | None = None
    cpu_temp_c: float | None = None
    backlog: dict[str, int] = field(default_factory=dict)  # stream -> records waiting
    oldest_age_s: dict[str, float] = field(default_factory=dict)  # stream -> seconds
    last_confirmed_at: datetime | None = None
    scale: str | None = None  # the scale's status: stable, unstable, offline, ...
    printer: str | None = None  # the printer's status (ready, waiting, ...)
    paper: str | None = None  # ok, near_end, out, unknown
    camera: str | None = None
    link_month: str | None = None  # "2026-12"
    link_bytes: int | None = None  # this month, as the carrier bills them
    link_budget_bytes: int | None = None
    epoch_conflicts: int = 0  # uplink streams whose station database changed (epoch)
    down_foreign_epoch: bool = False  # the point refuses central's downlink epoch
    down_refused: int = 0  # downlink records the point refused
    ack_conflict: bool = False  # outbox.<stream>.ack_conflict_upto: acked beyond its seqs
    refused: int = 0  # uplink batches central refused (times)
    refused_at: datetime | None = None
    confirmed_upto: dict[str, int] = field(default_factory=dict)
    down_queued_upto: int = 0
    down_acked_upto: int = 0
    down_acked_at: datetime | None = None

    @property
    def backlog_total(self) -> int:
        return sum(self.backlog.values())

    @property
    def oldest_backlog_age_s(self) -> float | None:
        return max(self.oldest_age_s.values(), default=None)

    @property
    def budget_used(self) -> float | None:
        """This month's bytes over the monthly budget (0.8 = 80 %), None when unknown."""
        if not self.link_bytes or not self.link_budget_bytes:
            return None if self.link_budget_bytes is None else 0.0
        return self.link_bytes / self.link_budget_bytes


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except ValueError:
            return None
    return None


def _state(devices: Mapping[str, Any], name: str, key: str = "status") -> str | None:
    device = devices.get(name)
    if not isinstance(device, Mapping):
        return None
    value = device.get(key)
    return str(value) if value is not None else None


def point_facts(row: Mapping[str, Any]) -> PointFacts:
    """One row of :data:`FACTS_SQL` (or a dict shaped like it) as facts. Pure; any
    field of the telemetry or status that is missing or of the wrong type is None."""
    status = row.get("status") if isinstance(row.get("status"), Mapping) else {}
    tele = row.get("telemetry") if isinstance(row.get("telemetry"), Mapping) else {}
    assert isinstance(status, Mapping) and isinstance(tele, Mapping)
    outbox = tele.get("outbox") if isinstance(tele.get("outbox"), Mapping) else {}
    devices = tele.get("devices") if isinstance(tele.get("devices"), Mapping) else {}
    link = tele.get("link") if isinstance(tele.get("link"), Mapping) else {}
    down = tele.get("downlink") if isinstance(tele.get("downlink"), Mapping) else {}
    assert isinstance(outbox, Mapping) and isinstance(devices, Mapping)
    assert isinstance(link, Mapping) and isinstance(down, Mapping)
    backlog: dict[str, int] = {}
    ages: dict[str, float] = {}
    ack_conflict = any(
        isinstance(v, Mapping) and v.get("ack_conflict_upto") is not None for v in outbox.values()
    )
    for stream, value in outbox.items():
        if isinstance(value, Mapping):
            depth = _int(value.get("depth"))
            if depth is not None:
                backlog[str(stream)] = depth
            age = _float(value.get("oldest_age_s"))
            if age is not None:
                ages[str(stream)] = age
    state = status.get("state")
    confirmed = row.get("confirmed_upto") or {}
    return PointFacts(
        site=str(row["site"]),
        name=row.get("name"),
        province=row.get("province"),
        district=row.get("district"),
        online=None if state is None else state == "online",
        status_at=_time(row.get("status_at")),
        last_seen=_time(row.get("last_seen")),
        version=str(status.get("version") or tele.get("version") or "") or None,
        config_hash=str(status.get("config_hash") or "") or None,
        telemetry_at=_time(row.get("telemetry_at")),
        recorded_at=_time(tele.get("recorded_at")),
        clock_synced=tele.get("clock_synced")
        if isinstance(tele.get("clock_synced"), bool)
        else None,
        disk_free_mb=_int(tele.get("disk_free_mb")),
        disk_total_mb=_int(tele.get("disk_total_mb")),
        disk_low=_bool(tele.get("disk_low")),
        mem_avail_mb=_int(tele.get("mem_avail_mb")),
        mem_total_mb=_int(tele.get("mem_total_mb")),
        cpu_temp_c=_float(tele.get("cpu_temp_c")),
        backlog=backlog,
        oldest_age_s=ages,
        last_confirmed_at=_time(tele.get("last_confirmed_at")),
        scale=_state(devices, "scale"),
        printer=_state(devices, "printer"),
        paper=_state(devices, "printer", "paper"),
        camera=_state(devices, "camera"),
        link_month=str(link["month"]) if isinstance(link.get("month"), str) else None,
        link_bytes=_int(link.get("bytes")),
        link_budget_bytes=_int(link.get("budget_bytes")),
        epoch_conflicts=int(row.get("conflicts") or 0),
        down_foreign_epoch=bool(down.get("foreign_epoch")),
        down_refused=_int(down.get("refused")) or 0,
        ack_conflict=ack_conflict,
        refused=int(row.get("refused") or 0),
        refused_at=_time(row.get("refused_at")),
        confirmed_upto={str(k): int(v) for k, v in dict(confirmed).items()},
        down_queued_upto=int(row.get("queued_upto") or 0),
        down_acked_upto=int(row.get("acked_upto") or 0),
        down_acked_at=_time(row.get("acked_at")),
    )


def load_facts(db: ConsoleDb, site: str | None = None) -> list[PointFacts]:
    """Every point's facts (or one site's), ordered by site."""
    if site is None:
        rows = db.rows(FACTS_SQL + " ORDER BY 1")
    else:
        rows = db.rows(FACTS_SQL + " WHERE coalesce(s.site, p.site) = %s", (site,))
    return [point_facts(row) for row in rows]
