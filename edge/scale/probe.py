"""Which protocol family and line settings does the scale on a port speak?

The scoring is pure (:func:`score`, :func:`rank`, :func:`verdict`): bytes captured at
each line setting in, candidates ranked best first out. The I/O (:func:`probe_port`)
only captures: first it listens at every usual line setting (a streaming scale talks
by itself), then, only if nothing convincing was heard, it sends the families'
*harmless* queries (``spec.harmless_queries``; a query that contains any family's tare
or zero command is never sent) and captures the replies. Before a query that ends in
a line end, a bare line end is sent (and its reply ignored): it ends whatever earlier
queries of other families left in the scale's input buffer.

How a capture is scored for a family: its parser is fed the bytes; ``frames`` counts
valid frames, ``share`` is the part of the captured bytes inside valid frames (CR LF
and other delimiters a parser strips are not counted, so a clean stream scores a bit
under 1; a frame counts as the shorter of its raw bytes and its reading's ``text``, so
a parser that resyncs past leading bytes of a line, e.g. ``US,`` of a look-alike
family, is credited only with what it decoded), ``exact`` counts frames byte for byte
identical to what the family's encoder sends for the same reading (breaks ties between
look-alike families such as the ``ST,GS`` ones).

Ranking: confidence, then mostly ``exact``, ``share``, ``frames``; then the capture
with fewest bytes >= 0x80 (a 7-bit setting reading 7-bit data), the family's own line
setting, the usual order of settings, registry order.

Wrong settings on a real line: 8N1 data read as 7E1 loses every character whose 7
low bits have odd parity (read as NUL); 7E1 data read as 8N1 gets bit 7 set on them;
a wrong baud rate gives framing errors and garbage. A pty ignores all of it, so on a
pty every setting captures the same bytes and the ties are broken as above.
"""

from __future__ import annotations

import errno
import termios
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import serial

from edge.scale.protocols import PROTOCOLS, LineSettings, ProtocolSpec, Reading, SimState

Confidence = Literal["sure", "likely", "weak"]

USUAL_LINES = (
    LineSettings(9600, 8, "N", 1),
    LineSettings(9600, 7, "E", 1),
    LineSettings(4800, 8, "N", 1),
    LineSettings(2400, 7, "E", 1),
    LineSettings(2400, 8, "N", 1),
    LineSettings(1200, 8, "N", 1),
    LineSettings(19200, 8, "N", 1),
)
QUERY_REPEATS = 3
"""Each harmless query that is answered is sent this many times in all."""
REPLY_GAP_S = 0.1
"""A reply is over when the line has been idle this long after its last byte."""

CHECK_WHEN_NOTHING = """\
nothing was recognised. Check:
  - the indicator is on and its serial output is enabled (continuous, or on demand);
  - the cable: RS-232 needs a USB adapter or level shifter; TX and RX may need crossing
    (a null-modem cable) - compare with the indicator's manual;
  - the baud rate, data bits and parity set on the indicator (its setup menu);
  - some scales send only when the weight changes: put a weight on while probing,
    or probe longer (--seconds-per-try);
  - record the raw bytes for a closer look:
    edge scale read --port PORT --seconds 10 --wire-log wire.log"""


def line_text(line: LineSettings) -> str:
    """``9600 8N1``."""
    return f"{line.baudrate} {line.bytesize}{line.parity}{line.stopbits}"


def lines_to_try(specs: Iterable[ProtocolSpec]) -> list[LineSettings]:
    """The usual line settings, then any other one a family uses by default."""
    out = list(USUAL_LINES)
    out += [spec.line for spec in specs if spec.line not in out]
    return list(dict.fromkeys(out))


def harmless(query: bytes, specs: Iterable[ProtocolSpec]) -> bool:
    """False if ``query`` contains any family's tare or zero command (single-character
    command sets such as Toledo's act on a ``T`` or ``Z`` anywhere in a line)."""
    for spec in specs:
        for command in (spec.tare_command, spec.zero_command):
            core = (command or b"").strip(b"\r\n")
            if core and core in query:
                return False
    return True


