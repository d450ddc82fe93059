"""The ST,GS parser: exact readings for a table of frames, strict rejection of the rest,
frames cut across reads, noise, a bounded buffer, and encode/parse round trips."""

from __future__ import annotations

import random

import pytest

from edge.scale.stgs import Reading, StgsParser, encode_frame, parse_frame


def ok(weight_g: int, text: str, *, stable: bool = True, net: bool = False, unit: str = "kg"):
    return Reading(weight_g, stable=stable, net=net, status="ok", unit=unit, text=text)


def overload(text: str, *, net: bool = False, unit: str = "kg"):
    return Reading(None, stable=False, net=net, status="overload", unit=unit, text=text)


VALID = [
    # stability, gross/net, sign
    (b"ST,GS,+011.120kg\r\n", ok(11120, "ST,GS,+011.120kg")),
    (b"US,GS,+011.120kg\r\n", ok(11120, "US,GS,+011.120kg", stable=False)),
    (b"ST,NT,+000.500kg\r\n", ok(500, "ST,NT,+000.500kg", net=True)),
    (b"US,NT,-000.250kg\r\n", ok(-250, "US,NT,-000.250kg", stable=False, net=True)),
    (b"ST,GS,-000.000kg\r\n", ok(0, "ST,GS,-000.000kg")),
    (b"ST,GS,+000.000kg\r\n", ok(0, "ST,GS,+000.000kg")),
    # line endings: CR LF, lone LF, none (parse_frame takes one line)
    (b"ST,GS,+011.120kg\n", ok(11120, "ST,GS,+011.120kg")),
    (b"ST,GS,+011.120kg", ok(11120, "ST,GS,+011.120kg")),
    # units
    (b"ST,GS,+0011120g\r\n", ok(11120, "ST,GS,+0011120g", unit="g")),
    (b"ST,GS,-0000005g\r\n", ok(-5, "ST,GS,-0000005g", unit="g")),
    (b"ST,GS,+001.000lb\r\n", ok(454, "ST,GS,+001.000lb", unit="lb")),  # 453.59237
    (b"ST,GS,+002.500lb\r\n", ok(1134, "ST,GS,+002.500lb", unit="lb")),  # 1133.98
    (b"ST,GS,+100.000lb\r\n", ok(45359, "ST,GS,+100.000lb", unit="lb")),  # 45359.237
    # decimal positions
    (b"ST,GS,+11.1200kg\r\n", ok(11120, "ST,GS,+11.1200kg")),
    (b"ST,GS,+0011.12kg\r\n", ok(11120, "ST,GS,+0011.12kg")),
    (b"ST,GS,+00011.1kg\r\n", ok(11100, "ST,GS,+00011.1kg")),
    (b"ST,GS,+0000011kg\r\n", ok(11000, "ST,GS,+0000011kg")),
    (b"ST,GS,+1234.567kg\r\n", ok(1234567, "ST,GS,+1234.567kg")),
    # rounding half-even to whole grams, exact decimal arithmetic
    (b"ST,GS,+0.0005kg\r\n", ok(0, "ST,GS,+0.0005kg")),
    (b"ST,GS,+0.0015kg\r\n", ok(2, "ST,GS,+0.0015kg")),
    (b"ST,GS,+0.0025kg\r\n", ok(2, "ST,GS,+0.0025kg")),
    (b"ST,GS,+0012.5g\r\n", ok(12, "ST,GS,+0012.5g", unit="g")),
    (b"ST,GS,+0013.5g\r\n", ok(14, "ST,GS,+0013.5g", unit="g")),
    (b"ST,GS,+004.100kg\r\n", ok(4100, "ST,GS,+004.100kg")),  # 4.1 * 1000 is not 4099
    # leading spaces in the field
    (b"ST,GS,+  1.234kg\r\n", ok(1234, "ST,GS,+  1.234kg")),
    (b"ST,GS,-  1.234kg\r\n", ok(-1234, "ST,GS,-  1.234kg")),
    (b"ST,GS,+    123g\r\n", ok(123, "ST,GS,+    123g", unit="g")),
    # overload: blank or garbled weight, never a weight
    (b"OL,GS,+999.999kg\r\n", overload("OL,GS,+999.999kg")),
    (b"OL,GS,+       kg\r\n", overload("OL,GS,+       kg")),
    (b"OL,NT,+ OL    kg\r\n", overload("OL,NT,+ OL    kg", net=True)),
    (b"OL,GS,+--.---lb\r\n", overload("OL,GS,+--.---lb", unit="lb")),
    (b"OL,GS,\r\n", overload("OL,GS,", unit="")),
]

