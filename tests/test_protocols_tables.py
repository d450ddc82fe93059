"""Every protocol family against a table of frames written from the manuals' formats:
the exact reading expected (weight_g, stable, net, status, unit, tare_g), strict
rejection of malformed frames and wrong checksums, noise, cut frames and byte-by-byte
feeding."""

from __future__ import annotations

from functools import reduce

import pytest

from edge.scale.protocols import PROTOCOLS, Reading, SimState, get_protocol, protocol_names
from edge.scale.protocols.toledo_cont import ToledoContinuousParser

Expected = tuple[int | None, bool, bool, str, str, int | None]


def ok(w: int, unit: str = "kg", *, stable: bool = True, net: bool = False, tare=None):
    return (w, stable, net, "ok", unit, tare)


def state(status: str, unit: str = "", *, stable: bool = False, net: bool = False):
    return (None, stable, net, status, unit, None)


def fields(r: Reading) -> Expected:
    return (r.weight_g, r.stable, r.net, r.status, r.unit, r.tare_g)


# --- frame builders (checksums computed here from the manuals' definitions) -----------


def tc(swa: int, swb: int, swc: int, weight: bytes, tare: bytes = b"000000", chk=True) -> bytes:
    """Toledo continuous: STX SWA SWB SWC weight(6) tare(6) CR [checksum]."""
    body = bytes([0x02, swa, swb, swc]) + weight + tare + b"\r"
    if chk is True:
        return body + bytes([(128 - sum(body) % 128) % 128])
    return body + (bytes([chk]) if chk is not False else b"")


def xor2(data: bytes) -> bytes:
    return b"%02X" % reduce(lambda a, b: a ^ b, data, 0)


def stx(body: bytes, check: bytes | None = None) -> bytes:
    """XK3190 STX frame: STX sign weight(6) dp XORhi XORlo ETX."""
    return b"\x02" + body + (check if check is not None else xor2(body)) + b"\x03"


def wline(body: bytes, check: bytes | None = None) -> bytes:
    """XK3190-A12: first 11 bytes + XOR of them + CR LF."""
    return body + (check if check is not None else xor2(body)) + b"\r\n"


def sbi(sign: str, number: str, unit: str, ident: str = "") -> bytes:
    """Sartorius: [ID(6)] sign, weight (9, right-aligned), space, unit (3, left) CR LF."""
    head = f"{ident:<6}" if ident else ""
    return f"{head}{sign}{number:>9} {unit:<3}\r\n".encode("ascii")


# SWA: bit 5 set, increment x1 (bits 3-4 = 01), decimal code in bits 0-2.
A = {code: 0x28 | code for code in range(8)}
B_KG, B_NET, B_NEG, B_OVER, B_MOTION = 0x30, 0x01, 0x02, 0x04, 0x08
C = 0x20