@dataclass(frozen=True)
class Capture:
    """Bytes received at one line setting, after sending ``query`` (None: only listened)."""

    line: LineSettings
    data: bytes
    query: bytes | None = None
    asked: str | None = None
    """The family whose harmless query ``query`` is."""


@dataclass(frozen=True)
class Candidate:
    """How well one family decodes one capture."""

    protocol: str
    line: LineSettings
    query: bytes | None
    asked: str | None
    """The family whose query was answered (None: heard while listening)."""
    frames: int
    """Valid frames."""
    weighed: int
    """Valid frames with a weight, or an overload or underload (not status or error only)."""
    exact: int
    """Valid frames identical to this family's own encoding of the same reading."""
    frame_bytes: int
    total_bytes: int
    high_bytes: int
    """Bytes >= 0x80 in the capture."""

    @property
    def share(self) -> float:
        return self.frame_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def confidence(self) -> Confidence:
        """``sure``: 3 or more frames, or a weight in answer to this family's own query
        (some scales answer a poll only once per new weight), and at least 60 % of the
        bytes in valid frames (line ends are not counted in frames: a short frame such
        as `` 1.234kg`` CR LF is 80 % at best); ``likely``: 2 frames and 30 %; else
        ``weak``."""
        answered = self.asked == self.protocol and self.weighed
        if (self.frames >= 3 or answered) and self.weighed and self.share >= 0.6:
            return "sure"
        if self.frames >= 2 and self.share >= 0.3:
            return "likely"
        return "weak"

    def describe(self) -> str:
        spec = PROTOCOLS.get(self.protocol)
        title = f" ({spec.title})" if spec else ""
        how = "listening" if self.query is None else f"answering query {self.query!r}"
        return (
            f"{self.protocol}{title} at {line_text(self.line)}, {how}: {self.confidence}; "
            f"{self.frames} valid frame(s), {self.share:.0%} of {self.total_bytes} bytes "
            f"in valid frames, {self.exact} exactly as this family formats them"
        )


def _mask(data: bytes) -> bytes:
    return bytes(b & 0x7F for b in data)


def _encoded_alike(spec: ProtocolSpec, raw: bytes, reading: Reading) -> bool:
    """Whether the family's encoder writes this reading exactly as ``raw``."""
    state = SimState(
        weight_g=reading.weight_g or 0,
        stable=reading.stable,
        net=reading.net,
        tare_g=reading.tare_g or 0,
        overload=reading.status == "overload",
        underload=reading.status == "underload",
        unit=reading.unit if reading.unit in spec.units else spec.units[0],
    )
    try:
        encoded = _mask(spec.encode(state))
    except (ValueError, ArithmeticError):
        return False
    core = _mask(raw).strip(b"\r\n")
    return bool(core) and core in encoded and len(encoded) - len(core) <= 4


def _weighs(reading: Reading) -> bool:
    return reading.weight_g is not None or reading.status in ("overload", "underload")


def score(spec: ProtocolSpec, capture: Capture) -> Candidate:
    """How well ``spec``'s parser decodes ``capture`` (pure)."""
    valid = [(raw, r) for raw, r in spec.parser().feed_frames(capture.data) if r is not None]
    return Candidate(
        protocol=spec.name,
        line=capture.line,
        query=capture.query,
        asked=capture.asked,
        frames=len(valid),
        weighed=sum(_weighs(r) for _, r in valid),
        exact=sum(_encoded_alike(spec, raw, r) for raw, r in valid),
        frame_bytes=min(sum(min(len(raw), len(r.text)) for raw, r in valid), len(capture.data)),
        total_bytes=len(capture.data),
        high_bytes=sum(b >= 0x80 for b in capture.data),
    )


