"""Common types of the scale protocol families (pure: bytes in, readings out).

Every family module provides a :class:`FrameParser` (a byte stream in, frames and their
readings out), an ``encode`` function (one frame the real indicator would send for a
:class:`SimState`) and an ``answer`` function (the simulator's reply to a command), and
registers a :class:`ProtocolSpec` in :mod:`edge.scale.protocols.registry`.

Weights are integer grams everywhere; unit conversion uses :class:`~decimal.Decimal`
(kg x 1000, lb x 453.59237, oz x 28.349523125, t x 1 000 000, mg x 0.001, ct x 0.2),
rounded half-even.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

Status = Literal["ok", "overload", "underload", "error"]

DEFAULT_MAX_BUFFER = 256
"""Bytes a parser keeps of an incomplete frame; the oldest are dropped beyond it."""


@dataclass(frozen=True)
class Reading:
    """One decoded frame."""

    weight_g: int | None
    """Integer grams; None when the frame carries no weight (overload/underload/error/status)."""
    stable: bool
    net: bool
    status: Status
    """``ok`` (a negative weight is ``ok`` with ``weight_g < 0``), ``overload``,
    ``underload`` or ``error``."""
    unit: str
    """The scale's own unit text (``kg``, ``g``, ``lb``; ``""`` when the frame has none)."""
    text: str
    """The frame as received, printable ASCII (others as ``\\xNN``), without CR LF."""
    tare_g: int | None = None
    """The tare in integer grams, when the frame carries one."""


Frame = tuple[bytes, Reading | None]
"""Raw frame (or line) bytes and its reading; None = invalid, dropped."""


@dataclass(frozen=True)
class SimState:
    """What a simulator shows; :attr:`ProtocolSpec.encode` turns it into one frame."""

    weight_g: int
    """Gross or net as displayed."""
    stable: bool = True
    net: bool = False
    tare_g: int = 0
    overload: bool = False
    underload: bool = False
    unit: str = "kg"
    """``kg``, ``g`` or ``lb`` where the family supports it (see :attr:`ProtocolSpec.units`)."""


@dataclass(frozen=True)
class LineSettings:
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


class FrameParser(ABC):
    """Cuts a byte stream into frames and decodes each one.

    A partial frame is kept for the next feed, at most :attr:`max_buffer` bytes of it
    (the oldest bytes are dropped: garbage without a terminator cannot grow memory).
    """

    max_buffer: int
    assumed_unit: str | None = None
    """The unit the indicator is configured to show, for a frame that carries none before
    the parser has seen one (see :meth:`assume_unit`); None: no guess."""

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        if max_buffer < 32:
            raise ValueError("max_buffer must be at least 32")
        self.max_buffer = max_buffer
        self._buffer = bytearray()

    def assume_unit(self, unit: str | None) -> None:
        """Read frames without a unit in ``unit`` until a frame says which unit the scale
        shows (configuration: ``[scale] unit`` or the profile's). Only families whose frames
        may lack a unit use it (SBI while the weight is unstable); the others ignore it.
        ValueError for a unit weights cannot be converted from."""
        if unit is not None and unit not in GRAMS_PER_UNIT:
            known = ", ".join(GRAMS_PER_UNIT)
            raise ValueError(f"unknown unit {unit!r} (known: {known})")
        self.assumed_unit = unit

    @abstractmethod
    def feed_frames(self, data: bytes) -> list[Frame]:
        """Every complete frame (or line) seen, valid or not, with its reading or None."""

    def feed(self, data: bytes) -> list[Reading]:
        """Only the valid readings in ``data`` (plus what was kept from earlier feeds)."""
        return [r for _, r in self.feed_frames(data) if r is not None]

    def reset(self) -> None:
        """Forget any partial frame (e.g. after the port was reopened)."""
        self._buffer.clear()

    @property
    def buffered(self) -> int:
        """Bytes of the incomplete frame kept for the next feed."""
        return len(self._buffer)

    def _trim(self) -> None:
        if len(self._buffer) > self.max_buffer:
            del self._buffer[: len(self._buffer) - self.max_buffer]


_EOL = re.compile(rb"[\r\n]")
_SEVEN_BIT = bytes(b & 0x7F for b in range(256))


