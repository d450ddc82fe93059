"""The batch envelope and the acknowledgement (sync contract v2, docs/mqtt.md).

A batch is a zstd frame (content size and checksum in its header) of one CBOR map::

    {"v": 2, "site": str, "stream": str, "batch": str, "first": int, "last": int,
     "schema": 2, "epoch": str, "records": [...]}

``records`` holds the records ``first`` .. ``last`` (contiguous, inclusive) in the
compact encoding of :mod:`edge.sync.records`; decoding gives back exactly the dicts
that were encoded, each with its ``seq``. ``epoch`` (16 lower-case hex digits, made
once per station database) tells central which database numbered the seqs; senders
from before it omit the key. An acknowledgement is a plain CBOR map
``{"v": 2, "stream": str, "upto": int, "epoch": str}``: the highest contiguous ``seq``
central has stored for that site and stream, and the epoch those seqs belong to
(omitted when central knows none); an ack may also carry ``refused``: central will
never store the batch ``first``..``last`` (``{"first", "last", "seq", "reason",
"detail"}``, docs/mqtt.md "Refusals").

Pure: bytes in, values out. Every malformed input (truncated, garbage, another
version, inconsistent lengths, beyond the limits of :mod:`edge.sync.limits`) raises
:class:`EnvelopeError` naming what is wrong, never another exception, and the work
it costs is bounded by those limits before anything is allocated: the payload's
size, the frame's declared content size, and a scan of the CBOR item headers
(:func:`edge.sync.limits.scan_cbor`) before cbor2 builds any value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cbor2
import zstandard

from edge.sync import limits
from edge.sync.limits import ScanError, scan_cbor
from edge.sync.records import RecordCodecError, decode_records, encode_records

ENVELOPE_VERSION = 2
"""``v``: the layout of the envelope and of its ``records``."""

SCHEMA_VERSION = 2
"""``schema``: the fields of the records (docs/mqtt.md)."""

SUPPORTED_SCHEMAS = frozenset({2})

MAX_DECOMPRESSED = limits.MAX_DECOMPRESSED
"""A frame claiming more than this is refused before anything is allocated."""

ZSTD_LEVEL = 19
"""Batches are small (kilobytes): the strongest ordinary level costs well under a
millisecond for 100 records and saves bytes on a metered link."""

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_STREAM = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EPOCH = re.compile(r"^[0-9a-f]{16}$")
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_DETAIL = 160
"""Characters of a refusal's ``detail`` in an ack (an ack is at most 1024 bytes)."""
_KEYS = frozenset({"v", "site", "stream", "batch", "first", "last", "schema", "records"})
"""Required keys; ``epoch`` is optional (absent from senders older than it)."""


@dataclass(frozen=True)
class Header:
    """What a batch says about itself, once that much decoded and made sense: enough
    to answer the station about it (a refusal) even when its records do not decode."""

    site: str
    stream: str
    batch_id: str
    first: int
    last: int
    epoch: str = ""


