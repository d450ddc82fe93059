"""The simulator of every registered family on a real pty, read by that family's parser.

Parametrized over ``protocol_names()``, so a new family is covered as soon as it is
registered. Polled families are polled by the test (their poll command, written to the
slave side); streaming families are only listened to.
"""

from __future__ import annotations

import os
import select
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.scale.protocols import (
    ProtocolSpec,
    Reading,
    SimState,
    get_protocol,
    protocol_names,
)
from edge.scale.simulator import ScaleSimulator
from rigs.helpers import wait_for

# About no date or time of day: make test runs these in one pass (the real-clock pass skips it).
pytestmark = pytest.mark.calendar_pass_only

INTERVAL = 0.01
QUIET_S = 0.15
"""How long "nothing arrives" is watched for: on a slow machine what should not arrive
may come later than that, so a too-short watch can only miss a fault, never invent one."""
NAMES = protocol_names()
STREAMING = [n for n in NAMES if get_protocol(n).mode == "stream"]
POLLED = [n for n in NAMES if get_protocol(n).mode == "poll"]


class Wire:
    """The reader's end of the line: the slave pty opened through the link."""

    def __init__(self, link: Path, spec: ProtocolSpec) -> None:
        self.spec = spec
        self.fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.parser = spec.parser()
        self.seen: list[Reading] = []
        self.drain()

    def close(self) -> None:
        os.close(self.fd)

    def drain(self) -> None:
        termios.tcflush(self.fd, termios.TCIFLUSH)
        self.parser.reset()

    def read(self, timeout: float) -> bytes:
        if not select.select([self.fd], [], [], timeout)[0]:
            return b""
        try:
            return os.read(self.fd, 4096)
        except OSError:  # EIO after a hang-up
            return b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def poll(self) -> None:
        if self.spec.mode == "poll":
            assert self.spec.poll_command
            self.send(self.spec.poll_command)

    def pump(self) -> list[Reading]:
        """Poll (a polled family), then the readings that arrive within 50 ms."""
        self.poll()
        got = self.parser.feed(self.read(0.05))
        self.seen += got
        return got

    def until(
        self, check: Callable[[Reading], bool], what: str, timeout: float = 3.0
    ) -> list[Reading]:
        """Readings up to and including the first that passes ``check``."""
        got: list[Reading] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reading in self.pump():
                got.append(reading)
                if check(reading):
                    return got
        raise AssertionError(f"{self.spec.name}: no {what} within {timeout} s; got {got}")

    def quiet(self) -> bytes:
        """Everything that arrives within QUIET_S, without polling."""
        data = bytearray()
        deadline = time.monotonic() + QUIET_S
        while (left := deadline - time.monotonic()) > 0:
            data += self.read(left)
        return bytes(data)

    def drain_through(self, sim: ScaleSimulator) -> bytes:
        """Everything on its way up to now: the simulator sends a marker after it, and
        what arrives up to the marker is returned (a sync point, not a time)."""
        marker = b"<drained>"
        sim.send_noise(marker)
        data = bytearray()

        def through() -> bool:
            data.extend(self.read(0.05))
            return marker in data

        wait_for(through, 10, "the marker sent after what was on its way")
        rest = data.split(marker, 1)[1]
        assert rest == b"", f"{self.spec.name}: sent after the marker: {rest!r}"
        return bytes(data.split(marker, 1)[0])


@pytest.fixture(params=NAMES)
def spec(request: pytest.FixtureRequest) -> ProtocolSpec:
    return get_protocol(request.param)


@pytest.fixture
def sim(tmp_path: Path, spec: ProtocolSpec) -> Iterator[ScaleSimulator]:
    s = ScaleSimulator(tmp_path / "scale", protocol=spec.name, weight_g=1200, interval_s=INTERVAL)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def wire(sim: ScaleSimulator, spec: ProtocolSpec) -> Iterator[Wire]:
    w = Wire(sim.link, spec)
    yield w
    w.close()


def steady(spec: ProtocolSpec, grams: int) -> Callable[[Reading], bool]:
    """A stable reading of ``grams`` (any reading of it when frames carry no motion flag)."""
    return lambda r: (
        r.status == "ok" and r.weight_g == grams and (r.stable or not spec.has_stability_flag)
    )


def test_unknown_protocol_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown protocol 'nope'"):
        ScaleSimulator(tmp_path / "scale", protocol="nope")


def test_set_weight_unstable_then_stable(sim: ScaleSimulator, wire: Wire) -> None:
    wire.until(steady(wire.spec, 1200), "stable 1200 g")
    sim.set_weight(2500)
    assert not sim.stable
    got = wire.until(steady(wire.spec, 2500), "stable 2500 g")
    assert {r.weight_g for r in got} <= {1200, 2500, None}
    assert sim.weight_g == 2500
    if wire.spec.has_stability_flag:
        assert any(not r.stable for r in got), got
        assert sim.stable


def test_overload_and_underload(sim: ScaleSimulator, wire: Wire, spec: ProtocolSpec) -> None:
    limits = [s for s in ("overload", "underload") if s in spec.statuses]
    if not limits:
        pytest.skip(f"{spec.name} reports neither overload nor underload")
    for status in limits:
        (sim.set_overload if status == "overload" else sim.set_underload)(True)
        assert not sim.stable
        wire.until(lambda r, s=status: r.status == s, status)  # type: ignore[misc]
        (sim.set_overload if status == "overload" else sim.set_underload)(False)
        wire.until(steady(wire.spec, 1200), f"stable 1200 g after {status}")


