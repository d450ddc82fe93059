"""What keeps one station from stalling ingest for the others.

- :class:`Rejections`: every message ingest will not store (undecodable, beyond the
  limits, invalid, refused by the database, from a station database central cannot
  place) is counted per site and reason, logged once per site and reason and then
  at most once a minute with how many more came, and a site with
  :data:`GARBAGE_COUNT` rejections within :data:`GARBAGE_WINDOW_S` is flagged as
  sending garbage (GET /status ``rejected_by_site``).
- :class:`FairQueue`: the messages waiting to be decoded, one queue per site, taken
  in turn (round robin), so a site that floods waits behind itself, not the others;
  a flagged site may have at most :data:`FLAGGED_QUEUE` messages waiting, and what
  it sends beyond that is dropped unread (counted as ``shed``, PUBACKed: the broker
  never holds the receive window for it).

Counts are this process's since it started, like the rest of ``ingest`` in GET
/status; several ingest processes each count what they received.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from edge.ids import iso, utc_now

log = logging.getLogger("edge.central.ingest")

LOG_EVERY_S = 60.0
"""After the first rejection of a site and reason is logged, the next line for them
comes at most this often and says how many were not logged meanwhile."""
GARBAGE_COUNT = 5
GARBAGE_WINDOW_S = 600.0
"""A site is flagged as sending garbage while it had :data:`GARBAGE_COUNT` rejected
messages within this many seconds."""
FLAGGED_QUEUE = 2
"""Messages of a flagged site waiting to be decoded, at most; more are shed."""
MAX_DETAIL = 500


def printable(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` safe to log and store anywhere: no NUL, no lone surrogate (escaped),
    at most ``limit`` characters."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


@dataclass
class _Reason:
    count: int = 0
    unlogged: int = 0
    logged_at: float | None = None
    detail: str = ""
    at: str = ""


@dataclass
class _Site:
    reasons: dict[str, _Reason] = field(default_factory=dict)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=GARBAGE_COUNT))
    last_reason: str = ""


class Rejections:
    """Per site: rejected messages by reason, the latest of each, a rate-limited log
    and the garbage flag. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sites: dict[str, _Site] = {}

    def note(self, site: str, reason: str, detail: str, level: int = logging.WARNING) -> None:
        """Count one rejected message of ``site``; log ``site <site>: <detail>
        [<reason>]`` if nothing was logged for this site and reason within
        :data:`LOG_EVERY_S` (with how many were not)."""
        now = self._clock()
        detail = printable(detail)
        with self._lock:
            state = self._sites.setdefault(site, _Site())
            entry = state.reasons.setdefault(reason, _Reason())
            entry.count += 1
            entry.detail = detail
            entry.at = iso(utc_now())
            state.recent.append(now)
            state.last_reason = reason
            if entry.logged_at is not None and now - entry.logged_at < LOG_EVERY_S:
                entry.unlogged += 1
                return
            unlogged, entry.unlogged, entry.logged_at = entry.unlogged, 0, now
        more = f" ({unlogged} more of these since the last report)" if unlogged else ""
        log.log(level, "site %s: %s [%s]%s", site, detail, reason, more)

    def flush(self) -> None:
        """Log what was not logged for a site and reason whose minute has passed."""
        now = self._clock()
        lines: list[tuple[str, str, int, str]] = []
        with self._lock:
            for site, state in self._sites.items():
                for reason, entry in state.reasons.items():
                    due = entry.logged_at is None or now - entry.logged_at >= LOG_EVERY_S
                    if entry.unlogged and due:
                        lines.append((site, reason, entry.unlogged, entry.detail))
                        entry.unlogged, entry.logged_at = 0, now
        for site, reason, count, detail in lines:
            log.warning(
                "site %s: %d more messages rejected [%s] in the last minute; latest: %s",
                site,
                count,
                reason,
                detail,
            )

    def flagged(self, site: str) -> bool:
        """The site had :data:`GARBAGE_COUNT` rejections within :data:`GARBAGE_WINDOW_S`."""
        with self._lock:
            state = self._sites.get(site)
            if state is None or len(state.recent) < GARBAGE_COUNT:
                return False
            return self._clock() - state.recent[0] <= GARBAGE_WINDOW_S

    def count(self, site: str, reason: str | None = None) -> int:
        with self._lock:
            state = self._sites.get(site)
            if state is None:
                return 0
            if reason is None:
                return sum(e.count for e in state.reasons.values())
            entry = state.reasons.get(reason)
            return entry.count if entry else 0

    def snapshot(self) -> dict[str, Any]:
        """GET /status ``rejected_by_site``: per site ``{"total", "by_reason",
        "garbage", "last": {"reason", "detail", "at"}}``."""
        now = self._clock()
        out: dict[str, Any] = {}
        with self._lock:
            for site in sorted(self._sites):
                state = self._sites[site]
                last = state.reasons[state.last_reason]
                garbage = len(state.recent) >= GARBAGE_COUNT and (
                    now - state.recent[0] <= GARBAGE_WINDOW_S
                )
                out[site] = {
                    "total": sum(e.count for e in state.reasons.values()),
                    "by_reason": {r: e.count for r, e in sorted(state.reasons.items())},
                    "garbage": garbage,
                    "last": {"reason": state.last_reason, "detail": last.detail, "at": last.at},
                }
        return out


class HasSite(Protocol):
    @property
    def site(self) -> str: ...


T = TypeVar("T", bound=HasSite)


class FairQueue(Generic[T]):
    """Items queued per site and taken in turn: each :meth:`take` goes round the
    sites with something waiting, one item from each, until it has ``limit``."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._sites: dict[str, deque[T]] = {}
        self._ring: deque[str] = deque()  # sites with something waiting, next first

    def put(self, item: T) -> None:
        with self._cv:
            self._add(item, front=False)
            self._cv.notify()

    def put_back(self, items: Iterable[T]) -> None:
        """Items taken but not handled now: first again, in their order, per site."""
        with self._cv:
            for item in reversed(list(items)):
                self._add(item, front=True)
            self._cv.notify()

    def _add(self, item: T, front: bool) -> None:
        waiting = self._sites.get(item.site)
        if waiting is None:
            waiting = self._sites[item.site] = deque()
        if not waiting:
            if front:
                self._ring.appendleft(item.site)
            else:
                self._ring.append(item.site)
        if front:
            waiting.appendleft(item)
        else:
            waiting.append(item)

    def waiting(self, site: str) -> int:
        with self._cv:
            queued = self._sites.get(site)
            return len(queued) if queued else 0

    def __len__(self) -> int:
        with self._cv:
            return sum(len(q) for q in self._sites.values())

    def take(self, limit: int, timeout: float) -> list[T]:
        """Up to ``limit`` items, one site at a time in turn; [] after ``timeout``
        seconds with nothing queued."""
        with self._cv:
            if not self._ring and not self._cv.wait_for(lambda: bool(self._ring), timeout):
                return []
            out: list[T] = []
            while self._ring and len(out) < limit:
                site = self._ring.popleft()
                waiting = self._sites[site]
                out.append(waiting.popleft())
                if waiting:
                    self._ring.append(site)
                else:
                    del self._sites[site]
            return out
