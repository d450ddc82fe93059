"""The batch decoder and the record validator under hostile input: whatever the bytes,
only :class:`EnvelopeError` comes out (never another exception), and nothing is
allocated beyond the caps of edge.sync.limits: CBOR headers claiming huge lengths,
counts or depths are refused from the headers, at once, before cbor2 builds
anything. And the caps fit the largest batch a station can legitimately send."""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import MqttConfig
from edge.sync import limits
from edge.sync.envelope import Batch, EnvelopeError, _decompress, decode_batch, encode_batch
from edge.sync.limits import ScanError, scan_cbor
from edge.sync.validate import MAX_CODE, MAX_EXTRA_FIELDS, MAX_NAME, MAX_PERSON, validate_batch
from rigs import poison

SITE = "sin-ho-01"
EPOCH = "0a1b2c3d4e5f6071"


def decode_and_validate(data: bytes) -> Batch:
    batch = decode_batch(data)
    validate_batch(batch)
    return batch


def refused_cheaply(data: bytes, reason: str | None = None) -> EnvelopeError:
    """Decoding ``data`` raises EnvelopeError within a second (a generous bound for a
    loaded machine: these take micro- to milliseconds), and allocates at most what
    the decompressed payload takes, plus a small amount per CBOR item it holds (when
    within the caps), plus 1 MiB."""
    t0 = time.thread_time()  # CPU time: waiting for a busy core does not count
    with pytest.raises(EnvelopeError) as caught:
        decode_and_validate(data)
    assert time.thread_time() - t0 < 1.0
    tracing = tracemalloc.is_tracing()  # (python -X tracemalloc: already on)
    if not tracing:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    try:
        with pytest.raises(EnvelopeError):
            decode_and_validate(data)
    finally:
        peak = tracemalloc.get_traced_memory()[1] - before
        if not tracing:
            tracemalloc.stop()
    try:
        raw = _decompress(data)
    except EnvelopeError:
        raw = b""
    try:
        items = scan_cbor(raw) if raw else 0
    except ScanError:
        items = 0  # refused by the scan: nothing per item was built
    bound = 2 * len(raw) + 512 * items + (1 << 20)
    assert peak <= bound, f"{peak} bytes allocated for {len(raw)} bytes, {items} items"
    if reason is not None:
        assert caught.value.reason == reason, str(caught.value)
    return caught.value


def head(major: int, value: int) -> bytes:
    """A CBOR item header with the longest encoding of ``value`` it needs."""
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError(value)


def in_envelope(item: bytes) -> bytes:
    """``item`` as the ``records`` value of an otherwise valid envelope."""
    prefix = cbor2.dumps(
        {"v": 2, "site": SITE, "stream": "records", "batch": "records:1-1:1", "first": 1,
         "last": 1, "schema": 2}
    )  # fmt: skip
    map8 = bytes([prefix[0] + 1]) + prefix[1:]  # the same map with one more pair
    return poison.frame(map8 + cbor2.dumps("records") + item)


HUGE = [1 << 16, 1 << 24, 1 << 31, (1 << 32) - 1, 1 << 40, (1 << 63) - 1, (1 << 64) - 1]


@pytest.mark.parametrize("count", HUGE)
@pytest.mark.parametrize(("major", "name"), [(2, "bytes"), (3, "text"), (4, "array"), (5, "map")])
def test_headers_claiming_huge_lengths_are_refused_from_the_header(
    major: int, name: str, count: int
) -> None:
    for nested in (0, 1, 10):
        item = b"\x81" * nested + head(major, count) + b"\x00" * 64
        error = refused_cheaply(in_envelope(item))
        assert error.reason in ("oversize", "undecodable"), str(error)


def test_deep_nesting_and_too_many_items_are_refused() -> None:
    refused_cheaply(in_envelope(b"\x81" * 100_000 + b"\x00"), "oversize")
    refused_cheaply(in_envelope(b"\x81" * (limits.MAX_DEPTH + 1) + b"\x00"), "oversize")
    many = limits.MAX_ITEMS + 1
    refused_cheaply(in_envelope(head(4, many) + b"\xa0" * many), "oversize")
    refused_cheaply(in_envelope(head(4, 200_000) + b"\x81\x00" * 200_000), "oversize")


