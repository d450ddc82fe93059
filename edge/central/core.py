"""The pure part of central ingest: database URLs, topics, sequence arithmetic,
status payloads and record bodies. No I/O here."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson

DATA_STREAMS = ("records", "telemetry", "bulk")
"""The batch topics (and streams) a station publishes, in priority order."""

URL_HELP = (
    "use sqlite:///RELATIVE/PATH.db, sqlite:////ABSOLUTE/PATH.db "
    "or postgresql://USER@HOST:PORT/DATABASE"
)


class DbUrlError(ValueError):
    """A database URL that cannot be used; the message says what to write instead."""


@dataclass(frozen=True)
class DbUrl:
    kind: Literal["sqlite", "postgresql"]
    path: Path | None  # sqlite: the file
    conninfo: str  # postgresql: the URL as libpq takes it


def parse_db_url(url: str) -> DbUrl:
    """``sqlite:///x.db`` (relative), ``sqlite:////abs/x.db`` (absolute, as in
    SQLAlchemy), or ``postgresql://`` / ``postgres://`` (passed to libpq)."""
    text = url.strip()
    if not text:
        raise DbUrlError(f"empty database URL; {URL_HELP}")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise DbUrlError(f"malformed database URL {url!r} ({exc}); {URL_HELP}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if not text.lower().startswith("sqlite:///"):
            raise DbUrlError(
                f"SQLite URL {url!r} needs three slashes before the path (no host part); {URL_HELP}"
            )
        if parts.query or parts.fragment:
            raise DbUrlError(f"SQLite URL {url!r} takes no '?' or '#' options; {URL_HELP}")
        raw = text[len("sqlite:///") :]
        if not raw or raw.endswith("/"):
            raise DbUrlError(f"SQLite URL {url!r} names no database file; {URL_HELP}")
        return DbUrl("sqlite", Path(raw), "")
    if scheme in ("postgresql", "postgres"):
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise DbUrlError(f"PostgreSQL URL {url!r} names no database; {URL_HELP}")
        return DbUrl("postgresql", None, text)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise DbUrlError(f"database URL {url!r} has {shown}; {URL_HELP}")


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message says what to write."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]``, ``mqtts://host[:8883]`` (TLS), or ``host[:port]``."""
    text = url.strip()
    help_ = "use mqtt://HOST:PORT or mqtts://HOST:PORT"
    if "://" not in text:
        text = f"mqtt://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL {url!r}: {exc}; {help_}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
        raise BrokerUrlError(f"broker URL {url!r} has scheme {scheme!r}; {help_}")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r} names no host; {help_}")
    if parts.path not in ("", "/") or parts.query:
        raise BrokerUrlError(f"broker URL {url!r} has a path or query; {help_}")
    tls = scheme in ("mqtts", "ssl")
    return BrokerAddress(parts.hostname, port or (8883 if tls else 1883), tls)


_SITE = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``<prefix>/<site>/<kind>`` -> (site, kind) for the data and status topics."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :].split("/")
    if len(rest) != 2 or not _SITE.match(rest[0]):
        return None
    if rest[1] not in (*DATA_STREAMS, "status"):
        return None
    return rest[0], rest[1]


