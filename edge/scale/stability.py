"""Stability: the frame's own motion flag combined with a software window (pure).

An indicator's "stable" flag is its own motion detector; some families have none
(``xk3190-eq`` frames carry only a weight). The station confirms with a window: the
weight counts as stable when at least ``readings`` consecutive readings the indicator
calls stable all lie within ``±tolerance_g`` of the newest one, and have done so for
``settle_s`` seconds. Verdicts (:class:`~edge.scale.state.ScaleStatus`):

* ``overload`` / ``underload``: the frame says so (or the weight is above
  ``overload_above_g``, e.g. capacity + 9 divisions); the window starts again;
* ``unstable``: the flag says moving (the window starts again), or, for a family with
  no flag, the newest reading jumped out of the band of the one before;
* a status frame with no weight (a balance busy, an indicator that sends no weight at
  zero) is ``stable`` or ``unstable`` as its flag says, with no weight to record, and
  the window starts again;
* ``settling``: the flag says stable (or, no flag, the readings stay within the band)
  but the window is not yet satisfied;
* ``stable``: the window is satisfied.

A scale that only sends when the weight changes (``hold_last``): silence means "the same
weight", so the newest reading is taken to last until now; the count of readings is not
required, only the settle time. :meth:`StabilityTracker.status` re-evaluates as time
passes without frames.

No clock of its own: every call takes ``now`` (seconds, monotonic), so tests move time
by hand.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edge.scale.protocols import Reading
from edge.scale.state import ScaleStatus

MAX_SAMPLES = 1024
"""Hard bound on the samples kept (the window itself keeps far fewer)."""


@dataclass(frozen=True)
class StabilityWindow:
    readings: int = 1
    """Consecutive stable readings required (at least 1)."""
    tolerance_g: int = 0
    """Each of them within this many grams of the newest."""
    settle_s: float = 0.0
    """For at least this long."""

    def __post_init__(self) -> None:
        if self.readings < 1:
            raise ValueError("readings must be at least 1")
        if self.tolerance_g < 0:
            raise ValueError("tolerance_g must not be negative")
        if self.settle_s < 0:
            raise ValueError("settle_s must not be negative")


class StabilityTracker:
    """Feed every valid reading with :meth:`observe`; read the verdict it returns."""

    def __init__(
        self,
        window: StabilityWindow | None = None,
        *,
        has_flag: bool = True,
        hold_last: bool = False,
        overload_above_g: int | None = None,
    ) -> None:
        self.window = window or StabilityWindow()
        self.has_flag = has_flag
        self.hold_last = hold_last
        self.overload_above_g = overload_above_g
        self._samples: deque[tuple[float, int]] = deque(maxlen=MAX_SAMPLES)
        self._verdict = ScaleStatus.OFFLINE

    @property
    def verdict(self) -> ScaleStatus:
        """The last verdict (``offline`` before the first reading and after :meth:`reset`)."""
        return self._verdict

    def reset(self) -> None:
        """Forget every sample (the port was reopened, the scale went offline)."""
        self._samples.clear()
        self._verdict = ScaleStatus.OFFLINE

    def observe(self, reading: Reading, now: float) -> ScaleStatus:
        """The verdict with ``reading`` (received at ``now``) as the newest one.

        A reading with status ``error`` gives ``offline``; the caller says why.
        """
        self._verdict = self._observe(reading, now)
        return self._verdict

    def status(self, now: float) -> ScaleStatus:
        """The verdict at ``now`` with no new reading: only a ``hold_last`` scale can go
        from settling to stable by time alone."""
        if self.hold_last and self._verdict is ScaleStatus.SETTLING:
            self._trim(now)
            if self._satisfied(now):
                self._verdict = ScaleStatus.STABLE
        return self._verdict

    # -- internals -----------------------------------------------------------------------

    def _observe(self, reading: Reading, now: float) -> ScaleStatus:
        if reading.status != "ok":
            self._samples.clear()
            return {
                "overload": ScaleStatus.OVERLOAD,
                "underload": ScaleStatus.UNDERLOAD,
            }.get(reading.status, ScaleStatus.OFFLINE)
        weight = reading.weight_g
        if weight is None:  # a status frame with no weight (busy, in motion, at zero)
            self._samples.clear()
            return ScaleStatus.STABLE if reading.stable and self.has_flag else ScaleStatus.UNSTABLE
        if self.overload_above_g is not None and weight > self.overload_above_g:
            self._samples.clear()
            return ScaleStatus.OVERLOAD
        if self.has_flag and not reading.stable:
            self._samples.clear()
            return ScaleStatus.UNSTABLE
        previous = self._samples[-1][1] if self._samples else None
        self._samples.append((now, weight))
        self._trim(now)
        if self._satisfied(now):
            return ScaleStatus.STABLE
        if self.has_flag or self.hold_last:  # hold_last: the silence to come is no motion
            return ScaleStatus.SETTLING
        if previous is not None and abs(weight - previous) <= self.window.tolerance_g:
            return ScaleStatus.SETTLING  # converging, not yet for long enough
        return ScaleStatus.UNSTABLE

    def _trim(self, now: float) -> None:
        """Keep the shortest tail with ``readings`` samples (one for ``hold_last``) whose
        first sample is at or before ``now - settle_s``: that tail is the window."""
        horizon = now - self.window.settle_s
        samples = self._samples
        keep = 1 if self.hold_last else self.window.readings
        while len(samples) > keep and samples[1][0] <= horizon:
            samples.popleft()

    def _satisfied(self, now: float) -> bool:
        samples = self._samples
        if not samples:
            return False
        if not self.hold_last and len(samples) < self.window.readings:
            return False
        newest = samples[-1][1]
        tolerance = self.window.tolerance_g
        if any(abs(w - newest) > tolerance for _, w in samples):
            return False
        # a hold_last scale's newest reading lasts until now; a streaming one's does not
        end = now if self.hold_last else samples[-1][0]
        return end - samples[0][0] >= self.window.settle_s
