"""The two clocks of the suite's calendar pass (edge.testclock): the Python processes of
the product may run on a test clock while brokers, PostgreSQL and browsers keep the real
one. Whatever the tests hand to a real-clock program must be valid on both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo


def real_now() -> datetime:
    """The machine's real time, even while this process runs on the test clock."""
    try:
        import time_machine
    except ImportError:
        return datetime.fromtimestamp(time.time(), UTC)
    if not time_machine.escape_hatch.is_travelling():
        return datetime.fromtimestamp(time.time(), UTC)
    return datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC)


def earliest_now() -> datetime:
    """The earlier of this process's clock and the real one: a certificate or revocation
    list issued then (backdated as edge.sync.certs does) is already valid on both."""
    return min(datetime.now(UTC), real_now())


@contextmanager
def on_real_clock() -> Iterator[None]:
    """Run the block on the real clock (a no-op unless this process is on the test
    clock): for what an operator's machine makes for a real-clock program, such as a
    revocation list for the broker."""
    try:
        import time_machine
    except ImportError:
        yield
        return
    if not time_machine.traveller_stack:
        yield
        return
    with time_machine.travel(real_now(), tick=True):
        yield


class MiddayClock:
    """A station clock that starts at noon, local time, of the day this process's clock
    is in, and runs at the real pace: tests about "today's" lists use it, so that local
    midnight cannot pass between recording a lot and listing today's lots. ``jump``
    moves it (to cross midnight on purpose)."""

    def __init__(self, tz: str = "Asia/Ho_Chi_Minh") -> None:
        zone = ZoneInfo(tz)
        today = datetime.now(zone).date()
        self._start = datetime.combine(today, dtime(12), zone).astimezone(UTC)
        self._t0 = time.monotonic()
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return self._start + self._offset + timedelta(seconds=time.monotonic() - self._t0)

    def jump(self, by: timedelta) -> None:
        self._offset += by
