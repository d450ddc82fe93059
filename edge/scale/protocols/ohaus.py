"""Ohaus balances and indicators (Defender, Ranger, Navigator...): polled with ``IP``,
model-dependent line settings (9600 8N1 typical).

A frame is one line: optional polarity ``-``, the weight (right-justified, leading zeros
blanked), a space, the unit, then ``?`` when the weight is not stable, then an optional
legend, e.g. ``-    1.234 kg    NET``:

* legend ``G`` or ``B/G``: gross; ``NET``, ``Net`` or ``N``: net; ``T`` or ``Tare``: the
  value is the tare (``tare_g`` set, ``weight_g=None``); no legend: gross;
* units: g, kg, lb, oz, ct, mg; counts, percent and other units are refused;
* anything else on the line makes it invalid. ``ES`` (invalid command) is not a reading.

The frame has no header to resynchronise on inside a line (noise ``1x2.34 kg`` would
look like ``2.34 kg``), so the whole line must be one frame: a line with noise in it is
invalid, and reading resumes with the next line.

The frames carry no overload or error state (the balances do not print one).
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
    from_grams,
    printable,
    to_grams,
    unit_decimals,
)

_FRAME = re.compile(
    rb" *(?P<sign>-)? *(?P<num>\d+(?:\.\d+)?) (?P<unit>[a-z]{1,5})"
    rb"(?: *(?P<q>\?))?(?: *(?P<leg>G|B/G|NET|Net|N|T|Tare))? *\Z"
)
_NET = (b"NET", b"Net", b"N")
_TARE = (b"T", b"Tare")
UNITS = ("kg", "g", "lb", "oz")


class OhausParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        m = _FRAME.fullmatch(line)
        if m is None:
            return None
        unit = m.group("unit").decode("ascii")
        if unit not in GRAMS_PER_UNIT:
            return None
        text = printable(m.group(0))
        grams = to_grams(m.group("num").decode("ascii"), unit)
        if m.group("sign"):
            grams = -grams
        stable = m.group("q") is None
        legend = m.group("leg")
        if legend in _TARE:
            return Reading(None, stable, False, "ok", unit, text, tare_g=grams)
        return Reading(grams, stable, legend in _NET, "ok", unit, text)


def encode(state: SimState) -> bytes:
    """Default layout: polarity, space, weight (7, right), space, unit (5), ``?``, legend (3)."""
    unit = state.unit if state.unit in UNITS else "kg"
    decimals = unit_decimals(unit)
    number = f"{abs(from_grams(state.weight_g, unit, decimals)):.{decimals}f}"
    sign = "-" if state.weight_g < 0 else " "
    flag = " " if state.stable else "?"
    legend = "NET" if state.net else "G"
    return f"{sign} {number:>7} {unit:<5}{flag}{legend:<3}\r\n".encode("ascii")


def answer(command: bytes, state: SimState) -> bytes | None:
    """``IP``/``P`` -> one frame; ``SP`` -> one frame when stable; others -> no reply."""
    cmd = command.strip(b"\r\n")
    if cmd in (b"IP", b"P") or (cmd == b"SP" and state.stable):
        return encode(state)
    return None


SPEC = ProtocolSpec(
    name="ohaus",
    title="Ohaus balances and indicators (1.234 kg ? NET)",
    parser=OhausParser,
    encode=encode,
    line=LineSettings(9600, 8, "N", 1),
    mode="poll",
    poll_command=b"IP\r\n",
    tare_command=b"T\r\n",
    zero_command=b"Z\r\n",
    answer=answer,
    sends_on_change_only=False,
    harmless_queries=(b"IP\r\n",),
    units=UNITS,
    statuses=("ok",),
)
