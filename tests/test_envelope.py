"""The batch envelope and ack (sync contract v2): exact round trips, compact lots, and a
clear EnvelopeError, never another exception, for anything malformed."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.ids import iso
from edge.sync.envelope import (
    Ack,
    Batch,
    EnvelopeError,
    batch_id_for,
    decode_ack,
    decode_batch,
    encode_ack,
    encode_batch,
)
from edge.sync.records import GENERIC, LOTS

SITE = "lai-chau-sin-ho-01"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def uuid7(rng: random.Random, ms: int) -> str:
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | rng.getrandbits(80)
    value &= ~(0xF << 76)
    value |= 7 << 76  # version 7
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def lots(n: int, seed: int = 1, producers: int = 5, first: int = 1) -> list[dict[str, Any]]:
    """Lots as the station records them: UUIDv7 ids, ms times, one boot."""
    rng = random.Random(seed)
    people = [uuid7(rng, 1_700_000_000_000 + i) for i in range(producers)]
    goods = [uuid7(rng, 1_700_000_500_000 + i) for i in range(4)]
    boot = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    t, up = 1_763_000_000_000, 5_000_000
    out = []
    for i in range(n):
        step = rng.randint(5_000, 120_000)
        t += step
        up += step + rng.choice((0, 0, 1, -1))
        rec: dict[str, Any] = {
            "type": "lot",
            "seq": first + i,
            "id": uuid7(rng, t + rng.choice((0, 1))),
            "producer_id": rng.choice(people),
            "product_id": rng.choice(goods),
            "net_g": rng.randint(100, 60_000),
            "recorded_at": iso(EPOCH + timedelta(milliseconds=t)),
            "boot_id": boot,
            "uptime_s": up / 1000,
            "clock_synced": rng.random() < 0.9,
        }
        if rng.random() < 0.3:
            rec["tare_g"] = rng.randint(0, 2000)
            rec["tare_source"] = rng.choice(("scale", "software"))
        out.append(rec)
    return out


def batch(records: list[dict[str, Any]], stream: str = "records") -> Batch:
    first, last = records[0]["seq"], records[-1]["seq"]
    return Batch(SITE, stream, batch_id_for(stream, first, last, 1), first, last, tuple(records))


def frame(body: object) -> bytes:
    """A well-formed zstd frame around any CBOR value (to test the checks behind it)."""
    return zstandard.ZstdCompressor(write_checksum=True).compress(cbor2.dumps(body))


def body_of(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = cbor2.loads(zstandard.ZstdDecompressor().decompress(data))
    return value


# -- round trips --------------------------------------------------------------------------


def test_lot_batch_round_trips_exactly_and_in_one_lot_segment() -> None:
    b = batch(lots(100))
    data = encode_batch(b)
    assert decode_batch(data) == b
    body = body_of(data)
    assert (body["v"], body["site"], body["stream"], body["first"], body["last"]) == (
        2,
        SITE,
        "records",
        1,
        100,
    )
    assert body["batch"] == "records:1-100:1" and body["schema"] == 2
    table, *segments = body["records"]
    assert [s[0] for s in segments] == [LOTS], "all lots packed as columns"
    assert {e for e in table if isinstance(e, str)} == {"scale", "software"}
    assert all(len(e) == 16 for e in table if isinstance(e, bytes)), "UUIDs as 16 bytes"
    assert len(table) == 2 + 1 + 5 + 4, "each boot, producer and product id once"


@pytest.mark.parametrize(("n", "producers", "limit"), [(100, 5, 22), (100, 30, 26), (1000, 30, 19)])
def test_lots_are_compact(n: int, producers: int, limit: int) -> None:
    """Envelope bytes per lot, for the <= 30 wire bytes a record target at batch 100
    (the MQTT and ack overhead on top is measured by the bench)."""
    size = len(encode_batch(batch(lots(n, producers=producers))))
    assert size / n <= limit, f"{size / n:.1f} bytes a lot"


def test_mixed_records_keep_their_order_and_fields() -> None:
    recs = lots(6, seed=3)
    producer = {
        "type": "producer",
        "id": "019ab3c0-0000-7000-8000-000000000001",
        "name": "Giàng Thị Mỷ",
        "phone": None,
        "village": "Bản Phìn Hồ",
        "recorded_at": "2026-11-23T10:38:12.123Z",
        "boot_id": "unknown",
        "uptime_s": 12.5,
        "clock_synced": False,
    }
    odd_lot = {**recs[2], "note": "bao rách"}  # an extra key: kept, as a generic record
    no_ms = {**recs[3], "recorded_at": "2026-11-23T10:38:12Z"}  # not the canonical form
    int_uptime = {**recs[4], "uptime_s": 42}  # an int stays an int
    records = [
        {**producer, "seq": 1},
        {**recs[0], "seq": 2},
        {**recs[1], "seq": 3},
        {**odd_lot, "seq": 4},
        {**no_ms, "seq": 5},
        {**int_uptime, "seq": 6},
        {**recs[5], "seq": 7},
        {"type": "telemetry", "seq": 8, "disk": {"free_mb": 812.5, "temps": [41.2, None]}},
    ]
    b = batch(records)
    back = decode_batch(encode_batch(b))
    assert back == b
    assert type(back.records[5]["uptime_s"]) is int
    assert list(back.records[0])[:2] == ["type", "seq"]
    kinds = [s[0] for s in body_of(encode_batch(b))["records"][1:]]
    assert kinds == [GENERIC, LOTS, GENERIC, LOTS, GENERIC]


def test_single_record_and_large_seq() -> None:
    b = batch(lots(1, first=9_000_000_001))
    assert decode_batch(encode_batch(b)) == b


texts = st.text(max_size=12)
plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | texts | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@st.composite
def record_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Lots, lots bent out of the columns' shape, and arbitrary records, interleaved."""
    base = lots(draw(st.integers(1, 12)), seed=draw(st.integers(0, 10_000)))
    out: list[dict[str, Any]] = []
    for rec in base:
        choice = draw(st.integers(0, 5))
        if choice == 1:
            rec = {**rec, draw(st.sampled_from(sorted(rec))): draw(plain)}
        elif choice == 2:
            rec = {"type": draw(texts.filter(bool)), **draw(st.dictionaries(texts, plain))}
        elif choice == 3:
            rec = {**rec, "uptime_s": draw(st.floats(-1e9, 1e9)), "net_g": draw(st.integers())}
        rec.pop("seq", None)
        if not isinstance(rec.get("type"), str) or not rec["type"]:
            rec["type"] = "x"
        out.append(rec)
    return [{**rec, "seq": 7 + i} for i, rec in enumerate(out)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_lists())
