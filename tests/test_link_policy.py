"""The link policy: back-off with injected random, schedule and budget on plain numbers."""

from __future__ import annotations

import random

import pytest

from edge.config import MqttConfig
from edge.sync.policy import (
    BULK_BELOW,
    DAY_S,
    MB,
    TELEMETRY_BELOW,
    BudgetLevel,
    LinkBackoff,
    LinkPolicy,
    allowed_streams,
)
from edge.worker import Backoff


class _Extreme(random.Random):
    """A random source that always answers the top (or bottom) of the range asked."""

    def __init__(self, top: bool) -> None:
        super().__init__(0)
        self.top = top
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return b if self.top else a


# -- back-off ----------------------------------------------------------------------------------


def test_full_jitter_ceiling_doubles_up_to_the_cap() -> None:
    rng = _Extreme(top=True)
    backoff = LinkBackoff(1.0, 30.0, rng, "full")
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert [a for a, _ in rng.asked] == [1.0] * 7, "never below reconnect_min_s"


def test_full_jitter_floor_is_the_minimum() -> None:
    backoff = LinkBackoff(2.5, 300.0, _Extreme(top=False), "full")
    assert [backoff.next_delay() for _ in range(5)] == [2.5] * 5


def test_decorrelated_jitter_grows_from_the_previous_delay() -> None:
    rng = _Extreme(top=True)
    backoff = LinkBackoff(1.0, 100.0, rng, "decorrelated")
    delays = [backoff.next_delay() for _ in range(6)]
    assert delays == [3.0, 9.0, 27.0, 81.0, 100.0, 100.0]
    assert rng.asked[:3] == [(1.0, 3.0), (1.0, 9.0), (1.0, 27.0)]


@pytest.mark.parametrize("jitter", ["full", "decorrelated"])
def test_delays_stay_within_bounds_and_are_jittered(jitter: str) -> None:
    backoff = LinkBackoff(1.0, 60.0, random.Random(7), jitter)  # type: ignore[arg-type]
    delays = [backoff.next_delay() for _ in range(2000)]
    assert all(1.0 <= d <= 60.0 for d in delays)
    assert len(set(delays)) > 1900, "jittered: a fleet does not reconnect in step"
    later = delays[20:]
    assert sum(later) / len(later) > 10, "after many failures the delays are long"


@pytest.mark.parametrize("jitter", ["full", "decorrelated"])
def test_same_seed_same_delays(jitter: str) -> None:
    def run(seed: int) -> list[float]:
        b = LinkBackoff(0.5, 120.0, random.Random(seed), jitter)  # type: ignore[arg-type]
        return [b.next_delay() for _ in range(12)]

    assert run(42) == run(42)
    assert run(42) != run(43)


@pytest.mark.parametrize("jitter", ["full", "decorrelated"])
def test_reset_starts_over(jitter: str) -> None:
    backoff = LinkBackoff(1.0, 1000.0, _Extreme(top=True), jitter)  # type: ignore[arg-type]
    first = [backoff.next_delay() for _ in range(4)]
    backoff.reset()
    assert backoff.failures == 0
    assert [backoff.next_delay() for _ in range(4)] == first


def test_backoff_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="min_s <= max_s"):
        LinkBackoff(5.0, 1.0)
    with pytest.raises(ValueError, match="min_s <= max_s"):
        LinkBackoff(0.0, 1.0)
    with pytest.raises(ValueError, match="jitter"):
        LinkBackoff(1.0, 2.0, jitter="none")  # type: ignore[arg-type]


def test_policy_backoff_uses_the_config_and_drives_a_worker() -> None:
    cfg = MqttConfig(reconnect_min_s=3, reconnect_max_s=45)
    backoff = LinkPolicy(cfg, _Extreme(top=True), "full").backoff()
    assert isinstance(backoff, Backoff), "usable as a supervised worker's back-off"
    assert [backoff.next_delay() for _ in range(6)] == [6, 12, 24, 45, 45, 45]


# -- schedule ----------------------------------------------------------------------------------


def test_always_connected_without_a_schedule() -> None:
    policy = LinkPolicy(MqttConfig())
    assert not policy.scheduled
    assert policy.should_connect(0.0, 0, None)
    assert policy.should_connect(5.0, 0, last_connect_at=4.0)
    assert policy.next_connect_at(4.0) is None
    pending = {"records": 0}
    assert not policy.may_disconnect(
        9.0, pending=pending, inflight=0, unconfirmed=0, last_progress_at=0.0
    ), "an always-on link is never closed by the policy"


def test_scheduled_connects_at_start_then_every_n_minutes() -> None:
    policy = LinkPolicy(MqttConfig(connect_every_min=15))
    assert policy.scheduled
    assert policy.should_connect(100.0, 0, None), "first connection right after start"
    assert not policy.should_connect(100.0 + 899.9, 0, last_connect_at=100.0)
    assert policy.should_connect(100.0 + 900.0, 0, last_connect_at=100.0)
    assert policy.next_connect_at(100.0) == 1000.0


