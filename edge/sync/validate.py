"""Record schema 2, checked before anything is stored (docs/mqtt.md "Records" and
"Limits"): known types, field types and ranges, text without control characters,
NUL or lone surrogates, and bounded sizes. A batch with one bad record is refused as
a whole (:func:`validate_batch` raises :class:`EnvelopeError` with reason
``invalid_record``, the batch's header and the first bad seq), so the station can be
told which batch and why.

The limits are what the station can produce, with room: names are at most 120
characters at the station's API (:data:`MAX_NAME` 200 here), a weight at most 10 t
(:data:`MAX_GRAMS` 100 t). A field this module does not know is kept as sent (the
contract lets a station add one) if it is a scalar or a short text and there are
at most :data:`MAX_EXTRA_FIELDS` of them; telemetry, which changes more often, may
carry any JSON-like fields within :data:`TELEMETRY_ITEMS` values and
:data:`TELEMETRY_TEXT` characters. A new record type needs central to know it
first: an unknown type is refused.

Pure and fast: about a microsecond a lot (texts repeated in a batch, such as
producer and boot ids, are checked once).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from edge.sync.envelope import Batch, EnvelopeError, Header
from edge.sync.limits import MAX_RECORDS, SEQ_LIMIT

KNOWN_TYPES = (
    "producer",
    "product",
    "lot",
    "grade",
    "telemetry",
    # issue 12, corrections without deleting history (docs/mqtt.md, revision of version 2)
    "lot_void",
    "lot_correction",
    "producer_update",
    "product_update",
    "producer_merge",
    # issue 13, packing at the point (docs/mqtt.md; central folds them: edge.central.parcels)
    "parcel",
    "parcel_void",
    "parcel_label",
    # issue 14, courier handover (docs/mqtt.md; central folds them: edge.central.parcels)
    "manifest",
    "parcel_handover",
    "parcel_return",
)
MAX_GRAMS = 100_000_000
"""A weight (``net_g``, ``tare_g``) in grams: 100 t, ten times the station's limit."""
MAX_PRICE_DONG = 10**12
MAX_DAY_NO = 1_000_000
"""A lot's daily number (1, 2, 3... per station-local day, issue 12)."""
MAX_NAME = 200
"""Characters of a name (producer, product, village, who confirmed a grade)."""
MAX_CODE = 64
MAX_PERSON = 60
"""Characters of the name of the person who made a correction (``by``; a station sends
at most this many of a longer name)."""
"""Characters of a short text: a grade, a grading key, a phone number, a boot id,
an unknown field's text."""
MAX_PARCEL_ITEMS = 200
"""Lots a parcel was packed from, or lines it holds."""
MAX_QUANTITY = 100_000
"""Packs of one line of a parcel."""
MAX_MANIFEST_PARCELS = 100_000
"""Parcels of one courier manifest (handed over, or confirmed missing)."""
MAX_EXTRA_FIELDS = 4
"""Fields of a record (other than telemetry) that this module does not know."""
TELEMETRY_ITEMS = 256
"""Values (nested ones included) in one telemetry record."""
TELEMETRY_TEXT = 8192
"""Characters of text (keys included) in one telemetry record."""
TELEMETRY_DEPTH = 6
MAX_UPTIME_S = 1e10
INT_LIMIT = 1 << 63

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BAD_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (NUL included) and lone surrogates: never in a name or an id."""
_BAD_FREE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""In free text (telemetry) tabs and line breaks may appear, nothing else of those."""

Check = Callable[[Any], str | None]


def _text(limit: int, *, empty: bool = False, free: bool = False) -> Check:
    bad = _BAD_FREE if free else _BAD_TEXT

    def check(value: Any) -> str | None:
        if type(value) is not str:
            return f"{value!r:.40} is not text"
        if not value and not empty:
            return "is empty"
        if len(value) > limit:
            return f"is {len(value)} characters, more than {limit}"
        if bad.search(value):
            return "holds a control character, NUL or a lone surrogate"
        return None

    return check


def _uuid(value: Any) -> str | None:
    if type(value) is not str or not _UUID.match(value):
        return f"{value!r:.60} is not a UUID in canonical form"
    return None


def _iso(value: Any) -> str | None:
    if type(value) is not str or not _ISO.match(value):
        return f"{value!r:.60} is not an ISO 8601 time"
    return None


