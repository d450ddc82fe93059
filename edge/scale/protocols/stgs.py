"""Generic streaming "ST,GS" indicators: ``ST,GS,+011.120kg`` CR LF.

* header 1: ``ST`` stable, ``US`` unstable, ``OL`` overload;
* header 2: ``GS`` gross, ``NT`` net;
* sign ``+``/``-``, then the weight field: optional leading spaces, digits with at most
  one decimal point (digits on both sides), at most 10 characters;
* unit ``kg``, ``g`` or ``lb``.

An ``OL`` frame often carries a blank or garbled weight: any printable ASCII (at most 16
characters) may follow ``OL,GS,``/``OL,NT,`` and the reading has no weight.

No checksum: parsed strictly. Resync: bytes before the leftmost header from which the
rest of the line is exactly one frame are line noise and dropped; anything after the
frame makes the line invalid. 8-bit line (8N1): no masking.
"""

from __future__ import annotations

import re

from edge.scale.protocols.base import (
    LineParser,
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    from_grams,
    no_answer,
    printable,
    to_grams,
    unit_decimals,
)

MAX_FIELD = 10

_FRAME = re.compile(
    rb"(?P<h1>ST|US),(?P<h2>GS|NT),(?P<sign>[+-])(?P<field> *\d+(?:\.\d+)?)(?P<unit>kg|g|lb)\Z"
    rb"|OL,(?P<ol_h2>GS|NT),(?P<ol_rest>[\x20-\x7e]{0,16})\Z"
)
UNITS = ("kg", "g", "lb")


def _unit_suffix(text: str) -> str:
    return next((u for u in ("kg", "lb", "g") if text.endswith(u)), "")


class StgsParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        match = _FRAME.search(line)
        if match is None:
            return None
        text = printable(match.group(0))
        if match.group("h1") is None:
            unit = _unit_suffix(match.group("ol_rest").decode("ascii").rstrip())
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


def weight_field(weight_g: int, unit: str, width: int = 7) -> str:
    """``abs(weight_g)`` in ``unit`` (kg/lb 3 decimals, g none), zero-padded to ``width``."""
    decimals = unit_decimals(unit)
    return f"{abs(from_grams(weight_g, unit, decimals)):0{width}.{decimals}f}"


def encode(state: SimState) -> bytes:
    """``ST,GS,+011.120kg`` CR LF; overload as ``OL,GS,+999.999kg``."""
    unit = state.unit if state.unit in UNITS else "kg"
    h2 = "NT" if state.net else "GS"
    sign = "-" if state.weight_g < 0 else "+"
    if state.overload:
        return f"OL,{h2},+999.999{unit}\r\n".encode("ascii")
    h1 = "ST" if state.stable else "US"
    return f"{h1},{h2},{sign}{weight_field(state.weight_g, unit)}{unit}\r\n".encode("ascii")


SPEC = ProtocolSpec(
    name="stgs",
    title='Generic "ST,GS" indicator (ST,GS,+011.120kg)',
    parser=StgsParser,
    encode=encode,
    line=LineSettings(9600, 8, "N", 1),
    mode="stream",
    poll_command=None,
    tare_command=None,
    zero_command=None,
    answer=no_answer,
    sends_on_change_only=False,
    harmless_queries=(),
    units=UNITS,
    statuses=("ok", "overload"),
)