def test_scheduled_connects_early_for_a_backlog() -> None:
    policy = LinkPolicy(MqttConfig(connect_every_min=60, connect_backlog=50))
    assert not policy.should_connect(10.0, 49, last_connect_at=0.0)
    assert policy.should_connect(10.0, 50, last_connect_at=0.0)
    assert policy.should_connect(10.0, 5000, last_connect_at=0.0)
    no_early = LinkPolicy(MqttConfig(connect_every_min=60, connect_backlog=0))
    assert not no_early.should_connect(10.0, 10_000, last_connect_at=0.0)


def _drained(policy: LinkPolicy, **kw: object) -> bool:
    args: dict[str, object] = {
        "pending": {"records": 0, "telemetry": 0, "bulk": 0},
        "inflight": 0,
        "unconfirmed": 0,
        "last_progress_at": 100.0,
    }
    args.update(kw)
    return policy.may_disconnect(120.0, **args)  # type: ignore[arg-type]


def test_scheduled_disconnects_once_drained_and_acknowledged() -> None:
    policy = LinkPolicy(MqttConfig(connect_every_min=30, ack_timeout_s=60))
    assert _drained(policy)
    assert not _drained(policy, pending={"records": 1})
    assert not _drained(policy, pending={"telemetry": 1})
    assert not _drained(policy, pending={"bulk": 3})
    assert not _drained(policy, inflight=1), "a publish still waits for its PUBACK"
    assert not _drained(policy, unconfirmed=20), "central has not confirmed yet"


def test_scheduled_gives_up_on_a_silent_central_after_the_ack_timeout() -> None:
    policy = LinkPolicy(MqttConfig(connect_every_min=30, ack_timeout_s=60))
    assert not policy.may_disconnect(
        159.9, pending={}, inflight=0, unconfirmed=5, last_progress_at=100.0
    )
    assert policy.may_disconnect(
        160.0, pending={}, inflight=0, unconfirmed=5, last_progress_at=100.0
    )


def test_bulk_held_back_by_the_budget_does_not_keep_the_link_open() -> None:
    policy = LinkPolicy(MqttConfig(connect_every_min=30, monthly_budget_mb=10))
    assert not _drained(policy, pending={"bulk": 3}, bytes_used_this_month=int(7.9 * MB))
    assert _drained(policy, pending={"bulk": 3}, bytes_used_this_month=8 * MB)
    assert not _drained(policy, pending={"records": 1}, bytes_used_this_month=50 * MB)


# -- budget ------------------------------------------------------------------------------------


def test_no_budget_allows_everything() -> None:
    allowance = allowed_streams(10**12, 0)
    assert allowance.level is BudgetLevel.UNLIMITED
    assert allowance.streams == {"records", "telemetry", "bulk"}
    assert allowance.used_fraction is None
    assert allowance.telemetry_every_s == 300


@pytest.mark.parametrize(
    ("used_mb", "level", "streams", "telemetry_every_s"),
    [
        (0, BudgetLevel.NORMAL, {"records", "telemetry", "bulk"}, 300),
        (79.99, BudgetLevel.NORMAL, {"records", "telemetry", "bulk"}, 300),
        (80, BudgetLevel.SAVING, {"records", "telemetry"}, 300),
        (94.99, BudgetLevel.SAVING, {"records", "telemetry"}, 300),
        (95, BudgetLevel.CRITICAL, {"records", "telemetry"}, DAY_S),
        (100, BudgetLevel.CRITICAL, {"records", "telemetry"}, DAY_S),
        (5000, BudgetLevel.CRITICAL, {"records", "telemetry"}, DAY_S),
    ],
)
def test_budget_thresholds(
    used_mb: float, level: BudgetLevel, streams: set[str], telemetry_every_s: float
) -> None:
    allowance = allowed_streams(int(used_mb * MB), 100)
    assert allowance.level is level
    assert allowance.streams == streams
    assert allowance.telemetry_every_s == telemetry_every_s
    assert allowance.allows("records"), "records are never held back"
    assert allowance.used_fraction == pytest.approx(used_mb / 100)


def test_thresholds_are_the_documented_ones() -> None:
    assert (BULK_BELOW, TELEMETRY_BELOW, MB) == (0.80, 0.95, 1_000_000)


def test_unknown_streams_are_treated_as_bulk() -> None:
    assert allowed_streams(0, 100).allows("thumbnails")
    assert not allowed_streams(81 * MB, 100).allows("thumbnails")


def test_a_slower_telemetry_setting_is_kept_when_critical() -> None:
    assert allowed_streams(99 * MB, 100, telemetry_every_s=2 * DAY_S).telemetry_every_s == 2 * DAY_S


def test_policy_allowance_uses_the_config() -> None:
    policy = LinkPolicy(MqttConfig(monthly_budget_mb=50, telemetry_every_s=600))
    allowance = policy.allowance(45 * MB)
    assert (allowance.level, allowance.telemetry_every_s) == (BudgetLevel.SAVING, 600)


def test_budget_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError, match="negative"):
        allowed_streams(-1, 100)
    with pytest.raises(ValueError, match="budget"):
        allowed_streams(0, -5)
    with pytest.raises(ValueError, match="budget"):
        allowed_streams(0, float("nan"))
