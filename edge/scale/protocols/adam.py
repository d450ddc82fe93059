"""Adam Equipment scales: polled with ``P``, 4800 8N1; a scale answers once per new
weight only (a silent line after ``P`` means the weight has not changed).

A frame is one line: the polarity (space, ``+`` or ``-``), the weight (leading zeros
blanked), an optional space, the unit, an optional ``GR``/``NT`` legend, e.g.
`` 1.234kg``, ``-    123.45 g``, `` 1.234kg GR``. Units: kg, g, lb, oz, ct, mg.
Nine ``^`` are an overload, nine ``_`` an underload and nine ``-`` a zero-point error
(optionally followed by the unit), as in the ``W`` replies of Adam indicators.

The frames carry no stability flag (:attr:`ProtocolSpec.has_stability_flag` is False):
every reading says ``stable=False`` and the driver decides stability itself.

The format has no header, so the whole line must be one frame (STX/ETX around it are
ignored); a noisy line is dropped and the next line reads.
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

_UNITS = rb"kg|g|lb|oz|ct|mg"
_FRAME = re.compile(
    rb"(?P<sign>[ +-]) *(?P<num>\d+(?:\.\d+)?) ?(?P<unit>" + _UNITS + rb")(?: ?(?P<leg>GR|NT))? *"
    rb"|(?P<flag>\^{9}|_{9}|-{9}) ?(?P<funit>" + _UNITS + rb")? *"
)
_FLAGS: dict[bytes, Status] = {b"^": "overload", b"_": "underload", b"-": "error"}
UNITS = ("kg", "g", "lb")


class AdamParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        line = line.strip(b"\x02\x03")
        m = _FRAME.fullmatch(line)
        if m is None:
            return None
        text = printable(line)
        if m.group("flag"):
            unit = (m.group("funit") or b"").decode("ascii")
            return Reading(None, False, False, _FLAGS[m.group("flag")[:1]], unit, text)
        unit = m.group("unit").decode("ascii")
        if unit not in GRAMS_PER_UNIT:
            return None
        grams = to_grams(m.group("num").decode("ascii"), unit)
        if m.group("sign") == b"-":
            grams = -grams
        return Reading(grams, False, m.group("leg") == b"NT", "ok", unit, text)


def encode(state: SimState) -> bytes:
    """`` 1.234kg`` CR LF (kg/lb 3 decimals, g none; ``-`` when negative; ``NT`` when net)."""
    unit = state.unit if state.unit in UNITS else "kg"
    if state.overload or state.underload:
        flag = "^" if state.overload else "_"
        return f"{flag * 9}{unit}\r\n".encode("ascii")
    decimals = unit_decimals(unit)
    number = f"{abs(from_grams(state.weight_g, unit, decimals)):.{decimals}f}"
    sign = "-" if state.weight_g < 0 else " "
    legend = " NT" if state.net else ""
    return f"{sign}{number}{unit}{legend}\r\n".encode("ascii")


def answer(command: bytes, state: SimState) -> bytes | None:
    """``P`` -> one frame (the simulator sends it only when the weight changed)."""
    return encode(state) if command.strip(b"\r\n") == b"P" else None


SPEC = ProtocolSpec(
    name="adam",
    title="Adam Equipment scales (P ->  1.234kg)",
    parser=AdamParser,
    encode=encode,
    line=LineSettings(4800, 8, "N", 1),
    mode="poll",
    poll_command=b"P",
    tare_command=None,
    zero_command=None,
    answer=answer,
    sends_on_change_only=True,
    harmless_queries=(b"P",),
    has_stability_flag=False,
    units=UNITS,
    statuses=("ok", "overload", "underload"),
)
