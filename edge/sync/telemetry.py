"""Fleet telemetry: one small record describing the station's health right now.

:func:`collect` gathers it from injectable sources (files under ``/proc`` and
``/sys``, callables for the software's own state) into a compact, JSON-ready
dict of record type ``telemetry``. Every source may be missing or broken on a
given board: a file that is absent or malformed, or a callable that raises,
gives ``null`` for its fields (and, for a raising callable, a short note under
``errors``), never an exception, so telemetry can never stop the link.

The parsers (:func:`parse_meminfo`, :func:`parse_uptime`, :func:`pick_cpu_temp`)
are pure functions of the files' text. :class:`TelemetryTimer` decides when the
next record is due, on a monotonic clock.

Fields (``null`` when unknown):

================== ===========================================================
``type``           ``"telemetry"``
``recorded_at``    wall time (UTC ISO, ms) when collected
``boot_id``        the kernel's boot id (changes on every boot)
``uptime_s``       seconds since boot, 0.1 s
``clock_synced``   the wall clock was synchronised (NTP) when collected
``version``        the station software's version
``disk_free_mb``   free MiB on the database's file system (as the outbox's disk check)
``disk_total_mb``  size of that file system
``disk_low``       free space below ``[storage] min_free_mb``
``mem_avail_mb``   MemAvailable from /proc/meminfo
``mem_total_mb``   MemTotal
``cpu_temp_c``     CPU temperature, 0.1 °C, from the CPU's thermal zone
``outbox``         per stream: ``{"depth": rows waiting, "oldest_age_s": s}`` (and
                   ``refused``: records central refused, when there are)
``last_confirmed_at`` wall time central last confirmed a batch
``devices``        ``{"scale": {...}, "printer": {...}, "camera": {...}}``
``link``           ``{"month": "YYYY-MM", "bytes": this month's bytes as the carrier bills
                   them, "budget_bytes": the monthly budget (null: none)}`` (when the
                   station gives a ``link`` source)
``link_plaintext`` only when the link runs plain MQTT (no TLS) to a broker on another
                   machine (``[mqtt] insecure_plaintext``): ``true``
``upgrade``        only after an upgrade (deploy/ansible's edge-upgrade writes
                   ``upgrade-status.json`` beside the database): ``{"outcome": "upgraded" |
                   "rolled_back" | "rollback_unhealthy" | "unhealthy" | "switched", "from",
                   "to", "at", "database_restored", "seconds"}``
``errors``         only when a source failed: ``{source: "Type: message"}``
================== ===========================================================
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from edge.ids import iso, parse_iso

log = logging.getLogger(__name__)

RECORD_TYPE = "telemetry"
MIB = 1024 * 1024
"""Disk and memory are reported in MiB, like ``[storage] min_free_mb`` and ``free -m``."""
MAX_TEXT = 200
"""Strings in device states are cut to this many characters: telemetry stays small."""
MAX_DEPTH = 4
"""Nesting kept in device states; deeper values become null."""

CPU_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "soc-thermal", "soc_thermal", "x86_pkg_temp")
"""Thermal zone types that measure the CPU, best first (Raspberry Pi: ``cpu-thermal``)."""
_CPU_ZONE_PATTERN = re.compile(r"cpu|soc", re.IGNORECASE)
"""Any other zone type naming the CPU or SoC, after the known ones."""


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


# -- pure parsers ---------------------------------------------------------------------------


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as {field: bytes}; lines that do not parse are skipped.

    >>> parse_meminfo("MemTotal:  1000 kB\\nMemAvailable: 500 kB\\n")
    {'MemTotal': 1024000, 'MemAvailable': 512000}
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not name.strip() or not parts or not parts[0].isdigit():
            continue
        value = int(parts[0])
        if len(parts) > 1:
            unit = parts[1].lower()
            if unit != "kb":
                continue  # the kernel writes kB only; anything else is not understood
            value *= 1024
        out[name.strip()] = value
    return out


def parse_uptime(text: str) -> float | None:
    """Seconds since boot from ``/proc/uptime`` ("12345.67 54321.00"), or None."""
    parts = text.split()
    if not parts:
        return None
    try:
        value = float(parts[0])
    except ValueError:
        return None
    if not (value >= 0 and value != float("inf")):  # also rejects nan
        return None
    return value


def parse_thermal_temp(text: str) -> float | None:
    """A thermal zone's ``temp`` (millidegrees Celsius) in °C, or None when implausible."""
    try:
        milli = int(text.strip())
    except ValueError:
        return None
    celsius = milli / 1000
    if not -40 <= celsius <= 150:
        return None  # a disconnected sensor reads e.g. -273150 or 2^31
    return celsius