def test_streams_by_itself_or_answers_only_when_asked(
    sim: ScaleSimulator, wire: Wire, spec: ProtocolSpec
) -> None:
    if spec.mode == "stream":
        wait_for(lambda: spec.parser().feed(wire.quiet()), 3, "frames without asking")
        return
    assert wire.quiet() == b""  # a polled scale says nothing unasked
    assert spec.poll_command is not None
    wire.send(spec.poll_command)
    wait_for(lambda: [r for r in wire.parser.feed(wire.read(0.1)) if r.weight_g == 1200], 3,
             "the answer to one poll")  # fmt: skip
    assert sim.commands[-1] == spec.poll_command
    assert wire.quiet() == b""  # one poll, one answer


def test_tare_and_zero(sim: ScaleSimulator, wire: Wire, spec: ProtocolSpec) -> None:
    wire.until(steady(wire.spec, 1200), "stable 1200 g")
    if spec.tare_command:  # over the wire, as a host would
        wire.send(spec.tare_command)
        wait_for(lambda: sim.state.net, 3, "the tare command to act")
        assert spec.tare_command in sim.commands
    else:  # the tare key
        sim.tare()
    assert (sim.state.net, sim.state.tare_g, sim.state.weight_g) == (True, 1200, 0)
    wire.until(steady(wire.spec, 0), "net 0 g after tare")
    sim.set_weight(1500)
    assert sim.state.weight_g == 300  # net as displayed
    wire.until(steady(wire.spec, 300), "net 300 g")
    if spec.zero_command:
        wire.send(spec.zero_command)
        wait_for(lambda: not sim.state.net, 3, "the zero command to act")
        assert spec.zero_command in sim.commands
    else:
        sim.zero()
    assert (sim.state.net, sim.state.tare_g, sim.weight_g) == (False, 0, 0)
    got = wire.until(steady(wire.spec, 0), "0 g after zero")
    if spec.encode(SimState(0, net=True)) != spec.encode(SimState(0)):  # frames tell net
        assert not got[-1].net


NOISES = [
    b"\x00\xff\x13#!noise\xfe\r\n",
    b"\r\n\r\n\x02\x03==\r",
    b"ST,GS,+9",
    b"\x02\x02 99.9",
    b"=9999",
]


def test_noise_and_cut_frames_never_give_a_wrong_weight(
    sim: ScaleSimulator, wire: Wire, spec: ProtocolSpec
) -> None:
    """After each disturbance a new weight must read right, and nothing else ever may."""
    weights = {1200}

    def new_weight(grams: int, after: str) -> None:
        sent = sim.frames_sent
        sim.set_weight(grams)
        weights.add(grams)
        if spec.sends_on_change_only:
            # the frame that follows the disturbance is lost with it, and such a scale
            # does not repeat it: once it went out, a new weight is needed
            def went_out() -> bool:
                wire.pump()
                return sim.frames_sent > sent

            wait_for(went_out, 3, f"a frame after {after}")
            grams += 50
            sim.set_weight(grams)
            weights.add(grams)
        wire.until(steady(spec, grams), f"{grams} g after {after}")

    wire.until(steady(spec, 1200), "stable 1200 g")
    for i, noise in enumerate(NOISES):
        sim.cut()
        new_weight(1300 + 100 * i, "a cut frame")
        sim.send_noise(noise)
        new_weight(6300 + 100 * i, f"noise {noise!r}")
    assert {r.weight_g for r in wire.seen} <= weights | {None}, wire.seen


def test_cut_sends_half_a_frame(sim: ScaleSimulator, wire: Wire, spec: ProtocolSpec) -> None:
    sim.silence(True)
    wire.drain()
    frame = spec.encode(sim.state)
    sim.cut()
    sim.silence(False)
    data = bytearray()

    def enough() -> bool:
        wire.poll()  # a polled family: the cut answer, then the next one
        data.extend(wire.read(0.05))
        return len(data) >= len(frame)

    wait_for(enough, 3, "a cut frame and the next one")
    assert data.startswith(frame[: len(frame) // 2])
    assert not data.startswith(frame)


def test_silence(sim: ScaleSimulator, wire: Wire) -> None:
    wire.until(steady(wire.spec, 1200), "stable 1200 g")
    sim.silence(True)
    wire.drain_through(sim)  # what was on its way
    wire.poll()
    assert wire.quiet() == b""
    sim.silence(False)
    sim.set_weight(1300)  # families that send only on change send again
    wire.until(steady(wire.spec, 1300), "frames again")


def test_unplug_and_replug(sim: ScaleSimulator, wire: Wire, spec: ProtocolSpec) -> None:
    wire.until(steady(wire.spec, 1200), "stable 1200 g")
    sim.unplug()
    assert not sim.link.exists()
    assert wire.read(2) == b""  # hung up: EOF or EIO
    sim.set_weight(2200)
    sim.replug()
    assert os.readlink(sim.link) == sim.device
    other = Wire(sim.link, spec)
    try:
        other.until(steady(spec, 2200), "stable 2200 g on the new port")
    finally:
        other.close()
