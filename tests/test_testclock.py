"""The suite's calendar pass (edge.testclock): one running test clock shared by the test
process and every Python process it starts; brokers and browsers keep the real one."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.testclock import ANCHOR, CLOCK, ClockError, instant
from rigs.clock import MiddayClock, earliest_now, real_now

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
REPO = Path(__file__).resolve().parent.parent
CHILD_NOW = "import edge, datetime; print(datetime.datetime.now(datetime.UTC).isoformat())"


def child_now(env: dict[str, str]) -> datetime:
    out = subprocess.run(
        [sys.executable, "-c", CHILD_NOW], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return datetime.fromisoformat(out.stdout.strip())


def test_the_instant_is_iso_8601_with_a_zone() -> None:
    assert instant("2026-12-31T16:59:40Z") == datetime(2026, 12, 31, 16, 59, 40, tzinfo=UTC)
    assert instant("2027-01-01T00:00:00+07:00") == datetime(2026, 12, 31, 17, tzinfo=UTC)
    with pytest.raises(ClockError, match="no zone"):
        instant("2026-12-31T16:59:40")
    with pytest.raises(ClockError, match="not an ISO 8601 instant"):
        instant("31/12/2026")


def test_a_child_lands_on_the_running_clock_of_the_process_that_started_it() -> None:
    """Anchored 100 s ago at 23:59:00 local: a child believes it is about 00:00:40 on
    1 January, whatever the real date."""
    env = {k: v for k, v in os.environ.items() if k not in (CLOCK, ANCHOR)}
    anchor = real_now().timestamp() - 100
    env |= {CLOCK: "2026-12-31T16:59:00Z", ANCHOR: repr(anchor)}
    now = child_now(env)
    assert timedelta(seconds=100) <= now - instant(env[CLOCK]) < timedelta(seconds=160)
    assert now.astimezone(VIETNAM).date().isoformat() == "2027-01-01"


def test_a_bad_instant_stops_the_process_with_the_reason() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (CLOCK, ANCHOR)} | {CLOCK: "soon"}
    out = subprocess.run(
        [sys.executable, "-c", "import edge"], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode != 0 and "EDGE_TEST_CLOCK='soon' is not an ISO 8601 instant" in out.stderr


def test_without_the_variable_children_keep_the_real_clock() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (CLOCK, ANCHOR)}
    assert abs(child_now(env) - real_now()) < timedelta(seconds=30)


@pytest.mark.skipif(not os.environ.get(CLOCK), reason="the calendar pass only (make test)")
def test_in_the_calendar_pass_this_process_and_its_children_share_the_test_clock() -> None:
    start = instant(os.environ[CLOCK])
    elapsed = real_now().timestamp() - float(os.environ[ANCHOR])
    mine = datetime.now(UTC)
    assert abs(mine - (start + timedelta(seconds=elapsed))) < timedelta(seconds=5)
    assert abs(child_now(dict(os.environ)) - datetime.now(UTC)) < timedelta(seconds=30)
    assert earliest_now() <= min(mine, real_now()) + timedelta(seconds=1)


def test_the_midday_clock_starts_at_local_noon_and_runs() -> None:
    clock = MiddayClock("Asia/Ho_Chi_Minh")
    first = clock().astimezone(VIETNAM)
    assert (first.hour, first.minute) == (12, 0)
    clock.jump(timedelta(hours=12))
    assert clock().astimezone(VIETNAM).date() == first.date() + timedelta(days=1)
