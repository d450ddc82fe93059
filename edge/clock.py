"""How far a record's wall time can be trusted.

A Raspberry Pi has no battery-backed clock: after a power cut without network its
wall clock can be days wrong until NTP (or chrony, or systemd-timesyncd) sets it.
Every record therefore carries, besides ``recorded_at``, the boot id, the time since
that boot, and whether the kernel considered the clock synchronised when the record
was taken. Central orders by (site, stream, seq), never by timestamps, and can
re-base the times of one boot once it has one trusted timestamp from that boot.

"Synchronised" is the kernel's own view, read with ``adjtimex(2)`` in read-only mode:
the clock is not synchronised when the call returns ``TIME_ERROR`` or the status word
has ``STA_UNSYNC`` set. NTP daemons clear ``STA_UNSYNC`` once they discipline the
clock; after a boot without network it stays set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from datetime import datetime
from typing import Any

from edge import ids

log = logging.getLogger(__name__)

TIME_ERROR = 5
"""adjtimex return value: the clock is not synchronised."""

STA_UNSYNC = 0x0040
"""adjtimex status bit: the clock is not synchronised."""


def synchronised(state: int, status: int) -> bool:
    """The kernel's verdict from adjtimex's return value and status word (pure)."""
    return state >= 0 and state != TIME_ERROR and not status & STA_UNSYNC


class _Timex(ctypes.Structure):
    """``struct timex`` from <sys/timex.h> (the layout glibc's ``adjtimex`` takes)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _adjtimex() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    func = libc.adjtimex
    func.argtypes = [ctypes.POINTER(_Timex)]
    func.restype = ctypes.c_int
    return func


def read_adjtimex() -> tuple[int, int]:
    """(return value, status word) of a read-only adjtimex call; (-1, 0) if unavailable."""
    try:
        func = _adjtimex()
    except (OSError, AttributeError) as exc:
        log.warning("adjtimex is not available (%s): treating the clock as not synchronised", exc)
        return -1, 0
    buf = _Timex()  # modes = 0: read only, no privilege needed
    state = int(func(ctypes.byref(buf)))
    return state, int(buf.status)


def clock_synced() -> bool:
    """Whether the kernel considers the wall clock synchronised right now."""
    return synchronised(*read_adjtimex())


@functools.cache
def boot_id() -> str:
    """This boot's id (/proc/sys/kernel/random/boot_id), read once per process."""
    return ids.boot_id()


def stamp(now: datetime) -> dict[str, Any]:
    """The time fields every record carries, for a record taken at ``now``."""
    return {
        "recorded_at": ids.iso(now),
        "boot_id": boot_id(),
        "uptime_s": ids.uptime_s(),
        "clock_synced": clock_synced(),
    }
