"""The probe: pure ranking on captured bytes, then end to end against the simulator.

Wrong line settings are simulated on the captured bytes, as a UART would deliver them
(a pty ignores baud rate and parity, so only the pure ranking can test them):

* ``as_7e1``: 8N1 data read as 7E1. The receiver takes the 7 low bits as the character
  and bit 7 as the parity bit; when the parity is not even the character is a parity
  error, which Linux delivers as NUL (INPCK set by pyserial, no IGNPAR/PARMRK).
* ``as_8n1``: 7E1 data read as 8N1: the even-parity bit arrives as bit 7.
* ``wrong_baud``: at another baud rate nearly every character is a framing error or a
  different byte: seeded random bytes, half as many as were sent.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.scale.cli import add_scale_commands
from edge.scale.probe import (
    USUAL_LINES,
    Capture,
    harmless,
    line_text,
    lines_to_try,
    probe_port,
    rank,
    verdict,
)
from edge.scale.protocols import (
    PROTOCOLS,
    LineSettings,
    ProtocolSpec,
    SimState,
    get_protocol,
    protocol_names,
)
from edge.scale.simulator import ScaleSimulator

NAMES = protocol_names()


def even(b: int) -> bool:
    return bin(b & 0x7F).count("1") % 2 == 0


def as_7e1(data: bytes) -> bytes:
    return bytes(b & 0x7F if even(b) == (b < 0x80) else 0 for b in data)


def as_8n1(data: bytes) -> bytes:
    return bytes(b & 0x7F if even(b) else (b & 0x7F) | 0x80 for b in data)


def wrong_baud(data: bytes, seed: int) -> bytes:
    return random.Random(seed).randbytes(len(data) // 2)


def received(data: bytes, sent: LineSettings, read: LineSettings) -> bytes:
    """What a port opened with ``read`` captures of ``data`` sent with ``sent``."""
    if read.baudrate != sent.baudrate:
        return wrong_baud(data, read.baudrate)
    seven = (sent.bytesize == 7, read.bytesize == 7)
    if seven == (False, True):
        return as_7e1(data)
    if seven == (True, False):
        return as_8n1(data)
    return bytes(b & 0x7F for b in data) if seven == (True, True) else data


def stream(spec: ProtocolSpec, frames: int = 12) -> bytes:
    """What a scale sends (or answers to repeated polls): varied weights, some unstable."""
    weights = [1200 + 10 * (i // 3) for i in range(frames)]
    return b"".join(spec.encode(SimState(w, stable=i % 3 != 0)) for i, w in enumerate(weights))


def captures_of(spec: ProtocolSpec, data: bytes) -> list[Capture]:
    return [
        Capture(line, received(data, spec.line, line)) for line in lines_to_try(PROTOCOLS.values())
    ]


# -- pure ---------------------------------------------------------------------------


def test_transforms_match_the_uart() -> None:
    assert as_7e1(b"A") == b"A"  # 0x41: two bits set, even parity bit 0 = bit 7
    assert as_7e1(b"C") == b"\x00"  # 0x43: three bits set, parity should be 1, bit 7 is 0
    assert as_7e1(b"\xc3") == b"C"  # the 8-bit byte whose bit 7 is C's parity bit
    assert as_8n1(b"A") == b"A"
    assert as_8n1(b"C") == b"\xc3"


def test_lines_to_try_are_the_usual_ones_plus_the_families() -> None:
    lines = lines_to_try(PROTOCOLS.values())
    assert lines[: len(USUAL_LINES)] == list(USUAL_LINES)
    assert {spec.line for spec in PROTOCOLS.values()} <= set(lines)
    assert len(lines) == len(set(lines))
    assert line_text(LineSettings(2400, 7, "E", 1)) == "2400 7E1"


@pytest.mark.parametrize("name", NAMES)
def test_ranking_picks_the_family_and_its_line_settings(name: str) -> None:
    spec = get_protocol(name)
    ranked = rank(captures_of(spec, stream(spec)))
    best = ranked[0]
    assert (best.protocol, best.line) == (name, spec.line), [c.describe() for c in ranked[:4]]
    assert best.confidence == "sure"
    assert best.frames == 12
    text = verdict(ranked, [])
    assert text.startswith(f"best match: {name} ")
    assert f"scale.protocol = '{name}'" in text


@pytest.mark.parametrize("name", NAMES)
def test_ranking_survives_noise_and_a_cut_frame(name: str) -> None:
    spec = get_protocol(name)
    clean = stream(spec, 40)
    frame = spec.encode(SimState(1234))
    noisy = b"\x00\xff noise " + frame[: len(frame) // 2] + clean + b"\xfe\x13" + frame
    ranked = rank([Capture(spec.line, noisy)])
    assert ranked[0].protocol == name
    assert ranked[0].confidence == "sure"


def test_wrong_parity_alone_is_told_apart() -> None:
    """The same 9600 baud, 8N1 data: the 7E1 capture loses characters and ranks lower."""
    spec = get_protocol("stgs")
    data = stream(spec)
    ranked = rank([Capture(LineSettings(9600, 7, "E", 1), as_7e1(data)),
                   Capture(LineSettings(9600, 8, "N", 1), data)], [spec])  # fmt: skip
    assert ranked[0].line == LineSettings(9600, 8, "N", 1)
    assert all(c.line != LineSettings(9600, 7, "E", 1) or c.frames < 12 for c in ranked)


def test_nothing_or_garbage_says_what_to_check() -> None:
    silent = [Capture(line, b"") for line in USUAL_LINES]
    assert rank(silent) == []
    assert verdict([], silent).startswith("no bytes at all")
    garbage = [Capture(line, wrong_baud(b"x" * 400, line.baudrate)) for line in USUAL_LINES]
    assert rank(garbage) == []
    text = verdict([], garbage)
    assert text.startswith("bytes arrived (200 at 9600 8N1) but none formed a valid frame")
    assert "--wire-log" in text and "baud rate" in text


def test_a_few_frames_are_not_sure() -> None:
    spec = get_protocol("stgs")
    ranked = rank([Capture(spec.line, b"\x00" * 200 + spec.encode(SimState(500)))], [spec])
    assert ranked[0].confidence == "weak"
    assert "not sure" in verdict(ranked, [])


def test_queries_with_a_tare_or_zero_command_in_them_are_not_harmless() -> None:
    specs = list(PROTOCOLS.values())
    for spec in specs:
        for command in (spec.tare_command, spec.zero_command):
            if command:
                assert not harmless(command, specs)
        for query in spec.harmless_queries:
            assert harmless(query, specs), (spec.name, query)  # the registry's own are safe


# -- end to end on a pty ----------------------------------------------------------------


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[[str], ScaleSimulator]]:
    started: list[ScaleSimulator] = []

    def make(protocol: str) -> ScaleSimulator:
        sim = ScaleSimulator(tmp_path / "scale", protocol=protocol, weight_g=1200, interval_s=0.01)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def never_tared_or_zeroed(sim: ScaleSimulator) -> None:
    for spec in PROTOCOLS.values():
        for command in (spec.tare_command, spec.zero_command):
            core = (command or b"").strip(b"\r\n")
            assert not core or core not in sim.received, (spec.name, command, sim.received)
    assert (sim.state.net, sim.weight_g) == (False, 1200)


STREAMING = [n for n in NAMES if get_protocol(n).mode == "stream"]
POLLED = [n for n in NAMES if get_protocol(n).mode == "poll"]


def test_probe_cli_finds_a_streaming_family(
    start_sim: Callable[[str], ScaleSimulator], capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start_sim("stgs")  # a look-alike of cas: told apart by the exact format
    parser = argparse.ArgumentParser(prog="edge")
    add_scale_commands(parser.add_subparsers())
    args = parser.parse_args(
        ["scale", "probe", "--port", str(sim.link), "--seconds-per-try", "0.2"]
    )
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert out.out.startswith("best match: stgs "), out
    assert ": sure;" in out.out
    assert "listened at 9600 8N1" in out.err
    assert "asked" not in out.err  # sure from listening: no query sent
    assert sim.received == b""
    never_tared_or_zeroed(sim)


@pytest.mark.parametrize("name", STREAMING)
def test_probe_finds_every_streaming_family_by_listening(
    name: str, start_sim: Callable[[str], ScaleSimulator]
) -> None:
    sim = start_sim(name)
    ranked, captures = probe_port(str(sim.link), seconds_per_try=0.15)
    assert ranked[0].protocol == name, [c.describe() for c in ranked[:4]]
    assert ranked[0].confidence == "sure"
    assert all(c.query is None for c in captures)
    assert sim.received == b""


@pytest.mark.parametrize("name", POLLED)
def test_probe_finds_a_polled_family_with_harmless_queries_only(
    name: str, start_sim: Callable[[str], ScaleSimulator]
) -> None:
    sim = start_sim(name)
    ranked, captures = probe_port(str(sim.link), seconds_per_try=0.05, reply_wait=0.15)
    best = ranked[0]
    assert best.protocol == name, [c.describe() for c in ranked[:4]]
    assert best.confidence == "sure"
    assert best.query in get_protocol(name).harmless_queries
    assert sim.commands and set(sim.commands) <= set(get_protocol(name).harmless_queries)
    assert all(not c.data for c in captures if c.query is None)  # silent until asked
    never_tared_or_zeroed(sim)


def test_probe_of_a_missing_port_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="edge")
    add_scale_commands(parser.add_subparsers())
    port = tmp_path / "ttyUSB7"
    args = parser.parse_args(["scale", "probe", "--port", str(port)])
    assert args.func(args) == 1
    assert capsys.readouterr().err.strip() == f"port {port} not found"
