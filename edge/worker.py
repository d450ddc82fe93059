"""Supervised background workers.

A device or sync loop subclasses :class:`Worker` and implements ``step()``:
one unit of work (read some frames, send one job, publish one batch). The
supervisor thread calls it until stopped. When a step raises, the worker is
marked failed once, logged once, and retried after a capped, jittered
exponential back-off; a later successful step resets the back-off and logs
the recovery once. Blocking I/O stays in these threads, off the web server's
event loop.
"""

from __future__ import annotations

import logging
import random
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class Backoff:
    """Capped exponential back-off with full jitter (the next delay, in seconds)."""

    def __init__(
        self, base_s: float = 0.2, cap_s: float = 10.0, rng: random.Random | None = None
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.failures, 16)))
        return self._rng.uniform(self.base_s / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class Worker(ABC):
    """A background loop run in its own daemon thread, restarted on error."""

    name = "worker"

    def __init__(self, backoff: Backoff | None = None) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = backoff or Backoff()
        self.last_error: str | None = None

    @abstractmethod
    def step(self) -> None:
        """Do one unit of work; may block briefly. Raise to signal a failure."""

    def on_failure(self, exc: BaseException) -> None:  # noqa: B027 - optional hook
        """Called once per failure before the back-off (e.g. to close a port)."""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources after the loop has ended."""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep that ends early when stopping; True when the worker is stopping."""
        return self._stop.wait(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if self.last_error != reason:
                    log.warning("%s failed: %s", self.name, reason)
                self.last_error = reason
                try:
                    self.on_failure(exc)
                except Exception:
                    log.exception("%s: cleanup after failure failed", self.name)
                self.wait(self._backoff.next_delay())
            else:
                if self.last_error is not None:
                    log.info("%s recovered", self.name)
                    self.last_error = None
                self._backoff.reset()