def test_any_plain_records_round_trip(records: list[dict[str, Any]]) -> None:
    b = batch(records)
    assert decode_batch(encode_batch(b)) == b


# -- encoding refuses inconsistent batches ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"first": 2}, "records for seq range"),
        ({"last": 5}, "records for seq range"),
        ({"first": 0, "last": 2}, "starts below 1"),
        ({"site": "Bad Site"}, "not a site id"),
        ({"stream": ""}, "not a stream name"),
        ({"batch_id": ""}, "batch id"),
        ({"schema": 3}, "record schema 3 is not supported"),
    ],
)
def test_encode_refuses_inconsistent_header(change: dict[str, Any], reason: str) -> None:
    b = batch(lots(3))
    fields = {**b.__dict__, **change}
    with pytest.raises(EnvelopeError, match=reason):
        encode_batch(Batch(**fields))


def test_encode_refuses_bad_records() -> None:
    recs = lots(3)
    with pytest.raises(EnvelopeError, match="record 1 has seq 3, expected 2"):
        encode_batch(batch([recs[0], {**recs[1], "seq": 3}, {**recs[2], "seq": 3}]))
    with pytest.raises(EnvelopeError, match="record 1 has no type"):
        encode_batch(batch([{"seq": 1, "id": "x"}]))
    with pytest.raises(EnvelopeError, match=r"record 1\.when: datetime is not a plain value"):
        encode_batch(batch([{"type": "x", "seq": 1, "when": datetime.now(UTC)}]))
    with pytest.raises(EnvelopeError, match=r"record 1.t\[0\]: nan is not a finite number"):
        encode_batch(batch([{"type": "x", "seq": 1, "t": [float("nan")]}]))


# -- decoding refuses anything malformed, with a clear reason ----------------------------


def test_truncated_at_every_length() -> None:
    data = encode_batch(batch(lots(20)))
    for cut in range(len(data)):
        with pytest.raises(EnvelopeError, match=r"zstd|payload"):
            decode_batch(data[:cut])


def test_trailing_bytes_and_flipped_bits() -> None:
    b = batch(lots(20))
    data = encode_batch(b)
    with pytest.raises(EnvelopeError, match="2 unexpected bytes after the zstd frame"):
        decode_batch(data + b"\x00\x01")
    caught = 0
    for i in range(len(data)):
        for bit in range(8):
            spoilt = bytearray(data)
            spoilt[i] ^= 1 << bit
            try:
                back = decode_batch(bytes(spoilt))
            except EnvelopeError:
                caught += 1
            else:  # a flip in bits zstd does not use: the checksum proved the content whole
                assert back == b
    assert caught > 8 * len(data) * 0.99


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_an_envelope_error(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode_batch(data)
    with pytest.raises(EnvelopeError):
        decode_batch(b"\x28\xb5\x2f\xfd" + data)


def test_decompression_bomb_refused_before_allocation() -> None:
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (40 * 1024 * 1024))
    with pytest.raises(EnvelopeError, match="claims 41943040 bytes"):
        decode_batch(bomb)
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(cbor2.dumps({}))
    with pytest.raises(EnvelopeError, match="does not declare its content size"):
        decode_batch(no_size)


