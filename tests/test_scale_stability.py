"""The stability window on its own: a fake clock moved by hand, never a sleep."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.scale.protocols import Reading
from edge.scale.stability import StabilityTracker, StabilityWindow
from edge.scale.state import ScaleStatus

STABLE = ScaleStatus.STABLE
SETTLING = ScaleStatus.SETTLING
UNSTABLE = ScaleStatus.UNSTABLE


def ok(weight_g: int, stable: bool = True) -> Reading:
    return Reading(weight_g, stable=stable, net=False, status="ok", unit="kg", text=f"{weight_g}")


def status_only(status: str) -> Reading:
    return Reading(None, stable=False, net=False, status=status, unit="", text=status)  # type: ignore[arg-type]


def feed(tracker: StabilityTracker, steps: list[tuple[float, Reading]]) -> list[ScaleStatus]:
    return [tracker.observe(reading, now) for now, reading in steps]


WINDOW = StabilityWindow(readings=3, tolerance_g=5, settle_s=0.5)


def test_default_window_trusts_the_flag_at_once() -> None:
    t = StabilityTracker()
    assert t.verdict is ScaleStatus.OFFLINE
    assert feed(t, [(0.0, ok(1000, stable=False)), (0.1, ok(1000)), (0.2, ok(1200))]) == [
        UNSTABLE,
        STABLE,
        STABLE,
    ]


def test_flag_stable_but_window_not_yet_is_settling() -> None:
    t = StabilityTracker(WINDOW)
    verdicts = feed(
        t,
        [
            (0.0, ok(1000, stable=False)),
            (0.25, ok(1002)),  # flag stable: 1 reading, 0 s
            (0.5, ok(1000)),  # 2 readings, 0.25 s
            (0.75, ok(1001)),  # 3 readings but only 0.5 s since the first stable one
        ],
    )
    assert verdicts == [UNSTABLE, SETTLING, SETTLING, STABLE]
    assert t.verdict is STABLE


def test_settle_time_alone_is_not_enough_without_the_count() -> None:
    t = StabilityTracker(StabilityWindow(readings=4, tolerance_g=0, settle_s=0.0))
    assert feed(t, [(0.0, ok(500)), (10.0, ok(500)), (20.0, ok(500)), (30.0, ok(500))]) == [
        SETTLING,
        SETTLING,
        SETTLING,
        STABLE,
    ]


def test_reading_out_of_band_restarts_the_wait() -> None:
    t = StabilityTracker(WINDOW)
    feed(t, [(0.0, ok(1000)), (0.25, ok(1000)), (0.5, ok(1000))])
    assert t.verdict is STABLE
    # the indicator still says stable, but the weight moved by 20 g: settling again
    assert t.observe(ok(1020), 0.75) is SETTLING
    assert t.observe(ok(1020), 1.0) is SETTLING
    assert t.observe(ok(1021), 1.25) is STABLE  # 0.75, 1.0, 1.25: three readings over 0.5 s


def test_flag_unstable_resets_the_window() -> None:
    t = StabilityTracker(WINDOW)
    feed(t, [(0.0, ok(1000)), (0.25, ok(1000)), (0.5, ok(1000))])
    assert t.observe(ok(1000, stable=False), 0.75) is UNSTABLE
    assert t.observe(ok(1000), 1.0) is SETTLING
    assert t.observe(ok(1000), 1.25) is SETTLING
    assert t.observe(ok(1000), 1.5) is STABLE


def test_jitter_keeps_a_no_flag_scale_unstable() -> None:
    t = StabilityTracker(WINDOW, has_flag=False)
    now = 0.0
    verdicts = []
    for weight in [1000, 1030, 990, 1040, 980, 1050, 1000, 960]:
        verdicts.append(t.observe(ok(weight), now))
        now += 0.25
    assert set(verdicts) == {UNSTABLE}


def test_no_flag_family_the_window_alone_decides() -> None:
    t = StabilityTracker(WINDOW, has_flag=False)
    verdicts = feed(
        t,
        [
            (0.0, ok(0)),
            (0.25, ok(800)),  # a jump: unstable
            (0.5, ok(1003)),  # still jumping
            (0.75, ok(1000)),  # within 5 g of the one before, but 800 g is in the window
            (1.0, ok(1001)),  # 0.5 -> 1.0: three readings within 5 g of 1001 over 0.5 s
            (1.25, ok(1020)),  # a jump again
        ],
    )
    assert verdicts == [UNSTABLE, UNSTABLE, UNSTABLE, SETTLING, STABLE, UNSTABLE]


def test_overload_and_underload_come_from_the_frame() -> None:
    t = StabilityTracker(WINDOW)
    feed(t, [(0.0, ok(1000)), (0.25, ok(1000)), (0.5, ok(1000))])
    assert t.observe(status_only("overload"), 0.75) is ScaleStatus.OVERLOAD
    assert t.observe(status_only("underload"), 1.0) is ScaleStatus.UNDERLOAD
    assert t.observe(status_only("error"), 1.1) is ScaleStatus.OFFLINE
    # the window starts again after any of them
    assert t.observe(ok(1000), 1.25) is SETTLING


def test_weight_above_the_limit_is_overload_even_if_the_frame_does_not_say_so() -> None:
    t = StabilityTracker(overload_above_g=150_450, has_flag=False)
    assert t.observe(ok(150_450), 0.0) is STABLE
    assert t.observe(ok(150_500), 0.1) is ScaleStatus.OVERLOAD
    assert t.observe(ok(150_000), 0.2) is STABLE


def test_hold_last_scale_settles_by_time_alone() -> None:
    """A scale that only sends when the weight changes: silence means the same weight."""
    t = StabilityTracker(WINDOW, hold_last=True)
    assert t.observe(ok(2500), 10.0) is SETTLING  # one frame; nothing more will come
    assert t.status(10.25) is SETTLING
    assert t.status(10.5) is STABLE
    assert t.status(99.0) is STABLE
    assert t.observe(ok(2600), 100.0) is SETTLING  # a new weight, out of the band
    assert t.status(100.4) is SETTLING
    assert t.status(100.75) is STABLE


def test_hold_last_scale_without_a_flag() -> None:
    """Adam: polled, answers only when the weight changes, no stability flag."""
    t = StabilityTracker(WINDOW, has_flag=False, hold_last=True)
    assert t.observe(ok(1000, stable=False), 0.0) is SETTLING
    assert t.observe(ok(1800, stable=False), 0.25) is SETTLING  # still moving ...
    assert t.status(0.625) is SETTLING
    assert t.status(0.75) is STABLE  # ... then 0.5 s of silence: the same weight


def test_status_without_hold_last_never_changes_by_time() -> None:
    t = StabilityTracker(WINDOW)
    assert t.observe(ok(2500), 10.0) is SETTLING
    assert t.status(1000.0) is SETTLING


def test_reset_forgets_the_samples() -> None:
    t = StabilityTracker(WINDOW)
    feed(t, [(0.0, ok(1000)), (0.25, ok(1000))])
    t.reset()
    assert t.verdict is ScaleStatus.OFFLINE
    assert t.observe(ok(1000), 0.5) is SETTLING  # one reading again, not three


@pytest.mark.parametrize(
    "kwargs", [{"readings": 0}, {"tolerance_g": -1}, {"settle_s": -0.1}], ids=str
)
def test_bad_windows_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StabilityWindow(**kwargs)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(st.integers(-10_000, 200_000), st.booleans(), st.floats(0, 1)),
        max_size=60,
    ),
    st.integers(1, 6),
    st.integers(0, 50),
    st.sampled_from([0.0, 0.25, 1.0]),
    st.booleans(),
)
def test_stable_only_when_the_window_really_holds(
    steps: list[tuple[int, bool, float]],
    readings: int,
    tolerance: int,
    settle: float,
    has_flag: bool,
) -> None:
    """Against a brute-force check of the definition over the whole history."""
    t = StabilityTracker(StabilityWindow(readings, tolerance, settle), has_flag=has_flag)
    history: list[tuple[float, int, bool]] = []
    now = 0.0
    for weight, flag, dt in steps:
        now += dt
        verdict = t.observe(ok(weight, stable=flag), now)
        history.append((now, weight, flag))
        run = []  # the readings since the last one flagged moving
        for h in reversed(history):
            if has_flag and not h[2]:
                break
            run.append(h)
        run.reverse()
        # the window: the shortest tail of the run with `readings` readings that starts
        # at or before now - settle; stable when it exists and all of it is in the band
        tails = [
            run[i:]
            for i in range(len(run))
            if len(run) - i >= readings and run[i][0] <= now - settle
        ]
        expected = bool(tails) and all(abs(w - weight) <= tolerance for _, w, _ in tails[-1])
        assert (verdict is STABLE) == expected, (history, verdict)