def test_tags_indefinite_lengths_and_odd_simple_values_are_refused() -> None:
    for item in (
        b"\xd8\x1c\x80",  # shareable (cbor2 would build shared references)
        b"\xd9\x01\x00\x80",  # string references
        b"\xc1\x00",  # an epoch time: a datetime object
        b"\x9f\x00\xff",  # indefinite-length array
        b"\x7f\x61a\xff",  # indefinite-length text
        b"\xf7",  # undefined
        b"\xf8\x20",  # simple value 32
        b"\xc2\x58\x40" + b"\x01" * 64,  # a 512-bit bignum
    ):
        error = refused_cheaply(in_envelope(item))
        assert error.reason in ("oversize", "undecodable"), (item, str(error))


def test_the_observed_attacks_are_refused_before_anything_is_allocated() -> None:
    assert refused_cheaply(poison.zstd_bomb(), "oversize").header is None
    refused_cheaply(poison.million_rows(SITE, EPOCH), "oversize")
    for seq in (2**53, 2**62, 2**63 - 1):
        refused_cheaply(poison.huge_seq(SITE, seq, EPOCH), "seq_range")
    big = poison.frame(b"\x00" * 10 + b"\x01")
    assert len(big) < limits.MAX_COMPRESSED
    error = refused_cheaply(poison.batch_of(SITE, 6, 10, EPOCH, s8={"net_g": -5}))
    assert (error.reason, error.seq, error.header is not None) == ("invalid_record", 8, True)
    error = refused_cheaply(poison.batch_of(SITE, 1, 2, EPOCH, s2={"type": "drop_table"}))
    assert (error.reason, error.seq) == ("invalid_record", 2)
    with pytest.raises(EnvelopeError, match="more than 4194304") as caught:
        decode_batch(b"\x28\xb5\x2f\xfd" + bytes(limits.MAX_COMPRESSED))
    assert caught.value.reason == "oversize"


def test_too_many_records_is_refused_with_the_header() -> None:
    n = limits.MAX_RECORDS + 1
    error = refused_cheaply(
        poison.envelope(SITE, 1, n, [[], [0, [{"type": "x"}] * n]], epoch=EPOCH),
        "too_many_records",
    )
    assert error.header is not None and (error.header.first, error.header.last) == (1, n)


# -- fuzzing ---------------------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20)
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(-3, 2**64), st.integers(-3, 2**64), st.sampled_from(["", EPOCH, "X"]))
def test_any_envelope_body_gives_a_batch_or_an_envelope_error(
    records: Any, first: int, last: int, epoch: str
) -> None:
    body = {"v": 2, "site": SITE, "stream": "records", "batch": "b", "first": first,
            "last": last, "schema": 2, "epoch": epoch, "records": records}  # fmt: skip
    try:
        raw = cbor2.dumps(body)
    except (ValueError, TypeError, OverflowError):
        return
    with contextlib.suppress(EnvelopeError):
        decode_and_validate(poison.frame(raw, level=1))


def _valid_records() -> list[dict[str, Any]]:
    return [poison.lot(s) for s in range(1, 9)] + [
        {"type": "producer", "seq": 9, "id": poison.PEOPLE, "name": "Giàng Thị Mỷ",
         "recorded_at": "2026-11-23T03:00:00.000Z", "boot_id": "unknown",
         "uptime_s": None, "clock_synced": False},
        {"type": "telemetry", "seq": 10, "recorded_at": "2026-11-23T03:00:00.000Z",
         "outbox": {"records": {"depth": 3, "oldest_age_s": 12}}, "devices": {}},
    ]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 9), st.text(min_size=1, max_size=12), values)
def test_a_record_bent_anywhere_is_valid_or_an_envelope_error(
    index: int, key: str, value: Any
) -> None:
    records = _valid_records()
    records[index] = {**records[index], key: value}
    if key == "seq":
        return  # the encoder refuses a record whose seq is not its place
    batch = Batch(SITE, "records", "records:1-10:1", 1, 10, tuple(records), epoch=EPOCH)
    try:
        data = encode_batch(batch)
    except EnvelopeError:
        return
    try:
        decode_and_validate(data)
    except EnvelopeError as exc:
        assert exc.reason in ("invalid_record", "undecodable", "oversize"), str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_bytes_flipped_in_a_valid_batch_give_an_envelope_error_or_a_batch(
    data: st.DataObject,
) -> None:
    raw = bytearray(cbor2.dumps(_body_of(_valid_records())))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(EnvelopeError):
        decode_and_validate(poison.frame(bytes(raw), level=1))


