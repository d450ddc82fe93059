"""``edge scale ...`` through an ArgumentParser built with add_scale_commands."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.scale.cli import add_scale_commands
from edge.scale.stgs import encode_frame

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
    + encode_frame(2000)[:-2]  # last frame without CR LF
)
EXPECTED = [
    {"weight_g": 1234, "stable": True, "status": "ok", "net": False, "unit": "kg"},
    {"weight_g": -500, "stable": False, "status": "ok", "net": True, "unit": "g"},
    {"weight_g": None, "stable": False, "status": "overload", "net": False, "unit": "kg"},
    {"weight_g": 1134, "stable": True, "status": "ok", "net": False, "unit": "lb"},
    {"weight_g": 2000, "stable": True, "status": "ok", "net": False, "unit": "kg"},
]


def json_lines(text: str) -> list[object]:
    return [json.loads(line) for line in text.splitlines()]


def test_decode_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "capture.bin"
    capture.write_bytes(CAPTURE)
    assert run(["scale", "decode", str(capture)]) == 0
    out = capsys.readouterr().out
    assert json_lines(out) == EXPECTED
    assert out.splitlines()[0] == (
        '{"weight_g": 1234, "stable": true, "status": "ok", "net": false, "unit": "kg"}'
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

        assert run(["scale", "read", "--port", str(link), "--seconds", "0.5"]) == 0
        readings = json_lines(capsys.readouterr().out)
        assert len(readings) >= 5
        assert {"weight_g": 1500, "stable": True, "status": "ok", "net": False, "unit": "kg"} in (
            readings
        )

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
        input="w 10\nsilent\ntalk\nnoise\nreplug\n",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert "weight 10 g" in proc.stdout
    assert "noise sent" in proc.stdout
    assert not link.is_symlink()