TABLES: dict[str, list[tuple[bytes, Expected | None]]] = {
    "toledo-8217": [
        (b"\x0201.234\r", ok(1234)),
        (b"\x02 12.345\r", ok(12345)),
        (b"\x02112.345\r", ok(112345)),
        (b"\x0212.345N\r", ok(12345, net=True)),
        (b"\x0202.50\r", ok(1134, "lb")),  # 2.5 x 453.59237
        (b"\x02100.00N\r", ok(45359, "lb", net=True)),
        (b"\x02?A\r", state("ok")),  # 0x41: motion
        (b"\x02?B\r", state("overload", stable=True)),
        (b"\x02?C\r", state("overload")),
        (b"\x02?D\r", state("underload", stable=True)),
        (b"\x02?`\r", state("ok", stable=True, net=True)),  # 0x60: net
        (b"\x02?P\r", state("ok", stable=True)),  # centre of zero
        (bytes(b | 0x80 for b in b"\x0201.234\r"), ok(1234)),  # parity bit kept as bit 7
        (b"\x021.234\r", None),
        (b"\x0201.2345\r", None),
        (b"\x0201,234\r", None),
        (b"\x0201.234X\r", None),
        (b"\x02-1.234\r", None),
        (b"\x02?0\r", None),  # status byte without bit 6
        (b"\x02??A\r", None),
    ],
    "toledo-continuous": [
        (tc(A[5], B_KG, C, b"001234"), ok(1234, tare=0)),
        (tc(A[5], B_KG | B_NET, C, b"000500", b"000700"), ok(500, net=True, tare=700)),
        (tc(A[5], B_KG | B_NEG, C, b"001234"), ok(-1234, tare=0)),
        (tc(A[5], B_KG | B_MOTION, C, b"001234"), ok(1234, stable=False, tare=0)),
        (tc(A[5], B_KG, C, b"  1234", b"     0"), ok(1234, tare=0)),
        (tc(A[4], 0x20, C, b"000250"), ok(1134, "lb", tare=0)),
        (tc(A[2], B_KG, 0x21, b"001234"), ok(1234, "g", tare=0)),
        (tc(A[0], B_KG, C, b"000012"), ok(1200000, tare=0)),  # XXXX00
        (tc(A[1], B_KG, C, b"000012"), ok(120000, tare=0)),  # XXXXX0
        (tc(A[3], B_KG, C, b"000125"), ok(12500, tare=0)),  # XXXXX.X
        (tc(A[6], B_KG, C, b"012345"), ok(1234, tare=0)),  # XX.XXXX: 1234.5 g, half-even
        (tc(A[7], B_KG, C, b"123456"), ok(1235, tare=0)),  # X.XXXXX
        (tc(A[5], B_KG, 0x22, b"001500"), ok(1500000, "t", tare=0)),
        (tc(A[5], B_KG, 0x23, b"035274"), ok(1000, "oz", tare=0)),
        (tc(A[5], B_KG | B_OVER, C, b"------", b"------"), state("overload", "kg", stable=True)),
        (tc(A[5], B_KG | B_OVER | B_NEG, C, b"000000"), state("underload", "kg", stable=True)),
        (tc(A[5], B_KG, 0x24, b"001234"), None),  # troy ounces: not convertible here
        (tc(A[5], B_KG, C, b"0012a4"), None),
        (tc(A[5], B_KG, C, b"00 234"), None),
        (tc(A[5], B_KG, C, b"001234", chk=0x00), None),  # wrong checksum
        (tc(A[5], B_KG, C, b"001234", chk=False) + b"\x02", ok(1234, tare=0)),  # no checksum
        (bytes(b | 0x80 for b in tc(A[5], B_KG, C, b"001234")), ok(1234, tare=0)),
    ],
    "mt-sics": [
        (b"S S     100.00 g\r\n", ok(100, "g")),
        (b"S D     100.00 g\r\n", ok(100, "g", stable=False)),
        (b"S S     -2.500 kg\r\n", ok(-2500)),
        (b"S S      1.000 lb\r\n", ok(454, "lb")),
        (b"S S       1500 mg\r\n", ok(2, "mg")),  # 1.5 g, half-even
        (b"S S     12.345 g\r\n", ok(12, "g")),
        (b"S I\r\n", state("ok")),
        (b"S +\r\n", state("overload")),
        (b"S -\r\n", state("underload")),
        (b"ES\r\n", state("error")),
        (b"ET\r\n", state("error")),
        (b"EL\r\n", state("error")),
        (b"T S      12.00 g\r\n", (None, True, True, "ok", "g", 12)),
        (b"TA A      0.250 kg\r\n", (None, True, True, "ok", "kg", 250)),
        (b"Z A\r\n", None),
        (b"TAC A\r\n", None),
        (b"S S     100.00 dwt\r\n", None),
        (b"S S 100.00g\r\n", None),
        (b"S X     100.00 g\r\n", None),
        (b"S S     10.0.0 g\r\n", None),
        (b"S S     100.00 g x\r\n", None),
    ],
    "and": [
        (b"ST,+00123.45  g\r\n", ok(123, "g")),
        (b"ST,+  123.45  g\r\n", ok(123, "g")),
        (b"US,-0001.234 kg\r\n", ok(-1234, stable=False)),
        (b"ST,+0002.500 lb\r\n", ok(1134, "lb")),
        (b"ST,+00012345  g\r\n", ok(12345, "g")),
        (b"ST,+00005.00 oz\r\n", ok(142, "oz")),
        (b"OL,+9999999E+19\r\n", state("overload")),
        (b"OL,-9999999E+19\r\n", state("underload")),
        (bytes(b | 0x80 for b in b"ST,+00123.45  g\r\n"), ok(123, "g")),
        (b"QT,+00000010 PC\r\n", None),
        (b"ST,+00123.45 PC\r\n", None),
        (b"ST,+0123.45  g\r\n", None),  # 7 characters of weight
        (b"ST,+00123.45 g\r\n", None),  # 2 characters of unit
        (b"ST,00123.45  g\r\n", None),  # no sign
        (b"ST,+001.2.45  g\r\n", None),
    ],
    "cas": [
        (b"ST,GS,1\xc4,0013.500 kg\r\n", ok(13500)),  # lamp: bit 7, stable, gross
        (b"US,NT,1\x82,-000.200 kg\r\n", ok(-200, stable=False, net=True)),
        (b"ST,GS,1\x84,0013.500 kg\r\n", ok(13500, stable=False)),  # lamp says unstable
        (b"ST,GS,1\xc4,0001.500  t\r\n", ok(1500000, "t")),
        (b"ST,GS,+013.500kg\r\n", ok(13500)),  # 18-byte layout
        (b"ST,NT,-  0.200kg\r\n", ok(-200, net=True)),
        (b"OL,GS,1\xc4,         kg\r\n", state("overload", "kg")),
        (b"OL,NT,+999.999kg\r\n", state("overload", "kg", net=True)),
        (b"ERR 03\r\n", state("error")),
        (b"0013.500\r\n", None),  # 10-byte layout: no status, no unit
        (b"ST,GS,1D,0013.500 kg\r\n", None),  # lamp byte without bit 7
        (b"ST,GS,1\xc4,013.500 kg\r\n", None),  # 7-character weight
        (b"ST,GS,1\xc4,00x3.500 kg\r\n", None),
        (b"ST,XX,+013.500kg\r\n", None),
    ],
    "stgs": [
        (b"ST,GS,+011.120kg\r\n", ok(11120)),
        (b"US,NT,-000.250kg\r\n", ok(-250, stable=False, net=True)),
        (b"ST,GS,+0011120g\r\n", ok(11120, "g")),
        (b"ST,GS,+001.000lb\r\n", ok(454, "lb")),
        (b"ST,GS,+11.1200kg\r\n", ok(11120)),
        (b"OL,GS,+       kg\r\n", state("overload", "kg")),
        (b"ST,GS,011.120kg\r\n", None),
        (b"ST,GS,+011.120kgx\r\n", None),
        (b"ST,GS,+01.1.20kg\r\n", None),
    ],
    "dini": [
        (b"ST,GS,   1.234,kg\r\n", ok(1234)),
        (b"01US,NT,  -0.500,kg\r\n", ok(-500, stable=False, net=True)),
        (b"ST,GS,    1234, g\r\n", ok(1234, "g")),
        (b"ST,GS,   2.500,lb\r\n", ok(1134, "lb")),
        (b"ST,GS,   1.500, t\r\n", ok(1500000, "t")),
        (b"ST,GS,   12.35,kg\r\n", ok(12350)),
        (b"OL,GS,        ,kg\r\n", state("overload", "kg")),
        (b"UL,NT,--------,kg\r\n", state("underload", "kg", net=True)),
        (b"TL,GS,   1.234,kg\r\n", state("error", "kg")),
        (b"ST,VL,   1.234,kg\r\n", None),
        (b"ST,GS,  1.234,kg\r\n", None),  # 7 characters
        (b"ST,GS,   1.234,KG\r\n", None),
        (b"ST,GS,   1.2-4,kg\r\n", None),
    ],
    "ohaus": [
        (b"    1.234 kg    G  \r\n", ok(1234)),
        (b"-    0.500 kg   ?NET\r\n", ok(-500, stable=False, net=True)),
        (b"       12.73 g    ?\r\n", ok(13, "g", stable=False)),
        (b"        0.00 g     \r\n", ok(0, "g")),
        (b"   35.274 oz\r\n", ok(1000, "oz")),
        (b"    2.500 lb     N\r\n", ok(1134, "lb", net=True)),
        (b"   5.000 kg T\r\n", (None, True, False, "ok", "kg", 5000)),
        (b"    3 PCS\r\n", None),
        (b"    0.85 oz     WET WT\r\n", None),
        (b"   12.34kg\r\n", None),
        (b"x   1.234 kg\r\n", None),  # no resync inside a line: the format has no header
        (b"ES\r\n", None),
    ],
    "sbi": [
        (sbi("+", "1.234", "kg"), ok(1234)),
        (sbi("-", "1255.7", "g"), ok(-1256, "g")),
        (sbi(" ", "2.500", "lb"), ok(1134, "lb")),
        (sbi("+", "1255.7", "g", ident="N"), ok(1256, "g", net=True)),
        (sbi("+", "1255.7", "g", ident="G#"), ok(1256, "g")),
        (sbi("+", "12.00", "g", ident="T"), (None, True, False, "ok", "g", 12)),
        (b"H             \r\n", state("overload")),
        (b"      LL      \r\n", state("underload")),
        (b"Stat        HH      \r\n", state("overload")),
        (b"Err 123       \r\n", state("error")),
        (b"Stat       ERR 101  \r\n", state("error")),
        (b"      C       \r\n", state("error")),
        (sbi("+", "1.234", "pcs"), None),
        (sbi("+", "1.234", "kg", ident="Qnt"), None),
        (b"+    1.234 kg\r\n", None),  # 13 characters
        (b"+   1.2.34 kg \r\n", None),
    ],
    "xk3190-eq": [
        (b"=000.3000", ok(3000, "", stable=False)),
        (b"=00.1000-", ok(-1000, "", stable=False)),
        (b"=00000000", ok(0, "", stable=False)),
        (b"=5.430000", ok(34500, "", stable=False)),
        (b"=05432100", ok(123450000, "", stable=False)),  # no decimal point: 0123450 kg
        (b"=000.3.00", None),
        (b"=000.300+", None),
        (b"=000a3000", None),
        (b"=.0003000", None),
    ],
    "xk3190-stx": [
        (stx(b"+0041393"), ok(4139, "", stable=False)),
        (stx(b"-0010002"), ok(-10000, "", stable=False)),
        (stx(b"+0001230"), ok(123000, "", stable=False)),
        (stx(b"+1234564"), ok(12346, "", stable=False)),  # 12.3456 kg
        (stx(b"+0041393", b"00"), None),
        (stx(b"+0012343", b"1c"), None),  # lower-case hex (the right value is 1C)
        (stx(b"+0012343"), ok(1234, "", stable=False)),
        (stx(b"+0041395"), None),  # 5 decimals
        (stx(b" 0041393"), None),
    ],
    "xk3190-w": [
        (b"WG004.139kg3D\r\n", ok(4139, stable=False)),  # FIELD.md's example
        (wline(b"WN004.139kg"), ok(4139, stable=False, net=True)),
        (wline(b"WG-04.139kg"), ok(-4139, stable=False)),
        (wline(b"WG004139 kg"), ok(4139000, stable=False)),
        (wline(b"WG0004.13kg"), ok(4130, stable=False)),
        (wline(b"WG002.500lb"), ok(1134, "lb", stable=False)),
        (b"         OL23\r\n", state("overload")),
        (b"         LO23\r\n", state("underload")),
        (b"WG004.139kg3E\r\n", None),
        (b"WG004.139kg3d\r\n", None),
        (b"WG004.138kg3D\r\n", None),
        (b"         OL24\r\n", None),
        (wline(b"WG04.1.39kg"), None),
        (wline(b"WX004.139kg"), None),
    ],
    "adam": [
        (b" 1.234kg\r\n", ok(1234, stable=False)),
        (b"-    123.45 g\r\n", ok(-123, "g", stable=False)),
        (b"+  2.500 lb\r\n", ok(1134, "lb", stable=False)),
        (b" 1.234kg NT\r\n", ok(1234, stable=False, net=True)),
        (b" 1.234kg GR\r\n", ok(1234, stable=False)),
        (b"\x02 1.234kg\x03\r\n", ok(1234, stable=False)),
        (b"^^^^^^^^^kg\r\n", state("overload", "kg")),
        (b"_________kg\r\n", state("underload", "kg")),
        (b"---------\r\n", state("error")),
        (b"1.234kg\r\n", None),
        (b" 1.234 pcs\r\n", None),
        (b"x 1.234kg\r\n", None),
        (b" 1.2.34kg\r\n", None),
    ],
}