class EnvelopeError(ValueError):
    """A batch or an ack that cannot be encoded or decoded; the message says why.

    ``reason`` is a short code for counting (``undecodable``, ``oversize``,
    ``too_many_records``, ``seq_range``, ``invalid_record``); ``header`` is the
    batch's header when it decoded and is sane (so a consumer can answer the station
    with a refusal), ``seq`` the first record at fault when one is."""

    def __init__(
        self,
        message: str,
        reason: str = "undecodable",
        header: Header | None = None,
        seq: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.header = header
        self.seq = seq


@dataclass(frozen=True)
class Batch:
    site: str
    stream: str
    batch_id: str
    first: int
    last: int
    records: tuple[dict[str, Any], ...]
    schema: int = SCHEMA_VERSION
    epoch: str = ""  # the station database's epoch; "" from a sender older than it

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Refusal:
    """Central will never store the batch ``first``..``last``: ``reason`` (a code:
    ``invalid_record``, ``undecodable``, ``too_many_records``, ``epoch_missing``,
    ``store_refused``...), ``seq`` the first record at fault (``first`` when the batch
    as a whole is), ``detail`` a short text for the logs."""

    first: int
    last: int
    seq: int
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Ack:
    stream: str
    upto: int
    epoch: str = ""  # the epoch of the stored seqs; "" when central knows none
    refused: Refusal | None = None  # a batch central refused (docs/mqtt.md "Refusals")


def batch_id_for(stream: str, first: int, last: int, attempt: int) -> str:
    """``records:1-100:1``: the stream, the seq range and the attempt number."""
    return f"{stream}:{first}-{last}:{attempt}"


# -- checks shared by both directions -------------------------------------------------


def _check_epoch(epoch: object, where: str) -> str:
    """``epoch`` when it is "" (unknown) or 16 lower-case hex digits."""
    if not isinstance(epoch, str) or (epoch and not _EPOCH.match(epoch)):
        raise EnvelopeError(f"{where} epoch {epoch!r} is not 16 lower-case hex digits")
    return epoch


def _is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass, and never a seq


def _check_header(
    site: object, stream: object, batch_id: object, first: object, last: object, schema: object
) -> None:
    if not isinstance(site, str) or not _SITE.match(site):
        raise EnvelopeError(f"site {site!r} is not a site id (lower-case letters, digits, '-')")
    if not isinstance(stream, str) or not _STREAM.match(stream):
        raise EnvelopeError(f"stream {stream!r} is not a stream name (e.g. 'records')")
    if not isinstance(batch_id, str) or not 0 < len(batch_id) <= 128:
        raise EnvelopeError(f"batch id {batch_id!r} must be text of 1 to 128 characters")
    if not _is_int(first) or not _is_int(last):
        raise EnvelopeError(f"first and last must be integers, got {first!r} and {last!r}")
    assert isinstance(first, int) and isinstance(last, int)
    if first < 1 or last < first:
        raise EnvelopeError(f"seq range {first}-{last} is empty or starts below 1", "seq_range")
    if last >= limits.SEQ_LIMIT:
        raise EnvelopeError(
            f"seq range {first}-{last} reaches beyond 2**53 (no station numbers so far)",
            "seq_range",
        )
    if not _is_int(schema):
        raise EnvelopeError(f"record schema {schema!r} is not an integer")
    if schema not in SUPPORTED_SCHEMAS:
        raise EnvelopeError(
            f"record schema {schema} is not supported (this software knows "
            f"{sorted(SUPPORTED_SCHEMAS)}); upgrade the consumer"
        )


# -- batches ----------------------------------------------------------------------------


def encode_batch(b: Batch) -> bytes:
    """The envelope for ``b``; raises EnvelopeError when ``b`` is inconsistent
    (a record's seq is not first+i, a record is not encodable)."""
    _check_header(b.site, b.stream, b.batch_id, b.first, b.last, b.schema)
    _check_epoch(b.epoch, f"batch {b.batch_id}")
    if len(b.records) != b.count:
        raise EnvelopeError(
            f"batch {b.batch_id}: {len(b.records)} records for seq range "
            f"{b.first}-{b.last} ({b.count} expected)"
        )
    if b.count > limits.MAX_RECORDS:
        raise EnvelopeError(
            f"batch {b.batch_id}: {b.count} records, more than {limits.MAX_RECORDS} a batch",
            "too_many_records",
        )
    try:
        records = encode_records(b.first, b.records)
    except RecordCodecError as exc:
        raise EnvelopeError(f"batch {b.batch_id}: {exc}") from None
    body = {
        "v": ENVELOPE_VERSION,
        "site": b.site,
        "stream": b.stream,
        "batch": b.batch_id,
        "first": b.first,
        "last": b.last,
        "schema": b.schema,
        **({"epoch": b.epoch} if b.epoch else {}),
        "records": records,
    }
    try:
        raw = cbor2.dumps(body)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"batch {b.batch_id}: a record value is not encodable: {exc}") from None
    compressor = zstandard.ZstdCompressor(
        level=ZSTD_LEVEL, write_checksum=True, write_content_size=True
    )
    return compressor.compress(raw)


