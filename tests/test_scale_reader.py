"""The reader against the simulator over real pseudo-terminals, opened through a
/dev/serial/by-id style symlink. Polls with a deadline, never fixed sleeps for results."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.scale.reader import ScaleReader
from edge.scale.simulator import ScaleSimulator
from edge.scale.state import ScaleState, ScaleStatus
from tests.helpers import wait_for

INTERVAL = 0.02
STALE = 0.5


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-scale-if00"


@pytest.fixture
def sim(link: Path) -> Iterator[ScaleSimulator]:
    s = ScaleSimulator(link, weight_g=1234, interval_s=INTERVAL, settle_frames=10)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def reader(link: Path) -> Iterator[ScaleReader]:
    r = ScaleReader(str(link), stale_after_s=STALE)
    r.start()
    yield r
    r.stop()


def wait_state(
    reader: ScaleReader, check: Callable[[ScaleState], bool], what: str, timeout: float = 3.0
) -> ScaleState:
    def probe() -> ScaleState | None:
        state = reader.state
        return state if check(state) else None

    try:
        state = wait_for(probe, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; state: {reader.state}") from None
    assert state is not None
    return state


def is_stable(weight_g: int) -> Callable[[ScaleState], bool]:
    return lambda s: s.status is ScaleStatus.STABLE and s.weight_g == weight_g


def watch(reader: ScaleReader, seconds: float) -> list[ScaleState]:
    """Every distinct state seen during ``seconds`` (polling observation, not a wait)."""
    seen: list[ScaleState] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = reader.state
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.005)
    return seen


def test_reading_reaches_weight_and_goes_stable(sim: ScaleSimulator, reader: ScaleReader) -> None:
    state = wait_state(reader, is_stable(1234), "1234 g stable")
    assert state.error is None
    assert state.net is False
    assert state.port == str(sim.link)
    assert state.frame == "ST,GS,+001.234kg"
    assert state.recent_frames[-1] == "ST,GS,+001.234kg"
    assert 0 < len(state.recent_frames) <= 10
    assert state.updated_at is not None and state.updated_at <= time.monotonic()


def test_set_weight_shows_unstable_then_stable(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.set_weight(5000)  # 10 unstable frames at 20 ms: ~0.2 s unstable
    assert not sim.stable
    state = wait_state(reader, lambda s: s.weight_g == 5000, "5000 g")
    assert state.status is ScaleStatus.UNSTABLE
    assert state.frame == "US,GS,+005.000kg"
    wait_state(reader, is_stable(5000), "5000 g stable")
    assert sim.stable
    assert sim.weight_g == 5000


def test_held_unstable_until_cleared(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.set_unstable(True)
    wait_state(reader, lambda s: s.status is ScaleStatus.UNSTABLE, "unstable")
    assert {s.status for s in watch(reader, 0.3)} == {ScaleStatus.UNSTABLE}
    sim.set_unstable(False)
    wait_state(reader, is_stable(1234), "stable again")


def test_overload(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.set_overload(True)
    state = wait_state(reader, lambda s: s.status is ScaleStatus.OVERLOAD, "overload")
    assert state.weight_g is None
    assert state.frame is not None and state.frame.startswith("OL,GS,")
    sim.set_overload(False)
    wait_state(reader, is_stable(1234), "stable after overload")


def test_silence_goes_offline_within_stale_after(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    silenced_at = time.monotonic()
    sim.silence(True)
    state = wait_state(reader, lambda s: s.status is ScaleStatus.OFFLINE, "offline", timeout=2)
    elapsed = time.monotonic() - silenced_at
    assert STALE - INTERVAL - 0.05 <= elapsed <= STALE + 0.3
    assert state.error == f"no valid frame for {STALE:.1f} s"
    assert state.weight_g is None
    assert state.updated_at is not None  # when the last valid frame came
    sim.silence(False)
    wait_state(reader, is_stable(1234), "stable after the scale talks again")


def test_only_noise_goes_offline_with_a_hint(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.silence(True)
    deadline = time.monotonic() + 3
    while reader.state.status is not ScaleStatus.OFFLINE and time.monotonic() < deadline:
        sim.send_noise(b"\x00\xff wrong baud rate garbage\r\n")
        time.sleep(INTERVAL)
    state = reader.state
    assert state.status is ScaleStatus.OFFLINE
    assert state.error is not None and "not ST,GS frames" in state.error
    assert "\\x00\\xff wrong baud rate garbage" in state.recent_frames


def test_unplug_goes_offline_at_once_and_replug_resumes(
    sim: ScaleSimulator, reader: ScaleReader, link: Path
) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    thread = reader._thread
    unplugged_at = time.monotonic()
    sim.unplug()
    assert not link.exists() and not link.is_symlink()
    state = wait_state(reader, lambda s: s.status is ScaleStatus.OFFLINE, "offline", timeout=1)
    assert time.monotonic() - unplugged_at < 0.5
    assert state.error is not None and "disconnected" in state.error
    wait_state(reader, lambda s: s.error == f"port {link} not found", "port not found")

    sim.set_weight(2500)
    replugged_at = time.monotonic()
    sim.replug()
    assert os.path.realpath(link) == sim.device
    wait_state(reader, is_stable(2500), "2500 g stable after replug", timeout=2.5)
    assert time.monotonic() - replugged_at < 2.0
    assert reader._thread is thread  # same reader, never restarted


def test_noise_never_gives_a_wrong_weight(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    noises = [
        b"\x00\xff\x13",  # glitch right before the next frame (resynced past)
        b"ST,GS,+9",  # a frame cut in half, the next frame follows on the same line
        b"ST,GS,+099.999kgX\r\n",  # trailing junk: the line is dropped
        b"ST,GS,+09.9.999kg\r\n",
        b"US,GS,+0x9.999kg\r\n",
        b"\xff" * 300,  # more than the parser keeps
        b"\r\n\r\n\n",
    ]
    seen: list[ScaleState] = []
    for _ in range(5):
        for noise in noises:
            sim.send_noise(noise)
            seen += watch(reader, INTERVAL)
    seen += watch(reader, 0.2)
    assert {s.weight_g for s in seen} <= {1234, None}
    assert any("ST,GS,+099.999kgX" in s.recent_frames for s in seen)
    wait_state(reader, is_stable(1234), "1234 g stable")


def test_frames_queued_before_open_are_flushed(link: Path) -> None:
    sim = ScaleSimulator(link, weight_g=7777, interval_s=INTERVAL)
    sim.start()
    reader = ScaleReader(str(link), stale_after_s=STALE)
    try:
        wait_for(lambda: sim.frames_sent >= 10, 3, "frames queued in the pty")
        sim.silence(True)
        sim.set_weight(8888)
        reader.start()
        wait_state(reader, lambda s: s.error is not None and "open" in s.error, "port open")
        assert {s.weight_g for s in watch(reader, 0.3)} == {None}
        sim.silence(False)
        wait_state(reader, lambda s: s.weight_g == 8888, "8888 g")
    finally:
        reader.stop()
        sim.stop()


def test_port_missing_at_start_then_appears(link: Path) -> None:
    reader = ScaleReader(str(link), stale_after_s=STALE)
    reader.start()
    sim = ScaleSimulator(link, weight_g=4321, interval_s=INTERVAL)
    try:
        wait_state(reader, lambda s: s.error == f"port {link} not found", "port not found")
        sim.start()
        wait_state(reader, is_stable(4321), "4321 g stable", timeout=2.5)
    finally:
        reader.stop()
        sim.stop()


def test_link_repointed_to_another_device(tmp_path: Path) -> None:
    """A by-id name that now points at another ttyUSB is followed (the port is opened by path)."""
    a = ScaleSimulator(tmp_path / "a", weight_g=1000, interval_s=INTERVAL)
    b = ScaleSimulator(tmp_path / "b", weight_g=2000, interval_s=INTERVAL)
    by_id = tmp_path / "by-id"
    reader = ScaleReader(str(by_id), stale_after_s=STALE)
    try:
        a.start()
        b.start()
        by_id.symlink_to(a.device)
        reader.start()
        wait_state(reader, is_stable(1000), "1000 g from a")
        (tmp_path / "tmp").symlink_to(b.device)
        os.replace(tmp_path / "tmp", by_id)
        a.unplug()
        wait_state(reader, is_stable(2000), "2000 g from b", timeout=2.5)
    finally:
        reader.stop()
        a.stop()
        b.stop()


def test_stop_marks_offline_and_reader_can_restart(sim: ScaleSimulator, link: Path) -> None:
    reader = ScaleReader(str(link), stale_after_s=STALE)
    assert reader.state.status is ScaleStatus.OFFLINE
    reader.start()
    try:
        wait_state(reader, is_stable(1234), "1234 g stable")
        reader.stop()
        assert reader.state.status is ScaleStatus.OFFLINE
        assert reader.state.error == "reader stopped"
        reader.start()
        wait_state(reader, is_stable(1234), "stable after restart")
    finally:
        reader.stop()


def test_stale_uses_the_injected_clock(sim: ScaleSimulator, link: Path) -> None:
    now = [100.0]
    reader = ScaleReader(str(link), stale_after_s=2.0, clock=lambda: now[0])
    sim.silence(True)
    try:
        reader.step()  # opens the port (and flushes what the simulator queued)
        assert reader.state.error == f"port {link} open, waiting for the first frame"
        now[0] = 101.9
        reader.step()
        assert reader.state.error == f"port {link} open, waiting for the first frame"
        now[0] = 102.0
        reader.step()
        assert reader.state.status is ScaleStatus.OFFLINE
        assert reader.state.error == "no valid frame for 2.0 s"
        sim.silence(False)

        def stepped_stable() -> bool:
            reader.step()
            return reader.state.status is ScaleStatus.STABLE

        wait_for(stepped_stable, 3, "a stable frame")
        assert reader.state.updated_at == 102.0
        assert reader.state.weight_g == 1234
    finally:
        reader.close()


def test_bad_line_settings_fail_at_construction(link: Path) -> None:
    with pytest.raises(ValueError):
        ScaleReader(str(link), parity="X")
    with pytest.raises(ValueError):
        ScaleReader(str(link), bytesize=9)


# -- the simulator on its own -------------------------------------------------------------


def test_unplug_hangs_up_an_open_slave(sim: ScaleSimulator, link: Path) -> None:
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        wait_for(lambda: select.select([fd], [], [], 0)[0], 2, "a frame")
        assert os.read(fd, 4096).startswith(b"ST,GS,+001.234kg\r\n")  # raw: CR LF kept
        sim.unplug()
        assert select.select([fd], [], [], 2)[0] == [fd]  # readable: hung up
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO on some kernels
            data = b""
        assert data == b""  # EOF: the line is gone
        with pytest.raises(FileNotFoundError):
            os.open(link, os.O_RDWR | os.O_NOCTTY)
        sim.unplug()  # idempotent
        assert not sim.plugged
    finally:
        os.close(fd)


def test_replug_repoints_the_link(sim: ScaleSimulator, link: Path) -> None:
    first = sim.device
    assert os.readlink(link) == first
    sim.replug()  # no-op while plugged
    assert sim.device == first
    sim.unplug()
    sim.replug()
    assert os.readlink(link) == sim.device
    assert [p.name for p in link.parent.iterdir()] == [link.name]  # no temp links left


def test_writes_never_block_when_nobody_reads(link: Path) -> None:
    sim = ScaleSimulator(link, weight_g=1, interval_s=INTERVAL)
    sim.start()
    try:
        started = time.monotonic()
        for _ in range(20):
            sim.send_noise(b"x" * 100_000)  # far more than a pty buffers
        assert time.monotonic() - started < 1

        def attempts() -> int:
            return sim.frames_sent + sim.frames_dropped

        before = attempts()
        wait_for(lambda: attempts() >= before + 5, 3, "the frame thread to keep going")

        def keep_full_until_a_frame_is_dropped() -> bool:
            sim.send_noise(b"x" * 10_000)
            return sim.frames_dropped > 0

        wait_for(keep_full_until_a_frame_is_dropped, 3, "a frame dropped on a full buffer")
    finally:
        stopping = time.monotonic()
        sim.stop()
        assert time.monotonic() - stopping < 1


def test_stop_removes_the_link(link: Path) -> None:
    sim = ScaleSimulator(link)
    sim.start()
    assert link.is_symlink()
    sim.stop()
    assert not link.is_symlink()
    with pytest.raises(RuntimeError):
        _ = ScaleSimulator(link).device
