"""A&D balances and indicators (A&D standard format): polled with ``Q``, 2400-9600 baud,
7E1 (default) or 8N1.

A frame is 15 characters and CR LF::

    ST,+00123.45  g

* header: ``ST`` stable, ``US`` unstable, ``QT`` piece count (not a weight: refused),
  ``OL`` out of range;
* ``,``, then 9 characters: sign ``+``/``-`` and 8 characters of digits with at most one
  decimal point (leading zeros or spaces);
* 3 characters of unit, right-aligned (``  g``, `` kg``): g, kg, lb, oz, ct, mg; other
  units (``PC``, `` %``...) are refused.

``OL`` frames carry a placeholder in the weight and unit places (``OL,+9999999E+19``);
any 11 printable characters are accepted after the sign; ``+`` is ``overload`` and
``-`` is ``underload`` (the display's ``-E``). The format has no gross/net flag: ``net=False``.

The balances are 7E1 by default: bit 7 of every byte is cleared before parsing (all
frame characters are 7-bit ASCII, so this is harmless on an 8N1 line).
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

_FRAME = re.compile(
    rb"(?P<h>ST|US),(?P<sign>[+-])(?P<num>[ \d.]{8})(?P<unit>  [a-z]| [a-z]{2})\Z"
    rb"|OL,(?P<olsign>[+-])[\x20-\x7e]{11}\Z"
)
_NUMBER = re.compile(r" *\d+(?:\.\d+)?")
UNITS = ("g", "kg", "lb")
_DECIMALS = {"g": 2, "kg": 3, "lb": 3}


class AndParser(LineParser):
    seven_bit = True

    def parse_line(self, line: bytes) -> Reading | None:
        m = _FRAME.search(line)
        if m is None:
            return None
        text = printable(m.group(0))
        if m.group("h") is None:
            status: Status = "overload" if m.group("olsign") == b"+" else "underload"
            return Reading(None, False, False, status, "", text)
        num = m.group("num").decode("ascii")
        unit = m.group("unit").decode("ascii").strip()
        if not _NUMBER.fullmatch(num) or unit not in GRAMS_PER_UNIT:
            return None
        grams = to_grams(num.strip(), unit)
        if m.group("sign") == b"-":
            grams = -grams
        return Reading(grams, m.group("h") == b"ST", False, "ok", unit, text)


def encode(state: SimState) -> bytes:
    """``ST,+00123.45  g`` CR LF (g 2 decimals, kg/lb 3); ``OL,+9999999E+19`` out of range."""
    unit = state.unit if state.unit in UNITS else "g"
    decimals = _DECIMALS[unit]
    number = f"{abs(from_grams(state.weight_g, unit, decimals)):08.{decimals}f}"
    if state.overload or state.underload or len(number) > 8:
        sign = "-" if state.underload else "+"
        return f"OL,{sign}9999999E+19\r\n".encode("ascii")
    head = "ST" if state.stable else "US"
    sign = "-" if state.weight_g < 0 else "+"
    return f"{head},{sign}{number}{unit:>3}\r\n".encode("ascii")


def answer(command: bytes, state: SimState) -> bytes | None:
    """``Q`` (and ``S`` when stable) -> one frame; ``T``/``Z`` -> no reply (no ACK set)."""
    cmd = command.strip(b"\r\n")
    if cmd == b"Q" or (cmd == b"S" and state.stable):
        return encode(state)
    return None


SPEC = ProtocolSpec(
    name="and",
    title="A&D balances and indicators (ST,+00123.45  g)",
    parser=AndParser,
    encode=encode,
    line=LineSettings(2400, 7, "E", 1),
    mode="poll",
    poll_command=b"Q\r\n",
    tare_command=b"T\r\n",
    zero_command=b"Z\r\n",
    answer=answer,
    sends_on_change_only=False,
    harmless_queries=(b"Q\r\n",),
    units=UNITS,
    statuses=("ok", "overload", "underload"),
)
