"""Mettler Toledo continuous output (IND, Panther and many clones): streams, 7E1.

A frame is 17 bytes, optionally followed by a checksum byte::

    STX SWA SWB SWC  w w w w w w  t t t t t t  CR  [CHK]

* weight and tare: 6 characters each, no decimal point, no sign; leading zeros may be
  sent as spaces;
* SWA bits 0-2, the decimal position: 0 ``XXXX00``, 1 ``XXXXX0``, 2 ``XXXXXX``,
  3 ``XXXXX.X``, 4 ``XXXX.XX``, 5 ``XXX.XXX``, 6 ``XX.XXXX``, 7 ``X.XXXXX`` (bits 3-4 are
  the display increment, not used);
* SWB: bit 0 net, bit 1 negative, bit 2 out of range (over capacity, or under zero when
  negative), bit 3 motion, bit 4 kg (0 = lb);
* SWC bits 0-2: unit override on newer terminals: 0 = kg/lb as SWB says, 1 = g,
  2 = t, 3 = oz; other units (troy ounce, pennyweight, short ton, custom) are refused;
* CHK: the two's complement of the 7-bit sum of every byte before it (STX and CR
  included), masked to 7 bits.

The constant bits of the status bytes differ between clones, so they are not checked.

Framing: a frame starts at STX and byte 16 must be CR. The checksum is optional on the
indicator, so the byte after CR decides (``checksum="auto"``, the default):

* it is STX: the frame was sent without a checksum (or its checksum happens to be 0x02,
  which equals STX): the frame is accepted and the STX starts the next frame;
* it is the correct checksum: accepted;
* anything else: a wrong checksum, the frame is refused.

So a frame is decoded when the byte after its CR arrives (at once with a checksum; at
the next frame without one). With ``checksum="required"`` the checksum must be there and
right (STX after CR is refused), which is stricter for indicators known to send it;
with ``"none"`` frames end at CR. In ``auto`` mode a frame whose checksum byte was
corrupted into exactly 0x02 cannot be told from a frame sent without a checksum.

Out of range: weight ``None``, status ``overload`` (or ``underload`` with the negative
bit), and the weight digits are not checked. 7E1: bit 7 of every byte is cleared.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from edge.scale.protocols.base import (
    Frame,
    FrameParser,
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    Status,
    from_grams,
    no_answer,
    printable,
    strip_parity,
    to_grams,
)

STX, CR = 0x02, 0x0D
BODY = 17  # STX .. CR
_DIGITS = re.compile(rb" *\d+\Z")
_PRINTABLE = re.compile(rb"[\x20-\x7e]{12}\Z")
_SWC_UNITS = {0: "", 1: "g", 2: "t", 3: "oz"}

NET, NEGATIVE, OUT_OF_RANGE, MOTION, KG = (1 << i for i in range(5))

ChecksumMode = Literal["auto", "required", "none"]


def checksum(body: bytes) -> int:
    """Two's complement of the 7-bit sum of ``body``, as a 7-bit byte."""
    return -sum(body) & 0x7F


def _number(field: bytes, decimal_code: int) -> Decimal | None:
    if len(field) != 6 or not _DIGITS.match(field):
        return None
    return Decimal(int(field)).scaleb(2 - decimal_code)


def decode(body: bytes, text: str) -> Reading | None:
    """One 17-byte frame (STX .. CR), checksum already dealt with."""
    if len(body) != BODY or body[0] != STX or body[16] != CR:
        return None
    swa, swb, swc = body[1], body[2], body[3]
    code = swc & 0x07
    if code not in _SWC_UNITS:
        return None
    unit = _SWC_UNITS[code] or ("kg" if swb & KG else "lb")
    net, stable = bool(swb & NET), not swb & MOTION
    if swb & OUT_OF_RANGE:
        if not _PRINTABLE.match(body[4:16]):
            return None
        status: Status = "underload" if swb & NEGATIVE else "overload"
        return Reading(None, stable, net, status, unit, text)
    weight = _number(body[4:10], swa & 0x07)
    tare = _number(body[10:16], swa & 0x07)
    if weight is None or tare is None:
        return None
    grams = to_grams(weight, unit)
    if swb & NEGATIVE:
        grams = -grams
    return Reading(grams, stable, net, "ok", unit, text, tare_g=to_grams(tare, unit))


