"""The reader against the simulator over real pseudo-terminals, opened through a
/dev/serial/by-id style symlink. Polls with a deadline, never fixed sleeps for results.

Nothing here fails because the machine is slow: what must happen is waited for with a
generous bound (SLOW), what must not happen is checked over a span that ends at a
positive sync point (the reader has shown a later frame), and timings are only checked
from below (offline never before ``stale_after_s`` of silence)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edge.scale.protocols import SimState, get_protocol, protocol_names
from edge.scale.reader import CommandError, ScaleReader
from edge.scale.simulator import ScaleSimulator
from edge.scale.stability import StabilityWindow
from edge.scale.state import ScaleState, ScaleStatus
from edge.scale.wirelog import WireLog
from rigs.helpers import wait_for

INTERVAL = 0.02
STALE = 0.5
SLOW = 10.0
"""Bound for what must happen within a few STALE or INTERVAL: far beyond, so a loaded
machine cannot fail the wait."""


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


def disconnected(error: str | None) -> bool:
    """An offline reason that says the port went away (not a stale_after_s timeout)."""
    return error is not None and "disconnected" in error


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


def watch_until(
    reader: ScaleReader, done: Callable[[], bool], what: str, timeout: float = SLOW
) -> list[ScaleState]:
    """Every distinct state seen until ``done()`` (checked after each look, so the
    state it was true at is the last one); fails after ``timeout``."""
    seen: list[ScaleState] = []
    deadline = time.monotonic() + timeout
    while True:
        state = reader.state
        if not seen or seen[-1] != state:
            seen.append(state)
        if done():
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; state: {state}")
        time.sleep(0.005)


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
    sent = sim.frames_sent  # held for twice the frames that would settle it ...
    seen = watch_until(reader, lambda: sim.frames_sent >= sent + 20, "20 more frames sent")
    sim.set_weight(7777)  # ... then a frame to recognise: once read, so were those before it
    seen += watch_until(reader, lambda: reader.state.weight_g == 7777, "the 7777 g frame read")
    assert ScaleStatus.STABLE not in {s.status for s in seen}
    assert seen[-1].status is ScaleStatus.UNSTABLE
    sim.set_unstable(False)
    wait_state(reader, is_stable(7777), "stable again")


def test_overload(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.set_overload(True)
    state = wait_state(reader, lambda s: s.status is ScaleStatus.OVERLOAD, "overload")
    assert state.weight_g is None
    assert state.frame is not None and state.frame.startswith("OL,GS,")
    sim.set_overload(False)
    wait_state(reader, is_stable(1234), "stable after overload")


def test_silence_goes_offline_after_stale_after(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.silence(True)
    state = wait_state(reader, lambda s: s.status is ScaleStatus.OFFLINE, "offline", SLOW)
    seen_at = time.monotonic()
    assert state.updated_at is not None  # when the last valid frame came (reader's clock)
    assert seen_at - state.updated_at >= STALE, "offline before stale_after_s of silence"
    assert state.error == f"no valid frame for {STALE:.1f} s"
    assert state.weight_g is None
    sim.silence(False)
    wait_state(reader, is_stable(1234), "stable after the scale talks again")


def test_only_noise_goes_offline_with_a_hint(sim: ScaleSimulator, reader: ScaleReader) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    sim.silence(True)

    def noise_until_offline() -> bool:
        sim.send_noise(b"\x00\xff wrong baud rate garbage\r\n")
        return reader.state.status is ScaleStatus.OFFLINE

    wait_for(noise_until_offline, SLOW, "offline while only noise arrives")
    state = reader.state
    assert state.status is ScaleStatus.OFFLINE
    assert state.error is not None and "not stgs frames" in state.error
    assert "\\x00\\xff wrong baud rate garbage" in state.recent_frames


def test_unplug_goes_offline_at_once_and_replug_resumes(
    sim: ScaleSimulator, reader: ScaleReader, link: Path
) -> None:
    wait_state(reader, is_stable(1234), "1234 g stable")
    thread = reader._thread
    sim.unplug()
    assert not link.exists() and not link.is_symlink()
    # at once: the hang-up itself is seen ("disconnected"), not stale_after_s of silence
    wait_state(reader, lambda s: disconnected(s.error), "offline: disconnected", SLOW)
    wait_state(reader, lambda s: s.error == f"port {link} not found", "port not found")

    sim.set_weight(2500)
    sim.replug()
    assert os.path.realpath(link) == sim.device
    wait_state(reader, is_stable(2500), "2500 g stable after replug", SLOW)
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
        sim.send_noise(b"~after the flush~\r\n")  # read after anything left in the line
        seen = watch_until(
            reader, lambda: "~after the flush~" in reader.state.recent_frames, "the marker read"
        )
        assert {s.weight_g for s in seen} == {None}
        assert reader.state.recent_frames == ("~after the flush~",)  # nothing queued came in
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
        late = bytearray()  # frames sent after the read above (a slow machine: a few)
        while True:
            assert select.select([fd], [], [], SLOW)[0] == [fd]  # readable: data or hung up
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO on some kernels
                data = b""
            if not data:
                break  # EOF: the line is gone
            late += data
        assert bytes(late).replace(b"ST,GS,+001.234kg\r\n", b"") == b"", late
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
    thread = sim._thread
    try:

        def flood() -> None:
            for _ in range(20):
                sim.send_noise(b"x" * 100_000)  # far more than a pty buffers

        writer = threading.Thread(target=flood, daemon=True)
        writer.start()
        writer.join(SLOW)  # a blocking write would never return: nobody reads
        assert not writer.is_alive(), "send_noise blocked on a full pty"

        def attempts() -> int:
            return sim.frames_sent + sim.frames_dropped

        before = attempts()
        wait_for(lambda: attempts() >= before + 5, 3, "the frame thread to keep going")

        def keep_full_until_a_frame_is_dropped() -> bool:
            sim.send_noise(b"x" * 10_000)
            return sim.frames_dropped > 0

        wait_for(keep_full_until_a_frame_is_dropped, 3, "a frame dropped on a full buffer")
    finally:
        sim.stop()
        assert thread is not None
        thread.join(SLOW)
        assert not thread.is_alive(), "the frame thread did not stop"


def test_stop_removes_the_link(link: Path) -> None:
    sim = ScaleSimulator(link)
    sim.start()
    assert link.is_symlink()
    sim.stop()
    assert not link.is_symlink()
    with pytest.raises(RuntimeError):
        _ = ScaleSimulator(link).device


# -- any family, streaming or polled, against a peer of our own ---------------------------


class PtyPeer:
    """A scale of one family on a pseudo-terminal, built from the registry alone.

    It answers a command only when asked (``spec.answer``), with tare and zero applied
    to its state first (like an indicator); with ``stream_s`` it also streams
    ``spec.encode`` frames, every frame or (``change_only``) only new ones. Everything
    the reader writes is kept in ``received``. ``link`` is a by-id style symlink.
    """

    def __init__(
        self,
        link: Path,
        protocol: str,
        state: SimState,
        *,
        stream_s: float | None = None,
        change_only: bool = False,
    ) -> None:
        self.link = link
        self.spec = get_protocol(protocol)
        self.stream_s = stream_s
        self.change_only = change_only or self.spec.sends_on_change_only
        self.answering = True
        self.received = bytearray()
        self.commands: list[bytes] = []
        self.streamed = 0  # frames streamed (stream_s)
        self._cycle: list[int] = []
        self._cycled = 0
        self._state = state
        self._last_sent: bytes | None = None
        self._inbox = bytearray()
        self._fds: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        spec = self.spec
        known = {spec.poll_command, spec.tare_command, spec.zero_command, *spec.harmless_queries}
        self._known = sorted((c for c in known if c), key=len, reverse=True)

    def __enter__(self) -> PtyPeer:
        self.replug()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.unplug()

    @property
    def state(self) -> SimState:
        with self._lock:
            return self._state

    def set(self, **changes: Any) -> None:
        with self._lock:
            self._state = dataclasses.replace(self._state, **changes)

    def cycle(self, weights: list[int]) -> int:
        """Stream each next frame with the next of ``weights`` (in turn, from now on;
        ``[]``: stop, the last one stays); the frames streamed so far."""
        with self._lock:
            self._cycle, self._cycled = list(weights), 0
            return self.streamed

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._fds is not None:
                os.write(self._fds[0], data)

    def unplug(self) -> None:
        with self._lock:
            self.link.unlink(missing_ok=True)
            if self._fds is not None:
                for fd in self._fds:
                    os.close(fd)
                self._fds = None

    def replug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(self.link.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        with self._lock:
            os.replace(tmp, self.link)
            self._fds = (master, slave)
            self._inbox.clear()

    def _run(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                master = self._fds[0] if self._fds else None
            if master is None:
                self._stop.wait(0.01)
                continue
            try:
                ready = select.select([master], [], [], 0.005)[0]
                data = os.read(master, 4096) if ready else b""
            except OSError:
                data = b""  # unplugged meanwhile, or nothing after all
            with self._lock:
                self.received += data
                self._inbox += data
                while (command := self._next_command()) is not None:
                    self._dispatch(command)
                if self.stream_s is not None and time.monotonic() >= next_frame:
                    next_frame = time.monotonic() + self.stream_s
                    if self._cycle:
                        weight = self._cycle[self._cycled % len(self._cycle)]
                        self._state = dataclasses.replace(self._state, weight_g=weight)
                        self._cycled += 1
                    self._send(self.spec.encode(self._state))
                    self.streamed += 1

    def _next_command(self) -> bytes | None:
        box = self._inbox
        for known in self._known:
            if box.startswith(known):
                del box[: len(known)]
                return known
        if box and not any(known.startswith(box) for known in self._known):
            del box[:1]  # not a command of this family: skip a byte
            return self._next_command()
        return None

    def _dispatch(self, command: bytes) -> None:
        self.commands.append(command)
        s = self._state
        gross = s.weight_g + s.tare_g if s.net else s.weight_g
        if command == self.spec.tare_command:
            self._state = dataclasses.replace(s, net=True, tare_g=gross, weight_g=0)
        elif command == self.spec.zero_command:
            self._state = dataclasses.replace(s, net=False, tare_g=0, weight_g=0)
        reply = self.spec.answer(command, self._state)
        if reply:
            self._send(reply)

    def _send(self, frame: bytes) -> None:
        if self._fds is None or not self.answering:
            return
        if self.change_only and frame == self._last_sent:
            return
        os.write(self._fds[0], frame)
        self._last_sent = frame


POLL = 0.05  # poll 20 times a second in these tests


def polled_reader(link: Path, protocol: str, **kwargs: Any) -> ScaleReader:
    kwargs.setdefault("stale_after_s", STALE)
    return ScaleReader(str(link), protocol=protocol, poll_interval_s=POLL, **kwargs)


def test_polled_scale_answers_only_when_asked(link: Path, caplog: pytest.LogCaptureFixture) -> None:
    with PtyPeer(link, "mt-sics", SimState(1234, unit="g")) as peer:
        reader = polled_reader(link, "mt-sics")
        started = time.monotonic()
        reader.start()
        try:
            state = wait_state(reader, is_stable(1234), "1234 g stable")
            assert state.protocol == "mt-sics"
            assert state.frame == "S S    1234.00 g"
            wait_for(lambda: len(peer.commands) >= 10, SLOW, "ten polls")
            assert set(peer.commands) == {b"SI\r\n"}
            assert bytes(peer.received).replace(b"SI\r\n", b"") == b""  # nothing else sent
            polls = len(peer.commands)
            wait_for(lambda: len(peer.commands) >= polls + 10, SLOW, "ten more polls")
            # never faster than the poll rate: poll n goes out no sooner than (n - 1) * POLL
            # after the start (a bound from below, whatever the load)
            polled = len(peer.commands)
            elapsed = time.monotonic() - started
            assert polled <= 1 + elapsed / POLL + 1e-6, f"{polled} polls in {elapsed:.2f} s"

            peer.set(weight_g=2000, stable=False)
            wait_state(reader, lambda s: s.weight_g == 2000, "2000 g")
            assert reader.state.status is ScaleStatus.UNSTABLE
            peer.set(stable=True)
            wait_state(reader, is_stable(2000), "2000 g stable")

            logged = len(caplog.records)
            peer.answering = False  # the balance is switched off: no answer to the polls
            state = wait_state(reader, lambda s: s.status is ScaleStatus.OFFLINE, "offline", SLOW)
            seen_at = time.monotonic()
            assert state.updated_at is not None  # the last answer (reader's clock)
            assert seen_at - state.updated_at >= STALE, "offline before stale_after_s"
            assert state.error == f"no answer to SI\\r\\n for {STALE:.1f} s"
            assert state.recent_frames[-1] == "S S    2000.00 g"
            # logged once, with the last frames seen, for the error report
            later = caplog.records[logged:]
            [offline] = [r.getMessage() for r in later if "offline" in r.getMessage()]
            assert offline.endswith(
                f"offline: {state.error}; last frames: " + " | ".join(state.recent_frames)
            )
            peer.answering = True
            wait_state(reader, is_stable(2000), "stable again")
        finally:
            reader.stop()


def test_polled_noise_never_gives_a_wrong_weight(link: Path) -> None:
    with PtyPeer(link, "toledo-8217", SimState(1500)) as peer:
        reader = polled_reader(link, "toledo-8217")
        reader.start()
        try:
            wait_state(reader, is_stable(1500), "1500 g stable")
            seen: list[ScaleState] = []
            for noise in (b"\x029\r", b"\x0299.9x9\r", b"\xff\x00\x02", b"\x02?", b"12.345N\r"):
                peer.write(noise)
                seen += watch(reader, 0.05)
            assert {s.weight_g for s in seen} <= {1500}
            assert any("99.9x9" in f for s in seen for f in s.recent_frames)
            wait_state(reader, is_stable(1500), "1500 g stable")
        finally:
            reader.stop()


def test_change_only_scale_keeps_its_last_reading_while_polled(link: Path) -> None:
    """Adam answers P only when the weight changed: silence is the same weight."""
    with PtyPeer(link, "adam", SimState(2500)) as peer:
        peer.answering = False  # nothing at all at first: the scale must answer once
        reader = polled_reader(link, "adam", window=StabilityWindow(1, 50, 0.2))
        reader.start()
        try:
            state = wait_state(
                reader, lambda s: s.error is not None and "no answer to P for" in s.error, "no P"
            )
            assert state.status is ScaleStatus.OFFLINE
            peer.answering = True
            state = wait_state(reader, lambda s: s.weight_g == 2500, "2500 g")
            assert state.status is ScaleStatus.SETTLING  # no flag: time will tell
            wait_state(reader, is_stable(2500), "2500 g stable by time alone")
            polls, quiet_since = len(peer.commands), time.monotonic()
            # silence for three stale periods (at least) and ten more polls, which an Adam
            # leaves unanswered while the weight stays: still 2500 g stable
            seen = watch_until(
                reader,
                lambda: (
                    time.monotonic() - quiet_since >= 3 * STALE and len(peer.commands) >= polls + 10
                ),
                "three stale periods and ten polls",
            )
            assert {(s.status, s.weight_g) for s in seen} == {(ScaleStatus.STABLE, 2500)}
            peer.set(weight_g=3100)
            wait_state(reader, lambda s: s.weight_g == 3100, "3100 g")
            wait_state(reader, is_stable(3100), "3100 g stable")
            peer.unplug()  # silence is trusted, a vanished port is not
            wait_state(reader, lambda s: disconnected(s.error), "offline: disconnected", SLOW)
        finally:
            reader.stop()


def test_no_flag_family_is_stable_by_the_window(link: Path) -> None:
    with PtyPeer(link, "xk3190-eq", SimState(3000), stream_s=INTERVAL) as peer:
        window = StabilityWindow(readings=4, tolerance_g=10, settle_s=0.1)
        reader = ScaleReader(str(link), protocol="xk3190-eq", window=window, stale_after_s=STALE)
        reader.start()
        try:
            wait_state(reader, is_stable(3000), "3000 g stable")
            peer.set(weight_g=5000)
            state = wait_state(reader, lambda s: s.weight_g == 5000, "5000 g")
            assert state.status in (ScaleStatus.UNSTABLE, ScaleStatus.SETTLING)
            wait_state(reader, is_stable(5000), "5000 g stable")
            assert reader.state.frame == "=000.5000"
            # the peer itself jitters, frame by frame: no delay of this thread can leave
            # one weight on the line long enough to settle
            streamed = peer.cycle([5300, 4700, 5600, 5000])
            seen = watch_until(reader, lambda: peer.streamed >= streamed + 12, "12 jittery frames")
            peer.cycle([])
            peer.set(weight_g=7777)  # a frame to recognise: once read, so were those before
            seen += watch_until(reader, lambda: reader.state.weight_g == 7777, "7777 g read")
            jittery = [s for s in seen if s.weight_g != 7777]
            moving = list(itertools.dropwhile(lambda s: s.status is ScaleStatus.STABLE, jittery))
            assert ScaleStatus.STABLE not in {s.status for s in moving}
        finally:
            reader.stop()


def test_polled_unplug_and_replug(link: Path) -> None:
    with PtyPeer(link, "dini", SimState(4200)) as peer:
        reader = polled_reader(link, "dini")
        reader.start()
        try:
            wait_state(reader, is_stable(4200), "4200 g stable")
            peer.unplug()
            # at once: the hang-up itself is seen, not stale_after_s without answers
            wait_state(reader, lambda s: disconnected(s.error), "offline: disconnected", SLOW)
            peer.set(weight_g=4300)
            peer.replug()
            wait_state(reader, is_stable(4300), "4300 g after replug", SLOW)
        finally:
            reader.stop()


def test_wire_log_has_both_directions(link: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "wire.log"
    with PtyPeer(link, "mt-sics", SimState(750, unit="g")):
        reader = polled_reader(link, "mt-sics", wire_log=log_file)
        reader.start()
        try:
            wait_state(reader, is_stable(750), "750 g stable")
        finally:
            reader.stop()
    lines = log_file.read_text(encoding="ascii").splitlines()
    assert any(line.endswith(f"--  port {link} opened (mt-sics, 9600 8N1)") for line in lines)
    assert any(line.endswith(" out SI\\r\\n") for line in lines)
    assert any(" in  " in line and "S S     750.00 g\\r\\n" in line for line in lines)
    assert lines[-1].endswith(f"port {link} reader stopped")
    stamp = lines[0].split(" ")[0]
    assert datetime.fromisoformat(stamp).tzinfo is not None


def test_wire_log_rotates(tmp_path: Path) -> None:
    wire = WireLog(tmp_path / "w.log", max_bytes=200)
    for _ in range(20):
        wire.received(b"ST,GS,+001.234kg\r\n\\\x00")
    wire.note("end")
    wire.close()
    assert (tmp_path / "w.log.1").exists()
    assert (tmp_path / "w.log").read_text().endswith(" --  end\n")
    assert "ST,GS,+001.234kg\\r\\n\\\\\\x00" in (tmp_path / "w.log.1").read_text()


def test_send_command_needs_an_open_port(link: Path) -> None:
    reader = ScaleReader(str(link), protocol="mt-sics")
    with pytest.raises(CommandError, match="not open"):
        reader.send_command(b"T\r\n")


def test_polled_family_needs_a_poll_command(link: Path) -> None:
    spec = dataclasses.replace(get_protocol("mt-sics"), poll_command=None)
    with pytest.raises(ValueError, match="no poll command"):
        ScaleReader(str(link), protocol=spec)


@pytest.mark.parametrize("protocol", protocol_names())
def test_every_family_reads_through_the_driver(link: Path, protocol: str) -> None:
    spec = get_protocol(protocol)
    stream_s = INTERVAL if spec.mode == "stream" else None
    with PtyPeer(link, protocol, SimState(2500, unit=spec.units[0]), stream_s=stream_s) as peer:
        reader = ScaleReader(
            str(link),
            protocol=protocol,
            poll_interval_s=POLL,
            window=StabilityWindow(readings=2, tolerance_g=0, settle_s=0.05),
            stale_after_s=STALE,
        )
        reader.start()
        try:
            wait_state(reader, is_stable(2500), f"{protocol}: 2500 g stable")
            peer.set(weight_g=4000)
            wait_state(reader, is_stable(4000), f"{protocol}: 4000 g stable")
            sent = bytes(peer.received)
            if spec.mode == "stream":
                assert sent == b""  # a streaming scale is never written to
            else:
                assert sent and sent.replace(spec.poll_command or b"", b"") == b""
        finally:
            reader.stop()


@pytest.mark.parametrize(("unit", "shown"), [("kg", 2500), (None, None)])
def test_sbi_unstable_at_start_shows_the_configured_unit(
    link: Path, unit: str | None, shown: int | None
) -> None:
    """An SBI indicator whose load still moves sends lines without a unit: with the
    configured unit they show as unstable weights at once (without one, no weight), and
    the unit the scale then shows takes over."""
    unstable = SimState(2500, stable=False, unit="kg")
    with PtyPeer(link, "sbi", unstable) as peer:
        reader = polled_reader(link, "sbi", unit=unit)
        reader.start()
        try:
            state = wait_state(reader, lambda s: s.status is ScaleStatus.UNSTABLE, "sbi: unstable")
            assert state.frame == "+    2.500    "
            assert {s.weight_g for s in watch(reader, 0.3)} == {shown}
            peer.set(stable=True, unit="g")
            wait_state(reader, is_stable(2500), "sbi: 2500 g stable")
            peer.set(weight_g=1300, stable=False)  # now read in g, the unit last seen
            state = wait_state(reader, lambda s: s.weight_g == 1300, "sbi: 1300 g")
            assert state.status is ScaleStatus.UNSTABLE
            assert state.frame == "+   1300.0    "
        finally:
            reader.stop()


def test_an_unknown_unit_fails_at_construction(link: Path) -> None:
    with pytest.raises(ValueError, match="unknown unit 'pcs'"):
        ScaleReader(str(link), protocol="sbi", unit="pcs")
