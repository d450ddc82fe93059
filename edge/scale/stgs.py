"""Parser for the generic streaming "ST,GS" indicator format (pure: bytes in, readings out).

A frame is one line::

    ST,GS,+011.120kg CR LF

* header 1: ``ST`` stable, ``US`` unstable, ``OL`` overload;
* header 2: ``GS`` gross, ``NT`` net;
* sign ``+``/``-``, then the weight field: optional leading spaces, digits with at
  most one decimal point (digits on both sides of it), at most 10 characters;
* unit ``kg``, ``g`` or ``lb``; then CR LF (a lone LF is accepted too).

Overload frames (``OL``) often carry a blank or garbled weight; any printable ASCII is
accepted after ``OL,GS,`` / ``OL,NT,`` and the reading has no weight.

The format has no checksum, so it is parsed strictly: a line that does not match is
dropped, never guessed. Noise and resync: the stream is cut into lines at LF. Within
a line, bytes *before* a header are line noise (a frame cut in half, a glitch while
plugging in): :class:`StgsParser` keeps the leftmost header from which the *rest of
the line* is one complete, strict frame, and drops what precedes it. Anything after
the frame and before CR LF makes the whole line invalid. :func:`parse_frame` does not
resync: it accepts exactly one frame and nothing else.

Weights are converted to integer grams with :class:`~decimal.Decimal` (kg x 1000,
lb x 453.59237), rounded half-even; no float arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

Status = Literal["ok", "overload", "error"]

MAX_FIELD = 10
"""Longest weight field accepted (leading spaces included)."""

_GRAMS_PER_UNIT: dict[str, Decimal] = {
    "kg": Decimal(1000),
    "g": Decimal(1),
    "lb": Decimal("453.59237"),
}
_DECIMALS = {"kg": 3, "g": 0, "lb": 3}

_FRAME = re.compile(
    rb"(?P<h1>ST|US),(?P<h2>GS|NT),(?P<sign>[+-])(?P<field> *\d+(?:\.\d+)?)(?P<unit>kg|g|lb)\Z"
    rb"|OL,(?P<ol_h2>GS|NT),(?P<ol_rest>[\x20-\x7e]{0,16})\Z"
)


@dataclass(frozen=True)
class Reading:
    """One decoded frame."""

    weight_g: int | None
    """Integer grams; None when the frame carries no weight (overload)."""
    stable: bool
    net: bool
    status: Status
    """``ok`` or ``overload``; ``error`` is reserved for families that report errors."""
    unit: str
    """The scale's own unit text (``kg``, ``g``, ``lb``; may be empty on overload)."""
    text: str
    """The frame as received, ASCII, without CR LF."""


def to_grams(number: str, unit: str) -> int:
    """``"011.120"``, ``"kg"`` -> 11120; exact decimal arithmetic, half-even rounding."""
    grams = Decimal(number) * _GRAMS_PER_UNIT[unit]
    return int(grams.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _reading(match: re.Match[bytes]) -> Reading | None:
    text = match.group(0).decode("ascii")
    if match.group("h1") is None:
        rest = match.group("ol_rest").decode("ascii").rstrip()
        unit = next((u for u in ("kg", "lb", "g") if rest.endswith(u)), "")
        net = match.group("ol_h2") == b"NT"
        return Reading(None, stable=False, net=net, status="overload", unit=unit, text=text)
    field = match.group("field").decode("ascii")
    if len(field) > MAX_FIELD:
        return None
    unit = match.group("unit").decode("ascii")
    grams = to_grams(field.strip(), unit)
    return Reading(
        weight_g=-grams if match.group("sign") == b"-" else grams,
        stable=match.group("h1") == b"ST",
        net=match.group("h2") == b"NT",
        status="ok",
        unit=unit,
        text=text,
    )


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


def parse_frame(line: bytes) -> Reading | None:
    """One complete frame, with or without CR LF; None if it is not exactly one valid frame."""
    match = _FRAME.match(_strip_eol(line))
    return _reading(match) if match else None


def resync_frame(line: bytes) -> Reading | None:
    """Like :func:`parse_frame`, but bytes before the leftmost valid header are dropped."""
    match = _FRAME.search(_strip_eol(line))
    return _reading(match) if match else None


def printable(line: bytes) -> str:
    """A raw line for logs and error reports: printable ASCII kept, other bytes as ``\\xNN``."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in _strip_eol(line))


class StgsParser:
    """Cuts a byte stream into lines and decodes each one.

    A partial line is kept for the next :meth:`feed`. The kept bytes are bounded by
    ``max_buffer``: on overflow the oldest bytes are dropped (a run of garbage without
    LF cannot grow memory; the line it ends up in will not match unless a full frame
    follows the cut).
    """

    def __init__(self, max_buffer: int = 256) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be positive")
        self.max_buffer = max_buffer
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of the incomplete line kept for the next feed."""
        return len(self._buffer)

    def feed_lines(self, data: bytes) -> list[tuple[bytes, Reading | None]]:
        """Every complete line in ``data`` (without CR LF) with its reading, or None if invalid."""
        self._buffer += data
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer = bytearray(rest[-self.max_buffer :])
        out: list[tuple[bytes, Reading | None]] = []
        for raw in lines:
            line = _strip_eol(raw[-self.max_buffer :])
            match = _FRAME.search(line)
            out.append((line, _reading(match) if match else None))
        return out

    def feed(self, data: bytes) -> list[Reading]:
        """The valid readings in ``data`` (plus what was kept from earlier feeds)."""
        return [r for _, r in self.feed_lines(data) if r is not None]

    def reset(self) -> None:
        """Forget any partial line (e.g. after the port was reopened)."""
        self._buffer.clear()


def _format_field(weight_g: int, unit: str) -> str:
    grams = Decimal(abs(weight_g))
    decimals = _DECIMALS[unit]
    value = (grams / _GRAMS_PER_UNIT[unit]).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN
    )
    return f"{value:07.{decimals}f}"


def encode_frame(
    weight_g: int | None,
    *,
    stable: bool = True,
    net: bool = False,
    overload: bool = False,
    unit: str = "kg",
) -> bytes:
    """The frame an indicator would send: ``encode_frame(11120) == b"ST,GS,+011.120kg\\r\\n"``.

    kg and lb get 3 decimals, g none; the field is zero-padded to 7 characters. An
    overload frame with no weight carries a blank field (``OL,GS,+       kg``).
    """
    if unit not in _GRAMS_PER_UNIT:
        raise ValueError(f"unknown unit {unit!r}; expected kg, g or lb")
    h2 = "NT" if net else "GS"
    if overload:
        field = " " * 7 if weight_g is None else _format_field(weight_g, unit)
        sign = "-" if weight_g is not None and weight_g < 0 else "+"
        return f"OL,{h2},{sign}{field}{unit}\r\n".encode("ascii")
    if weight_g is None:
        raise ValueError("weight_g is required unless overload=True")
    h1 = "ST" if stable else "US"
    sign = "-" if weight_g < 0 else "+"
    return f"{h1},{h2},{sign}{_format_field(weight_g, unit)}{unit}\r\n".encode("ascii")