def strip_parity(data: bytes) -> bytes:
    """``data`` with bit 7 of every byte cleared (the parity bit of a 7E1 line read as 8N1)."""
    return data.translate(_SEVEN_BIT)


class LineParser(FrameParser):
    """Frames are text lines ended by CR, LF or CR LF (empty lines are skipped).

    Subclasses implement :meth:`parse_line` (one line without its terminator). With
    ``seven_bit`` the high bit of every byte is cleared first: for 7E1 families, whose
    data is 7-bit ASCII, so a port opened as 8N1 (parity bit arriving as bit 7) still
    reads. 8-bit families keep every bit, so a corrupted byte is never "repaired".
    """

    seven_bit = False

    def feed_frames(self, data: bytes) -> list[Frame]:
        if self.seven_bit:
            data = strip_parity(data)
        self._buffer += data
        *lines, rest = _EOL.split(bytes(self._buffer))
        self._buffer = bytearray(rest)
        self._trim()
        out: list[Frame] = []
        for raw in lines:
            if raw:
                line = raw[-self.max_buffer :]
                out.append((line, self.parse_line(line)))
        return out

    @abstractmethod
    def parse_line(self, line: bytes) -> Reading | None:
        """The reading of one line (no CR/LF in it), or None if it is not a valid frame."""


AnswerFn = Callable[[bytes, SimState], bytes | None]


@dataclass(frozen=True)
class ProtocolSpec:
    """Everything the station needs to know about one frame family."""

    name: str
    """e.g. ``toledo-8217``."""
    title: str
    """Human name, e.g. ``Mettler Toledo 8217 (Ariva, Viva)``."""
    parser: Callable[[], FrameParser]
    encode: Callable[[SimState], bytes]
    """ONE complete frame the real indicator would send for this state."""
    line: LineSettings
    mode: Literal["stream", "poll"]
    poll_command: bytes | None
    tare_command: bytes | None
    zero_command: bytes | None
    answer: AnswerFn
    """Simulator side: reply bytes to a received command, None = no reply."""
    sends_on_change_only: bool
    harmless_queries: tuple[bytes, ...]
    """Commands safe to send while probing (never tare/zero/calibrate)."""
    has_stability_flag: bool = True
    """False when the frames carry no motion flag (``xk3190-eq``): every reading then
    says ``stable=True`` and the driver must decide stability with its own window."""
    units: tuple[str, ...] = ("kg",)
    """Units :attr:`encode` can express (SimState.unit); others are converted to the first."""
    has_checksum: bool = False
    """Frames carry (or, for ``toledo-continuous``, may carry) a checksum that the parser
    verifies."""
    statuses: tuple[Status, ...] = ("ok",)
    """The states the family reports (and :attr:`encode` expresses): SimState.overload /
    underload of a family without them are encoded as an ordinary weight."""


# --- helpers -------------------------------------------------------------------------

GRAMS_PER_UNIT: dict[str, Decimal] = {
    "kg": Decimal(1000),
    "g": Decimal(1),
    "lb": Decimal("453.59237"),
    "oz": Decimal("28.349523125"),
    "t": Decimal(1000000),
    "mg": Decimal("0.001"),
    "ct": Decimal("0.2"),
}


def to_grams(number: str | Decimal, unit: str) -> int:
    """``"011.120"``, ``"kg"`` -> 11120; exact decimal arithmetic, half-even rounding."""
    grams = Decimal(number) * GRAMS_PER_UNIT[unit]
    return int(grams.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_grams(weight_g: int, unit: str, decimals: int) -> Decimal:
    """Integer grams as the number a scale shows in ``unit`` with ``decimals`` places."""
    value = Decimal(weight_g) / GRAMS_PER_UNIT[unit]
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)


def unit_decimals(unit: str) -> int:
    """The decimal places simulators show: g none, kg/lb 3."""
    return 0 if unit == "g" else 3


def printable(raw: bytes) -> str:
    """A raw frame for logs: printable ASCII kept, other bytes as ``\\xNN``, CR LF dropped."""
    raw = raw.rstrip(b"\r\n")
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in raw)


def no_answer(_command: bytes, _state: SimState) -> bytes | None:
    """``answer`` for families that only stream."""
    return None