MALFORMED = [
    b"ST,GS,+01.1.120kg\r\n",  # two decimal points
    b"ST,GS,+011.12Okg\r\n",  # letter O in the weight
    b"ST,GS,+0x1.120kg\r\n",
    b"ST,GS,+011,120kg\r\n",  # decimal comma
    b"ST,GS,+011.120\r\n",  # missing unit
    b"ST,GS,+011.120KG\r\n",  # unit in capitals
    b"ST,GS,+011.120t\r\n",  # unknown unit
    b"ST,GS,+011.120k\r\n",  # truncated unit
    b"ST,GS,+011.12\r\n",  # truncated
    b"ST,GS,+\r\n",
    b"ST,GS,\r\n",
    b"ST\r\n",
    b"\r\n",
    b"",
    b"SX,GS,+011.120kg\r\n",  # wrong header 1
    b"ST,GR,+011.120kg\r\n",  # wrong header 2
    b"st,gs,+011.120kg\r\n",
    b"QT,GS,+011.120kg\r\n",
    b"ST;GS;+011.120kg\r\n",
    b"ST,GS,011.120kg\r\n",  # no sign
    b"ST,GS, +11.120kg\r\n",  # space before the sign
    b"ST,GS,+01 1.120kg\r\n",  # space inside the number
    b"ST,GS,+011.120 kg\r\n",  # space before the unit
    b"ST,GS,+.120kg\r\n",  # no digit before the point
    b"ST,GS,+011.kg\r\n",  # no digit after the point
    b"ST,GS,+       kg\r\n",  # blank weight on a stable frame
    b"ST,GS,+00000011.120kg\r\n",  # field longer than 10 characters
    b"ST,GS,+011.120kg \r\n",  # trailing space
    b"ST,GS,+011.120kg\x00\r\n",  # trailing noise
    b"ST,GS,+011.120kg\r\r\n",
    b"\x00\xffST,GS,+011.120kg\r\n",  # parse_frame is strict; StgsParser resyncs
    b"ST,GS,+\xd9\xa1\xd9\xa2kg\r\n",  # non-ASCII digits
    b"ST,GS,+\xef\xbc\x91.000kg\r\n",
    b"OL,GS,\xff\xfe\r\n",  # overload with non-printable bytes
    b"OL,XX,+999.999kg\r\n",
]


@pytest.mark.parametrize(("frame", "expected"), VALID, ids=[repr(f) for f, _ in VALID])
def test_valid_frames(frame: bytes, expected: Reading) -> None:
    assert parse_frame(frame) == expected
    assert StgsParser().feed(frame if frame.endswith(b"\n") else frame + b"\r\n") == [expected]


@pytest.mark.parametrize("frame", MALFORMED, ids=[repr(f) for f in MALFORMED])
def test_malformed_frames_are_rejected(frame: bytes) -> None:
    assert parse_frame(frame) is None
    if not frame.startswith(b"\x00\xff"):
        assert StgsParser().feed(frame if frame.endswith(b"\n") else frame + b"\n") == []


def test_weights_are_ints() -> None:
    reading = parse_frame(b"ST,GS,+002.500lb")
    assert reading is not None
    assert type(reading.weight_g) is int


STREAM = (
    b"ST,GS,+001.000kg\r\n"
    b"US,GS,+002.000kg\r\n"
    b"ST,NT,-000.300kg\r\n"
    b"OL,GS,+       kg\r\n"
    b"ST,GS,+0004000g\n"
)
STREAM_WEIGHTS = [1000, 2000, -300, None, 4000]


def test_frame_cut_byte_by_byte() -> None:
    parser = StgsParser()
    out: list[Reading] = []
    for i in range(len(STREAM)):
        got = parser.feed(STREAM[i : i + 1])
        # a reading appears exactly when its LF arrives
        assert len(got) == (1 if STREAM[i : i + 1] == b"\n" else 0)
        out += got
    assert [r.weight_g for r in out] == STREAM_WEIGHTS
    assert parser.buffered == 0


@pytest.mark.parametrize("cut", range(1, 40))
def test_frame_cut_across_two_feeds(cut: int) -> None:
    parser = StgsParser()
    out = parser.feed(STREAM[:cut]) + parser.feed(STREAM[cut:])
    assert [r.weight_g for r in out] == STREAM_WEIGHTS


def test_random_chunks_with_noise_lines_keep_every_frame() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        frames = [rng.randrange(-99999, 999999) for _ in range(rng.randrange(1, 8))]
        stream = b""
        for w in frames:
            noise = bytes(rng.choice(b"\x00\xff\x13\r ,.+-0123456789STGkglb#") for _ in range(5))
            stream += noise + b"\r\n" + encode_frame(w, stable=rng.random() < 0.5)
        parser = StgsParser()
        out: list[Reading] = []
        pos = 0
        while pos < len(stream):
            step = rng.randrange(1, 25)
            out += parser.feed(stream[pos : pos + step])
            pos += step
        assert [r.weight_g for r in out] == frames


