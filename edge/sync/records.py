"""The ``records`` of a batch envelope: compact, lossless, chosen for size.

Layout (a CBOR array)::

    [strings, segment, segment, ...]

``strings`` is the batch's string table: each entry is 16 bytes (a UUID, whose text
is its canonical lower-case form) or text. Records refer to entries by index, so a
producer, product or boot id repeated in a batch costs one small integer.

A segment is a run of consecutive records (seq ``first``, ``first+1``, ...):

- ``[0, [map, ...]]``: generic records; each map is the record without ``seq``.
- ``[1, n, t0, off0, tails, id_dt, t, off, boot, synced, producer, product, net, tare,
  tare_src]``: ``n`` lots, one column per field. ``t0`` is the first lot's
  ``recorded_at`` in ms since 1970 and ``t`` each lot's difference from the one before
  (0 for the first); ``off0`` and ``off`` likewise for ``recorded_at`` minus
  ``uptime_s`` in ms (the wall time of boot: constant within a boot while the clock is
  steady). ``tails`` is the last 10 bytes of each lot id (a UUIDv7, whose first 6 bytes
  are a millisecond time, written as ``id_dt`` = that time minus ``recorded_at``).
  ``boot``, ``producer``, ``product`` and ``tare_src`` are string-table indexes;
  ``tare`` and ``tare_src`` are lists with null where a lot had no tare, ``synced`` a
  list of booleans. The other columns are bit-packed (:func:`_pack`): a byte ``b``,
  then each value zigzag-encoded in ``b`` bits, big-endian, padded with zero bits to
  a whole byte. Packing matters: zstd codes all literal bytes of a block with one
  Huffman table, which the random id bytes make nearly flat, so a small number left
  in a byte of its own would cost the whole byte.

Columns of small, repeating values are what zstd compresses best: a lot costs about
its 10 random id bytes plus a few bytes of time and weight. A lot that does not fit
the columns exactly (an unexpected key, a time without milliseconds...) goes into a
generic segment, so decoding always gives back the dict that was encoded.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from edge.ids import iso

GENERIC = 0
LOTS = 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_LOT_KEYS = frozenset(
    {
        "type", "seq", "id", "producer_id", "product_id", "net_g", "recorded_at", "boot_id",
        "uptime_s", "clock_synced",
    }
)  # fmt: skip
_TARE_KEYS = frozenset({"tare_g", "tare_source"})
_MAX_DEPTH = 8


class RecordCodecError(ValueError):
    """Records that cannot be encoded, or a ``records`` value that does not decode."""


# -- value conversions ------------------------------------------------------------------


def _uuid_bytes(text: str) -> bytes | None:
    """16 bytes when ``text`` is a UUID in canonical form, else None."""
    if len(text) != 36:
        return None
    try:
        u = uuid.UUID(text)
    except ValueError:
        return None
    return u.bytes if str(u) == text else None


def _uuid_text(raw: bytes) -> str:
    """The canonical text of 16 bytes (what ``str(uuid.UUID(bytes=raw))`` gives, 5x
    faster: this runs for every lot and string table entry decoded)."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


_DAY_MS = 86_400_000
_DAYS: dict[int, str] = {}  # day number since 1970 -> "YYYY-MM-DDT"


def _ms_text(ms: int) -> str:
    """``edge.ids.iso`` of ``ms`` after 1970 (the day's date text is cached: a batch
    spans a few days at most)."""
    day, rest = divmod(ms, _DAY_MS)
    date = _DAYS.get(day)
    if date is None:
        try:
            date = iso(_EPOCH + day * _DAY_MS * _MS)[:11]
        except OverflowError:
            raise RecordCodecError(f"time {ms} ms is out of range") from None
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        _DAYS[day] = date
    seconds, milli = divmod(rest, 1000)
    minutes, sec = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{date}{hour:02d}:{minute:02d}:{sec:02d}.{milli:03d}Z"


def _text_ms(text: str) -> int | None:
    """Milliseconds since 1970 when ``text`` is exactly what edge.ids.iso writes."""
    if len(text) != 24 or not text.endswith("Z"):
        return None
    try:
        ts = datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None
    ms = (ts - _EPOCH) // _MS
    return ms if _ms_text(ms) == text else None


def _float_ms(value: object) -> int | None:
    """Integer milliseconds when ``value`` is a float with at most 3 decimals."""
    if type(value) is not float or not math.isfinite(value) or not -1e15 < value < 1e15:
        return None  # (beyond: value * 1000 may overflow to infinity)
    ms = round(value * 1000)
    return ms if ms / 1000 == value else None


