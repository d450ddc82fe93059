"""Properties of every protocol family, checked with hypothesis (derandomized, no example
database, so CI runs the same examples every time):

* random bytes never crash a parser, never stall it, and its buffer stays bounded;
* encode -> parse round trips over random simulator states;
* a mutated frame (a byte flipped, inserted or deleted) never yields a weight other than
  the original one unless what was decoded is itself a well-formed frame of the family
  (checked against the format restated here), and for families with a checksum, never;
* a frame whose checksum does not match its content never yields a weight.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edge.scale.protocols import PROTOCOLS, Reading, SimState, printable
from edge.scale.protocols.toledo_cont import ToledoContinuousParser

FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NAMES = list(PROTOCOLS)
CHECKSUMMED = ["toledo-continuous", "xk3190-stx", "xk3190-w"]

# Families whose frames say gross/net, and that carry the tare.
HAS_NET = {"toledo-8217", "toledo-continuous", "cas", "stgs", "dini", "ohaus", "sbi"}
HAS_NET |= {"xk3190-w", "adam"}
HAS_TARE = {"toledo-continuous"}
NO_UNIT_TEXT = {"xk3190-eq", "xk3190-stx"}

# Each family's frame format restated independently of the parsers (on Reading.text).
_U = r"(kg| t|t |lb| g|g )"
SHAPES = {
    "toledo-8217": r"\\x02[ \d]?\d\d\.\d{2,3}N?",
    "toledo-continuous": r"\\x02.{3}[ \d]{12}.*",
    "mt-sics": r"S [SD] +-?\d+(\.\d+)? [a-z]{1,3}",
    "and": r"(ST|US),[+-][ \d.]{8}( {2}[a-z]| [a-z]{2})",
    "cas": r"(ST|US),(GS|NT),(.\\x[89a-f][0-9a-f],[ -~]{8} " + _U + r"|[ -~]{8}" + _U + ")",
    "stgs": r"(ST|US),(GS|NT),[+-] *\d+(\.\d+)?(kg|g|lb)",
    "dini": r"(\d\d)?(ST|US),(GS|NT),[ -~]{8},(kg|lb| g|g | t|t )",
    "ohaus": r" *-? *\d+(\.\d+)? [a-z]{1,5}( *\?)?( *(G|B/G|NET|Net|N))? *",
    "sbi": r"((G#|G|N|N1|N2) *)?[+ -][ \d.]{9} ([a-z]{1,3} *| {3})",
    "xk3190-eq": r"=[\d.]{7}[0-]",
    "xk3190-stx": r"\\x02[+-]\d{7}[0-9A-F]{2}\\x03",
    "xk3190-w": r"W[GN][-\d][\d.]{5}[\d ](kg|lb)[0-9A-F]{2}",
    "adam": r"(\\x02)?[ +-] *\d+(\.\d+)? ?(kg|g|lb|oz|ct|mg)( ?(GR|NT))? *(\\x03)?",
}


@st.composite
def sim_states(draw: st.DrawFn, name: str, flags: bool = True) -> SimState:
    spec = PROTOCOLS[name]
    flag = "none"
    if flags:
        choices = ["none"] * 4 + [s for s in ("overload", "underload") if s in spec.statuses]
        flag = draw(st.sampled_from(choices))
    return SimState(
        weight_g=draw(st.integers(-99_999, 99_999)),
        stable=draw(st.booleans()),
        net=draw(st.booleans()),
        tare_g=draw(st.integers(0, 99_999)),
        overload=flag == "overload",
        underload=flag == "underload",
        unit=draw(st.sampled_from(spec.units)),
    )


def decode_one(name: str, frame: bytes) -> Reading:
    readings = PROTOCOLS[name].parser().feed(frame)
    assert len(readings) == 1, (frame, readings)
    return readings[0]


# --- random bytes ----------------------------------------------------------------------


def _alphabet(name: str) -> list[int]:
    spec = PROTOCOLS[name]
    sample = b"".join(spec.encode(SimState(w, unit=u)) for w in (0, 1234) for u in spec.units)
    return sorted(set(sample) | {0x00, 0x02, 0x03, 0x0A, 0x0D, 0x3D, 0x80, 0xFF})


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_random_bytes_never_crash_and_stay_bounded(name: str, data: st.DataObject):
    spec = PROTOCOLS[name]
    byte = st.one_of(st.integers(0, 255), st.sampled_from(_alphabet(name)))
    chunks = data.draw(st.lists(st.lists(byte, max_size=400).map(bytes), max_size=12))
    parser = spec.parser()
    for chunk in chunks:
        started = time.thread_time()  # CPU time: waiting for a busy CPU does not count
        frames = parser.feed_frames(chunk)
        assert time.thread_time() - started < 0.5
        assert parser.buffered <= parser.max_buffer
        for raw, reading in frames:
            assert raw
            if reading is None:
                continue
            assert reading.status in spec.statuses or reading.status == "error"
            if reading.status != "ok":
                assert reading.weight_g is None
            if not spec.has_stability_flag:
                assert reading.stable is False
            assert all(32 <= ord(c) < 127 for c in reading.text)


@pytest.mark.parametrize("name", NAMES)
def test_a_long_noise_stream_is_read_promptly(name: str):
    parser = PROTOCOLS[name].parser()
    noise = bytes((i * 131 + 7) % 256 for i in range(200_000))
    started = time.thread_time()  # CPU time: waiting for a busy CPU does not count
    for i in range(0, len(noise), 4096):
        parser.feed(noise[i : i + 4096])
    assert time.thread_time() - started < 5
    assert parser.buffered <= parser.max_buffer


# --- round trip --------------------------------------------------------------------------


def _tolerance(name: str, unit: str) -> int:
    return 3 if (name, unit) == ("toledo-8217", "lb") else 1


def _expected_status(name: str, s: SimState) -> str:
    if s.overload:
        return "overload"
    if s.underload or (name == "toledo-8217" and s.weight_g < 0):
        return "underload"  # the 8217 sends "under zero" instead of a negative weight
    return "ok"


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_encode_parse_round_trip(name: str, data: st.DataObject):
    spec = PROTOCOLS[name]
    s = data.draw(sim_states(name))
    parser = spec.parser()
    if name == "sbi" and not s.stable:
        parser.feed(spec.encode(replace(s, stable=True)))  # tells the unit, see sbi.py
    readings = parser.feed(spec.encode(s))
    assert len(readings) == 1
    r = readings[0]
    assert r.status == _expected_status(name, s)
    if r.status != "ok":
        assert r.weight_g is None
        return
    if name == "toledo-8217" and not s.stable:
        assert (r.weight_g, r.stable) == (None, False)  # a status frame: motion
        return
    assert r.weight_g is not None
    assert abs(r.weight_g - s.weight_g) <= _tolerance(name, s.unit)
    assert r.stable == (s.stable if spec.has_stability_flag else False)
    assert r.net == (s.net if name in HAS_NET else False)
    if name in HAS_TARE:
        assert r.tare_g is not None and abs(r.tare_g - s.tare_g) <= _tolerance(name, s.unit)
    else:
        assert r.tare_g is None
    expected_unit = "" if name in NO_UNIT_TEXT or (name == "sbi" and not s.stable) else s.unit
    assert r.unit == expected_unit
    assert decode_one(name, spec.encode(s)).weight_g in (r.weight_g, None)


# --- mutations -------------------------------------------------------------------------


@st.composite
def mutations(draw: st.DrawFn, frame: bytes, byte: st.SearchStrategy[int]) -> bytes:
    kind = draw(st.sampled_from(["flip", "insert", "delete"]))
    pos = draw(st.integers(0, len(frame) - (0 if kind == "insert" else 1)))
    if kind == "delete":
        return frame[:pos] + frame[pos + 1 :]
    value = draw(byte)
    if kind == "insert":
        return frame[:pos] + bytes([value]) + frame[pos:]
    assume(value != frame[pos])
    return frame[:pos] + bytes([value]) + frame[pos + 1 :]


@st.composite
def digit_flips(draw: st.DrawFn, frame: bytes) -> bytes:
    """One digit of the frame replaced by another digit: the change a checksum exists for."""
    digits = [i for i, b in enumerate(frame) if 0x30 <= b <= 0x39]
    pos = draw(st.sampled_from(digits))
    value = draw(st.sampled_from([d for d in b"0123456789" if d != frame[pos]]))
    return frame[:pos] + bytes([value]) + frame[pos + 1 :]


def _feed_mutated(name: str, mutated: bytes) -> list[Reading]:
    # A line end and a start byte afterwards complete whatever frame is pending.
    tail = {"toledo-continuous": b"\x02", "xk3190-eq": b"="}.get(name, b"\r\n")
    return PROTOCOLS[name].parser().feed(mutated + tail)


def _any_byte(name: str) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 255), st.sampled_from(_alphabet(name)))


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_a_mutated_frame_yields_the_original_weight_or_a_well_formed_frame(
    name: str, data: st.DataObject
):
    spec = PROTOCOLS[name]
    frame = spec.encode(data.draw(sim_states(name, flags=False)))
    original = decode_one(name, frame).weight_g
    mutated = data.draw(mutations(frame, _any_byte(name)))
    for r in _feed_mutated(name, mutated):
        if r.weight_g is not None and r.weight_g != original:
            assert not spec.has_checksum, (mutated, r)
            assert re.fullmatch(SHAPES[name], r.text), (mutated, r)
            assert r.text in printable(mutated), (mutated, r)


JUNK = [b for b in range(0x20) if b not in (0x02, 0x03, 0x0A, 0x0D)]


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_a_junk_byte_in_a_frame_never_changes_the_weight(name: str, data: st.DataObject):
    frame = PROTOCOLS[name].encode(data.draw(sim_states(name, flags=False)))
    original = decode_one(name, frame).weight_g
    mutated = data.draw(
        mutations(frame, st.sampled_from(JUNK)).filter(lambda m: len(m) >= len(frame))
    )
    weights = {r.weight_g for r in _feed_mutated(name, mutated)}
    assert weights <= {original, None}


@pytest.mark.parametrize("name", CHECKSUMMED)
@FAST
@given(data=st.data())
def test_checksummed_frames_never_yield_another_weight(name: str, data: st.DataObject):
    frame = PROTOCOLS[name].encode(data.draw(sim_states(name, flags=False)))
    if name == "toledo-continuous":
        # In "auto" mode a checksum equal to STX reads as "no checksum sent" (documented).
        assume(frame[-1] != 0x02)
    original = decode_one(name, frame).weight_g
    mutated = data.draw(st.one_of(mutations(frame, _any_byte(name)), digit_flips(frame)))
    assert {r.weight_g for r in _feed_mutated(name, mutated)} <= {original, None}


def _with_wrong_checksum(name: str, frame: bytes, value: int) -> bytes | None:
    if name == "toledo-continuous":
        return frame[:-1] + bytes([value & 0x7F]) if value & 0x7F != frame[-1] else None
    end = frame[-1:] if name == "xk3190-stx" else b"\r\n"
    cut = len(frame) - len(end) - 2
    check = b"%02X" % (value & 0xFF)
    return None if check == frame[cut : cut + 2] else frame[:cut] + check + end


@pytest.mark.parametrize("name", CHECKSUMMED)
@FAST
@given(data=st.data())
def test_a_wrong_checksum_never_yields_a_weight(name: str, data: st.DataObject):
    frame = PROTOCOLS[name].encode(data.draw(sim_states(name)))
    bad = _with_wrong_checksum(name, frame, data.draw(st.integers(0, 255)))
    assume(bad is not None)
    assert bad is not None
    if name == "toledo-continuous":
        strict = ToledoContinuousParser(checksum="required")
        assert strict.feed(bad + b"\x02") == []
        assume(bad[-1] != 0x02)  # "auto": an STX after CR means "sent without checksum"
    assert PROTOCOLS[name].parser().feed(bad + b"\x02") == []