_LEVEL = {"sure": 2, "likely": 1, "weak": 0}


def rank(
    captures: Iterable[Capture], specs: Sequence[ProtocolSpec] | None = None
) -> list[Candidate]:
    """Every (family, capture) with at least one valid frame, best first (pure)."""
    specs = list(PROTOCOLS.values()) if specs is None else list(specs)
    order = {spec.name: i for i, spec in enumerate(specs)}
    own = {spec.name: spec.line for spec in specs}
    usual = lines_to_try(specs)
    found = [score(spec, c) for c in captures for spec in specs]

    def key(c: Candidate) -> tuple[int, bool, float, int, int, bool, int, int]:
        return (
            -_LEVEL[c.confidence],
            not (c.exact * 2 >= c.frames),  # mostly formatted as this family does
            -c.share,
            -c.frames,
            c.high_bytes,
            c.line != own[c.protocol],
            usual.index(c.line) if c.line in usual else len(usual),
            order[c.protocol],
        )

    return sorted((c for c in found if c.frames), key=key)


def verdict(candidates: Sequence[Candidate], captures: Sequence[Capture]) -> str:
    """What a technician reads: the best match and how sure, or what to check."""
    if not candidates:
        heard = [c for c in captures if c.data]
        if not heard:
            return "no bytes at all at any setting; " + CHECK_WHEN_NOTHING
        busiest = max(heard, key=lambda c: len(c.data))
        return (
            f"bytes arrived ({len(busiest.data)} at {line_text(busiest.line)}) but none "
            "formed a valid frame of any family: a wrong baud rate or parity, or a format "
            "this station does not know; " + CHECK_WHEN_NOTHING
        )
    best = candidates[0]
    lines = [f"best match: {best.describe()}"]
    alike = [
        c.protocol
        for c in candidates[1:]
        if (c.line, c.query) == (best.line, best.query)
        and (c.frames, c.share) == (best.frames, best.share)
    ]
    if alike:
        lines.append(f"these families decode the same bytes as well: {', '.join(alike)}")
    if best.confidence != "sure":
        lines.append("not sure: probe again with a weight on the scale, or for longer")
    spec = PROTOCOLS.get(best.protocol)
    line = line_text(best.line)
    if spec is not None:
        lines.append(
            f"configure: scale.protocol = {spec.name!r}, baudrate {best.line.baudrate}, "
            f"bytesize {best.line.bytesize}, parity {best.line.parity!r}, "
            f"stopbits {best.line.stopbits} ({line})"
        )
    return "\n".join(lines)


# -- I/O: capture only -----------------------------------------------------------------

Opener = Callable[[str, LineSettings], serial.Serial]
OPEN_ERRORS = (serial.SerialException, OSError, ValueError, termios.error)
"""What opening a port with given settings raises (termios.error: settings refused)."""
PORT_ERRNOS = {
    errno.ENOENT,
    errno.ENODEV,
    errno.ENXIO,
    errno.EACCES,
    errno.EPERM,
    errno.EBUSY,
    errno.EAGAIN,
}
"""Errors of the port itself, not of one setting: the probe stops."""


def open_port(port: str, line: LineSettings) -> serial.Serial:
    return serial.Serial(
        port, line.baudrate, line.bytesize, line.parity, line.stopbits,
        timeout=0.05, exclusive=True,
    )  # fmt: skip


def _read_for(ser: serial.Serial, seconds: float, spec: ProtocolSpec | None = None) -> bytes:
    """Bytes until ``seconds`` pass; with ``spec`` (a reply to a query) also until its
    parser has a reading, or the line has been idle for REPLY_GAP_S after some bytes."""
    data = bytearray()
    parser = spec.parser() if spec else None
    deadline = time.monotonic() + seconds
    last = 0.0
    while (now := time.monotonic()) < deadline:
        if parser is not None and data and now - last >= REPLY_GAP_S:
            break  # the reply is over
        chunk = ser.read(ser.in_waiting or 1)
        if chunk:
            last = time.monotonic()
            data += chunk
            if parser is not None and parser.feed(chunk):
                break
    return bytes(data)