CASES = [(name, raw, exp) for name, rows in TABLES.items() for raw, exp in rows]


def test_every_family_is_registered_and_tabled():
    assert protocol_names() == list(TABLES)
    assert set(PROTOCOLS) == set(TABLES)
    with pytest.raises(ValueError, match="unknown protocol 'x'; known: toledo-8217, "):
        get_protocol("x")


@pytest.mark.parametrize(("name", "raw", "expected"), CASES)
def test_table(name: str, raw: bytes, expected: Expected | None):
    parser = get_protocol(name).parser()
    readings = parser.feed(raw)
    if expected is None:
        assert readings == []
    else:
        assert [fields(r) for r in readings] == [expected]
        assert "\r" not in readings[0].text and "\n" not in readings[0].text


@pytest.mark.parametrize(("name", "raw", "expected"), CASES)
def test_table_byte_by_byte(name: str, raw: bytes, expected: Expected | None):
    parser = get_protocol(name).parser()
    readings = [r for i in range(len(raw)) for r in parser.feed(raw[i : i + 1])]
    assert [fields(r) for r in readings] == ([] if expected is None else [expected])


def test_texts_are_printable_frames():
    assert get_protocol("cas").parser().feed(b"ST,GS,1\xc4,0013.500 kg\r\n")[0].text == (
        "ST,GS,1\\xc4,0013.500 kg"
    )
    assert get_protocol("toledo-8217").parser().feed(b"xx\x0201.234\r")[0].text == "\\x0201.234"
    assert get_protocol("stgs").parser().feed(b"xxST,GS,+011.120kg\r\n")[0].text == (
        "ST,GS,+011.120kg"
    )


