"""Yaohua XK3190 indicators (A9, A12, A26...): three streaming formats, 9600 8N1.

The indicators weigh in kg; the ``=`` and STX frames carry no unit (``unit=""``, the
weight is read as kg). None of the three carries a stability flag
(:attr:`ProtocolSpec.has_stability_flag` is False): every reading says ``stable=False``
and the driver decides stability itself.

``xk3190-eq``: ``=`` + 7 displayed characters, least significant first + sign (``0``
or ``-``): 3.000 kg is ``=000.3000``, -1.00 kg is ``=00.1000-``. There is no terminator:
a frame is ``=`` and exactly the 8 bytes after it; the 7 characters reversed must be
digits with at most one decimal point (digits on both sides). A ``=`` among the 8 bytes
means the frame was cut.

``xk3190-stx``: ``STX sign(+/-) weight(6 digits) dp XORhi XORlo ETX`` (12 bytes); ``dp``
is the number of decimals (0-4); the checksum is the XOR of bytes 2-9 (sign to dp) as
two upper-case hex characters.

``xk3190-w`` (A12 "W"): ``W G|N weight(7) unit(2) XORhi XORlo CR LF``, e.g.
``WG004.139kg3D``; the weight field is digits with a decimal point (or 6 digits and a
space), ``-`` first when negative; the checksum is the XOR of the first 11 bytes as two
upper-case hex characters. Overload is nine spaces + ``OL`` + ``23``, underload nine
spaces + ``LO`` + ``23`` (the same checksum rule).
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from functools import reduce

from edge.scale.protocols.base import (
    LineParser,
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    Status,
    from_grams,
    no_answer,
    printable,
    to_grams,
)
from edge.scale.protocols.framing import StartFramedParser

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def xor_hex(data: bytes) -> bytes:
    """XOR of ``data`` as two upper-case hex characters."""
    return f"{reduce(lambda a, b: a ^ b, data, 0):02X}".encode("ascii")


def _display(weight_g: int, width: int) -> str | None:
    """``abs(weight_g)`` in kg as the indicator shows it in ``width`` characters
    (3 decimals, fewer when it does not fit); None when it does not fit at all."""
    for decimals in (3, 2, 1, 0):
        text = f"{abs(from_grams(weight_g, 'kg', decimals)):0{width}.{decimals}f}"
        if len(text) == width:
            return text
    return None


# --- "=" reversed ---------------------------------------------------------------------


class Xk3190EqParser(StartFramedParser):
    start = ord("=")
    length = 9

    def parse_frame(self, frame: bytes) -> Reading | None:
        shown, sign = frame[1:8][::-1], frame[8:9]
        if sign not in (b"0", b"-") or not _NUMBER.fullmatch(shown.decode("latin-1")):
            return None
        grams = to_grams(shown.decode("ascii"), "kg")
        return Reading(-grams if sign == b"-" else grams, False, False, "ok", "", printable(frame))


def encode_eq(state: SimState) -> bytes:
    shown = _display(state.weight_g, 7) or "9999999"
    sign = "-" if state.weight_g < 0 else "0"
    return f"={shown[::-1]}{sign}".encode("ascii")


# --- STX ... ETX ----------------------------------------------------------------------

_STX_FRAME = re.compile(
    rb"\x02(?P<body>(?P<sign>[+-])(?P<w>\d{6})(?P<dp>[0-4]))(?P<x>[0-9A-F]{2})\x03"
)


class Xk3190StxParser(StartFramedParser):
    start = 0x02
    end = 0x03
    max_frame = 12

    def parse_frame(self, frame: bytes) -> Reading | None:
        m = _STX_FRAME.fullmatch(frame)
        if m is None or xor_hex(m.group("body")) != m.group("x"):
            return None
        number = Decimal(int(m.group("w"))).scaleb(-int(m.group("dp")))
        grams = to_grams(number, "kg")
        grams = -grams if m.group("sign") == b"-" else grams
        return Reading(grams, False, False, "ok", "", printable(frame))


def encode_stx(state: SimState) -> bytes:
    for decimals in (3, 2, 1, 0):
        digits = int(abs(from_grams(state.weight_g, "kg", decimals)).scaleb(decimals))
        if digits <= 999999:
            break
    else:
        digits, decimals = 999999, 0
    body = f"{'-' if state.weight_g < 0 else '+'}{digits:06d}{decimals}".encode("ascii")
    return b"\x02" + body + xor_hex(body) + b"\x03"


# --- A12 "W" --------------------------------------------------------------------------

_W_FRAME = re.compile(
    rb"(?P<body>W(?P<gn>[GN])(?P<w>[-\d][\d.]{5}[\d ])(?P<u>kg|lb)"
    rb"|(?P<ol> {9}(?:OL|LO)))(?P<x>[0-9A-F]{2})\Z"
)
_W_NUMBER = re.compile(r"-?\d+(?:\.\d+)? ?")


class Xk3190WParser(LineParser):
    def parse_line(self, line: bytes) -> Reading | None:
        m = _W_FRAME.search(line)
        if m is None or xor_hex(m.group("body")) != m.group("x"):
            return None
        text = printable(m.group(0))
        if m.group("ol"):
            status: Status = "overload" if m.group("ol").endswith(b"OL") else "underload"
            return Reading(None, False, False, status, "", text)
        field, unit = m.group("w").decode("ascii"), m.group("u").decode("ascii")
        if not _W_NUMBER.fullmatch(field) or (field.endswith(" ") and "." in field):
            return None
        grams = to_grams(field.strip(), unit)
        return Reading(grams, False, m.group("gn") == b"N", "ok", unit, text)


def encode_w(state: SimState) -> bytes:
    shown = _display(state.weight_g, 6 if state.weight_g < 0 else 7)
    if state.overload or state.underload or shown is None:
        body = b" " * 9 + (b"LO" if state.underload else b"OL")
    else:
        if "." not in shown:
            shown = shown[1:] + " "
        sign = "-" if state.weight_g < 0 else ""
        body = f"W{'N' if state.net else 'G'}{sign}{shown}kg".encode("ascii")
    return body + xor_hex(body) + b"\r\n"


SPEC_EQ = ProtocolSpec(
    name="xk3190-eq",
    title='Yaohua XK3190 "=" reversed digits (=000.3000)',
    parser=Xk3190EqParser,
    encode=encode_eq,
    line=LineSettings(9600, 8, "N", 1),
    mode="stream",
    poll_command=None,
    tare_command=None,
    zero_command=None,
    answer=no_answer,
    sends_on_change_only=False,
    harmless_queries=(),
    has_stability_flag=False,
)
SPEC_STX = replace(
    SPEC_EQ,
    name="xk3190-stx",
    title="Yaohua XK3190 STX frame with XOR checksum",
    parser=Xk3190StxParser,
    encode=encode_stx,
    has_checksum=True,
)
SPEC_W = replace(
    SPEC_EQ,
    name="xk3190-w",
    title='Yaohua XK3190-A12 "W" frame (WG004.139kg3D)',
    parser=Xk3190WParser,
    encode=encode_w,
    has_checksum=True,
    statuses=("ok", "overload", "underload"),
)
