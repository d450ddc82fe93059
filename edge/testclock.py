"""The suite's calendar pass: every Python process of the product on one test clock.

``EDGE_TEST_CLOCK=2026-12-31T16:59:40Z`` makes this process believe it is that
instant, the clock running on from there (time-machine patches the wall clock:
``time.time``, ``datetime.now``, ``date.today``; monotonic clocks, sleeps and time-outs
stay real). The first process that switches it on writes the real instant it did so
into ``EDGE_TEST_CLOCK_ANCHOR``; the processes it starts (stations, ingests, CLIs)
inherit both variables and land on the same running timeline, not each at the start.

Only the test suite sets these variables (``make test``'s second pass); without them
nothing here runs and time-machine need not be installed. Brokers, databases and
browsers stay on the real clock, so whatever the tests hand to them (certificates,
revocation lists) must be valid on both clocks.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

CLOCK = "EDGE_TEST_CLOCK"
ANCHOR = "EDGE_TEST_CLOCK_ANCHOR"


class ClockError(RuntimeError):
    """EDGE_TEST_CLOCK is set but cannot be used."""


def instant(text: str) -> datetime:
    """The instant EDGE_TEST_CLOCK names: ISO 8601 with a zone, e.g. 2026-12-31T16:59:40Z."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ClockError(
            f"{CLOCK}={text!r} is not an ISO 8601 instant; write e.g. 2026-12-31T16:59:40Z"
        ) from None
    if at.tzinfo is None:
        raise ClockError(f"{CLOCK}={text!r} has no zone; end it with Z or +07:00")
    return at.astimezone(UTC)


def install() -> datetime | None:
    """Travel to the test clock if EDGE_TEST_CLOCK is set; the instant this process
    believes it is now, or None when the variable is not set."""
    text = os.environ.get(CLOCK, "").strip()
    if not text:
        return None
    start = instant(text)
    try:
        import time_machine
    except ImportError:
        raise ClockError(
            f"{CLOCK} is set but time-machine is not installed (pip install '.[dev]')"
        ) from None
    real = time.time()
    anchor = os.environ.setdefault(ANCHOR, repr(real))
    try:
        elapsed = real - float(anchor)
    except ValueError:
        raise ClockError(f"{ANCHOR}={anchor!r} is not a number of seconds") from None
    now = start + timedelta(seconds=elapsed)
    _travellers.append(time_machine.travel(now, tick=True).start())
    time.time()  # time-machine's clock starts running at the first reading
    return now


_travellers: list[object] = []


def restart() -> None:
    """Back to the EDGE_TEST_CLOCK instant, re-anchored now, so that each test (and the
    processes it starts) begins at the instant: the suite's ``EDGE_TEST_CLOCK_EACH=1``
    mode, which makes every test that runs longer than the gap cross it."""
    if not _travellers:
        return
    import time_machine

    real = time_machine.escape_hatch.time.time()
    os.environ[ANCHOR] = repr(real)
    traveller = _travellers[-1]
    assert isinstance(traveller, time_machine.Traveller)
    traveller.move_to(instant(os.environ[CLOCK]), tick=True)
    time.time()