# --- framing: noise, cut frames, several frames per read -------------------------------

FRAMES = {name: spec.encode(SimState(1234, unit=spec.units[0])) for name, spec in PROTOCOLS.items()}
WHOLE_LINE = {"ohaus", "sbi", "adam"}  # headerless: no resync inside a line


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_noise_lines_between_frames(name: str):
    frame = FRAMES[name]
    expected = get_protocol(name).parser().feed(frame)
    assert len(expected) == 1
    parser = get_protocol(name).parser()
    stream = b"\x00\xff\xfejunk\r\n" + frame + b"\x81noise;\r\n\r\n" + frame + frame
    frames = parser.feed_frames(stream)
    assert [r for _, r in frames if r is not None] == expected * 3
    assert any(r is None for _, r in frames)  # the noise is reported, as invalid


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_noise_glued_to_a_frame(name: str):
    frame = FRAMES[name]
    expected = get_protocol(name).parser().feed(frame)
    parser = get_protocol(name).parser()
    got = parser.feed(b"\x00\xffjunk" + frame) + parser.feed(frame)
    if name in WHOLE_LINE:
        assert got == expected  # the noisy line is dropped, the next one reads
    else:
        assert got == expected * 2


@pytest.mark.parametrize("name", list(PROTOCOLS))
@pytest.mark.parametrize("keep", [1, 3, 6])
def test_cut_frame_then_good_ones(name: str, keep: int):
    frame = FRAMES[name]
    expected = get_protocol(name).parser().feed(frame)
    parser = get_protocol(name).parser()
    got = parser.feed(frame[:keep]) + parser.feed(frame + frame)
    if name in WHOLE_LINE:
        # The cut frame spoils its line only (unless what was kept is blank padding).
        assert got[-1:] == expected
        assert {r.weight_g for r in got} == {expected[0].weight_g}
        assert len(got) == (2 if frame[:keep].isspace() else 1)
    else:
        assert got == expected * 2


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_many_frames_in_odd_chunks(name: str):
    spec = get_protocol(name)
    weights = [0, 1, 250, 1234, 5000, 99999]
    stream = b"".join(spec.encode(SimState(w, unit=spec.units[0])) for w in weights)
    if name == "xk3190-eq" or (name == "toledo-continuous"):
        stream += spec.encode(SimState(0, unit=spec.units[0]))  # nothing ends the last one
    whole = [r.weight_g for r in spec.parser().feed(stream)][: len(weights)]
    parser = spec.parser()
    chunked = [r.weight_g for i in range(0, len(stream), 5) for r in parser.feed(stream[i : i + 5])]
    assert chunked[: len(weights)] == whole
    assert len(whole) == len(weights)
    assert all(w is not None and abs(w - e) <= 3 for w, e in zip(whole, weights, strict=True))


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_buffer_is_bounded_and_reset_forgets(name: str):
    parser = get_protocol(name).parser()
    start = FRAMES[name][:1]
    parser.feed(start + b"1" * 10_000)
    assert parser.buffered <= parser.max_buffer
    parser.feed(FRAMES[name][:4])
    parser.reset()
    assert parser.buffered == 0
    assert parser.feed(FRAMES[name]) == get_protocol(name).parser().feed(FRAMES[name])