def _decompress(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EnvelopeError(f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise EnvelopeError("empty payload: expected a zstd frame")
    if len(data) > limits.MAX_COMPRESSED:
        raise EnvelopeError(
            f"payload of {len(data)} bytes, more than {limits.MAX_COMPRESSED}", "oversize"
        )
    if data[:4] != _ZSTD_MAGIC:
        raise EnvelopeError(f"not a zstd frame (starts with {data[:4].hex()}, not 28b52ffd)")
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise EnvelopeError(f"truncated or corrupt zstd frame header: {exc}") from None
    size = params.content_size
    if size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise EnvelopeError("zstd frame does not declare its content size")
    if size > MAX_DECOMPRESSED:
        raise EnvelopeError(
            f"zstd frame claims {size} bytes, more than {MAX_DECOMPRESSED}", "oversize"
        )
    # The window never needs to exceed the content; bounding it bounds the decoder's
    # own buffers whatever the frame header says.
    inflater = zstandard.ZstdDecompressor(max_window_size=_WINDOW_MAX).decompressobj()
    try:
        raw = inflater.decompress(data)
    except zstandard.ZstdError as exc:
        raise EnvelopeError(f"corrupt zstd frame: {exc}") from None
    if not inflater.eof:
        raise EnvelopeError(f"truncated zstd frame ({len(data)} bytes received)")
    if inflater.unused_data:
        raise EnvelopeError(f"{len(inflater.unused_data)} unexpected bytes after the zstd frame")
    if len(raw) != size:
        raise EnvelopeError(f"zstd frame gave {len(raw)} bytes, its header says {size}")
    return bytes(raw)


_WINDOW_MAX = 1 << (MAX_DECOMPRESSED - 1).bit_length()


def _load_map(raw: bytes, what: str, max_text: int = limits.MAX_TEXT_ITEM) -> dict[Any, Any]:
    try:
        scan_cbor(raw, max_text=max_text)
    except ScanError as exc:
        problem = "is beyond the limits" if exc.reason == "oversize" else "is not valid CBOR"
        raise EnvelopeError(f"{what} {problem}: {exc}", exc.reason) from None
    try:
        value = cbor2.loads(raw, max_depth=limits.MAX_DEPTH + 1)
    except Exception as exc:  # cbor2 raises several types on garbage; all mean "not CBOR"
        raise EnvelopeError(f"{what} is not valid CBOR: {exc}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a CBOR map, got {type(value).__name__}")
    return value


def _version(body: dict[Any, Any], what: str) -> None:
    if "v" not in body:
        raise EnvelopeError(f"{what} has no version 'v'")
    v = body["v"]
    if v != ENVELOPE_VERSION or not _is_int(v):
        raise EnvelopeError(
            f"{what} version {v!r} is not supported (this software speaks {ENVELOPE_VERSION})"
        )


def decode_batch(data: bytes, max_text: int = limits.MAX_TEXT_ITEM) -> Batch:
    """The batch in an envelope; EnvelopeError names anything wrong with it (with the
    batch's :class:`Header` once that much decoded and is sane). ``max_text``: bytes
    of one text item at most (the downlink's order notes are longer than any uplink
    text: edge.sync.downlink)."""
    body = _load_map(_decompress(data), "batch envelope", max_text)
    _version(body, "batch envelope")
    missing = sorted(_KEYS - body.keys())
    if missing:
        raise EnvelopeError(f"batch envelope lacks {', '.join(missing)}")
    site, stream, batch_id = body["site"], body["stream"], body["batch"]
    first, last, schema = body["first"], body["last"], body["schema"]
    _check_header(site, stream, batch_id, first, last, schema)
    epoch = _check_epoch(body.get("epoch", ""), f"batch {batch_id}")
    header = Header(site, stream, batch_id, first, last, epoch)
    count = last - first + 1
    if count > limits.MAX_RECORDS:
        raise EnvelopeError(
            f"batch {batch_id} ({site}/{stream} {first}-{last}): {count} records, more "
            f"than {limits.MAX_RECORDS} a batch",
            "too_many_records",
            header,
        )
    try:
        records = decode_records(first, count, body["records"])
    except RecordCodecError as exc:
        raise EnvelopeError(
            f"batch {batch_id} ({site}/{stream} {first}-{last}): {exc}", header=header
        ) from None
    return Batch(site, stream, batch_id, first, last, tuple(records), schema, epoch)


# -- acknowledgements -------------------------------------------------------------------


def encode_ack(a: Ack) -> bytes:
    if not isinstance(a.stream, str) or not _STREAM.match(a.stream):
        raise EnvelopeError(f"stream {a.stream!r} is not a stream name")
    if not _is_int(a.upto) or a.upto < 0:
        raise EnvelopeError(f"ack upto must be an integer >= 0, got {a.upto!r}")
    _check_epoch(a.epoch, "ack")
    body: dict[str, Any] = {"v": ENVELOPE_VERSION, "stream": a.stream, "upto": a.upto}
    if a.epoch:
        body["epoch"] = a.epoch
    if a.refused is not None:
        r = a.refused
        _check_refusal(r.first, r.last, r.seq, r.reason, r.detail)
        body["refused"] = {
            "first": r.first,
            "last": r.last,
            "seq": r.seq,
            "reason": r.reason,
            "detail": r.detail[:MAX_DETAIL],
        }
    return cbor2.dumps(body)


def _check_refusal(
    first: object, last: object, seq: object, reason: object, detail: object
) -> Refusal:
    if not (_is_int(first) and _is_int(last) and _is_int(seq)):
        raise EnvelopeError(f"ack refusal bounds must be integers: {first!r}, {last!r}, {seq!r}")
    assert isinstance(first, int) and isinstance(last, int) and isinstance(seq, int)
    if not 1 <= first <= seq <= last < limits.SEQ_LIMIT:
        raise EnvelopeError(f"ack refusal seq {seq} is not within {first}-{last}")
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise EnvelopeError(f"ack refusal reason {reason!r} is not a reason code")
    if not isinstance(detail, str):
        raise EnvelopeError(f"ack refusal detail {detail!r} is not text")
    return Refusal(first, last, seq, reason, detail[:MAX_DETAIL])


def decode_ack(data: bytes) -> Ack:
    if not isinstance(data, bytes | bytearray | memoryview) or not data:
        raise EnvelopeError("empty ack: expected a CBOR map")
    if len(data) > 1024:
        raise EnvelopeError(f"ack of {len(data)} bytes is too large (an ack is a few bytes)")
    body = _load_map(bytes(data), "ack")
    _version(body, "ack")
    stream, upto = body.get("stream"), body.get("upto")
    if not isinstance(stream, str) or not _STREAM.match(stream):
        raise EnvelopeError(f"ack stream {stream!r} is not a stream name")
    if type(upto) is not int or upto < 0:
        raise EnvelopeError(f"ack upto must be an integer >= 0, got {upto!r}")
    refused = None
    if "refused" in body:
        r = body["refused"]
        if not isinstance(r, dict):
            raise EnvelopeError(f"ack refusal must be a map, got {type(r).__name__}")
        first, last, seq = r.get("first"), r.get("last"), r.get("seq")
        reason, detail = r.get("reason"), r.get("detail", "")
        refused = _check_refusal(first, last, seq, reason, detail)
    return Ack(stream, upto, _check_epoch(body.get("epoch", ""), "ack"), refused)
