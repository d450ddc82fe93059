"""Sign-in attempts per client address in the last minute: shared by the station's page
and central's console (each app keeps its own)."""

from __future__ import annotations

import threading
import time
from collections import deque


class Attempts:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._at: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """0 and the attempt counted, or the seconds until ``client`` may try again."""
        with self._lock:
            now = time.monotonic()
            q = self._at.setdefault(client, deque())
            while q and q[0] < now - 60:
                q.popleft()
            if len(q) >= self.per_minute:
                return 60 - (now - q[0])
            q.append(now)
            if len(self._at) > 10_000:
                self._at = {k: v for k, v in self._at.items() if v and v[-1] > now - 60}
            return 0.0