# --- family-specific behaviour ---------------------------------------------------------


def test_toledo_continuous_waits_for_the_byte_after_cr_without_checksum():
    parser = ToledoContinuousParser()
    frame = tc(A[5], B_KG, C, b"001234", chk=False)
    assert parser.feed(frame) == []  # checksum or next STX? not known yet
    assert [r.weight_g for r in parser.feed(frame)] == [1234]
    assert [r.weight_g for r in parser.feed(b"\x02")] == [1234]


def test_toledo_continuous_checksum_modes():
    good = tc(A[5], B_KG, C, b"001234")
    bare = tc(A[5], B_KG, C, b"001234", chk=False)
    required = ToledoContinuousParser(checksum="required")
    assert [r.weight_g for r in required.feed(good)] == [1234]
    assert required.feed(bare + bare + b"\x00") == []
    none = ToledoContinuousParser(checksum="none")
    assert [r.weight_g for r in none.feed(bare)] == [1234]


def test_toledo_continuous_clone_status_byte_equal_to_stx():
    # A clone with SWB bit 5 clear: gross, negative, lb makes SWB 0x02, the STX value.
    frame = tc(A[5], 0x02, C, b"001234")
    assert [fields(r) for r in ToledoContinuousParser().feed(b"\x02\x00" + frame)] == [
        ok(-560, "lb", tare=0)
    ]


