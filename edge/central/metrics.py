"""The fleet as Prometheus gauges: a custom collector over every point's facts (one query,
:func:`edge.central.console.facts.load_facts`) and the open alerts, on a registry of its
own (never the process-wide one). Base units: bytes, seconds, degrees Celsius.

Every per-point series carries ``site`` and ``province`` (empty when the point is not
registered by name), so a dashboard can filter by province on any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.central.alerts import AlertRules, open_alerts
from edge.central.console.db import ConsoleDb
from edge.central.console.facts import PointFacts, load_facts

MB = 1024 * 1024  # the station's *_mb fields are MiB

# device -> statuses that mean it is not working (other statuses: working)
DEVICE_FAULTS: dict[str, frozenset[str]] = {
    "scale": frozenset({"offline"}),
    "printer": frozenset({"offline", "paper_out", "cover_open", "error"}),
    "camera": frozenset({"no_device", "error"}),
}

Value = Callable[[PointFacts], float | None]

# name -> (help, value of one point); None: no sample for that point
POINT_GAUGES: dict[str, tuple[str, Value]] = {
    "edge_point_online": (
        "1 when the point's retained status says online, else 0",
        lambda p: 1.0 if p.online else 0.0,
    ),
    "edge_point_last_seen_timestamp_seconds": (
        "When central last stored a message from the point (Unix time)",
        lambda p: p.last_seen.timestamp() if p.last_seen else None,
    ),
    "edge_point_telemetry_timestamp_seconds": (
        "When central stored the point's latest telemetry (Unix time)",
        lambda p: p.telemetry_at.timestamp() if p.telemetry_at else None,
    ),
    "edge_point_disk_free_bytes": (
        "Free bytes on the station database's file system",
        lambda p: None if p.disk_free_mb is None else float(p.disk_free_mb * MB),
    ),
    "edge_point_disk_total_bytes": (
        "Size of that file system in bytes",
        lambda p: None if p.disk_total_mb is None else float(p.disk_total_mb * MB),
    ),
    "edge_point_disk_low": (
        "1 when the station reports its disk low",
        lambda p: None if p.disk_low is None else float(p.disk_low),
    ),
    "edge_point_memory_available_bytes": (
        "MemAvailable of the station",
        lambda p: None if p.mem_avail_mb is None else float(p.mem_avail_mb * MB),
    ),
    "edge_point_memory_total_bytes": (
        "MemTotal of the station",
        lambda p: None if p.mem_total_mb is None else float(p.mem_total_mb * MB),
    ),
    "edge_point_cpu_temperature_celsius": ("CPU temperature", lambda p: p.cpu_temp_c),
    "edge_point_clock_synced": (
        "1 when the station's clock was synchronised (NTP)",
        lambda p: None if p.clock_synced is None else float(p.clock_synced),
    ),
    "edge_point_link_month_bytes": (
        "This month's link bytes as the carrier bills them",
        lambda p: None if p.link_bytes is None else float(p.link_bytes),
    ),
    "edge_point_link_budget_bytes": (
        "The link's monthly budget in bytes",
        lambda p: None if p.link_budget_bytes is None else float(p.link_budget_bytes),
    ),
    "edge_point_epoch_conflicts": (
        "Uplink streams whose station database changed (epoch conflict)",
        lambda p: float(p.epoch_conflicts),
    ),
    "edge_point_ack_conflict": (
        "1 when central acknowledged beyond a stream's seqs (ack conflict)",
        lambda p: float(p.ack_conflict),
    ),
    "edge_point_down_foreign_epoch": (
        "1 when the point refuses central's downlink epoch",
        lambda p: float(p.down_foreign_epoch),
    ),
    "edge_point_refused_batches": (
        "Uplink batches central refused (times)",
        lambda p: float(p.refused),
    ),
    "edge_point_down_refused_records": (
        "Downlink records the point refused",
        lambda p: float(p.down_refused),
    ),
    "edge_point_down_unacked_records": (
        "Downlink records queued for the point and not yet acknowledged",
        lambda p: float(max(0, p.down_queued_upto - p.down_acked_upto)),
    ),
}


def _where(p: PointFacts) -> list[str]:
    return [p.site, p.province or ""]


class FleetCollector(Collector):
    """Reads the facts and the open alerts on every scrape (one query each)."""

    def __init__(self, db: ConsoleDb, rules: AlertRules) -> None:
        self.db = db
        self.rules = rules

    def describe(self) -> Iterable[Any]:
        return []  # collected only on scrape: registering reads nothing

    def collect(self) -> Iterator[GaugeMetricFamily]:
        facts = load_facts(self.db)
        yield from point_families(facts)
        yield from alert_families(open_alerts(self.db), self.rules)


def point_families(facts: list[PointFacts]) -> Iterator[GaugeMetricFamily]:
    labels = ["site", "province"]
    for name, (help_text, value) in POINT_GAUGES.items():
        family = GaugeMetricFamily(name, help_text, labels=labels)
        for p in facts:
            v = value(p)
            if v is not None:
                family.add_metric(_where(p), v)
        yield family
    backlog = GaugeMetricFamily(
        "edge_point_backlog_records",
        "Records waiting in the point's outbox, per stream",
        labels=[*labels, "stream"],
    )
    age = GaugeMetricFamily(
        "edge_point_oldest_backlog_age_seconds",
        "Age of the oldest record waiting, per stream",
        labels=[*labels, "stream"],
    )
    device = GaugeMetricFamily(
        "edge_point_device_ok",
        "1 when the device works (scale online, printer ready with paper, camera present)",
        labels=[*labels, "device"],
    )
    info = GaugeMetricFamily(
        "edge_point_info",
        "The point's software version and config hash (always 1)",
        labels=[*labels, "name", "version", "config_hash"],
    )
    for p in facts:
        where = _where(p)
        for stream, depth in sorted(p.backlog.items()):
            backlog.add_metric([*where, stream], float(depth))
        for stream, seconds in sorted(p.oldest_age_s.items()):
            age.add_metric([*where, stream], seconds)
        for name, status in (("scale", p.scale), ("printer", p.printer), ("camera", p.camera)):
            if status is None or (name == "camera" and status == "none"):
                continue
            faulty = status in DEVICE_FAULTS[name] or (name == "printer" and p.paper == "out")
            device.add_metric([*where, name], 0.0 if faulty else 1.0)
        info.add_metric([*where, p.name or "", p.version or "", p.config_hash or ""], 1.0)
    yield from (backlog, age, device, info)


def alert_families(rows: list[dict[str, Any]], rules: AlertRules) -> Iterator[GaugeMetricFamily]:
    active = GaugeMetricFamily(
        "edge_alert_active",
        "1 for each open alert (site, rule)",
        labels=["site", "province", "rule", "severity"],
    )
    counts: dict[tuple[str, str], int] = {
        (rule, rules.rule(rule).severity): 0 for rule in rules.enabled()
    }
    for row in rows:
        where = [row["site"], row["province"] or ""]
        active.add_metric([*where, row["rule"], row["severity"]], 1.0)
        key = (row["rule"], row["severity"])
        counts[key] = counts.get(key, 0) + 1
    yield active
    total = GaugeMetricFamily(
        "edge_alerts_open", "Open alerts per rule and severity", labels=["rule", "severity"]
    )
    for (rule, severity), n in sorted(counts.items()):
        total.add_metric([rule, severity], float(n))
    yield total


def fleet_registry(db: ConsoleDb, rules: AlertRules) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(db, rules))
    return registry


def scrape(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (0.0.4) of ``registry``."""
    return generate_latest(registry)
