"""How much work one batch may cost a consumer, and a pre-scan of CBOR that holds
to it before anything is allocated (sync contract v2, docs/mqtt.md "Limits").

The caps fit the largest batch a station can legitimately send, with a margin:
``batch_max_records`` is at most :data:`MAX_RECORDS` (``edge.config.MqttConfig``),
and every record within the record limits of :mod:`edge.sync.validate` encodes in
at most about 3.4 KiB of CBOR and 48 CBOR items (a producer whose name and village
are 200 characters of 4-byte UTF-8, a 64-character phone and 4 unknown fields at
their limits). So 5,000 records need at most about 17 MB and 240,000 items; with
the string table and the envelope, :data:`MAX_DECOMPRESSED` (20 MiB) and
:data:`MAX_ITEMS` (262,144) hold them. Real batches are far smaller: 100 lots are
about 3 KiB of CBOR and 2 KiB compressed.

cbor2 has no such limits of its own: it trusts the lengths in item headers (an
array header claiming 2**32 items allocates a list of that size before reading
one) and nests as deep as the input says. :func:`scan_cbor` walks the item
headers first, in Python but without building anything: one top-level item, no
indefinite lengths, no tags but bignums (2 and 3) of at most
:data:`MAX_BIGNUM_BYTES`, only false/true/null and floats among the simple values,
every length within what is left of the input, text items at most
:data:`MAX_TEXT_ITEM` bytes, byte strings at most :data:`MAX_BYTES_ITEM`, nesting
at most :data:`MAX_DEPTH`, and at most :data:`MAX_ITEMS` items in all. Only then
does cbor2 decode the bytes, knowing every container is as long as it says.
"""

from __future__ import annotations

import re

MAX_RECORDS = 5_000
"""Records in one batch at most: the largest ``[mqtt] batch_max_records``."""

SEQ_LIMIT = 1 << 53
"""Every seq is below this (JavaScript's exact integers; 285 000 years of one record a
millisecond), so no seq near 2**63 ever reaches a database column."""

MAX_COMPRESSED = 4 * 1024 * 1024
"""A payload (the zstd frame) is at most this: the broker's ``max_packet_size``. A
real batch of 5,000 records is a few hundred KiB compressed."""

MAX_DECOMPRESSED = 20 * 1024 * 1024
"""A frame declaring more content than this is refused before anything is
allocated; see the module's docstring for the derivation."""

MAX_ITEMS = 262_144
"""CBOR items (every value, container and map key) in one batch."""

MAX_DEPTH = 16
"""Nesting of CBOR containers: the envelope uses 5 levels, a record at most 8 more."""

MAX_TEXT_ITEM = 1024
"""Bytes of one CBOR text item: text fields are at most 200 characters (800 bytes)."""

MAX_BYTES_ITEM = 65_536
"""Bytes of one CBOR byte string: a lot segment's id column is 10 bytes a lot
(50,000 for 5,000 lots), a packed column at most 1 + 8 bytes a lot."""

MAX_BIGNUM_BYTES = 32
"""A bignum (CBOR tags 2 and 3) is at most this many bytes (decoders of this contract
refuse its value anyway; it is decoded only to say so)."""

MAX_STATUS_BYTES = 1024
"""A status message (``{"state": ..., "version": ..., "config_hash": ...}``) is at most
this; a real one is under 100 bytes."""