class BatchLike(Protocol):
    """What the store needs of a decoded batch (edge.sync.envelope.Batch)."""

    @property
    def site(self) -> str: ...
    @property
    def stream(self) -> str: ...
    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...
    @property
    def records(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def epoch(self) -> str: ...


B = TypeVar("B", bound=BatchLike)


def check_batch(batch: BatchLike, site: str, stream: str) -> str | None:
    """Why a batch that arrived on ``<prefix>/<site>/<stream>`` must be refused, or None."""
    if batch.site != site:
        return f"batch says site {batch.site!r} but arrived on site {site!r}'s topic"
    if batch.stream != stream:
        return f"batch says stream {batch.stream!r} but arrived on the {stream!r} topic"
    if batch.first < 1 or batch.last < batch.first:
        return f"bad sequence range {batch.first}-{batch.last}"
    if len(batch.records) != batch.last - batch.first + 1:
        return f"range {batch.first}-{batch.last} does not match {len(batch.records)} record(s)"
    return None


class MixedEpochs(Exception):
    """A plan was asked to hold batches of two epochs for one (site, stream): a bug;
    split them with :func:`epoch_groups` first."""


def epoch_groups(batches: Iterable[B]) -> list[list[B]]:
    """The batches in groups (first the largest, order kept within each) where every
    (site, stream) has one epoch: each batch goes into the first group whose epoch
    for its key is the same or not yet set ("" is an epoch of its own here: an old
    sender's batch is planned apart from a new one's)."""
    groups: list[tuple[dict[tuple[str, str], str], list[B]]] = []
    for batch in batches:
        key = (batch.site, batch.stream)
        for epochs, members in groups:
            if epochs.setdefault(key, batch.epoch) == batch.epoch:
                members.append(batch)
                break
        else:
            groups.append(({key: batch.epoch}, [batch]))
    return [members for _, members in groups]


EPOCH_OK = ""
EPOCH_CONFLICT = "conflict"
EPOCH_MISSING = "missing"


def epoch_verdict(stored: str | None, seen: str) -> tuple[str | None, str]:
    """(the epoch to keep for a (site, stream), the verdict) when central holds
    ``stored`` for it and a batch of epoch ``seen`` arrives. The first epoch sets it
    (:data:`EPOCH_OK`); while central holds none, a batch without one (a sender older
    than epochs) is accepted too and sets nothing. Another epoch than the stored one
    is :data:`EPOCH_CONFLICT`: its seqs number another database's records, which
    central would drop as duplicates. No epoch once central holds one is
    :data:`EPOCH_MISSING`: central cannot tell whose seqs those are, so it refuses
    them too."""
    if not seen:
        return stored, EPOCH_MISSING if stored else EPOCH_OK
    if not stored:
        return seen, EPOCH_OK
    return stored, EPOCH_OK if stored == seen else EPOCH_CONFLICT


@dataclass(frozen=True)
class Refused:
    """A batch central will never store, whose header decoded (so the station can be
    told): its range, epoch, the reason code, the first bad seq and a detail text."""

    site: str
    stream: str
    first: int
    last: int
    epoch: str
    reason: str
    seq: int
    detail: str


@dataclass(frozen=True)
class RefusedProgress:
    """After a refusal is recorded: the contiguous mark of its (site, stream) (its
    range counts as done once recorded), the epoch the ack carries and the epoch
    verdict. Recorded only with :data:`EPOCH_OK`; with :data:`EPOCH_MISSING` the ack
    says ``upto`` 0 without an epoch (it confirms nothing, whoever receives it); with
    :data:`EPOCH_CONFLICT` there is no ack."""

    refused: Refused
    upto: int
    epoch: str
    verdict: str


def advance_upto(
    upto: int,
    highest: int,
    refused_upto: int,
    run_end: Callable[[int], int],
    refused_end: Callable[[int], int],
) -> int:
    """The contiguous mark past ``upto``: through runs of stored records (``run_end``:
    the end of the run starting at upto + 1, or upto) and refused ranges
    (``refused_end``: the end of a refused range holding upto + 1, or upto), in turn,
    while either moves it. ``highest`` (stored) and ``refused_upto`` (refused) bound
    what can be found, so the common case asks the database nothing."""
    while True:
        moved = upto
        if upto < highest:
            upto = max(upto, run_end(upto))
        if upto < refused_upto:
            upto = max(upto, refused_end(upto))
        if upto == moved:
            return upto


def epoch_conflict_text(p: StreamProgress) -> str:
    """Why a (site, stream) was refused (``p.conflict`` set), and what to do."""
    return (
        f"it comes from a station database of epoch {p.conflict}, but central holds "
        f"this site's {p.stream} stream (seqs 1-{p.upto}) from epoch {p.epoch}: the "
        "station's database was replaced or cloned: give it a new site id, or reset "
        "central's progress for this site; not stored, not acknowledged (the station "
        "keeps its records)"
    )


def covered_upto(contiguous: int, ranges: Iterable[tuple[int, int]]) -> int:
    """The contiguous high-water mark once the inclusive ``ranges`` are stored,
    counting only what the ranges themselves prove (rows stored earlier beyond a
    gap are found by the database, starting from this value)."""
    upto = contiguous
    for first, last in sorted(ranges):
        if first > upto + 1:
            break
        upto = max(upto, last)
    return upto


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"a record holds a {type(value).__name__}, which JSON cannot store")


