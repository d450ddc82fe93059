"""CAS indicators (CI, NT series): streaming, 8N1 (the lamp byte uses bit 7).

Two frame layouts are read, both ending in CR LF:

* 22 bytes: ``ST,GS,`` + device ID (1 byte) + lamp byte + ``,`` + weight (8) + space +
  unit (2) -- e.g. ``ST,GS,1\\xc4,0013.500 kg``;
* 18 bytes: ``ST,GS,`` + weight (8) + unit (2) -- e.g. ``ST,GS,+013.500kg``.

Header 1: ``ST`` stable, ``US`` unstable, ``OL`` overload (its weight is not read);
header 2: ``GS`` gross, ``NT`` net. The weight is 8 characters: digits with at most one
decimal point, optional sign, leading zeros or spaces. Units: ``kg``, `` t``/``t ``,
``lb``, `` g``/``g ``. ``ERR`` + code is an ``error`` reading.

Lamp byte: bit 7 always 1 (required), bit 6 stable, bit 4 hold, bit 3 print, bit 2
gross, bit 1 tare, bit 0 zero. A 22-byte frame reads ``stable`` only when both the
header says ``ST`` and lamp bit 6 is set (two independent flags must agree).

The 10-byte layout (weight + CR LF only) carries no status and no unit: it is refused,
not guessed; set the indicator to the 22- or 18-byte layout.
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
)

_UNIT = rb"(?P<unit>kg| t|t |lb| g|g )"
_FRAME = re.compile(
    rb"(?P<h1>ST|US|OL),(?P<h2>GS|NT),"
    rb"(?:(?P<id>[\x20-\x7e])(?P<lamp>[\x80-\xff]),(?P<w22>[\x20-\x7e]{8}) " + _UNIT + rb"|"
    rb"(?P<w18>[\x20-\x7e]{8})" + _UNIT.replace(b"?P<unit>", b"?P<unit18>") + rb")\Z"
    rb"|(?P<err>ERR *[0-9A-Z]{1,4})\Z"
)
_NUMBER = re.compile(r" *[-+]? *\d+(?:\.\d+)?")
STABLE_LAMP, GROSS_LAMP, TARE_LAMP, ZERO_LAMP = 0x40, 0x04, 0x02, 0x01


class CasParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        m = _FRAME.search(line)
        if m is None:
            return None
        text = printable(m.group(0))
        if m.group("err"):
            return Reading(None, False, False, "error", "", text)
        unit = (m.group("unit") or m.group("unit18")).decode("ascii").strip()
        net = m.group("h2") == b"NT"
        stable = m.group("h1") == b"ST"
        if m.group("lamp") is not None:
            stable = stable and bool(m.group("lamp")[0] & STABLE_LAMP)
        if m.group("h1") == b"OL":
            return Reading(None, False, net, "overload", unit, text)
        field = (m.group("w22") or m.group("w18")).decode("ascii")
        if not _NUMBER.fullmatch(field):
            return None
        grams = to_grams(field.replace(" ", "").lstrip("+"), unit)
        return Reading(grams, stable, net, "ok", unit, text)


def encode(state: SimState) -> bytes:
    """The 22-byte frame, device ID ``1``, weight in kg with 3 decimals."""
    h1 = "OL" if state.overload else "ST" if state.stable else "US"
    h2 = "NT" if state.net else "GS"
    lamp = 0x80 | (STABLE_LAMP if state.stable else 0) | (0 if state.net else GROSS_LAMP)
    lamp |= (TARE_LAMP if state.tare_g else 0) | (ZERO_LAMP if state.weight_g == 0 else 0)
    value = from_grams(state.weight_g, "kg", 3)
    field = f"{value:08.3f}" if value >= 0 else f"-{-value:07.3f}"
    if len(field) > 8:
        h1, field = "OL", "99999999"
    head = f"{h1},{h2},1".encode("ascii") + bytes([lamp])
    return head + f",{field} kg\r\n".encode("ascii")


SPEC = ProtocolSpec(
    name="cas",
    title="CAS indicators (CI, NT series; 22- or 18-byte frames)",
    parser=CasParser,
    encode=encode,
    line=LineSettings(9600, 8, "N", 1),
    mode="stream",
    poll_command=None,
    tare_command=None,
    zero_command=None,
    answer=no_answer,
    sends_on_change_only=False,
    harmless_queries=(),
    units=("kg",),
    statuses=("ok", "overload"),
)