class ScanError(ValueError):
    """CBOR that breaks a limit (``oversize``) or is malformed (``undecodable``)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# One-byte items: small and negative ints, empty text/bytes/array/map, false/true/null.
_ONE_BYTE_RUN = re.compile(rb"[\x00-\x17\x20-\x37\x40\x60\x80\xa0\xf4-\xf6]+")
_ONE_BYTE = bytes(
    1 if b < 0x18 or 0x20 <= b < 0x38 or b in (0x40, 0x60, 0x80, 0xA0, 0xF4, 0xF5, 0xF6) else 0
    for b in range(256)
)
_SIMPLE_OK = frozenset({20, 21, 22})  # false, true, null


def scan_cbor(
    raw: bytes,
    *,
    max_items: int = MAX_ITEMS,
    max_depth: int = MAX_DEPTH,
    max_text: int = MAX_TEXT_ITEM,
    max_bytes: int = MAX_BYTES_ITEM,
) -> int:
    """The number of items in ``raw`` (exactly one CBOR item, whole); raises
    :class:`ScanError` for a limit broken or a malformed header. Linear in the
    number of items and never allocates more than a stack of ``max_depth``."""
    n = len(raw)
    pos = 0
    items = 0
    left = 1  # items still to read in the innermost open container
    stack: list[int] = []  # ``left`` of the enclosing containers
    one_byte = _ONE_BYTE_RUN.match
    is_one = _ONE_BYTE
    while True:
        if not left:
            if not stack:
                break
            left = stack.pop()
            continue
        if pos >= n:
            raise ScanError(f"CBOR ends inside an item at byte {pos}", "undecodable")
        if left > 1 and is_one[raw[pos]]:  # a run of one-byte items (booleans...) at once
            run = one_byte(raw, pos, min(n, pos + left))
            if run is not None:
                k = run.end() - pos
                items += k
                if items > max_items:
                    raise ScanError(f"more than {max_items} CBOR items", "oversize")
                pos += k
                left -= k
                continue
        head = raw[pos]
        major = head >> 5
        info = head & 31
        pos += 1
        if info < 24:
            value = info
        elif info < 28:
            size = 1 << (info - 24)
            if pos + size > n:
                raise ScanError(f"CBOR ends inside an item header at byte {pos}", "undecodable")
            value = int.from_bytes(raw[pos : pos + size], "big")
            pos += size
        elif info == 31:
            raise ScanError(f"indefinite-length CBOR item at byte {pos - 1}", "undecodable")
        else:
            raise ScanError(f"reserved CBOR header {head:#04x} at byte {pos - 1}", "undecodable")
        left -= 1
        if major == 6:  # a tag: counts as part of the item it tags
            if value not in (2, 3):
                raise ScanError(f"CBOR tag {value} at byte {pos} is not allowed", "undecodable")
            if pos >= n or raw[pos] >> 5 != 2:
                raise ScanError(f"bignum tag at byte {pos} must tag a byte string", "undecodable")
            nxt = raw[pos] & 31
            size = nxt if nxt < 24 else raw[pos + 1] if nxt == 24 and pos + 1 < n else -1
            if not 0 <= size <= MAX_BIGNUM_BYTES:
                raise ScanError(
                    f"bignum at byte {pos} is longer than {MAX_BIGNUM_BYTES} bytes", "oversize"
                )
            left += 1
            continue
        items += 1
        if items > max_items:
            raise ScanError(f"more than {max_items} CBOR items", "oversize")
        if major <= 1:
            continue
        if major == 2 or major == 3:
            limit = max_bytes if major == 2 else max_text
            if value > limit:
                kind = "byte string" if major == 2 else "text"
                raise ScanError(
                    f"CBOR {kind} of {value} bytes at byte {pos} (at most {limit})", "oversize"
                )
            pos += value
            if pos > n:
                raise ScanError("CBOR ends inside a string", "undecodable")
            continue
        if major == 4 or major == 5:
            count = value if major == 4 else 2 * value
            if count > n - pos:  # every item is at least one byte
                raise ScanError(
                    f"CBOR container at byte {pos} claims {count} items, more than the "
                    f"{n - pos} bytes left",
                    "oversize" if count > max_items else "undecodable",
                )
            if count:
                if len(stack) >= max_depth:
                    raise ScanError(f"CBOR nested deeper than {max_depth} levels", "oversize")
                stack.append(left)
                left = count
            continue
        # major 7: simple values and floats
        if info >= 25 or (info < 24 and value in _SIMPLE_OK):
            continue
        raise ScanError(
            f"CBOR simple value {value} at byte {pos - 1} is not allowed", "undecodable"
        )
    if pos != n:
        raise ScanError(f"{n - pos} bytes after the CBOR item", "undecodable")
    return items
