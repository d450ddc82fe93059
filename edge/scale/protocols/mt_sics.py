"""MT-SICS (Mettler Toledo Standard Interface Command Set, balances): polled, 9600 8N1.

Commands end in CR LF: ``SI`` weight now, ``S`` stable weight, ``SIR`` weight now and
repeat, ``T`` tare, ``TAC`` clear tare, ``Z`` zero. Replies are lines
``ID Status [Value Unit]``; the weight value is right-aligned (10 characters on most
balances; any number of spaces is accepted here), with ``-`` directly before the digits:

====================  =============================================================
``S S  100.00 g``     stable weight (reply to S, SI, SIR, SR, SNR)
``S D  100.00 g``     dynamic (unstable) weight
``S I``               busy or no stability reached: no weight, ``stable=False``
``S +`` / ``S -``     overload / underload
``T S  12.00 g``      tare taken: ``tare_g`` set, ``weight_g=None``
``TA A  12.00 g``     tare value: ``tare_g`` set, ``weight_g=None``
``ES`` ``ET`` ``EL``  syntax, transmission, logical error: status ``error``
====================  =============================================================

Acknowledgements without a weight (``Z A``, ``TAC A``, ``T I``, ``Z I``...) and replies
to other commands are not readings (None). MT-SICS weight replies carry no gross/net
flag: ``net=False``. Units: g, kg, mg, lb, oz, ct, t; any other unit is refused.
"""

from __future__ import annotations

import re

from edge.scale.protocols.base import (
    GRAMS_PER_UNIT,
    LineParser,
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    Status,
    from_grams,
    printable,
    to_grams,
)

_VALUE = rb" +(?P<v>-?\d+(?:\.\d+)?) (?P<u>[a-z]{1,3})"
_FRAME = re.compile(
    rb"(?P<id>S) (?P<st>[SD])" + _VALUE + rb"\Z"
    rb"|(?P<sid>S) (?P<flag>[I+-])\Z"
    rb"|(?P<tid>T S|TA A)"
    + _VALUE.replace(b"?P<v>", b"?P<tv>").replace(b"?P<u>", b"?P<tu>")
    + rb"\Z|(?P<err>E[STL])\Z"
)
UNITS = ("g", "kg", "lb")
_DECIMALS = {"g": 2, "kg": 3, "lb": 3}


class MtSicsParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        m = _FRAME.search(line)
        if m is None:
            return None
        text = printable(m.group(0))
        if m.group("id"):
            unit = m.group("u").decode("ascii")
            if unit not in GRAMS_PER_UNIT:
                return None
            grams = to_grams(m.group("v").decode("ascii"), unit)
            return Reading(grams, m.group("st") == b"S", False, "ok", unit, text)
        if m.group("sid"):
            flag = m.group("flag")
            if flag == b"I":
                return Reading(None, False, False, "ok", "", text)
            status: Status = "overload" if flag == b"+" else "underload"
            return Reading(None, False, False, status, "", text)
        if m.group("tid"):
            unit = m.group("tu").decode("ascii")
            if unit not in GRAMS_PER_UNIT:
                return None
            tare = to_grams(m.group("tv").decode("ascii"), unit)
            return Reading(None, True, True, "ok", unit, text, tare_g=tare)
        return Reading(None, False, False, "error", "", text)


def _value(grams: int, unit: str) -> str:
    return f"{from_grams(grams, unit, _DECIMALS[unit]):>10.{_DECIMALS[unit]}f}"


def encode(state: SimState) -> bytes:
    """``S S     100.00 g`` CR LF (g with 2 decimals, kg/lb 3); ``S +`` / ``S -``."""
    if state.overload:
        return b"S +\r\n"
    if state.underload:
        return b"S -\r\n"
    unit = state.unit if state.unit in UNITS else "g"
    flag = "S" if state.stable else "D"
    return f"S {flag} {_value(state.weight_g, unit)} {unit}\r\n".encode("ascii")


def answer(command: bytes, state: SimState) -> bytes | None:
    """Replies as a balance would: weights to S/SI/SIR, ``T S``/``Z A``/``TAC A``, else ``ES``."""
    cmd = command.strip(b"\r\n").strip()
    unit = state.unit if state.unit in UNITS else "g"
    if cmd in (b"SI", b"SIR"):
        return encode(state)
    if cmd == b"S":
        return encode(state) if state.stable or state.overload or state.underload else b"S I\r\n"
    if cmd == b"T":
        if not state.stable or state.overload or state.underload:
            return b"T I\r\n"
        tare = state.tare_g + state.weight_g if state.net else state.weight_g
        return f"T S {_value(tare, unit)} {unit}\r\n".encode("ascii")
    if cmd == b"TAC":
        return b"TAC A\r\n"
    if cmd == b"Z":
        return b"Z A\r\n" if state.stable else b"Z I\r\n"
    return b"ES\r\n"


SPEC = ProtocolSpec(
    name="mt-sics",
    title="Mettler Toledo MT-SICS balances",
    parser=MtSicsParser,
    encode=encode,
    line=LineSettings(9600, 8, "N", 1),
    mode="poll",
    poll_command=b"SI\r\n",
    tare_command=b"T\r\n",
    zero_command=b"Z\r\n",
    answer=answer,
    sends_on_change_only=False,
    harmless_queries=(b"SI\r\n",),
    units=UNITS,
    statuses=("ok", "overload", "underload"),
)
