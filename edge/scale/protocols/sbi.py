"""Sartorius SBI (balances and indicators): polled with ``ESC P``, 9600 8N1 here.

A frame is 16 characters (14 + CR LF), or 22 with a 6-character ID code in front::

    +    1255.7 g       (sign, 9 weight characters, space, 3 unit characters)
    N     +    1255.7 g

* position 1: ``+``, ``-`` or space; positions 2-10: the weight with its decimal point,
  leading zeros as spaces; position 11: space; 12-14: the unit, left-aligned;
* no unit (3 spaces) means not stable. The weight of such a frame is converted with
  the unit of the last stable frame (its ``unit`` text stays ``""``); before any stable
  frame, or after :meth:`reset`, with the configured unit
  (:meth:`~edge.scale.protocols.base.FrameParser.assume_unit`), and only without one
  does it read ``weight_g=None`` (still unstable);
* units: g, kg, lb, oz, ct, mg; others (pcs, %, taels...) are refused;
* special codes: ``H``/``HH`` overload, ``L``/``LL`` underload, ``C`` calibration
  (``error``), ``Err ###`` error; alone on a 14-character line, or after ``Stat`` in
  the 22-character layout;
* ID codes: ``G``/``G#`` gross, ``N``/``N1``/``N2`` net, ``T``/``T1``/``T2`` tare
  (``tare_g`` set, ``weight_g=None``), ``Stat`` status; other IDs are not weights.

The format has no header, so the whole line must be exactly one frame (no resync
inside a line; a noisy line is dropped and the next line reads).
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
    unit_decimals,
)

_DATA = re.compile(rb"(?P<sign>[+ -])(?P<num>[ \d.]{9}) (?P<unit>[a-z]{1,3} *| {3})")
_NUMBER = re.compile(rb" *\d+(?:\.\d+)?")
_SPECIAL = re.compile(rb" *(?P<code>HH|H|LL|L|C|Err *\d{1,3}|ERR *\d{1,3}) *")
_CODES: dict[bytes, Status] = {b"H": "overload", b"HH": "overload", b"L": "underload"}
_CODES[b"LL"] = "underload"
_GROSS = (b"G", b"G#")
_NET = (b"N", b"N1", b"N2")
_TARE = (b"T", b"T1", b"T2")
UNITS = ("g", "kg", "lb")


class SbiParser(LineParser):
    def __init__(self, max_buffer: int = 256) -> None:
        super().__init__(max_buffer)
        self._stable_unit = ""  # the unit of the last frame that had one

    def reset(self) -> None:
        """Forget the partial line and the unit last seen (the configured one stays)."""
        super().reset()
        self._stable_unit = ""

    def parse_line(self, line: bytes) -> Reading | None:
        text = printable(line)
        ident = b""
        if len(line) == 20:
            ident, line = line[:6].rstrip(b" "), line[6:]
        elif len(line) != 14:
            return None
        if ident == b"Stat" or (not ident and _SPECIAL.fullmatch(line)):
            return self._special(line, text)
        m = _DATA.fullmatch(line)
        if m is None or not _NUMBER.fullmatch(m.group("num")):
            return None
        if ident and ident not in _GROSS + _NET + _TARE:
            return None
        unit = m.group("unit").decode("ascii").strip()
        stable = unit != ""
        if stable and unit not in GRAMS_PER_UNIT:
            return None
        if stable:
            self._stable_unit = unit
        grams = None
        number_unit = self._stable_unit or self.assumed_unit  # last seen, else configured
        if number_unit:
            grams = to_grams(m.group("num").decode("ascii").strip(), number_unit)
            grams = -grams if m.group("sign") == b"-" else grams
        if ident in _TARE:
            return Reading(None, stable, False, "ok", unit, text, tare_g=grams)
        return Reading(grams, stable, ident in _NET, "ok", unit, text)

    def _special(self, line: bytes, text: str) -> Reading | None:
        m = _SPECIAL.fullmatch(line)
        if m is None:
            return None
        status = _CODES.get(m.group("code"), "error")
        return Reading(None, False, False, status, "", text)


def encode(state: SimState) -> bytes:
    """The 16-character frame (22 with ``N     `` when net); no unit when unstable."""
    if state.overload or state.underload:
        code = "H" if state.overload else "L"
        return f"{code:<14}\r\n".encode("ascii")
    unit = state.unit if state.unit in UNITS else "g"
    decimals = unit_decimals(unit) if unit != "g" else 1
    number = f"{abs(from_grams(state.weight_g, unit, decimals)):.{decimals}f}"
    if len(number) > 9:
        return f"{'H':<14}\r\n".encode("ascii")
    sign = "-" if state.weight_g < 0 else "+"
    shown = unit if state.stable else ""
    ident = "N     " if state.net else ""
    return f"{ident}{sign}{number:>9} {shown:<3}\r\n".encode("ascii")


def answer(command: bytes, state: SimState) -> bytes | None:
    """``ESC P`` -> one frame; other commands -> no reply."""
    return encode(state) if command.strip(b"\r\n") == b"\x1bP" else None


SPEC = ProtocolSpec(
    name="sbi",
    title="Sartorius SBI (16/22 characters)",
    parser=SbiParser,
    encode=encode,
    line=LineSettings(9600, 8, "N", 1),
    mode="poll",
    poll_command=b"\x1bP",
    tare_command=b"\x1bT",
    zero_command=None,
    answer=answer,
    sends_on_change_only=False,
    harmless_queries=(b"\x1bP",),
    units=UNITS,
    statuses=("ok", "overload", "underload"),
)