def record_json(record: Mapping[str, Any]) -> str:
    """A record as compact UTF-8 JSON text (bytes as base64, Vietnamese as is).

    orjson, because this runs for every record ingested (about 5x faster than the
    standard library's encoder); it also refuses integers beyond 64 bits, which no
    record field may hold. Raises TypeError for a value JSON cannot store."""
    return orjson.dumps(record, default=_json_default).decode("utf-8")


def record_kind(record: Mapping[str, Any]) -> str:
    kind = record.get("type")
    return kind if isinstance(kind, str) else "unknown"


def record_id(record: Mapping[str, Any]) -> str | None:
    rid = record.get("id")
    return rid if isinstance(rid, str) else None


STATUS_MAX_BYTES = 1024
"""A status message is at most this (a real one is under 100 bytes)."""
STATUS_MAX_FIELDS = 16
STATUS_MAX_TEXT = 200
_STATUS_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_STATUS_STATE = re.compile(r"^[a-z][a-z_]{0,31}$")
_BAD_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"status JSON holds {name}, which is not a number")


def parse_status_payload(payload: bytes) -> dict[str, Any]:
    """A station's retained status: JSON ``{"state": ...}`` (v2) or plain
    ``online``/``offline`` (v1). Raises ValueError naming what is wrong: not UTF-8,
    more than :data:`STATUS_MAX_BYTES`, not one flat JSON object of at most
    :data:`STATUS_MAX_FIELDS` fields, a text longer than :data:`STATUS_MAX_TEXT` or
    holding a control character, NUL or a lone surrogate (even as a ``\\u`` escape),
    a number that is not finite."""
    if len(payload) > STATUS_MAX_BYTES:
        raise ValueError(f"status payload of {len(payload)} bytes, more than {STATUS_MAX_BYTES}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError("status payload is not UTF-8") from None
    if text in ("online", "offline"):
        return {"state": text}
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        shown = text[:40].encode("unicode_escape").decode("ascii")
        raise ValueError(f"status payload is neither JSON nor online/offline: {shown!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        raise ValueError("status JSON has no string 'state'")
    if len(data) > STATUS_MAX_FIELDS:
        raise ValueError(f"status JSON has {len(data)} fields, more than {STATUS_MAX_FIELDS}")
    for key, value in data.items():
        if not _STATUS_KEY.match(key):
            raise ValueError(
                f"status field name {key.encode('unicode_escape')[:40]!r} is not allowed"
            )
        if value is None or isinstance(value, bool | int):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):  # 1e999
                raise ValueError(f"status field {key} is not a finite number")
            continue
        if not isinstance(value, str):
            raise ValueError(f"status field {key} is a {type(value).__name__}, not a value")
        if len(value) > STATUS_MAX_TEXT:
            raise ValueError(f"status field {key} is {len(value)} characters long")
        if _BAD_TEXT.search(value):
            raise ValueError(
                f"status field {key} holds a control character, NUL or a lone surrogate"
            )
    if not _STATUS_STATE.match(data["state"]):
        raise ValueError(
            f"status state {data['state'][:40].encode('unicode_escape')!r} is not a state"
        )
    return data


REPEAT_REFUSAL_S = 86_400
"""For this long after a batch of a (site, stream) was refused, every ack of that
stream carries the refusal again: acks may be lost (the station takes them at QoS
0), and a later ack's ``upto`` passes the refused range, which would otherwise
confirm those records at the station."""


@dataclass(frozen=True)
class RecentRefusal:
    """The latest refused range of a (site, stream), repeated in its acks."""

    first: int
    last: int
    seq: int
    reason: str


@dataclass(frozen=True)
class StreamProgress:
    """After a store: the contiguous mark of one (site, stream) and what was new."""

    site: str
    stream: str
    upto: int
    inserted: int
    duplicates: int
    epoch: str = ""  # the epoch central holds for it (what the ack carries)
    conflict: str = ""  # the refused epoch when the batches were not stored
    missing_epoch: bool = False  # not stored: no epoch, and central holds one
    refusal: RecentRefusal | None = None  # refused within REPEAT_REFUSAL_S: said again


Row = tuple[str, str, int, str, str | None, str]
"""(site, stream, seq, kind, record_id, body JSON) of one record."""


@dataclass
class GroupPlan:
    """A group of batches laid out for one transaction."""

    rows: dict[tuple[str, str], list[Row]]
    ranges: dict[tuple[str, str], list[tuple[int, int]]]
    received: dict[tuple[str, str], int]
    telemetry: dict[str, tuple[int, str]]  # site -> (seq, body) of its newest telemetry
    epochs: dict[tuple[str, str], str]  # the one epoch of each key's batches ("" none)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(site, stream) keys in one global order (locks are taken in it)."""
        return sorted(self.ranges)

    @property
    def sites(self) -> list[str]:
        return sorted({site for site, _ in self.ranges})


def plan_group(batches: Iterable[BatchLike]) -> GroupPlan:
    """Rows, ranges and newest telemetry of some batches; raises TypeError/ValueError
    (from ``record_json``) when a record cannot be stored as JSON, MixedEpochs when
    one key has batches of two epochs (:func:`epoch_groups` splits them)."""
    plan = GroupPlan({}, {}, {}, {}, {})
    for batch in batches:
        key = (batch.site, batch.stream)
        if plan.epochs.setdefault(key, batch.epoch) != batch.epoch:
            raise MixedEpochs(
                f"{key[0]}/{key[1]}: batches of epochs {plan.epochs[key]!r} and "
                f"{batch.epoch!r} in one plan"
            )
        plan.ranges.setdefault(key, []).append((batch.first, batch.last))
        plan.received[key] = plan.received.get(key, 0) + len(batch.records)
        rows = plan.rows.setdefault(key, [])
        seq = batch.first
        body = ""
        for record in batch.records:
            body = record_json(record)
            rows.append(
                (batch.site, batch.stream, seq, record_kind(record), record_id(record), body)
            )
            seq += 1
        if batch.stream == "telemetry" and batch.records:
            newest = plan.telemetry.get(batch.site)
            if newest is None or newest[0] < batch.last:
                plan.telemetry[batch.site] = (batch.last, body)
    return plan


@dataclass(frozen=True)
class StreamRow:
    site: str
    stream: str
    contiguous: int
    highest: int
    records: int
    epoch: str | None = None
    conflict_epoch: str | None = None  # the last epoch refused, and when
    conflict_at: str | None = None


@dataclass(frozen=True)
class SiteRow:
    site: str
    last_seen: str | None  # ISO 8601 UTC
    status: dict[str, Any] | None
    telemetry: dict[str, Any] | None


def site_views(sites: Sequence[SiteRow], streams: Sequence[StreamRow]) -> list[dict[str, Any]]:
    """The ``sites`` list of GET /status."""
    by_site: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, dict[str, Any]] = {}
    for row in streams:
        by_site.setdefault(row.site, {})[row.stream] = {
            "confirmed_upto": row.contiguous,
            "records": row.records,
            "highest_seq": row.highest,
        }
        if row.conflict_epoch is not None and row.conflict_at is not None:
            shown = conflicts.get(row.site)
            if shown is None or shown["at"] < row.conflict_at:
                conflicts[row.site] = {
                    "stored": row.epoch,
                    "seen": row.conflict_epoch,
                    "at": row.conflict_at,
                }
    out = []
    for site in sorted(sites, key=lambda s: s.site):
        status = site.status or {}
        out.append(
            {
                "site": site.site,
                "last_seen": site.last_seen,
                "online": status.get("state") == "online",
                "status": site.status,
                "streams": by_site.get(site.site, {}),
                "telemetry": site.telemetry,
                "epoch_conflict": conflicts.get(site.site),
            }
        )
    return out
