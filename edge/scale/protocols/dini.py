"""Dini Argeo indicators (DFW, 3590, DGT...), standard string: polled with ``READ`` or
streaming (configurable), 9600 8N1 typical.

A frame is ``[CC]HH,KK,PPPPPPPP,UM`` CR LF, e.g. ``ST,GS,   1.234,kg``:

* ``CC``: 2-digit RS-485 instrument code, only on RS-485 (accepted and ignored);
* ``HH``: ``ST`` stable, ``US`` unstable, ``OL`` overload, ``UL`` underload, ``TL`` not
  level (an ``error`` reading);
* ``KK``: ``GS`` gross, ``NT`` net (``VL`` microvolts and ``RZ`` converter points are not
  weights: refused);
* ``PPPPPPPP``: exactly 8 characters, sign and decimal point included, right-aligned;
* ``UM``: ``kg``, ``lb``, `` g``/``g ``, `` t``/``t ``.

``OL``/``UL``/``TL`` frames carry no usable weight (``weight_g=None``); their weight field
may hold anything printable. Replies to other commands (``OK``...) are not readings.
"""

from __future__ import annotations

import re

from edge.scale.protocols.base import (
    LineParser,
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    Status,
    printable,
    to_grams,
)
from edge.scale.protocols.stgs import weight_field

_FRAME = re.compile(
    rb"(?:\d\d)?(?P<h>ST|US|OL|UL|TL),(?P<k>GS|NT),(?P<w>[\x20-\x7e]{8}),"
    rb"(?P<u>kg|lb| g|g | t|t )\Z"
)
_NUMBER = re.compile(r" *-?\d+(?:\.\d+)?")
_STATUS: dict[bytes, Status] = {b"OL": "overload", b"UL": "underload", b"TL": "error"}
UNITS = ("kg", "g", "lb")


class DiniParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        m = _FRAME.search(line)
        if m is None:
            return None
        text = printable(m.group(0))
        head, net = m.group("h"), m.group("k") == b"NT"
        unit = m.group("u").decode("ascii").strip()
        if head in _STATUS:
            return Reading(None, False, net, _STATUS[head], unit, text)
        field = m.group("w").decode("ascii")
        if not _NUMBER.fullmatch(field):
            return None
        return Reading(to_grams(field.strip(), unit), head == b"ST", net, "ok", unit, text)


def encode(state: SimState) -> bytes:
    """``ST,GS,   1.234,kg`` CR LF (kg/lb 3 decimals, g none); ``OL``/``UL`` out of range."""
    unit = state.unit if state.unit in UNITS else "kg"
    um = unit if len(unit) == 2 else f" {unit}"
    kk = "NT" if state.net else "GS"
    number = weight_field(state.weight_g, unit, 1).lstrip("0") or "0"
    if number.startswith("."):
        number = "0" + number
    if state.weight_g < 0:
        number = "-" + number
    if state.overload or state.underload or len(number) > 8:
        head = "UL" if state.underload else "OL"
        return f"{head},{kk},{'':8},{um}\r\n".encode("ascii")
    head = "ST" if state.stable else "US"
    return f"{head},{kk},{number:>8},{um}\r\n".encode("ascii")


def answer(command: bytes, state: SimState) -> bytes | None:
    """``READ`` -> one frame; ``TARE``/``ZERO`` -> ``OK``; anything else -> no reply."""
    cmd = command.strip(b"\r\n")
    if cmd == b"READ":
        return encode(state)
    if cmd in (b"TARE", b"ZERO"):
        return b"OK\r\n"
    return None


SPEC = ProtocolSpec(
    name="dini",
    title="Dini Argeo indicators (ST,GS,   1.234,kg)",
    parser=DiniParser,
    encode=encode,
    line=LineSettings(9600, 8, "N", 1),
    mode="poll",
    poll_command=b"READ\r\n",
    tare_command=b"TARE\r\n",
    zero_command=b"ZERO\r\n",
    answer=answer,
    sends_on_change_only=False,
    harmless_queries=(b"READ\r\n",),
    units=UNITS,
    statuses=("ok", "overload", "underload"),
)
