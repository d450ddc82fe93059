"""``edge scale ...``: simulate a scale, read or probe a real one, decode captured bytes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import serial

from edge.scale.probe import OPEN_ERRORS, probe_port, verdict
from edge.scale.protocols import (
    LineSettings,
    ProtocolSpec,
    Reading,
    get_protocol,
    printable,
    protocol_names,
)
from edge.scale.reader import open_failure_reason
from edge.scale.simulator import ScaleSimulator

NOISE = b"\x00\xff\x13#!noise\xfe\r\n"
READ_TIMEOUT_S = 0.05

SIM_COMMANDS = """\
commands (one per line on stdin):
  w GRAMS    put GRAMS on the scale (unstable for a few frames, then stable)
  unstable   hold the reading unstable        stable   let it settle again
  overload   send overload frames             underload  send underload frames
  ok         clear overload and underload     cut      cut the next frame in half
  tare       tare key: show net               zero     zero key: weight 0, no tare
  unplug     the port disappears              replug   a new port, link re-pointed
  silent     stop sending frames              talk     send frames again
  noise      send a burst of line noise       help     this list
  quit       stop (also EOF or Ctrl-C)
"""


def reading_json(reading: Reading) -> str:
    return json.dumps(
        {
            "weight_g": reading.weight_g,
            "stable": reading.stable,
            "status": reading.status,
            "net": reading.net,
            "unit": reading.unit,
            "tare_g": reading.tare_g,
        }
    )


def _protocol(name: str) -> ProtocolSpec:
    try:
        return get_protocol(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- simulate --------------------------------------------------------------------------


def _clear_limits(sim: ScaleSimulator) -> None:
    sim.set_overload(False)
    sim.set_underload(False)


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
        "underload": (lambda: sim.set_underload(True), "underload"),
        "ok": (lambda: _clear_limits(sim), "overload and underload cleared"),
        "cut": (sim.cut, "the next frame will be cut"),
        "tare": (sim.tare, "tared: net"),
        "zero": (sim.zero, "zeroed"),
        "unplug": (sim.unplug, "unplugged: link removed, port closed"),
        "replug": (sim.replug, "replugged"),
        "silent": (lambda: sim.silence(True), "silent"),
        "talk": (lambda: sim.silence(False), "talking"),
        "noise": (lambda: sim.send_noise(NOISE), "noise sent"),
    }
    if word == "help":
        return SIM_COMMANDS.rstrip("\n")
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
    spec: ProtocolSpec = args.protocol
    sim = ScaleSimulator(
        args.link, protocol=spec.name, weight_g=args.weight, interval_s=args.interval
    )
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot start the simulator at {args.link}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"simulated scale on {sim.device}, link {sim.link}", flush=True)
        print(f"protocol {spec.name}: {spec.title} ({spec.mode})", flush=True)
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


# -- read ------------------------------------------------------------------------------


class WireLog:
    """Raw bytes as hex lines: ``2026-11-23T10:38:00.123456+00:00 rx 53 54 2c |ST,|``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, direction: str, data: bytes) -> None:
        if data:
            stamp = datetime.now(UTC).isoformat(timespec="microseconds")
            self.stream.write(f"{stamp} {direction} {data.hex(' ')}  |{printable(data)}|\n")
            self.stream.flush()


def _line_settings(args: argparse.Namespace, spec: ProtocolSpec) -> LineSettings:
    line = spec.line
    return LineSettings(
        args.baud or line.baudrate,
        args.bytesize or line.bytesize,
        args.parity or line.parity,
        args.stopbits or line.stopbits,
    )


def _read_loop(
    ser: serial.Serial, args: argparse.Namespace, spec: ProtocolSpec, wire: WireLog | None
) -> None:
    parser = spec.parser()
    poll = spec.poll_command if spec.mode == "poll" else None
    period = 1 / args.poll_rate
    next_poll = time.monotonic()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    while deadline is None or time.monotonic() < deadline:
        if poll is not None and time.monotonic() >= next_poll:
            ser.write(poll)
            if wire:
                wire.write("tx", poll)
            next_poll = max(next_poll + period, time.monotonic() - period)
        data = ser.read(ser.in_waiting or 1)
        if wire:
            wire.write("rx", data)
        for raw, reading in parser.feed_frames(data):
            if reading is not None:
                print(reading_json(reading), flush=True)
            elif args.show_invalid:
                print(f"invalid: {printable(raw)}", file=sys.stderr, flush=True)


def cmd_read(args: argparse.Namespace) -> int:
    spec: ProtocolSpec = args.protocol
    line = _line_settings(args, spec)
    if args.poll_rate <= 0:
        print("--poll-rate must be positive", file=sys.stderr)
        return 2
    try:
        log = None if args.wire_log is None else open(args.wire_log, "a", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"cannot write the wire log {args.wire_log}: {exc}", file=sys.stderr)
        return 1
    try:
        return _read_port(args, spec, line, WireLog(log) if log else None)
    finally:
        if log is not None:
            log.close()


def _read_port(
    args: argparse.Namespace, spec: ProtocolSpec, line: LineSettings, wire: WireLog | None
) -> int:
    try:
        ser = serial.Serial(
            args.port, line.baudrate, line.bytesize, line.parity, line.stopbits,
            timeout=READ_TIMEOUT_S, exclusive=True,
        )  # fmt: skip
    except OPEN_ERRORS as exc:
        print(open_failure_reason(args.port, exc), file=sys.stderr)
        return 1
    try:
        with ser:
            ser.reset_input_buffer()
            _read_loop(ser, args, spec, wire)
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