def probe_port(
    port: str,
    *,
    seconds_per_try: float = 2.0,
    reply_wait: float = 0.5,
    specs: Sequence[ProtocolSpec] | None = None,
    report: Callable[[str], None] = lambda _msg: None,
    opener: Opener = open_port,
) -> tuple[list[Candidate], list[Capture]]:
    """Listen at every usual setting, then (if nothing is sure) send harmless queries.

    Returns the ranked candidates and every capture. A setting the port refuses (some
    adapters, and ptys, refuse 7-bit or parity settings) is reported and skipped. Raises
    what opening raised when the port itself is missing, busy or forbidden, or when no
    setting at all could be applied.
    """
    specs = list(PROTOCOLS.values()) if specs is None else list(specs)
    settings = lines_to_try(specs)
    captures: list[Capture] = []
    refused: list[BaseException] = []
    for line in settings:
        try:
            with opener(port, line) as ser:
                ser.reset_input_buffer()
                data = _read_for(ser, seconds_per_try)
        except OPEN_ERRORS as exc:
            if getattr(exc, "errno", None) in PORT_ERRNOS:
                raise
            report(f"the port refuses {line_text(line)}: {exc}; skipped")
            refused.append(exc)
            continue
        report(f"listened at {line_text(line)}: {len(data)} bytes")
        captures.append(Capture(line, data))
    if not captures and refused:
        raise refused[-1]
    ranked = rank(captures, specs)
    if ranked and ranked[0].confidence == "sure":
        return ranked, captures
    usable = [c.line for c in captures]
    # polled families first, shortest query first: a scale that acts on a letter inside
    # a longer query (Adam's P in Ohaus' IP) then answers its own query first (an Adam
    # answers P only once per weight); each family at its own line setting first (a
    # scale at factory settings is found quickly), then every family at every setting
    askers = sorted(
        (s for s in specs if s.harmless_queries),
        key=lambda s: (s.mode != "poll", min(len(q) for q in s.harmless_queries)),
    )
    attempts = [(spec, spec.line) for spec in askers if spec.line in usable]
    attempts += [(spec, line) for line in usable for spec in askers if line != spec.line]
    for spec, line in attempts:
        for query in spec.harmless_queries:
            if not harmless(query, specs):
                report(f"{spec.name}: not sending {query!r} (a tare or zero command)")
                continue
            try:
                capture = _ask(opener, port, line, query, spec, reply_wait)
            except OPEN_ERRORS as exc:
                report(f"asking {spec.name} at {line_text(line)} failed: {exc}")
                continue
            report(f"asked {spec.name} {query!r} at {line_text(line)}: "
                   f"{len(capture.data)} bytes")  # fmt: skip
            captures.append(capture)
        ranked = rank(captures, specs)
        if ranked and ranked[0].confidence == "sure":
            break
    return ranked, captures


def _ask(
    opener: Opener, port: str, line: LineSettings, query: bytes, spec: ProtocolSpec, wait: float
) -> Capture:
    data = bytearray()
    with opener(port, line) as ser:
        end = query[len(query.rstrip(b"\r\n")) :]
        if end:  # end what earlier queries left in the scale's buffer; ignore its reply
            ser.write(end)
            _read_for(ser, min(wait, 2 * REPLY_GAP_S), spec)
        ser.reset_input_buffer()
        for _ in range(QUERY_REPEATS):
            ser.write(query)
            reply = _read_for(ser, wait, spec)
            data += reply
            if not reply:
                break  # no answer at all: do not insist
            # an answer not in this family's format may be the error reply to what an
            # earlier query left in the scale's buffer: asking again is still harmless
    return Capture(line, bytes(data), query, spec.name)
