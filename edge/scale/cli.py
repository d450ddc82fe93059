"""``edge scale ...``: simulate a scale, read a real one, decode captured bytes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import serial

from edge.scale.reader import READ_TIMEOUT_S, open_failure_reason
from edge.scale.simulator import ScaleSimulator
from edge.scale.stgs import Reading, StgsParser, printable

NOISE = b"\x00\xff\x13#!noise\xfe\r\n"

SIM_COMMANDS = """\
commands (one per line on stdin):
  w GRAMS    put GRAMS on the scale (unstable for a few frames, then stable)
  unstable   hold the reading unstable        stable   let it settle again
  overload   send overload frames             ok       back to normal frames
  unplug     the port disappears              replug   a new port, link re-pointed
  silent     stop sending frames              talk     send frames again
  noise      send a burst of line noise       quit     stop (also EOF or Ctrl-C)
"""


def reading_json(reading: Reading) -> str:
    return json.dumps(
        {
            "weight_g": reading.weight_g,
            "stable": reading.stable,
            "status": reading.status,
            "net": reading.net,
            "unit": reading.unit,
        }
    )


def _sim_command(sim: ScaleSimulator, line: str) -> str | None:
    """Apply one stdin command; the confirmation to print, or None to quit."""
    word, _, arg = line.strip().partition(" ")
    if word in ("quit", "exit", "q"):
        return None
    if word == "w":
        try:
            grams = int(arg)
        except ValueError:
            return f"usage: w GRAMS (an integer), not {arg!r}"
        sim.set_weight(grams)
        return f"weight {grams} g (settling)"
    actions: dict[str, tuple[Callable[[], None], str]] = {
        "unstable": (lambda: sim.set_unstable(True), "held unstable"),
        "stable": (lambda: sim.set_unstable(False), "stable"),
        "overload": (lambda: sim.set_overload(True), "overload"),
        "ok": (lambda: sim.set_overload(False), "overload cleared"),
        "unplug": (sim.unplug, "unplugged: link removed, port closed"),
        "replug": (sim.replug, "replugged"),
        "silent": (lambda: sim.silence(True), "silent"),
        "talk": (lambda: sim.silence(False), "talking"),
        "noise": (lambda: sim.send_noise(NOISE), "noise sent"),
    }
    if word not in actions:
        return f"unknown command {word!r}\n{SIM_COMMANDS}" if word else ""
    if word == "unplug" and not sim.plugged:
        return "already unplugged"
    if word == "replug" and sim.plugged:
        return f"already plugged in: {sim.device} <- {sim.link}"
    action, done = actions[word]
    action()
    if word == "replug":
        done += f": {sim.device} <- {sim.link}"
    return done


def cmd_simulate(args: argparse.Namespace) -> int:
    sim = ScaleSimulator(args.link, weight_g=args.weight, interval_s=args.interval)
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot start the simulator at {args.link}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"simulated scale on {sim.device}, link {sim.link}", flush=True)
        print(SIM_COMMANDS, end="", flush=True)
        for line in sys.stdin:
            reply = _sim_command(sim, line)
            if reply is None:
                break
            if reply:
                print(reply, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    try:
        ser = serial.Serial(
            args.port, args.baud, args.bytesize, args.parity, args.stopbits,
            timeout=READ_TIMEOUT_S, exclusive=True,
        )  # fmt: skip
    except (serial.SerialException, OSError, ValueError) as exc:
        print(open_failure_reason(args.port, exc), file=sys.stderr)
        return 1
    parser = StgsParser()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        with ser:
            ser.reset_input_buffer()
            while deadline is None or time.monotonic() < deadline:
                for raw, reading in parser.feed_lines(ser.read(ser.in_waiting or 1)):
                    if reading is not None:
                        print(reading_json(reading), flush=True)
                    elif args.show_invalid:
                        print(f"invalid: {printable(raw)}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `edge scale read ... | head`: stdout closed, not the port
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit flush does not fail again
        os.close(devnull)
    except (serial.SerialException, OSError) as exc:
        print(f"port {args.port} disconnected: {exc}", file=sys.stderr)
        return 1
    return 0


def _decode_stream(stream: BinaryIO) -> None:
    parser = StgsParser()
    read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    while chunk := read(4096):
        for reading in parser.feed(chunk):
            print(reading_json(reading), flush=True)
    for reading in parser.feed(b"\n"):  # a last frame without CR LF at end of input
        print(reading_json(reading))


def cmd_decode(args: argparse.Namespace) -> int:
    if args.file is None:
        _decode_stream(sys.stdin.buffer)
        return 0
    try:
        with open(args.file, "rb") as stream:
            _decode_stream(stream)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_scale_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    scale = sub.add_parser(
        "scale",
        help="simulate, read or decode a serial scale (ST,GS format)",
        description="Tools for serial scales that stream 'ST,GS,+011.120kg' frames.",
    )
    ssub = scale.add_subparsers(dest="scale_command", required=True, metavar="COMMAND")
    json_help = (
        'One JSON object per valid frame and line: {"weight_g": int|null, "stable": bool, '
        '"status": "ok"|"overload"|"error", "net": bool, "unit": str}. Weights are '
        "integer grams."
    )

    sim = ssub.add_parser(
        "simulate",
        help="run a simulated scale on a pseudo-terminal",
        formatter_class=raw,
        description="Run a simulated scale: a pseudo-terminal that streams ST,GS frames, "
        "with a symlink\nat --link that a reader opens like /dev/serial/by-id/... "
        "Prints the device path,\nthen reads commands from stdin.\n\n" + SIM_COMMANDS,
    )
    sim.add_argument("--link", type=Path, required=True, help="symlink to create, e.g. var/scale")
    sim.add_argument("--weight", type=int, default=0, help="initial weight in grams (default 0)")
    sim.add_argument(
        "--interval", type=float, default=0.1, help="seconds between frames (default 0.1)"
    )
    sim.set_defaults(func=cmd_simulate)

    read = ssub.add_parser(
        "read",
        help="print the readings of a scale on a serial port",
        description="Open a serial port and print what the scale sends. " + json_help,
    )
    read.add_argument("--port", required=True, help="e.g. /dev/serial/by-id/usb-...")
    read.add_argument("--baud", type=int, default=9600, help="baud rate (default 9600)")
    read.add_argument("--bytesize", type=int, default=8, choices=[7, 8], help="default 8")
    read.add_argument("--parity", default="N", choices=["N", "E", "O"], help="default N")
    read.add_argument("--stopbits", type=int, default=1, choices=[1, 2], help="default 1")
    read.add_argument("--seconds", type=float, help="stop after this many seconds")
    read.add_argument(
        "--show-invalid",
        action="store_true",
        help="print lines that are not valid frames to stderr",
    )
    read.set_defaults(func=cmd_read)

    decode = ssub.add_parser(
        "decode",
        help="decode captured scale bytes from a file or stdin",
        description="Decode ST,GS frames from FILE (or stdin); anything that is not a valid "
        "frame is ignored. " + json_help,
    )
    decode.add_argument(
        "file", type=Path, nargs="?", metavar="FILE", help="captured bytes (default: stdin)"
    )
    decode.set_defaults(func=cmd_decode)