# -- decode and probe ------------------------------------------------------------------


def _decode_stream(stream: BinaryIO, spec: ProtocolSpec) -> None:
    parser = spec.parser()
    read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    while chunk := read(4096):
        for reading in parser.feed(chunk):
            print(reading_json(reading), flush=True)


def cmd_decode(args: argparse.Namespace) -> int:
    if args.file is None:
        _decode_stream(sys.stdin.buffer, args.protocol)
        return 0
    try:
        with open(args.file, "rb") as stream:
            _decode_stream(stream, args.protocol)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    def report(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        candidates, captures = probe_port(
            args.port,
            seconds_per_try=args.seconds_per_try,
            reply_wait=args.reply_wait,
            report=report,
        )
    except OPEN_ERRORS as exc:
        print(open_failure_reason(args.port, exc), file=sys.stderr)
        return 1
    print(verdict(candidates, captures))
    return 0 if candidates else 1


# -- argument parsing ------------------------------------------------------------------

JSON_HELP = (
    'One JSON object per valid frame and line: {"weight_g": int|null, "stable": bool, '
    '"status": "ok"|"overload"|"underload"|"error", "net": bool, "unit": str, '
    '"tare_g": int|null}. Weights are integer grams.'
)


def _protocol_option(cmd: argparse.ArgumentParser) -> None:
    names = ", ".join(protocol_names())
    cmd.add_argument(
        "--protocol",
        type=_protocol,
        default=get_protocol("stgs"),
        metavar="NAME",
        help=f"frame family (default stgs): {names}",
    )


def add_scale_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    scale = sub.add_parser(
        "scale",
        help="simulate, read, probe or decode a serial scale",
        description="Tools for serial scales: every frame family of `edge scale decode "
        "--help` is supported.",
    )
    ssub = scale.add_subparsers(dest="scale_command", required=True, metavar="COMMAND")

    sim = ssub.add_parser(
        "simulate",
        help="run a simulated scale on a pseudo-terminal",
        formatter_class=raw,
        description="Run a simulated scale: a pseudo-terminal that speaks --protocol "
        "(streams frames,\nor answers polls), with a symlink at --link that a reader "
        "opens like\n/dev/serial/by-id/... Prints the device path, then reads commands "
        "from stdin.\n\n" + SIM_COMMANDS,
    )
    _protocol_option(sim)
    sim.add_argument("--link", type=Path, required=True, help="symlink to create, e.g. var/scale")
    sim.add_argument("--weight", type=int, default=0, help="initial weight in grams (default 0)")
    sim.add_argument(
        "--interval", type=float, default=0.1, help="seconds between frames (default 0.1)"
    )
    sim.set_defaults(func=cmd_simulate)

    read = ssub.add_parser(
        "read",
        help="print the readings of a scale on a serial port",
        description="Open a serial port and print what the scale sends; a polled family "
        "is sent its poll command --poll-rate times a second. Line settings default to "
        "the family's usual ones. " + JSON_HELP,
    )
    read.add_argument("--port", required=True, help="e.g. /dev/serial/by-id/usb-...")
    _protocol_option(read)
    read.add_argument("--baud", type=int, help="baud rate (default: the family's)")
    read.add_argument("--bytesize", type=int, choices=[7, 8], help="default: the family's")
    read.add_argument("--parity", choices=["N", "E", "O"], help="default: the family's")
    read.add_argument("--stopbits", type=int, choices=[1, 2], help="default: the family's")
    read.add_argument("--seconds", type=float, help="stop after this many seconds")
    read.add_argument(
        "--poll-rate", type=float, default=5.0, metavar="HZ",
        help="polls a second for polled families (default 5)",
    )  # fmt: skip
    read.add_argument(
        "--wire-log", type=Path, metavar="FILE",
        help="append every byte sent and received to FILE, as timestamped hex lines",
    )  # fmt: skip
    read.add_argument(
        "--show-invalid",
        action="store_true",
        help="print frames that are not valid to stderr",
    )
    read.set_defaults(func=cmd_read)

    decode = ssub.add_parser(
        "decode",
        help="decode captured scale bytes from a file or stdin",
        description="Decode the frames of --protocol in FILE (or stdin); anything that is "
        "not a complete valid frame is ignored (also a last frame cut by the end of the "
        "capture). " + JSON_HELP,
    )
    _protocol_option(decode)
    decode.add_argument(
        "file", type=Path, nargs="?", metavar="FILE", help="captured bytes (default: stdin)"
    )
    decode.set_defaults(func=cmd_decode)

    probe = ssub.add_parser(
        "probe",
        help="find which protocol and line settings a scale uses",
        description="Listen at each usual line setting and score how well every family "
        "decodes what arrives; if nothing is sure, send only harmless queries (never "
        "tare or zero) for polled families. Prints the best match and how sure it is, "
        "or what to check. Progress goes to stderr. Exit 1 when nothing is recognised.",
    )
    probe.add_argument("--port", required=True, help="e.g. /dev/serial/by-id/usb-...")
    probe.add_argument(
        "--seconds-per-try", type=float, default=1.5, metavar="S",
        help="seconds of listening at each line setting (default 1.5)",
    )  # fmt: skip
    probe.add_argument(
        "--reply-wait", type=float, default=0.5, metavar="S",
        help="seconds to wait for the answer to each harmless query (default 0.5)",
    )  # fmt: skip
    probe.set_defaults(func=cmd_probe)