def _body_of(records: list[dict[str, Any]]) -> Any:
    batch = Batch(SITE, "records", "records:1-10:1", 1, 10, tuple(records), epoch=EPOCH)
    return cbor2.loads(_decompress(encode_batch(batch)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_the_scan_raises_only_scan_errors(raw: bytes) -> None:
    try:
        scan_cbor(raw)
    except ScanError:
        return
    with contextlib.suppress(cbor2.CBORDecodeError):  # e.g. text that is not UTF-8
        cbor2.loads(raw)  # one whole item, every length within the input


# -- the caps fit the largest legitimate batch -------------------------------------------------

WIDE = "\U0001d538"  # 4 bytes of UTF-8: the worst case for every text limit


def largest_producer(seq: int) -> dict[str, Any]:
    return {
        "type": "producer", "seq": seq, "id": poison.PEOPLE, "name": WIDE * MAX_NAME,
        "phone": WIDE * MAX_CODE, "village": WIDE * MAX_NAME,
        "recorded_at": "2026-11-23T03:00:00.123456+07:00", "boot_id": WIDE * MAX_CODE,
        "uptime_s": 1e9 + 0.5, "clock_synced": True,
        **{f"x{i}" + "x" * (MAX_CODE - 2): WIDE * MAX_CODE for i in range(MAX_EXTRA_FIELDS)},
    }  # fmt: skip


def largest_grade(seq: int) -> dict[str, Any]:
    return {
        "type": "grade", "seq": seq, "id": poison.PEOPLE, "lot_id": poison.GOODS,
        "grade": WIDE * MAX_CODE, "proposed_grade": WIDE * MAX_CODE, "confidence": 0.123456789,
        "method": "model", "photo_id": poison.PEOPLE, "overridden": True,
        "confirmed_by": WIDE * MAX_NAME, "confirmed_at": "2026-11-23T03:00:00.123456+07:00",
        "recorded_at": "2026-11-23T03:00:00.123456+07:00", "boot_id": WIDE * MAX_CODE,
        "uptime_s": 1e9 + 0.5, "clock_synced": True,
        **{f"x{i}" + "x" * (MAX_CODE - 2): WIDE * MAX_CODE for i in range(MAX_EXTRA_FIELDS)},
    }  # fmt: skip


def largest_producer_update(seq: int) -> dict[str, Any]:
    """A farmer's edit (issue 12): a producer at its largest, plus who edited it."""
    record = largest_producer(seq)
    record.update(type="producer_update", id=poison.GOODS, producer_id=poison.PEOPLE)
    return {**record, "by": WIDE * MAX_PERSON, "by_id": "x" * 40}


def largest_lot_correction(seq: int) -> dict[str, Any]:
    return {
        "type": "lot_correction", "seq": seq, "id": poison.PEOPLE, "lot_id": poison.GOODS,
        "producer_id": poison.PEOPLE, "product_id": poison.GOODS,
        "was_producer_id": poison.GOODS, "was_product_id": poison.PEOPLE,
        "reason": WIDE * MAX_NAME, "by": WIDE * MAX_PERSON, "by_id": "x" * 40,
        "recorded_at": "2026-11-23T03:00:00.123456+07:00", "boot_id": WIDE * MAX_CODE,
        "uptime_s": 1e9 + 0.5, "clock_synced": True,
        **{f"x{i}" + "x" * (MAX_CODE - 2): WIDE * MAX_CODE for i in range(MAX_EXTRA_FIELDS)},
    }  # fmt: skip


@pytest.mark.parametrize(
    "make", [largest_producer, largest_grade, largest_producer_update, largest_lot_correction]
)
def test_the_largest_valid_batch_fits_the_caps(make: Callable[[int], dict[str, Any]]) -> None:
    assert MqttConfig.model_fields["batch_max_records"].metadata[-1].le == limits.MAX_RECORDS
    n = limits.MAX_RECORDS
    records = tuple(make(s) for s in range(1, n + 1))
    batch = Batch(SITE, "records", f"records:1-{n}:1", 1, n, records, epoch=EPOCH)
    data = encode_batch(batch)
    raw = _decompress(data)
    assert len(raw) <= limits.MAX_DECOMPRESSED
    assert scan_cbor(raw) <= limits.MAX_ITEMS
    assert decode_and_validate(data) == batch
