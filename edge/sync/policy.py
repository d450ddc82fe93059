"""When the link may be used, and for what: back-off, schedule and byte budget.

:class:`LinkPolicy` is pure: it is built from ``[mqtt]`` and answers questions
from numbers the link worker passes in (monotonic seconds, counts, bytes). It
never reads a clock or the database itself, so every rule is tested with
plain numbers.

Back-off (``reconnect_min_s`` .. ``reconnect_max_s``)
    After each failed connection attempt the next delay grows exponentially,
    with jitter so a fleet does not reconnect in step after a broker restart.
    ``full``: uniform between ``min`` and ``min * 2^n`` (capped at ``max``);
    ``decorrelated``: uniform between ``min`` and three times the previous
    delay (capped). Every delay lies within [min, max]. A successful connection
    resets it.

Schedule (``connect_every_min``, ``connect_backlog``)
    ``connect_every_min = 0``: stay connected (the default). Otherwise the
    station connects at start, then every N minutes, or earlier as soon as the
    ``records`` stream has ``connect_backlog`` rows waiting (``0``: never
    early). It may disconnect once everything it is allowed to send has gone
    out, every publish has its PUBACK and central has confirmed every sent
    batch, or when central stays silent for ``ack_timeout_s`` (those rows are
    sent again in the next window).

Monthly byte budget (``monthly_budget_mb``, MB = 10^6 bytes, UTC months)
    ``0``: no budget. Otherwise, with *used* = bytes sent plus received this
    month (edge.sync.usage):

    =============== ============================================================
    used < 80 %     everything (``normal``)
    80 % .. 95 %    records and telemetry; bulk held back (``saving``)
    >= 95 %         records always; telemetry at most once a day (``critical``)
    =============== ============================================================

    Records are never held back, even past 100 %: they are the collection
    point's business and central must receive them; the budget is a target for
    the optional traffic, not a cut-off. One telemetry record a day (about
    0.5 kB) still tells operations the station is alive and over budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from edge.config import MqttConfig
from edge.worker import Backoff

MB = 1_000_000
BULK_BELOW = 0.80
"""Bulk streams flow only while less than this share of the month's budget is used."""
TELEMETRY_BELOW = 0.95
"""From this share on, telemetry is limited to one record every :data:`DAY_S`."""
DAY_S = 86_400.0

RECORDS = "records"
TELEMETRY = "telemetry"
BULK = "bulk"

Jitter = Literal["full", "decorrelated"]


class LinkBackoff(Backoff):
    """Capped exponential reconnect back-off with jitter, within [min_s, max_s].

    A :class:`edge.worker.Backoff`, so it can also drive a supervised worker.
    Deterministic when given a seeded ``random.Random``.
    """

    def __init__(
        self,
        min_s: float,
        max_s: float,
        rng: random.Random | None = None,
        jitter: Jitter = "full",
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"back-off needs 0 < min_s <= max_s, got {min_s} and {max_s}")
        if jitter not in ("full", "decorrelated"):
            raise ValueError(f"jitter must be 'full' or 'decorrelated', not {jitter!r}")
        super().__init__(base_s=min_s, cap_s=max_s, rng=rng)
        self.jitter: Jitter = jitter
        self._previous = min_s

    def next_delay(self) -> float:
        self.failures += 1
        if self.jitter == "full":
            ceiling = min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 60))
        else:
            ceiling = min(self.cap_s, self._previous * 3)
        delay = min(self.cap_s, max(self.base_s, self._rng.uniform(self.base_s, ceiling)))
        self._previous = delay
        return delay

    def reset(self) -> None:
        super().reset()
        self._previous = self.base_s


class BudgetLevel(StrEnum):
    UNLIMITED = "unlimited"
    """No budget configured."""
    NORMAL = "normal"
    """Below 80 %: every stream."""
    SAVING = "saving"
    """80 % to 95 %: bulk held back."""
    CRITICAL = "critical"
    """95 % and over: records, and telemetry at most once a day."""