def test_noise_between_frames_is_dropped() -> None:
    data = (
        b"ST,GS,+001.000kg\r\n"
        b"\x00\xff\x13garbage\r\n"
        b"\xfe\xfe\xfe\n"
        b"ST,GS,+01.1.1kg\r\n"
        b"ST,GS,+002.000kg\r\n"
    )
    parser = StgsParser()
    lines = parser.feed_lines(data)
    assert [r.weight_g if r else None for _, r in lines] == [1000, None, None, None, 2000]
    assert [raw for raw, _ in lines][1] == b"\x00\xff\x13garbage"
    assert [r.weight_g for r in StgsParser().feed(data)] == [1000, 2000]


def test_resync_to_header_after_noise_on_the_same_line() -> None:
    parser = StgsParser()
    [reading] = parser.feed(b"\x00\xff\x13ST,GS,+011.120kg\r\n")
    assert reading == ok(11120, "ST,GS,+011.120kg")
    # a frame cut in half, then a complete one before the next CR LF: the complete one
    assert parser.feed(b"ST,GS,+011.1ST,GS,+022.220kg\r\n") == [ok(22220, "ST,GS,+022.220kg")]
    assert parser.feed(b"US,GS,+0US,GS,-000.020kg\r\n") == [
        ok(-20, "US,GS,-000.020kg", stable=False)
    ]
    # noise after a frame spoils the whole line
    assert parser.feed(b"ST,GS,+011.120kg\xff\r\n") == []
    assert parser.feed(b"ST,GS,+011.120kgST,GS,+1\r\n") == []


def test_buffer_is_bounded() -> None:
    parser = StgsParser(max_buffer=256)
    garbage = bytes(random.Random(7).randrange(0, 256) for _ in range(10_000)).replace(b"\n", b"")
    for i in range(0, len(garbage), 1000):
        assert parser.feed(garbage[i : i + 1000]) == []
        assert parser.buffered <= 256
    assert parser.feed(garbage) == []  # one big chunk too
    assert parser.buffered <= 256
    # the stream recovers at the next line
    assert parser.feed(b"\r\nST,GS,+001.500kg\r\n") == [ok(1500, "ST,GS,+001.500kg")]
    # and garbage right before a frame on the same line is resynced past
    assert [r.weight_g for r in parser.feed(garbage + b"ST,GS,+001.600kg\r\n")] == [1600]


def test_tiny_buffer_never_yields_a_wrong_weight() -> None:
    parser = StgsParser(max_buffer=8)  # shorter than a frame: frames are lost, not misread
    for i in range(len(STREAM)):
        assert parser.feed(STREAM[i : i + 1]) == []
        assert parser.buffered <= 8


def test_reset_forgets_partial_line() -> None:
    parser = StgsParser()
    assert parser.feed(b"ST,GS,+001") == []
    parser.reset()
    assert parser.feed(b"ST,GS,+002.000kg\r\n") == [ok(2000, "ST,GS,+002.000kg")]


def test_encode_frame_examples() -> None:
    assert encode_frame(11120) == b"ST,GS,+011.120kg\r\n"
    assert encode_frame(11120, unit="g") == b"ST,GS,+0011120g\r\n"
    assert encode_frame(-250, stable=False, net=True) == b"US,NT,-000.250kg\r\n"
    assert encode_frame(1134, unit="lb") == b"ST,GS,+002.500lb\r\n"
    assert encode_frame(1234567) == b"ST,GS,+1234.567kg\r\n"
    assert encode_frame(None, overload=True) == b"OL,GS,+       kg\r\n"
    assert encode_frame(None, overload=True, net=True) == b"OL,NT,+       kg\r\n"
    with pytest.raises(ValueError, match="required"):
        encode_frame(None)
    with pytest.raises(ValueError, match="unit"):
        encode_frame(1, unit="oz")


@pytest.mark.parametrize("unit", ["kg", "g", "lb"])
def test_round_trip(unit: str) -> None:
    weights = [*range(-3000, 3000, 7), *range(0, 10_000_000, 99_991), 999_999, -999_999]
    for w in weights:
        for stable in (True, False):
            for net in (True, False):
                reading = parse_frame(encode_frame(w, stable=stable, net=net, unit=unit))
                assert reading is not None, (w, unit)
                assert (reading.weight_g, reading.stable, reading.net) == (w, stable, net)
                assert (reading.status, reading.unit) == ("ok", unit)


def test_round_trip_overload() -> None:
    for weight in (None, 150_000):
        reading = parse_frame(encode_frame(weight, overload=True, unit="kg"))
        assert reading is not None
        assert (reading.status, reading.weight_g, reading.stable) == ("overload", None, False)