def _int_range(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if type(value) is not int or not low <= value <= high:
            return f"{value!r:.40} is not an integer in {low}..{high}"
        return None

    return check


def _number_range(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        if type(value) not in (int, float) or not math.isfinite(value):
            return f"{value!r:.40} is not a finite number"
        if not low <= value <= high:
            return f"{value!r:.40} is not within {low}..{high}"
        return None

    return check


def _bool(value: Any) -> str | None:
    return None if type(value) is bool else f"{value!r:.40} is not true or false"


def _one_of(*allowed: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"{value!r:.40} is not one of {', '.join(allowed)}"

    return check


def _nullable(check: Check) -> Check:
    def nullable(value: Any) -> str | None:
        return None if value is None else check(value)

    return nullable


def _items(fields: dict[str, tuple[bool, Check]], low: int, high: int, what: str) -> Check:
    """A list of ``low``..``high`` objects of exactly these fields (parcel lots, lines)."""

    def check(value: Any) -> str | None:
        if type(value) is not list:
            return f"{value!r:.40} is not a list of {what}"
        if not low <= len(value) <= high:
            return f"has {len(value)} {what}, not {low}..{high}"
        for i, item in enumerate(value):
            problem = _object(fields)(item)
            if problem is not None:
                return f"[{i}] {problem}"
        return None

    return check


def _object(fields: dict[str, tuple[bool, Check]]) -> Check:
    """An object of these fields (required ones present) and no others."""

    def check(value: Any) -> str | None:
        if type(value) is not dict:
            return f"{value!r:.40} is not an object"
        for key, (required, field_check) in fields.items():
            if key not in value:
                if required:
                    return f"{key} is missing"
                continue
            problem = field_check(value[key])
            if problem is not None:
                return f"{key} {problem}"
        extra = [key for key in value if key not in fields]
        if extra:
            return f"has the unknown field {extra[0]!r:.40}"
        return None

    return check


_NAME = _text(MAX_NAME)
_CODE = _text(MAX_CODE)
_PERSON = _text(MAX_PERSON)
_PERSON_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _person_id(value: Any) -> str | None:
    """The id of the person who made a correction: a UUID, or a short ASCII word."""
    if type(value) is not str or not _PERSON_ID_RE.match(value):
        return f"{value!r:.60} is not a person id (at most 40 of A-Z a-z 0-9 _ -)"
    return None


_STAMP: dict[str, tuple[bool, Check]] = {
    "recorded_at": (True, _iso),
    "boot_id": (False, _nullable(_CODE)),
    "uptime_s": (False, _nullable(_number_range(0, MAX_UPTIME_S))),
    "clock_synced": (False, _nullable(_bool)),
}
"""The time stamp every record carries (boot id and uptime unknown in migrated ones)."""

FIELDS: dict[str, dict[str, tuple[bool, Check]]] = {
    "producer": {
        "id": (True, _uuid),
        "name": (True, _NAME),
        "phone": (False, _nullable(_CODE)),
        "village": (False, _nullable(_NAME)),
        **_STAMP,
    },
    "product": {
        "id": (True, _uuid),
        "name": (True, _NAME),
        "unit_price_dong": (False, _nullable(_int_range(0, MAX_PRICE_DONG))),
        "grading": (False, _nullable(_CODE)),
        **_STAMP,
    },
    "lot": {
        "id": (True, _uuid),
        "producer_id": (True, _uuid),
        "product_id": (True, _uuid),
        "net_g": (True, _int_range(1, MAX_GRAMS)),
        "day_no": (False, _int_range(1, MAX_DAY_NO)),
        "tare_g": (False, _int_range(0, MAX_GRAMS)),
        "tare_source": (False, _one_of("scale", "software")),
        **_STAMP,
    },
    "grade": {
        "id": (True, _uuid),
        "lot_id": (True, _uuid),
        "grade": (True, _CODE),
        "proposed_grade": (False, _nullable(_CODE)),
        "confidence": (False, _nullable(_number_range(0.0, 1.0))),
        "method": (False, _nullable(_one_of("rules", "model"))),
        "photo_id": (False, _nullable(_uuid)),
        "overridden": (False, _bool),
        "confirmed_by": (False, _text(MAX_NAME)),
        "confirmed_at": (False, _iso),
        **_STAMP,
    },
    "lot_void": {
        "id": (True, _uuid),
        "lot_id": (True, _uuid),
        "reason": (True, _NAME),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        **_STAMP,
    },
    "lot_correction": {
        "id": (True, _uuid),
        "lot_id": (True, _uuid),
        "producer_id": (False, _nullable(_uuid)),
        "product_id": (False, _nullable(_uuid)),
        "was_producer_id": (False, _nullable(_uuid)),
        "was_product_id": (False, _nullable(_uuid)),
        "reason": (True, _NAME),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        **_STAMP,
    },
    "producer_update": {
        "id": (True, _uuid),
        "producer_id": (True, _uuid),
        "name": (True, _NAME),
        "phone": (False, _nullable(_CODE)),
        "village": (False, _nullable(_NAME)),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        **_STAMP,
    },
    "product_update": {
        "id": (True, _uuid),
        "product_id": (True, _uuid),
        "name": (True, _NAME),
        "unit_price_dong": (False, _nullable(_int_range(0, MAX_PRICE_DONG))),
        "grading": (False, _nullable(_CODE)),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        **_STAMP,
    },
    "producer_merge": {
        "id": (True, _uuid),
        "merged_id": (True, _uuid),
        "survivor_id": (True, _uuid),
        "reason": (True, _NAME),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        **_STAMP,
    },
    "parcel": {
        "id": (True, _uuid),
        "order_id": (True, _CODE),
        "tracking": (True, _CODE),
        "carrier": (False, _nullable(_NAME)),
        "net_g": (True, _int_range(1, MAX_GRAMS)),
        "gross_g": (True, _int_range(1, MAX_GRAMS)),
        "expected_g": (True, _int_range(1, MAX_GRAMS)),
        "tolerance_g": (True, _int_range(0, MAX_GRAMS)),
        "override": (False, _nullable(_object({"reason": (True, _NAME)}))),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        "packed_at": (True, _iso),
        "lots": (
            True,
            _items(
                {"lot_id": (True, _uuid), "net_g": (True, _int_range(1, MAX_GRAMS))},
                0,
                MAX_PARCEL_ITEMS,
                "lots",
            ),
        ),
        "lines": (
            True,
            _items(
                {
                    "product": (True, _NAME),
                    "grade": (False, _nullable(_CODE)),
                    "quantity": (True, _int_range(1, MAX_QUANTITY)),
                },
                1,
                MAX_PARCEL_ITEMS,
                "lines",
            ),
        ),
        **_STAMP,
    },
    "parcel_void": {
        "parcel_id": (True, _uuid),
        "reason": (True, _NAME),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        "at": (True, _iso),
        **_STAMP,
    },
    "parcel_label": {
        "parcel_id": (True, _uuid),
        "job_id": (True, _uuid),
        "copy": (True, _bool),
        "printed_at": (True, _iso),
        **_STAMP,
    },
    "manifest": {
        "id": (True, _uuid),
        "carrier": (True, _NAME),
        "courier": (True, _NAME),
        "courier_id": (False, _nullable(_person_id)),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        "closed_at": (True, _iso),
        "count": (True, _int_range(0, MAX_MANIFEST_PARCELS)),
        "total_g": (True, _int_range(0, MAX_GRAMS)),
        "cod_dong": (True, _int_range(0, MAX_PRICE_DONG)),
        "confirmed_with": (True, _one_of("pin", "signature")),
        "missing": (True, _int_range(0, MAX_MANIFEST_PARCELS)),
        **_STAMP,
    },
    "parcel_handover": {
        "id": (False, _uuid),
        "parcel_id": (True, _uuid),
        "manifest_id": (True, _uuid),
        "tracking": (True, _CODE),
        "carrier": (False, _nullable(_NAME)),
        "courier": (True, _NAME),
        "courier_id": (False, _nullable(_person_id)),
        "at": (True, _iso),
        **_STAMP,
    },
    "parcel_return": {
        "id": (False, _uuid),
        "parcel_id": (True, _uuid),
        "manifest_id": (True, _uuid),
        "reason": (True, _NAME),
        "by": (True, _PERSON),
        "by_id": (False, _nullable(_person_id)),
        "at": (True, _iso),
        **_STAMP,
    },
    "telemetry": {
        "recorded_at": (False, _nullable(_iso)),
        "boot_id": (False, _nullable(_CODE)),
        "uptime_s": (False, _nullable(_number_range(0, MAX_UPTIME_S))),
        "clock_synced": (False, _nullable(_bool)),
        "version": (False, _nullable(_text(MAX_NAME))),
        "last_confirmed_at": (False, _nullable(_iso)),
    },
}
"""Per known type: field -> (required, check). ``type`` and ``seq`` are checked apart."""

_KNOWN = {kind: frozenset({"type", "seq", *fields}) for kind, fields in FIELDS.items()}
_REPEATED = frozenset({"producer_id", "product_id", "boot_id", "lot_id", "manifest_id"})
"""Fields whose values repeat across a batch: each distinct value is checked once."""


def _extra(key: str, value: Any) -> str | None:
    if not _KEY.match(key):
        return f"field name {key!r:.40} is not lower-case letters, digits and '_'"
    if value is None or type(value) is bool:
        return None
    if type(value) is int:
        return None if -INT_LIMIT < value < INT_LIMIT else f"{key} {value} is beyond 64 bits"
    if type(value) is float:
        return None if math.isfinite(value) else f"{key} {value} is not a finite number"
    problem = _CODE(value)
    return None if problem is None else f"unknown field {key} {problem}"


class _Budget:
    def __init__(self) -> None:
        self.items = 0
        self.text = 0


def _plain(value: Any, where: str, depth: int, budget: _Budget) -> str | None:
    """JSON-like telemetry values within the telemetry budget."""
    budget.items += 1
    if budget.items > TELEMETRY_ITEMS:
        return f"more than {TELEMETRY_ITEMS} values"
    if value is None or type(value) is bool:
        return None
    if type(value) is int:
        return None if -INT_LIMIT < value < INT_LIMIT else f"{where} {value} is beyond 64 bits"
    if type(value) is float:
        return None if math.isfinite(value) else f"{where} {value} is not a finite number"
    if type(value) is str:
        budget.text += len(value)
        if len(value) > MAX_NAME:
            return f"{where} is {len(value)} characters, more than {MAX_NAME}"
        if _BAD_FREE.search(value):
            return f"{where} holds a control character, NUL or a lone surrogate"
        return None if budget.text <= TELEMETRY_TEXT else f"more than {TELEMETRY_TEXT} characters"
    if depth >= TELEMETRY_DEPTH:
        return f"{where} is nested deeper than {TELEMETRY_DEPTH} levels"
    if type(value) is list:
        for i, item in enumerate(value):
            problem = _plain(item, f"{where}[{i}]", depth + 1, budget)
            if problem:
                return problem
        return None
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str or not key or len(key) > MAX_CODE or _BAD_TEXT.search(key):
                return f"{where} has the key {key!r:.40}"
            budget.text += len(key)
            problem = _plain(item, f"{where}.{key}", depth + 1, budget)
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}, not a JSON value"


_UUID_MATCH = _UUID.match
_ISO_MATCH = _ISO.match
_LOT_PLAIN = frozenset(
    {"type", "seq", *(k for k in FIELDS["lot"] if not k.startswith("tare") and k != "day_no")}
)
_LOT_TARED = _KNOWN["lot"] - {"day_no"}
_LOT_DAY = _LOT_PLAIN | {"day_no"}
_LOT_DAY_TARED = _KNOWN["lot"]
"""The common lots: with or without a tare, with or without a daily number."""


class _Checker:
    """Checks the records of one batch; remembers the repeated texts it has passed."""

    def __init__(self) -> None:
        self.passed: set[tuple[str, Any]] = set()
        self.uuids: set[str] = set()
        self.boots: set[str | None] = set()

    def lot(self, rec: Mapping[str, Any]) -> bool | None:
        """The common lot (known fields only, all present) checked quickly: None when
        valid, False when it is not that common shape (then :meth:`record` decides)."""
        keys = rec.keys()
        if (
            keys != _LOT_DAY
            and keys != _LOT_PLAIN
            and keys != _LOT_DAY_TARED
            and keys != _LOT_TARED
        ):
            return False
        net = rec["net_g"]
        up = rec["uptime_s"]
        lot_id = rec["id"]
        stamp = rec["recorded_at"]
        if (
            type(net) is not int
            or not 0 < net <= MAX_GRAMS
            or (up is not None and (type(up) is not float or not 0 <= up <= MAX_UPTIME_S))
            or type(rec["clock_synced"]) is not bool
            or type(lot_id) is not str
            or type(stamp) is not str
            or not _UUID_MATCH(lot_id)
            or not _ISO_MATCH(stamp)
        ):
            return False
        uuids = self.uuids
        producer, product = rec["producer_id"], rec["product_id"]
        if type(producer) is not str or type(product) is not str:
            return False
        if producer not in uuids or product not in uuids:
            if _uuid(producer) is not None or _uuid(product) is not None:
                return False
            uuids.add(producer)
            uuids.add(product)
        boot = rec["boot_id"]
        if boot is not None and type(boot) is not str:
            return False
        if boot not in self.boots:
            if boot is not None and _CODE(boot) is not None:
                return False
            self.boots.add(boot)
        if "day_no" in rec:
            day_no = rec["day_no"]
            if type(day_no) is not int or not 0 < day_no <= MAX_DAY_NO:
                return False
        if "tare_g" in rec:
            tare = rec["tare_g"]
            if type(tare) is not int or not 0 <= tare <= MAX_GRAMS:
                return False
            if rec["tare_source"] not in ("scale", "software"):
                return False
        return None

    def record(self, rec: Mapping[str, Any]) -> str | None:
        kind = rec.get("type")
        if kind == "lot" and self.lot(rec) is None:
            return None
        fields = FIELDS.get(kind) if type(kind) is str else None
        if fields is None:
            return (
                f"type {kind!r:.40} is not a record type central knows ({', '.join(KNOWN_TYPES)})"
            )
        assert isinstance(kind, str)
        passed = self.passed
        for key, (required, check) in fields.items():
            if key not in rec:
                if required:
                    return f"{key} is missing"
                continue
            value = rec[key]
            repeated = key in _REPEATED and type(value) is str
            if repeated and (key, value) in passed:
                continue
            problem = check(value)
            if problem is not None:
                return f"{key} {problem}"
            if repeated:
                passed.add((key, value))
        if kind == "lot" and ("tare_g" in rec) != ("tare_source" in rec):
            return "tare_g and tare_source come together or not at all"
        if rec.keys() <= _KNOWN[kind]:
            return None
        extras = [key for key in rec if key not in _KNOWN[kind]]
        if kind == "telemetry":
            budget = _Budget()
            for key in extras:
                if type(key) is not str or not _KEY.match(key):
                    return f"field name {key!r:.40} is not lower-case letters, digits and '_'"
                problem = _plain(rec[key], key, 1, budget)
                if problem is not None:
                    return problem
            return None
        if len(extras) > MAX_EXTRA_FIELDS:
            return f"{len(extras)} unknown fields, more than {MAX_EXTRA_FIELDS}"
        for key in extras:
            if type(key) is not str:
                return f"field name {key!r:.40} is not text"
            problem = _extra(key, rec[key])
            if problem is not None:
                return problem
        return None


def record_problem(rec: Mapping[str, Any]) -> str | None:
    """What is wrong with one record (schema 2), or None."""
    if not isinstance(rec, Mapping):
        return f"a {type(rec).__name__}, not a record"
    return _Checker().record(rec)


def validate_batch(batch: Batch) -> None:
    """Every record of ``batch`` is valid schema 2, its seqs ``first``.. in order and
    below :data:`edge.sync.limits.SEQ_LIMIT`; else EnvelopeError (reason
    ``invalid_record``, or ``too_many_records`` / ``seq_range``) naming the first bad
    record, with the batch's header and that record's seq."""
    header = Header(batch.site, batch.stream, batch.batch_id, batch.first, batch.last, batch.epoch)
    where = f"batch {batch.batch_id} ({batch.site}/{batch.stream} {batch.first}-{batch.last})"
    if not 1 <= batch.first <= batch.last < SEQ_LIMIT:
        raise EnvelopeError(f"{where}: seq range beyond 1..2**53", "seq_range")
    if batch.count > MAX_RECORDS:
        raise EnvelopeError(
            f"{where}: {batch.count} records, more than {MAX_RECORDS}", "too_many_records", header
        )
    if len(batch.records) != batch.count:
        raise EnvelopeError(
            f"{where}: {len(batch.records)} records for {batch.count} seqs", header=header
        )
    checker = _Checker()
    seq = batch.first
    for rec in batch.records:
        if type(rec) is not dict and not isinstance(rec, Mapping):
            problem: str | None = f"a {type(rec).__name__}, not a record"
        elif rec.get("seq") != seq or type(rec.get("seq")) is not int:
            problem = f"carries seq {rec.get('seq')!r:.30}, its place says {seq}"
        else:
            problem = checker.record(rec)
        if problem is not None:
            kind = rec.get("type") if isinstance(rec, Mapping) else None
            shown = f" ({kind:.20})" if isinstance(kind, str) else ""
            raise EnvelopeError(
                f"{where}: record {seq}{shown}: {problem}", "invalid_record", header, seq
            )
        seq += 1
