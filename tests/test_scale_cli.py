"""``edge scale ...`` through an ArgumentParser built with add_scale_commands: decode
for every family, read against the simulator (streaming and polled), the wire log."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.scale.cli import add_scale_commands
from edge.scale.protocols import SimState, get_protocol, protocol_names
from edge.scale.simulator import ScaleSimulator
from rigs.helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_scale_commands(sub)
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


SLOW = 30.0
"""Bound for reading enough: far beyond what an idle machine needs."""


def read_until(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    enough: Callable[[list[dict[str, Any]]], bool],
    what: str,
) -> list[dict[str, Any]]:
    """Run ``argv`` (a ``scale read`` with ``--seconds``) again and again until its
    readings, all runs together, are ``enough``: a loaded machine reads fewer frames
    in one run, never wrong ones, so it only takes more runs (one on an idle machine)."""
    readings: list[dict[str, Any]] = []

    def again() -> bool:
        assert run(argv) == 0
        readings.extend(json_lines(capsys.readouterr().out))
        return enough(readings)

    wait_for(again, SLOW, what)
    return readings


def encode_frame(
    weight_g: int | None,
    *,
    stable: bool = True,
    net: bool = False,
    overload: bool = False,
    unit: str = "kg",
) -> bytes:
    state = SimState(weight_g or 0, stable=stable, net=net, overload=overload, unit=unit)
    return get_protocol("stgs").encode(state)


CAPTURE = (
    b"T,GS,+00"  # the tail of a frame cut when the capture started
    + b"\r\n"
    + encode_frame(1234)
    + b"\x00\xff garbage \x13\r\n"
    + encode_frame(-500, stable=False, net=True, unit="g")
    + b"ST,GS,+01.1.1kg\r\n"
    + encode_frame(None, overload=True)
    + b"\xfe\xfe"
    + encode_frame(1134, unit="lb")
    + encode_frame(2000)[:-2]  # a last frame cut by the end of the capture: not decoded
)
EXPECTED = [
    {"weight_g": 1234, "stable": True, "status": "ok", "net": False, "unit": "kg", "tare_g": None},
    {"weight_g": -500, "stable": False, "status": "ok", "net": True, "unit": "g", "tare_g": None},
    {"weight_g": None, "stable": False, "status": "overload", "net": False, "unit": "kg",
     "tare_g": None},
    {"weight_g": 1134, "stable": True, "status": "ok", "net": False, "unit": "lb", "tare_g": None},
]  # fmt: skip


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_decode_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "capture.bin"
    capture.write_bytes(CAPTURE)
    assert run(["scale", "decode", str(capture)]) == 0
    out = capsys.readouterr().out
    assert json_lines(out) == EXPECTED
    assert out.splitlines()[0] == (
        '{"weight_g": 1234, "stable": true, "status": "ok", "net": false, "unit": "kg", '
        '"tare_g": null}'
    )


def test_decode_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CAPTURE)))
    assert run(["scale", "decode"]) == 0
    assert json_lines(capsys.readouterr().out) == EXPECTED


def test_decode_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["scale", "decode", str(tmp_path / "nope.bin")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot read" in captured.err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["scale", "--help"], "simulate"),
        (["scale", "simulate", "--help"], "unplug"),
        (["scale", "read", "--help"], "--seconds"),
        (["scale", "decode", "--help"], "weight_g"),
        (["scale", "decode", "--help"], "toledo-8217"),
        (["scale", "read", "--help"], "--wire-log"),
        (["scale", "read", "--help"], "--poll-rate"),
        (["scale", "probe", "--help"], "never"),
    ],
)
def test_help(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    assert exc.value.code == 0
    assert expected in capsys.readouterr().out


def test_scale_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["scale"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_read_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = tmp_path / "ttyUSB9"
    assert run(["scale", "read", "--port", str(port), "--seconds", "0.2"]) == 1
    assert capsys.readouterr().err.strip() == f"port {port} not found"


SIMULATE = (
    "import sys; from edge.scale.cli import add_scale_commands; import argparse; "
    "p = argparse.ArgumentParser(); add_scale_commands(p.add_subparsers()); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def test_simulate_subprocess_and_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "scale"
    argv = ["scale", "simulate", "--link", str(link), "--weight", "1500", "--interval", "0.02"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SIMULATE, *argv],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = proc.stdout.readline()
        assert first.startswith("simulated scale on /dev/pts/"), first
        assert f"link {link}" in first

        stable = {"weight_g": 1500, "stable": True, "status": "ok", "net": False, "unit": "kg",
                  "tare_g": None}  # fmt: skip
        readings = read_until(
            ["scale", "read", "--port", str(link), "--seconds", "0.5"],
            capsys,
            lambda got: len(got) >= 5 and stable in got,
            "5 readings, one of them 1500 g stable",
        )
        assert len(readings) >= 5

        replies: list[str] = []
        for command, reply in [("w 2500", "weight 2500 g"), ("overload", "overload"),
                               ("bogus", "unknown command"), ("unplug", "unplugged")]:  # fmt: skip
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            while not line.startswith(reply):
                replies.append(line)
                line = proc.stdout.readline()
                assert line, replies
        assert not link.exists()
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    assert not link.is_symlink()


def test_simulate_exits_on_eof(tmp_path: Path) -> None:
    link = tmp_path / "scale"
    proc = subprocess.run(
        [sys.executable, "-c", SIMULATE, "scale", "simulate", "--link", str(link)],
        cwd=ROOT,
        input="w 10\nsilent\ntalk\nnoise\nreplug\ncut\nunderload\nok\ntare\nzero\nhelp\n",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert "weight 10 g" in proc.stdout
    assert "noise sent" in proc.stdout
    for reply in ("the next frame will be cut", "underload", "tared", "zeroed", "  w GRAMS"):
        assert reply in proc.stdout
    assert "unknown command" not in proc.stdout
    assert not link.is_symlink()


def test_decode_unknown_protocol_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["scale", "decode", "--protocol", "nope"])
    assert exc.value.code == 2
    assert "unknown protocol 'nope'; known: toledo-8217" in capsys.readouterr().err


@pytest.mark.parametrize("name", protocol_names())
def test_decode_every_family(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = get_protocol(name)
    states = [SimState(1200), SimState(2500, stable=False), SimState(31000), SimState(0)]
    capture = tmp_path / "capture.bin"
    frame = spec.encode(states[0])
    capture.write_bytes(
        b"\x00\xff garbage\r\n"
        + b"".join(spec.encode(s) for s in states)
        + frame[: len(frame) // 2]  # cut by the end of the capture
    )
    assert run(["scale", "decode", "--protocol", name, str(capture)]) == 0
    got = json_lines(capsys.readouterr().out)
    clean = spec.parser().feed(b"".join(spec.encode(s) for s in states))
    assert [r["weight_g"] for r in got] == [r.weight_g for r in clean], got
    assert {1200, 31000, 0} <= {r["weight_g"] for r in got}
    assert {r["status"] for r in got} == {"ok"}
    if spec.has_stability_flag:
        assert [r["stable"] for r in got] == [s.stable for s in states]


@pytest.mark.parametrize("name", ["mt-sics", "toledo-8217"])
def test_read_polls_a_polled_family(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = get_protocol(name)
    sim = ScaleSimulator(tmp_path / "scale", protocol=name, weight_g=4200, interval_s=0.02)
    sim.start()
    wire_log = tmp_path / "wire.log"
    try:
        argv = ["scale", "read", "--port", str(sim.link), "--protocol", name,
                "--seconds", "0.5", "--poll-rate", "20", "--wire-log", str(wire_log)]  # fmt: skip
        readings = read_until(argv, capsys, lambda got: len(got) >= 3, "3 readings")
    finally:
        sim.stop()
    assert all(r["weight_g"] == 4200 for r in readings), readings
    assert sim.commands.count(spec.poll_command) >= 3  # type: ignore[arg-type]
    log = wire_log.read_text().splitlines()
    assert spec.poll_command is not None
    tx = [line for line in log if line.split()[1] == "tx"]
    rx = [line for line in log if line.split()[1] == "rx"]
    assert len(tx) >= 3 and rx
    stamp, _, hexes = tx[0].partition(" tx ")
    assert stamp.endswith("+00:00") and "T" in stamp
    assert bytes.fromhex(hexes.split("  |")[0]) == spec.poll_command


def test_read_a_streaming_family_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = ScaleSimulator(
        tmp_path / "scale", protocol="toledo-continuous", weight_g=4200, interval_s=0.02
    )
    sim.start()
    try:
        wait_for(lambda: sim.frames_sent > 0, 3, "the simulator to stream")
        argv = ["scale", "read", "--port", str(sim.link), "--protocol", "toledo-continuous",
                "--seconds", "0.4", "--poll-rate", "20"]  # fmt: skip
        readings = read_until(argv, capsys, lambda got: len(got) >= 5, "5 readings")
    finally:
        sim.stop()
    assert {r["weight_g"] for r in readings} == {4200}
    assert sim.received == b""


def test_read_wire_log_unwritable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no-such-dir" / "wire.log"
    assert run(["scale", "read", "--port", "/dev/null", "--wire-log", str(target)]) == 1
    assert capsys.readouterr().err.startswith(f"cannot write the wire log {target}")