def test_sbi_unstable_frames_use_the_last_stable_unit():
    parser = get_protocol("sbi").parser()
    assert [fields(r) for r in parser.feed(sbi("+", "1.000", ""))] == [
        (None, False, False, "ok", "", None)
    ]
    parser.feed(sbi("+", "1.000", "kg"))
    assert [fields(r) for r in parser.feed(sbi("+", "1.500", ""))] == [
        (1500, False, False, "ok", "", None)
    ]
    parser.reset()
    assert parser.feed(sbi("+", "1.500", ""))[0].weight_g is None


def test_sbi_unstable_frame_before_any_unit_is_read_in_the_configured_unit():
    parser = get_protocol("sbi").parser()
    parser.assume_unit("kg")
    # the first line after start-up, while the load still moves: unstable, in kg
    assert [fields(r) for r in parser.feed(sbi("+", "1.234", ""))] == [
        (1234, False, False, "ok", "", None)
    ]
    assert [fields(r) for r in parser.feed(sbi("+", "1.234", "", ident="N"))] == [
        (1234, False, True, "ok", "", None)
    ]
    # the scale then says grams: the unit it last showed wins over the configured one
    parser.feed(sbi("+", "1255.7", "g"))
    assert [fields(r) for r in parser.feed(sbi("-", "1300.0", ""))] == [
        (-1300, False, False, "ok", "", None)
    ]
    # a reconnection forgets the unit seen, not the configured one
    parser.reset()
    assert [r.weight_g for r in parser.feed(sbi("+", "0.500", ""))] == [500]
    parser.assume_unit(None)
    assert [r.weight_g for r in parser.feed(sbi("+", "0.500", ""))] == [None]
    with pytest.raises(ValueError, match="unknown unit 'pcs'"):
        parser.assume_unit("pcs")


