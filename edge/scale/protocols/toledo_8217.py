"""Mettler Toledo 8217 (Ariva, Viva and compatible bench scales): polled, 9600 7E1.

The host sends single letters: ``W`` weight, ``Z`` zero, ``T`` tare, ``C`` clear tare.
A weight reply is ``STX weight [N] CR``; the weight carries its decimal point and no
unit, so the unit is told by the number of decimals, as in the 8217 manuals:

* ``WW.WWW`` (3 decimals): kg;
* ``WW.WW`` or ``WWW.WW`` (2 decimals): lb.

One optional leading space or digit is accepted (``␠12.345``, ``112.34``); ``N`` after
the weight means net. A weight reply is only sent when the weight is stable, positive
and in range, so it reads ``stable=True``.

Otherwise (and after ``Z``/``T``/``C``) the scale replies with a status frame
``STX ? status CR``; the status byte has bit 6 set and bit 7 parity:

====  ==============================
bit   meaning when 1
====  ==============================
0     motion
1     over capacity    -> ``overload``
2     under zero       -> ``underload`` (the weight is below zero; no value is sent)
3     outside zero capture range
4     centre of zero
5     net
====  ==============================

A status frame carries no weight: ``weight_g=None``, ``stable`` = not motion, status
``ok`` unless bit 1/2 is set. 7E1: bit 7 of every byte is cleared before parsing.
"""

from __future__ import annotations

import re

from edge.scale.protocols.base import (
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    Status,
    from_grams,
    printable,
    to_grams,
)
from edge.scale.protocols.framing import StartFramedParser

STX, CR = 0x02, 0x0D
_WEIGHT = re.compile(rb"\x02(?P<w>[ \d]?\d\d\.\d{2,3})(?P<n>N?)\r\Z")
_STATUS = re.compile(rb"\x02\?(?P<s>[\x40-\x7f])\r\Z")

MOTION, OVER, UNDER, OUT_OF_ZERO, CENTRE_ZERO, NET = (1 << i for i in range(6))


class Toledo8217Parser(StartFramedParser):
    start = STX
    end = CR
    max_frame = 12
    seven_bit = True

    def parse_frame(self, frame: bytes) -> Reading | None:
        text = printable(frame)
        if m := _WEIGHT.match(frame):
            number = m.group("w").decode("ascii").strip()
            unit = "kg" if len(number.split(".")[1]) == 3 else "lb"
            net = m.group("n") == b"N"
            return Reading(to_grams(number, unit), True, net, "ok", unit, text)
        if m := _STATUS.match(frame):
            bits = m.group("s")[0]
            status: Status = "overload" if bits & OVER else "underload" if bits & UNDER else "ok"
            return Reading(None, not bits & MOTION, bool(bits & NET), status, "", text)
        return None


def status_byte(state: SimState) -> int:
    bits = 0x40
    if not state.stable:
        bits |= MOTION
    if state.overload:
        bits |= OVER
    if state.underload or (state.weight_g < 0 and not state.overload):
        bits |= UNDER
    if state.net:
        bits |= NET
    if state.weight_g == 0 and not (state.overload or state.underload):
        bits |= CENTRE_ZERO
    return bits


def _fits(state: SimState, unit: str) -> bool:
    return from_grams(state.weight_g, unit, 3 if unit == "kg" else 2) < 1000


def encode(state: SimState) -> bytes:
    """A weight frame when the scale would send one (stable, >= 0, in range), else status."""
    unit = "lb" if state.unit == "lb" else "kg"
    bits = status_byte(state)
    if bits & (MOTION | OVER | UNDER) or not _fits(state, unit):
        if not _fits(state, unit):
            bits |= OVER
        return bytes([STX, ord("?"), bits, CR])
    decimals = 3 if unit == "kg" else 2
    value = f"{from_grams(state.weight_g, unit, decimals):0{3 + decimals}.{decimals}f}"
    return b"\x02" + value.encode("ascii") + (b"N" if state.net else b"") + b"\r"


def answer(command: bytes, state: SimState) -> bytes | None:
    """``W`` -> weight or status; ``Z``/``T``/``C`` -> status; anything else -> status."""
    cmd = command.strip(b"\r\n")
    if cmd == b"W":
        return encode(state)
    return bytes([STX, ord("?"), status_byte(state), CR])


SPEC = ProtocolSpec(
    name="toledo-8217",
    title="Mettler Toledo 8217 (Ariva, Viva)",
    parser=Toledo8217Parser,
    encode=encode,
    line=LineSettings(9600, 7, "E", 1),
    mode="poll",
    poll_command=b"W",
    tare_command=b"T",
    zero_command=b"Z",
    answer=answer,
    sends_on_change_only=False,
    harmless_queries=(b"W",),
    units=("kg", "lb"),
    statuses=("ok", "overload", "underload"),
)