class ToledoContinuousParser(FrameParser):
    """7E1: bit 7 of every byte is cleared before framing."""

    def __init__(self, max_buffer: int = 256, checksum: ChecksumMode = "auto") -> None:
        super().__init__(max_buffer)
        self.checksum_mode: ChecksumMode = checksum

    def feed_frames(self, data: bytes) -> list[Frame]:
        self._buffer += strip_parity(data)
        buf = bytes(self._buffer)
        out: list[Frame] = []
        pos = 0
        while True:
            s = buf.find(STX, pos)
            if s < 0:
                pos = max(pos, len(buf) - self.max_buffer)
                break
            if s > pos:
                out.append((buf[pos:s], None))
            pos = s
            step = self._frame_at(buf, s)
            if step is None:
                break
            out.append(step[0])
            pos = step[1]
        self._buffer = bytearray(buf[pos:])
        self._trim()
        return out

    def _frame_at(self, buf: bytes, s: int) -> tuple[Frame, int] | None:
        """The frame at ``s`` and where the next one may start; None until complete."""
        cr = s + BODY - 1
        if len(buf) <= cr:
            return None  # wait for 17 bytes: an STX inside may be a clone's status byte
        body = buf[s : cr + 1]
        if buf[cr] != CR:
            nxt = buf.find(STX, s + 1)
            stop = nxt if nxt >= 0 else cr + 1
            return (buf[s:stop], None), stop
        if self.checksum_mode == "none":
            return (body, decode(body, printable(body))), cr + 1
        if len(buf) <= cr + 1:
            return None
        check = buf[cr + 1]
        frame = buf[s : cr + 2]
        text = printable(body[:-1]) + printable(bytes([check]))
        if check == STX and self.checksum_mode == "auto":
            return (body, decode(body, printable(body))), cr + 1
        if check == checksum(body):
            return (frame, decode(body, text)), cr + 2
        return (frame, None), cr + 2


def _field(value: Decimal, decimal_code: int) -> bytes:
    digits = int(value.scaleb(decimal_code - 2))
    return f"{digits:06d}".encode("ascii")


def encode(state: SimState, *, with_checksum: bool = True) -> bytes:
    """One frame with its checksum; kg/lb with 3 decimals (fewer when large), g none."""
    unit = state.unit if state.unit in ("kg", "lb", "g") else "kg"
    swb = 0x20 | (NET if state.net else 0) | (0 if state.stable else MOTION)
    swb |= KG if unit in ("kg", "g") else 0
    swc = 0x20 | (1 if unit == "g" else 0)
    code = 2 if unit == "g" else 5
    weight = abs(from_grams(state.weight_g, unit, max(code - 2, 0)))
    tare = abs(from_grams(state.tare_g, unit, max(code - 2, 0)))
    while code > 2 and max(weight, tare) >= Decimal(10) ** (8 - code):
        code -= 1
        weight = abs(from_grams(state.weight_g, unit, code - 2))
        tare = abs(from_grams(state.tare_g, unit, code - 2))
    if state.weight_g < 0:
        swb |= NEGATIVE
    if state.overload or state.underload or max(weight, tare) >= 1000000:
        swb = (swb & ~NEGATIVE) | OUT_OF_RANGE | (NEGATIVE if state.underload else 0)
        fields = b"000000000000"
    else:
        fields = _field(weight, code) + _field(tare, code)
    swa = 0x20 | 0x08 | code
    body = bytes([STX, swa, swb, swc]) + fields + b"\r"
    return body + bytes([checksum(body)]) if with_checksum else body


SPEC = ProtocolSpec(
    name="toledo-continuous",
    title="Mettler Toledo continuous output (IND, Panther, clones)",
    parser=ToledoContinuousParser,
    encode=encode,
    line=LineSettings(9600, 7, "E", 1),
    mode="stream",
    poll_command=None,
    tare_command=None,
    zero_command=None,
    answer=no_answer,
    sends_on_change_only=False,
    harmless_queries=(),
    units=("kg", "lb", "g"),
    has_checksum=True,
    statuses=("ok", "overload", "underload"),
)