def valid_body() -> dict[str, Any]:
    return body_of(encode_batch(batch(lots(4))))


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("v",), 1, "batch envelope version 1 is not supported"),
        (("v",), 3, "batch envelope version 3 is not supported"),
        (("v",), None, "version None is not supported"),
        (("first",), "1", "first and last must be integers"),
        (("last",), 9, "4 records for a seq range of 9"),
        (("last",), 2, "a lot segment of 4 is more than the seq range holds"),
        (("first",), 3, r"records 3-4\): a lot segment of 4 is more"),
        (("schema",), 7, "record schema 7 is not supported"),
        (("site",), 42, "is not a site id"),
        (("records",), {}, "records must be a list"),
        (("records", 0), [b"short"], "neither 16 bytes nor text"),
        (("records", 1, 0), 9, "unknown segment kind 9"),
        (("records", 1, 1), 0, "a lot segment must be"),
        (("records", 1, 1), 5, "a lot segment of 5 is more than the seq range holds"),
        (("records", 1, 1), 3, "lot id column must be 30 bytes for 3 lots"),
        (("records", 1, 4), b"\0" * 39, "lot id column must be 40 bytes"),
        (("records", 1, 6), b"\x11\x00", "lot column t is 1 bytes, 4 values of 17 bits need 9"),
        (("records", 1, 6), b"\x41", "width <= 64"),
        (("records", 1, 8), b"\x08\x00\x00\x00\x63", "string reference -50 outside"),
        (("records", 1, 8), b"\x08\x00\x00\x00\x20", "string reference 16 outside"),
        (("records", 1, 9), [True, False, 1, True], "synced must be 4 booleans"),
        (("records", 1, 13), [None, None, 5, None], "tare and tare_src disagree"),
        (("records", 1, 14), [None, None, None], "tare_src must be a list of 4"),
        (("records", 1, 2), 10**30, "time .* out of range"),
    ],
)
def test_malformed_body_names_what_is_wrong(
    path: tuple[Any, ...], value: object, reason: str
) -> None:
    body = valid_body()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(EnvelopeError, match=reason):
        decode_batch(frame(body))


def test_missing_keys_and_non_map() -> None:
    body = valid_body()
    del body["stream"], body["batch"]
    with pytest.raises(EnvelopeError, match="batch envelope lacks batch, stream"):
        decode_batch(frame(body))
    with pytest.raises(EnvelopeError, match="must be a CBOR map, got list"):
        decode_batch(frame([1, 2]))
    with pytest.raises(EnvelopeError, match="has no version 'v'"):
        decode_batch(frame({"site": SITE}))
    with pytest.raises(EnvelopeError, match="not valid CBOR"):
        decode_batch(zstandard.ZstdCompressor().compress(b"\xff\xff\x00"))


def test_generic_segment_checks() -> None:
    body = body_of(encode_batch(batch([{"type": "telemetry", "seq": 1, "up": 5}])))
    seg = body["records"][1]
    for bad, reason in [
        ([{"up": 5}], "record 1 has no type"),
        ([{"type": "telemetry", "seq": 1}], "carries its own seq"),
        ([[1, 2]], "record 1 is a list, not a map"),
        ([], "must be \\[0, \\[map, ...\\]\\] with records"),
        ([{"type": "t", 1: "x"}], "key 1 is not text"),
        ([{"type": "t", "x": float("inf")}], "inf is not a finite number"),
    ]:
        seg[1] = bad
        with pytest.raises(EnvelopeError, match=reason):
            decode_batch(frame(body))


@st.composite
def mutated_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BODIES)))
    for _ in range(draw(st.integers(1, 3))):
        target: Any = body
        while True:  # walk down to a random container
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if isinstance(target[key], dict | list) and draw(st.booleans()):
                target = target[key]
                continue
            action = draw(st.integers(0, 2))
            if action == 0:
                target[key] = draw(plain)
            elif action == 1 and isinstance(target[key], bytes):
                target[key] = draw(st.binary(max_size=len(target[key]) + 3))
            elif isinstance(target, list):
                del target[key]
            else:
                target[key] = draw(st.integers(-(2**70), 2**70))
            break
    return body


BODIES = [
    body_of(encode_batch(batch(lots(5, seed=9)))),
    body_of(encode_batch(batch([{"type": "telemetry", "seq": 1, "disk": {"free": 1.5}}]))),
    {**body_of(encode_batch(batch(lots(2, seed=3)))), "epoch": "0123456789abcdef"},
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_bodies())
def test_mutated_bodies_decode_or_fail_cleanly(body: dict[str, Any]) -> None:
    try:
        b = decode_batch(frame(body))
    except EnvelopeError:
        return
    assert decode_batch(encode_batch(b)) == b  # whatever decodes is a consistent batch