def pick_cpu_temp(zones: Iterable[tuple[str, str]]) -> float | None:
    """The CPU temperature from (zone type, temp text) pairs, or None.

    Zones of the known CPU types win in :data:`CPU_ZONE_TYPES` order, then any
    zone whose type names the CPU or SoC. Zones of other kinds (battery, Wi-Fi,
    ACPI) are not reported as the CPU's.
    """
    readings: list[tuple[int, float]] = []
    for zone_type, temp_text in zones:
        kind = zone_type.strip().lower()
        if kind in CPU_ZONE_TYPES:
            rank = CPU_ZONE_TYPES.index(kind)
        elif _CPU_ZONE_PATTERN.search(kind):
            rank = len(CPU_ZONE_TYPES)
        else:
            continue
        celsius = parse_thermal_temp(temp_text)
        if celsius is not None:
            readings.append((rank, celsius))
    if not readings:
        return None
    return min(readings, key=lambda r: r[0])[1]


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy: enums by value, datetimes as ISO, dataclasses as dicts,
    tuples and sets as lists, long strings cut to :data:`MAX_TEXT`."""
    if depth > MAX_DEPTH:
        return None
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value, depth)
    if isinstance(value, float):
        return round(value, 3) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Path):
        return str(value)[:MAX_TEXT]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k)[:MAX_TEXT]: jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)[:MAX_TEXT]


def _fields(value: Any) -> Mapping[str, Any] | None:
    """A mapping, or a dataclass instance's fields (the outbox's ``StreamStatus``)."""
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def outbox_summary(status: Mapping[str, Any], now: datetime) -> dict[str, dict[str, Any]]:
    """Per stream ``{"depth", "oldest_age_s"}`` (plus ``ack_conflict_upto`` when central
    acknowledged seqs this station never assigned, and ``refused`` when central refused
    records for good) from the outbox's status.

    ``status`` maps a stream name to a mapping or dataclass (the outbox's
    ``stream_status()``) with ``depth`` (or ``pending``) and the oldest waiting
    row's age as ``oldest_age_s`` or its time as ``oldest_at`` (datetime or ISO
    text). Unknown or malformed values give null.
    """
    out: dict[str, dict[str, Any]] = {}
    for stream, value in status.items():
        info = _fields(value)
        if info is None:
            continue
        depth = info.get("depth", info.get("pending"))
        age: float | None = None
        if isinstance(info.get("oldest_age_s"), int | float):
            age = float(info["oldest_age_s"])
        else:
            oldest = info.get("oldest_at")
            when = _as_datetime(oldest)
            if when is not None:
                age = (now - when).total_seconds()
        out[str(stream)] = {
            "depth": depth if isinstance(depth, int) and not isinstance(depth, bool) else None,
            "oldest_age_s": None if age is None else max(0, round(age)),
        }
        conflict = info.get("ack_conflict_upto")
        if isinstance(conflict, int) and not isinstance(conflict, bool):
            # central acked seqs this station never assigned: operations must act
            out[str(stream)]["ack_conflict_upto"] = conflict
        refused = info.get("refused")
        if isinstance(refused, int) and not isinstance(refused, bool) and refused > 0:
            # records central refused for good (kept here, not sent again)
            out[str(stream)]["refused"] = refused
    return out


def latest_confirmed(status: Mapping[str, Any]) -> datetime | None:
    """The newest ``last_confirmed_at`` over the streams of the outbox's status."""
    times = []
    for value in status.values():
        info = _fields(value)
        when = _as_datetime(info.get("last_confirmed_at")) if info is not None else None
        if when is not None:
            times.append(when)
    return max(times, default=None)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str):
        try:
            parsed = parse_iso(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


# -- readers (tiny I/O with injected paths) --------------------------------------------------


def software_version() -> str:
    """The installed distribution's version, else the package's ``__version__``."""
    try:
        return metadata.version("edge-station")
    except metadata.PackageNotFoundError:
        from edge import __version__

        return __version__


def kernel_clock_synced() -> bool:
    """The kernel's view of the wall clock (edge.clock, adjtimex)."""
    from edge.clock import clock_synced

    return clock_synced()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_thermal_zones(root: Path) -> list[tuple[str, str]]:
    """(type, temp text) of every readable ``thermal_zone*`` under ``root``."""
    zones = []
    try:
        entries = sorted(root.glob("thermal_zone*"))
    except OSError:
        return []
    for zone in entries:
        kind, temp = _read_text(zone / "type"), _read_text(zone / "temp")
        if kind is not None and temp is not None:
            zones.append((kind, temp))
    return zones


UPGRADE_STATUS = "upgrade-status.json"
"""Written beside the station database by edge-upgrade (deploy/ansible) after each
upgrade or rollback; its outcome goes into telemetry as ``upgrade``."""
_UPGRADE_FIELDS = ("outcome", "from", "to", "at", "database_restored", "seconds")


def read_upgrade_status(path: Path) -> dict[str, Any] | None:
    """The last upgrade's outcome from edge-upgrade's status file, None when there is
    none; a malformed file gives ``{"outcome": "unreadable"}``."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"outcome": "unreadable"}
    if not isinstance(data, dict):
        return {"outcome": "unreadable"}
    out: dict[str, Any] = {}
    for key in _UPGRADE_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            out[key] = value[:MAX_TEXT]
        elif value is None or isinstance(value, (bool, int, float)):
            out[key] = value
    return out


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the database may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


@dataclass(frozen=True)
class Sources:
    """Where :func:`collect` reads from; every part can be replaced in tests.

    The callables are the station's: ``clock_synced`` (default: the kernel's
    view, edge.clock), ``outbox`` (per-stream status, e.g. the outbox's
    ``stream_status``, see :func:`outbox_summary`), ``last_confirmed`` (the
    time of the last central acknowledgement; default: the newest
    ``last_confirmed_at`` in the outbox status) and ``devices`` (one small dict
    per device, e.g. ``{"status": "online", "error": None}``). ``link_plaintext``:
    the link runs without TLS to another machine (said in every record). ``link``
    (the time of the record -> the month's bytes against the budget, e.g.
    ``{"month": "2026-12", "bytes": 12_345_678, "budget_bytes": 100_000_000}``).
    """

    storage_path: Path = Path("var/station.db")
    min_free_mb: int = 200
    proc: Path = Path("/proc")
    thermal: Path = Path("/sys/class/thermal")
    version: Callable[[], str] = software_version
    clock_synced: Callable[[], bool | None] | None = kernel_clock_synced
    outbox: Callable[[], Mapping[str, Any]] | None = None
    last_confirmed: Callable[[], datetime | str | None] | None = None
    devices: Callable[[], Mapping[str, Any]] | None = None
    link_plaintext: bool = False
    link: Callable[[datetime], Mapping[str, Any]] | None = None
    disk_usage: Callable[[Path], DiskUsage] = field(
        default=lambda p: DiskUsage(*shutil.disk_usage(p))
    )


def _call(name: str, fn: Callable[[], Any] | None, errors: dict[str, str]) -> Any:
    if fn is None:
        return None
    try:
        return fn()
    except Exception as exc:  # a broken source must not stop telemetry
        errors[name] = f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
        return None


def collect(now: datetime, sources: Sources) -> dict[str, Any]:
    """One telemetry record (see the module's field table); never raises for a bad source."""
    errors: dict[str, str] = {}
    proc = sources.proc
    boot = _read_text(proc / "sys" / "kernel" / "random" / "boot_id")
    uptime_text = _read_text(proc / "uptime")
    uptime = parse_uptime(uptime_text) if uptime_text is not None else None
    mem = parse_meminfo(_read_text(proc / "meminfo") or "")

    disk: DiskUsage | None = _call(
        "disk", lambda: sources.disk_usage(_existing(sources.storage_path)), errors
    )
    synced = _call("clock", sources.clock_synced, errors)
    outbox = _call("outbox", sources.outbox, errors)
    confirmed = _call("last_confirmed", sources.last_confirmed, errors)
    if sources.last_confirmed is None and isinstance(outbox, Mapping):
        confirmed = latest_confirmed(outbox)
    devices = _call("devices", sources.devices, errors)
    version = _call("version", sources.version, errors)
    link_fn = sources.link
    link = _call("link", (lambda: link_fn(now)) if link_fn is not None else None, errors)

    record: dict[str, Any] = {
        "type": RECORD_TYPE,
        "recorded_at": iso(now),
        "boot_id": (boot or "").strip() or None,
        "uptime_s": round(uptime, 1) if uptime is not None else None,
        "clock_synced": synced if isinstance(synced, bool) else None,
        "version": str(version)[:MAX_TEXT] if version is not None else None,
        "disk_free_mb": disk.free // MIB if disk is not None else None,
        "disk_total_mb": disk.total // MIB if disk is not None else None,
        "disk_low": disk.free < sources.min_free_mb * MIB if disk is not None else None,
        "mem_avail_mb": mem["MemAvailable"] // MIB if "MemAvailable" in mem else None,
        "mem_total_mb": mem["MemTotal"] // MIB if "MemTotal" in mem else None,
        "cpu_temp_c": _round1(pick_cpu_temp(read_thermal_zones(sources.thermal))),
        "outbox": outbox_summary(outbox, now) if isinstance(outbox, Mapping) else None,
        "last_confirmed_at": _confirmed_iso(confirmed),
        "devices": jsonable(devices) if isinstance(devices, Mapping) else None,
    }
    if sources.link is not None:
        record["link"] = jsonable(link) if isinstance(link, Mapping) else None
    if sources.link_plaintext:
        record["link_plaintext"] = True  # central must see an unencrypted station
    upgrade = read_upgrade_status(sources.storage_path.parent / UPGRADE_STATUS)
    if upgrade is not None:
        record["upgrade"] = upgrade
    if errors:
        record["errors"] = errors
        log.debug("telemetry sources failed: %s", errors)
    return record


def _round1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _confirmed_iso(value: Any) -> str | None:
    when = _as_datetime(value)
    return iso(when) if when is not None else None


class TelemetryTimer:
    """When the next telemetry record is due, on a monotonic clock (seconds).

    The first is due at once (central learns the station is up); then one every
    ``every_s``. :meth:`due` takes an optional longer interval, e.g. the budget
    policy's daily spacing when the month's bytes are nearly spent.
    """

    def __init__(self, every_s: float) -> None:
        if every_s <= 0:
            raise ValueError(f"telemetry interval must be positive, got {every_s}")
        self.every_s = every_s
        self.last_at: float | None = None

    def next_due(self, every_s: float | None = None) -> float | None:
        """Monotonic time the next one is due; None = now (none taken yet)."""
        if self.last_at is None:
            return None
        return self.last_at + max(self.every_s, every_s or 0.0)

    def due(self, now: float, every_s: float | None = None) -> bool:
        due_at = self.next_due(every_s)
        return due_at is None or now >= due_at

    def taken(self, now: float) -> None:
        """A record was collected (and queued) at ``now``."""
        self.last_at = now

    def seconds_left(self, now: float, every_s: float | None = None) -> float:
        due_at = self.next_due(every_s)
        return 0.0 if due_at is None else max(0.0, due_at - now)
