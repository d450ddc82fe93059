"""Record identity and the station's notion of time.

Ids are UUIDv7 (time-ordered, unique without coordination). Each record also
carries the boot id and the time since boot, because a Pi has no battery
clock: after a power cut without network its wall clock can be days wrong,
so ordering uses the per-site sequence number, never timestamps.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uuid6

Now = Callable[[], datetime]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_id(at: datetime | None = None) -> str:
    """A UUIDv7. With ``at``, its time part is ``at`` (to the millisecond), so a record's
    id and its ``recorded_at`` agree, which the batch encoding turns into 0 bytes; the
    74 random bits keep it unique."""
    if at is None:
        return str(uuid6.uuid7())
    ms = (at - _EPOCH) // timedelta(milliseconds=1)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | secrets.randbits(76)
    return str(uuid6.UUID(int=value, version=7))


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """UTC timestamp text with millisecond precision, e.g. 2026-11-23T10:38:12.123Z."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def uptime_s() -> float:
    """Seconds since boot (CLOCK_BOOTTIME counts time spent suspended too)."""
    return round(time.clock_gettime(time.CLOCK_BOOTTIME), 3)