@pytest.mark.parametrize("name", [n for n in protocol_names() if n != "sbi"])
def test_an_assumed_unit_changes_nothing_for_families_whose_frames_say_it(name: str):
    spec = get_protocol(name)
    frames = b"".join(
        spec.encode(SimState(w, stable=stable, unit=spec.units[-1]))
        for w in (1234, 56789)
        for stable in (True, False)
    )
    plain, assuming = spec.parser(), spec.parser()
    assuming.assume_unit("lb" if spec.units[-1] != "lb" else "g")
    assert assuming.feed(frames) == plain.feed(frames)


def test_xk3190_eq_frames_are_equals_plus_eight_bytes():
    parser = get_protocol("xk3190-eq").parser()
    frames = parser.feed_frames(b"=000.3000=000.=000.3000xy=00.1000-")
    assert [(raw, r.weight_g if r else None) for raw, r in frames] == [
        (b"=000.3000", 3000),
        (b"=000.", None),  # cut by the next "="
        (b"=000.3000", 3000),
        (b"xy", None),
        (b"=00.1000-", -1000),
    ]


def test_specs_are_consistent():
    for name, spec in PROTOCOLS.items():
        assert spec.name == name and spec.title
        assert (spec.mode == "poll") == (spec.poll_command is not None)
        for query in spec.harmless_queries:
            assert query not in (spec.tare_command, spec.zero_command)
        if spec.poll_command is not None:
            reply = spec.answer(spec.poll_command, SimState(1234, unit=spec.units[0]))
            assert reply is not None and spec.parser().feed(reply)
    flagless = {n for n, s in PROTOCOLS.items() if not s.has_stability_flag}
    assert flagless == {"xk3190-eq", "xk3190-stx", "xk3190-w", "adam"}
    checked = {n for n, s in PROTOCOLS.items() if s.has_checksum}
    assert checked == {"toledo-continuous", "xk3190-stx", "xk3190-w"}


def test_answers():
    sics = get_protocol("mt-sics")
    assert sics.answer(b"T\r\n", SimState(500, unit="g")) == b"T S     500.00 g\r\n"
    assert sics.answer(b"Z\r\n", SimState(0)) == b"Z A\r\n"
    assert sics.answer(b"S\r\n", SimState(5, stable=False)) == b"S I\r\n"
    assert sics.answer(b"XYZ\r\n", SimState(0)) == b"ES\r\n"
    toledo = get_protocol("toledo-8217")
    assert toledo.answer(b"W", SimState(1234)) == b"\x0201.234\r"
    assert toledo.answer(b"W", SimState(1234, stable=False)) == b"\x02?A\r"
    assert toledo.answer(b"Z", SimState(0)) == b"\x02?P\r"
    assert get_protocol("dini").answer(b"TARE\r\n", SimState(0)) == b"OK\r\n"
    assert get_protocol("adam").answer(b"P", SimState(1234)) == b" 1.234kg\r\n"
    assert get_protocol("sbi").answer(b"\x1bP", SimState(1234, unit="kg")) == (
        b"+    1.234 kg \r\n"
    )