def _check_plain(value: object, where: str, depth: int = 0) -> None:
    """JSON-like values only (plus bytes): what central can store as it is."""
    if depth > _MAX_DEPTH:
        raise RecordCodecError(f"{where}: nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str | bytes):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordCodecError(f"{where}: {value} is not a finite number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordCodecError(f"{where}: key {key!r} is not text")
            _check_plain(item, f"{where}.{key}", depth + 1)
        return
    raise RecordCodecError(f"{where}: {type(value).__name__} is not a plain value")


class _Strings:
    """The batch's string table while encoding."""

    def __init__(self) -> None:
        self.entries: list[bytes | str] = []
        self._index: dict[str, int] = {}

    def ref(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.entries)
            self.entries.append(_uuid_bytes(text) or text)
        return found


# -- integer columns, bit-packed --------------------------------------------------------


def _pack(values: Sequence[int]) -> bytes:
    """Zigzag integers packed ``b`` bits each, ``b`` being what the widest needs (0 when
    all are zero), big-endian, padded with zero bits; the first byte is ``b``. Packed
    8 values (``b`` whole bytes) at a time, so the work grows linearly."""
    zz = [2 * v if v >= 0 else -2 * v - 1 for v in values]
    bits = max(z.bit_length() for z in zz)
    out = bytearray([bits])
    if bits:
        for start in range(0, len(zz), 8):
            group = zz[start : start + 8]
            acc = 0
            for z in group:
                acc = (acc << bits) | z
            acc <<= bits * (8 - len(group))
            out += acc.to_bytes(bits, "big")[: (len(group) * bits + 7) // 8]
    return bytes(out)


def _unpack(raw: object, n: int, name: str) -> list[int]:
    if not isinstance(raw, bytes) or not raw or raw[0] > 64:
        raise RecordCodecError(f"lot column {name} must be bytes starting with a width <= 64")
    bits = raw[0]
    size = (n * bits + 7) // 8
    if len(raw) != 1 + size:
        raise RecordCodecError(
            f"lot column {name} is {len(raw) - 1} bytes, {n} values of {bits} bits need {size}"
        )
    if not bits:
        return [0] * n
    mask = (1 << bits) - 1
    zz: list[int] = []
    for start in range(0, n, 8):
        chunk = raw[1 + start // 8 * bits : 1 + (start // 8 + 1) * bits]
        acc = int.from_bytes(chunk.ljust(bits, b"\0"), "big")
        zz += [(acc >> (bits * (7 - k))) & mask for k in range(min(8, n - start))]
    return [z >> 1 if not z & 1 else -(z >> 1) - 1 for z in zz]


# -- lots as columns --------------------------------------------------------------------

_LIMIT = 1 << 53  # integers beyond this are not weights or milliseconds: generic record


def _lot_row(rec: dict[str, Any]) -> tuple[Any, ...] | None:
    """The lot's column values, or None when it does not fit the columns exactly."""
    keys = rec.keys()
    if rec.get("type") != "lot" or not keys >= _LOT_KEYS:
        return None
    extra = keys - _LOT_KEYS
    day_no = rec.get("day_no")  # issue 12: the daily lot number, an optional 12th column
    if "day_no" in extra:
        if type(day_no) is not int or not 0 <= day_no < _LIMIT:
            return None
        extra = extra - {"day_no"}
    if extra and extra != _TARE_KEYS:
        return None
    texts = (rec["id"], rec["producer_id"], rec["product_id"], rec["boot_id"])
    if not all(isinstance(t, str) for t in texts):
        return None
    lot_id = _uuid_bytes(rec["id"])
    rec_ms = _text_ms(rec["recorded_at"]) if isinstance(rec["recorded_at"], str) else None
    up_ms = _float_ms(rec["uptime_s"])
    if lot_id is None or rec_ms is None or up_ms is None or not -_LIMIT < up_ms < _LIMIT:
        return None
    net, synced = rec["net_g"], rec["clock_synced"]
    if type(net) is not int or not -_LIMIT < net < _LIMIT or type(synced) is not bool:
        return None
    tare, source = rec.get("tare_g"), rec.get("tare_source")
    if extra and (type(tare) is not int or not 0 <= tare < _LIMIT or not isinstance(source, str)):
        return None
    return (lot_id, rec_ms, up_ms, *texts[1:], synced, net, tare, source, day_no)


def _encode_lots(rows: list[tuple[Any, ...]], strings: _Strings) -> list[Any]:
    t0, off0 = rows[0][1], rows[0][1] - rows[0][2]
    cols: list[list[Any]] = [[] for _ in range(10)]
    prev_t, prev_off = t0, off0
    days = [row[-1] for row in rows]
    for lot_id, rec_ms, up_ms, producer, product, boot, synced, net, tare, source, _ in rows:
        off = rec_ms - up_ms
        values = (
            int.from_bytes(lot_id[:6], "big") - rec_ms,
            rec_ms - prev_t,
            off - prev_off,
            strings.ref(boot),
            synced,
            strings.ref(producer),
            strings.ref(product),
            net,
            tare,
            None if source is None else strings.ref(source),
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
        prev_t, prev_off = rec_ms, off
    id_dt, t, off_d, boot_c, synced_c, producer_c, product_c, net_c, tare_c, source_c = cols
    return [
        LOTS,
        len(rows),
        t0,
        off0,
        b"".join(row[0][6:] for row in rows),
        *(_pack(c) for c in (id_dt, t, off_d, boot_c)),
        synced_c,
        *(_pack(c) for c in (producer_c, product_c, net_c)),
        tare_c,
        source_c,
        *day_column(days),
    ]


def day_column(days: Sequence[int | None]) -> list[Any]:
    """The optional 12th column, ``day_no``: ``[first, packed]`` when every lot has one,
    ``packed`` holding each next number minus the one before minus 1 (0 for the usual
    next lot of the day, so a day's run packs to one byte; a new day costs one wide
    batch); a plain list with nulls when only some have one; nothing when none has."""
    if all(d is not None for d in days):
        known = [d for d in days if d is not None]
        rest = [b - a - 1 for a, b in itertools.pairwise(known)]
        return [[known[0], _pack(rest) if rest else b"\0"]]
    return [list(days)] if any(d is not None for d in days) else []


def day_numbers(seg: list[Any], n: int) -> list[int | None]:
    if len(seg) == 15:
        return [None] * n
    col = seg[15]
    if isinstance(col, list) and len(col) == 2 and isinstance(col[1], bytes):
        first = col[0]
        if type(first) is not int or not 0 <= first < _LIMIT:
            raise RecordCodecError(f"lot column day_no starts with {first!r}, expected >= 0")
        days: list[int | None] = [first]
        for step in _unpack(col[1], n - 1, "day_no"):
            nxt = cast(int, days[-1]) + 1 + step
            if not 0 <= nxt < _LIMIT:
                raise RecordCodecError(f"lot column day_no reaches {nxt}, expected >= 0")
            days.append(nxt)
        return days
    return _nullable(seg, 15, n, "day_no")


def _nullable(seg: list[Any], index: int, n: int, name: str) -> list[int | None]:
    col = seg[index]
    if not isinstance(col, list) or len(col) != n:
        raise RecordCodecError(f"lot column {name} must be a list of {n}")
    for value in col:
        if value is not None and (type(value) is not int or value < 0):
            raise RecordCodecError(f"lot column {name} holds {value!r}, expected null or >= 0")
    return col


def _decode_lots(
    seg: list[Any], first_seq: int, room: int, strings: list[str]
) -> list[dict[str, Any]]:
    if len(seg) not in (15, 16) or type(seg[1]) is not int or seg[1] < 1:
        raise RecordCodecError("a lot segment must be [1, n >= 1, t0, off0, 11 or 12 columns]")
    n: int = seg[1]
    if n > room:
        raise RecordCodecError(f"a lot segment of {n} is more than the seq range holds")
    t0, off0, tails = seg[2], seg[3], seg[4]
    if type(t0) is not int or type(off0) is not int:
        raise RecordCodecError("lot segment bases t0 and off0 must be integers")
    if not isinstance(tails, bytes) or len(tails) != 10 * n:
        raise RecordCodecError(f"lot id column must be {10 * n} bytes for {n} lots")
    id_dt, t, off, boot = (
        _unpack(seg[5 + i], n, name) for i, name in enumerate(("id_dt", "t", "off", "boot"))
    )
    synced = seg[9]
    if not isinstance(synced, list) or len(synced) != n or any(type(s) is not bool for s in synced):
        raise RecordCodecError(f"lot column synced must be {n} booleans")
    producer, product, net = (
        _unpack(seg[10 + i], n, name) for i, name in enumerate(("producer", "product", "net"))
    )
    tare, source = _nullable(seg, 13, n, "tare"), _nullable(seg, 14, n, "tare_src")
    day_no = day_numbers(seg, n)

    def text(ref: int | None) -> str:
        if ref is None or not 0 <= ref < len(strings):
            raise RecordCodecError(f"string reference {ref} outside the table of {len(strings)}")
        return strings[ref]

    out: list[dict[str, Any]] = []
    rec_ms, boot_off = t0, off0
    for i in range(n):
        rec_ms += t[i]
        boot_off += off[i]
        stamp = id_dt[i] + rec_ms
        if not 0 <= stamp < 1 << 48:
            raise RecordCodecError(f"lot {first_seq + i}: id time {stamp} is out of range")
        tail = tails[10 * i : 10 * i + 10]
        rec: dict[str, Any] = {
            "type": "lot",
            "seq": first_seq + i,
            "id": _uuid_text(stamp.to_bytes(6, "big") + tail),
            "producer_id": text(producer[i]),
            "product_id": text(product[i]),
            "net_g": net[i],
        }
        if day_no[i] is not None:
            rec["day_no"] = day_no[i]
        if (tare[i] is None) != (source[i] is None):
            raise RecordCodecError(f"lot {first_seq + i}: tare and tare_src disagree")
        if tare[i] is not None:
            rec["tare_g"] = tare[i]
            rec["tare_source"] = text(source[i])
        rec["recorded_at"] = _ms_text(rec_ms)
        rec["boot_id"] = text(boot[i])
        up_ms = rec_ms - boot_off
        if not -_LIMIT < up_ms < _LIMIT:
            raise RecordCodecError(f"lot {first_seq + i}: uptime {up_ms} ms is out of range")
        rec["uptime_s"] = up_ms / 1000
        rec["clock_synced"] = synced[i]
        out.append(rec)
    return out


# -- the records value ------------------------------------------------------------------


def _generic(rec: dict[str, Any], seq: int) -> dict[str, Any]:
    body = {k: v for k, v in rec.items() if k != "seq"}
    _check_plain(body, f"record {seq}")
    return body


def encode_records(first: int, records: Sequence[dict[str, Any]]) -> list[Any]:
    """The ``records`` value for records with seq ``first`` .. (checked)."""
    strings = _Strings()
    segments: list[Any] = []
    lots: list[tuple[Any, ...]] = []
    generic: list[dict[str, Any]] = []

    def flush() -> None:
        if lots:
            segments.append(_encode_lots(lots, strings))
            lots.clear()
        if generic:
            segments.append([GENERIC, list(generic)])
            generic.clear()

    for i, rec in enumerate(records):
        seq = first + i
        if not isinstance(rec, dict):
            raise RecordCodecError(f"record {seq} is a {type(rec).__name__}, not a dict")
        if rec.get("seq") != seq or type(rec.get("seq")) is not int:
            raise RecordCodecError(f"record {i} has seq {rec.get('seq')!r}, expected {seq}")
        if not isinstance(rec.get("type"), str) or not rec["type"]:
            raise RecordCodecError(f"record {seq} has no type")
        row = _lot_row(rec)
        if (row is None and lots) or (row is not None and generic):
            flush()
        if row is None:
            generic.append(_generic(rec, seq))
        else:
            lots.append(row)
    flush()
    return [strings.entries, *segments]


def _decode_generic(seg: list[Any], first_seq: int) -> list[dict[str, Any]]:
    if len(seg) != 2 or not isinstance(seg[1], list) or not seg[1]:
        raise RecordCodecError("a generic segment must be [0, [map, ...]] with records")
    out: list[dict[str, Any]] = []
    for i, body in enumerate(seg[1]):
        seq = first_seq + i
        if not isinstance(body, dict):
            raise RecordCodecError(f"record {seq} is a {type(body).__name__}, not a map")
        kind = body.get("type")
        if not isinstance(kind, str) or not kind:
            raise RecordCodecError(f"record {seq} has no type")
        if "seq" in body:
            raise RecordCodecError(f"record {seq} carries its own seq; it is implied")
        _check_plain(body, f"record {seq}")
        out.append({"type": kind, "seq": seq, **{k: v for k, v in body.items() if k != "type"}})
    return out


def decode_records(first: int, count: int, value: object) -> list[dict[str, Any]]:
    """The ``count`` records of a ``records`` value, with seq ``first`` .. ``first+count-1``."""
    if not isinstance(value, list) or not value:
        raise RecordCodecError("records must be a list [strings, segment, ...]")
    table, *segments = value
    if not isinstance(table, list):
        raise RecordCodecError("records[0] must be the string table (a list)")
    strings: list[str] = []
    for entry in table:
        if isinstance(entry, bytes) and len(entry) == 16:
            strings.append(_uuid_text(entry))
        elif isinstance(entry, str):
            strings.append(entry)
        else:
            raise RecordCodecError(f"string table entry {entry!r} is neither 16 bytes nor text")
    out: list[dict[str, Any]] = []
    for seg in segments:
        if len(out) >= count:
            raise RecordCodecError(f"more records than the seq range holds ({count})")
        if not isinstance(seg, list) or not seg or type(seg[0]) is not int:
            raise RecordCodecError("a segment must be a list starting with its kind")
        if seg[0] == LOTS:
            out += _decode_lots(seg, first + len(out), count - len(out), strings)
        elif seg[0] == GENERIC:
            out += _decode_generic(seg, first + len(out))
        else:
            raise RecordCodecError(f"unknown segment kind {seg[0]}")
    if len(out) != count:
        raise RecordCodecError(f"{len(out)} records for a seq range of {count}")
    return out