# -- acks -----------------------------------------------------------------------------------


def test_ack_round_trip_and_errors() -> None:
    for ack in (Ack("records", 0), Ack("telemetry", 12), Ack("bulk", 2**40)):
        assert decode_ack(encode_ack(ack)) == ack
    assert len(encode_ack(Ack("records", 100))) < 32
    for bad, reason in [
        (b"", "empty ack"),
        (b"\xff", "not valid CBOR"),
        (cbor2.dumps([1]), "must be a CBOR map"),
        (cbor2.dumps({"stream": "records", "upto": 1}), "no version"),
        (cbor2.dumps({"v": 1, "stream": "records", "upto": 1}), "version 1 is not supported"),
        (cbor2.dumps({"v": 2, "stream": "records", "upto": -1}), "upto must be an integer >= 0"),
        (cbor2.dumps({"v": 2, "stream": "records", "upto": True}), "upto must be an integer"),
        (cbor2.dumps({"v": 2, "stream": "Rec ords", "upto": 1}), "not a stream name"),
        (cbor2.dumps({"v": 2, "stream": "r", "upto": 1, "pad": "x" * 2000}), "too large"),
    ]:
        with pytest.raises(EnvelopeError, match=reason):
            decode_ack(bad)
    with pytest.raises(EnvelopeError, match="upto must be"):
        encode_ack(Ack("records", -5))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_ack_garbage(data: bytes) -> None:
    try:
        ack = decode_ack(data)
    except EnvelopeError:
        return
    assert decode_ack(encode_ack(ack)) == ack


# -- epochs (the station database a batch comes from) ----------------------------------------

STATION_EPOCH = "3f9a0c4e8b12d7a6"


def test_epoch_round_trips_in_batch_and_ack() -> None:
    records = lots(20, seed=4)
    with_epoch = Batch(
        SITE, "records", "records:1-20:1", 1, 20, tuple(records), epoch=STATION_EPOCH
    )
    data = encode_batch(with_epoch)
    assert body_of(data)["epoch"] == STATION_EPOCH
    assert decode_batch(data) == with_epoch
    ack = Ack("records", 20, STATION_EPOCH)
    assert cbor2.loads(encode_ack(ack)) == {
        "v": 2,
        "stream": "records",
        "upto": 20,
        "epoch": STATION_EPOCH,
    }
    assert decode_ack(encode_ack(ack)) == ack


def test_without_epoch_the_key_is_left_out_and_decodes_as_empty() -> None:
    plain = batch(lots(3, seed=5))
    assert plain.epoch == ""
    assert "epoch" not in body_of(encode_batch(plain))
    assert decode_batch(encode_batch(plain)).epoch == ""
    assert cbor2.loads(encode_ack(Ack("records", 3))) == {"v": 2, "stream": "records", "upto": 3}


def test_an_envelope_from_a_sender_before_epochs_still_decodes() -> None:
    """Written by hand as the station wrote it before the key existed: the exact
    map of the contract without ``epoch``."""
    records = lots(4, seed=6)
    old = {
        "v": 2,
        "site": SITE,
        "stream": "records",
        "batch": "records:1-4:1",
        "first": 1,
        "last": 4,
        "schema": 2,
        "records": body_of(encode_batch(batch(records)))["records"],
    }
    decoded = decode_batch(frame(old))
    assert (decoded.epoch, decoded.first, decoded.last) == ("", 1, 4)
    assert list(decoded.records) == records
    assert decode_ack(cbor2.dumps({"v": 2, "stream": "records", "upto": 9})) == Ack(
        "records", 9, ""
    )


@pytest.mark.parametrize("bad", ["3F9A0C4E8B12D7A6", "3f9a", "3f9a0c4e8b12d7a6ff", "g" * 16, 7])
def test_a_malformed_epoch_is_refused_both_ways(bad: object) -> None:
    body = valid_body()
    body["epoch"] = bad
    with pytest.raises(EnvelopeError, match=r"epoch .* is not 16 lower-case hex digits"):
        decode_batch(frame(body))
    with pytest.raises(EnvelopeError, match="ack epoch"):
        decode_ack(cbor2.dumps({"v": 2, "stream": "records", "upto": 1, "epoch": bad}))
    if isinstance(bad, str):
        b = Batch(SITE, "records", "records:1-1:1", 1, 1, tuple(lots(1)), epoch=bad)
        with pytest.raises(EnvelopeError, match="epoch"):
            encode_batch(b)
        with pytest.raises(EnvelopeError, match="epoch"):
            encode_ack(Ack("records", 1, bad))