@dataclass(frozen=True)
class Allowance:
    """What the month's budget allows now."""

    level: BudgetLevel
    telemetry_every_s: float
    """Spacing of telemetry records at this level (pass to TelemetryTimer.due)."""
    used_fraction: float | None
    """Bytes used / budget; None without a budget."""

    def allows(self, stream: str) -> bool:
        """Records always; telemetry below ``critical`` or rate-limited within it (the
        caller creates telemetry no more often than ``telemetry_every_s``); any other
        stream is bulk: only at ``normal`` or without a budget."""
        if stream in (RECORDS, TELEMETRY):
            return True
        return self.level in (BudgetLevel.UNLIMITED, BudgetLevel.NORMAL)

    @property
    def streams(self) -> frozenset[str]:
        """The known streams this allowance lets through, for logging and status."""
        return frozenset(s for s in (RECORDS, TELEMETRY, BULK) if self.allows(s))


def allowed_streams(
    bytes_used_this_month: int, monthly_budget_mb: float, telemetry_every_s: float = 300.0
) -> Allowance:
    """The budget's verdict for ``bytes_used_this_month`` (see the module's table)."""
    if bytes_used_this_month < 0:
        raise ValueError(f"bytes used cannot be negative, got {bytes_used_this_month}")
    if monthly_budget_mb < 0 or math.isnan(monthly_budget_mb):
        raise ValueError(f"monthly budget must be >= 0 MB, got {monthly_budget_mb}")
    if monthly_budget_mb == 0:
        return Allowance(BudgetLevel.UNLIMITED, telemetry_every_s, None)
    used = bytes_used_this_month / (monthly_budget_mb * MB)
    if used >= TELEMETRY_BELOW:
        return Allowance(BudgetLevel.CRITICAL, max(telemetry_every_s, DAY_S), used)
    if used >= BULK_BELOW:
        return Allowance(BudgetLevel.SAVING, telemetry_every_s, used)
    return Allowance(BudgetLevel.NORMAL, telemetry_every_s, used)


class LinkPolicy:
    """Back-off, schedule and budget from ``[mqtt]``; times are monotonic seconds."""

    def __init__(
        self,
        cfg: MqttConfig,
        rng: random.Random | None = None,
        jitter: Jitter = "full",
    ) -> None:
        self.cfg = cfg
        self._rng = rng or random.Random()
        self.jitter: Jitter = jitter

    # -- back-off --------------------------------------------------------------------------

    def backoff(self) -> LinkBackoff:
        """A fresh back-off for reconnecting (one per link worker)."""
        return LinkBackoff(
            self.cfg.reconnect_min_s, self.cfg.reconnect_max_s, self._rng, self.jitter
        )

    # -- schedule ---------------------------------------------------------------------------

    @property
    def scheduled(self) -> bool:
        """True when the link is opened on a schedule instead of staying up."""
        return self.cfg.connect_every_min > 0

    def next_connect_at(self, last_connect_at: float | None) -> float | None:
        """Monotonic time of the next scheduled connection; None = now / always."""
        if not self.scheduled or last_connect_at is None:
            return None
        return last_connect_at + self.cfg.connect_every_min * 60.0

    def should_connect(
        self, now: float, backlog_records: int, last_connect_at: float | None
    ) -> bool:
        """Open the link now? ``backlog_records``: rows of the ``records`` stream waiting;
        ``last_connect_at``: when the last scheduled connection was opened (None: not yet
        since start)."""
        due_at = self.next_connect_at(last_connect_at)
        if due_at is None or now >= due_at:
            return True
        return 0 < self.cfg.connect_backlog <= backlog_records

    def may_disconnect(
        self,
        now: float,
        *,
        pending: Mapping[str, int],
        inflight: int,
        unconfirmed: int,
        last_progress_at: float,
        bytes_used_this_month: int = 0,
    ) -> bool:
        """Close a scheduled link now? Never when staying connected.

        ``pending``: rows waiting per stream (streams the budget holds back do not keep
        the link open); ``inflight``: publishes without PUBACK; ``unconfirmed``: rows sent
        but not yet acknowledged by central; ``last_progress_at``: the last PUBACK or
        central ack (or the connection time). Central silent for ``ack_timeout_s`` ends
        the wait: the unconfirmed rows go again in the next window.
        """
        if not self.scheduled:
            return False
        allowance = self.allowance(bytes_used_this_month)
        if any(n > 0 and allowance.allows(s) for s, n in pending.items()) or inflight > 0:
            return False
        if unconfirmed > 0:
            return now - last_progress_at >= self.cfg.ack_timeout_s
        return True

    # -- budget -----------------------------------------------------------------------------

    def allowance(self, bytes_used_this_month: int) -> Allowance:
        return allowed_streams(
            bytes_used_this_month, self.cfg.monthly_budget_mb, self.cfg.telemetry_every_s
        )
