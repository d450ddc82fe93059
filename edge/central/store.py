"""Where central keeps what the stations sent: one small interface, two back-ends
(``sqlite_store`` and ``pg_store``), chosen by the database URL.

Tables (same meaning in both):
- ``records(site, stream, seq, kind, record_id, body, received_at)``, unique on
  (site, stream, seq): a record arrives any number of times and is kept once.
- ``progress(site, stream, contiguous_seq, highest_seq, records, last_seen, epoch,
  conflict_epoch, conflict_at)``: ``contiguous_seq`` is the acknowledgement, the
  highest seq with every seq from 1 up to it stored; ``epoch`` the station
  database whose seqs these are (set by the first batch that carries one): a
  batch of another epoch is not stored, and its epoch and time are kept in
  ``conflict_epoch``/``conflict_at`` for GET /status.
- ``sites(site, last_seen, status, status_at, telemetry, telemetry_seq, telemetry_at)``.
- ``refused(site, stream, first_seq, last_seq, epoch, reason, seq, detail, times,
  first_at, last_at)``: batches central will never store (invalid records, a
  decoding failure past the header, content the database refused), whose header
  decoded. Their seqs count as done for ``contiguous_seq`` (the station is told
  through a refusal in the ack and keeps those records as refused), so the records
  after them are acknowledged as they arrive.

``store_batches`` writes a group of batches in one transaction; the
acknowledgement it returns is true only once that transaction has committed.

Downlink (central -> station, docs/mqtt.md "Downlink"; schema version 4):

- ``orders(id, site, status, version, body, content_hash, imported_at,
  updated_at)``: every imported order's latest state (``edge.central.downqueue``).
- ``down_queue(site, seq, kind, record_id, body, created_at)``: the records queued
  to each point, seqs 1, 2, 3... per site without gaps; kept after they are acked.
- ``down_progress(site, queued_upto, acked_upto, sent_upto, sent_at, acked_at)``.
- ``central_meta`` key ``down_epoch``: 16 hex digits made once per database, sent
  with every downlink batch so a station never mixes two databases' seqs.

Schema version 2 added the epoch columns, version 3 the ``refused`` table, version 4
the downlink tables; an older database gets them (empty) when it is opened.

Failures are told apart: :class:`StoreUnavailable` (the database is down, locked,
full, read-only, its connection lost, a table missing...) leaves the messages
unacknowledged so they come again; :class:`BatchRefused` (the database refused
these values: invalid text such as a NUL for PostgreSQL or a lone surrogate for
SQLite, a number out of range, a constraint) will never succeed and is answered as a
refusal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from edge.central.core import (
    BatchLike,
    GroupPlan,
    Refused,
    RefusedProgress,
    SiteRow,
    StreamProgress,
    StreamRow,
    epoch_groups,
    parse_db_url,
    plan_group,
    site_views,
)
from edge.central.downqueue import QueuedRow, check_site, queued_rows
from edge.central.lots import VIEW_TYPES, SiteView, site_view
from edge.ids import utc_now

SCHEMA_VERSION = 4
MIGRATABLE = frozenset({1, 2, 3})
"""Older central schema versions that opening the store upgrades in place."""


class StoreError(Exception):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """Cannot write now (database down, locked, disk full): try again later."""


class BatchRefused(StoreError):
    """These records can never be stored as they are (the reason says why)."""


class CentralStore(ABC):
    """Idempotent storage of batches and the sites' latest state."""

    description = ""
    """Which database, for logs: ``SQLite /abs/path.db`` or ``PostgreSQL host:port/db``."""

    @abstractmethod
    def store_plan(
        self, plan: GroupPlan, received_at: datetime | None = None
    ) -> list[StreamProgress]:
        """Store planned batches (``core.plan_group``) in one transaction; per
        (site, stream) touched, the contiguous mark after it and how many records
        were new or duplicates. A key whose batches carry another epoch than the
        one stored for it is not stored: its StreamProgress has ``conflict`` set
        (and the conflict is kept for GET /status)."""

    def store_batches(
        self, batches: Sequence[BatchLike], received_at: datetime | None = None
    ) -> list[StreamProgress]:
        """``store_plan`` of these batches (one transaction, or one per epoch group
        when a (site, stream) has batches of several epochs: ``core.epoch_groups``);
        BatchRefused if a record cannot be JSON."""
        out: list[StreamProgress] = []
        for group in epoch_groups(batches):
            out += self.store_plan(plan_batches(group), received_at)
        return out

    def store_batch(self, batch: BatchLike, received_at: datetime | None = None) -> int:
        """Store one batch; the highest contiguous seq stored for its site and stream."""
        return self.store_batches([batch], received_at)[0].upto

    @abstractmethod
    def refuse(
        self, refusals: Sequence[Refused], received_at: datetime | None = None
    ) -> list[RefusedProgress]:
        """Record batches central will never store, in one transaction: per refusal
        (in order) the epoch verdict against the epoch held for its (site, stream),
        and when that is ``core.EPOCH_OK`` its range is kept in ``refused`` and counts
        as done for the contiguous mark (which may then move past it)."""

    @abstractmethod
    def note_status(self, site: str, status: Mapping[str, Any], at: datetime | None = None) -> None:
        """Remember a site's retained status message (and that it was seen)."""

    @abstractmethod
    def stream_rows(self) -> list[StreamRow]: ...

    @abstractmethod
    def site_rows(self) -> list[SiteRow]: ...

    @abstractmethod
    def seqs(self, site: str, stream: str) -> list[int]:
        """Every stored seq of a site's stream, ascending (for checks and tests)."""

    @abstractmethod
    def record(self, site: str, stream: str, seq: int) -> dict[str, Any] | None:
        """One stored record's body."""

    @abstractmethod
    def records_of(self, site: str, stream: str, kinds: Sequence[str]) -> list[dict[str, Any]]:
        """The stored records of a site's stream whose type is one of ``kinds``, by seq."""

    # -- downlink (schema version 4) ----------------------------------------------------

    @abstractmethod
    def import_orders(
        self, orders: Sequence[Mapping[str, Any]], at: datetime | None = None
    ) -> dict[str, int]:
        """Store imported orders and queue what changed down to their points, in one
        transaction (rules: ``edge.central.downqueue``): ``{"accepted", "updated",
        "cancelled", "unchanged"}`` counts of orders. Each order is the downlink
        ``order`` record without ``version``/``created_at``, plus ``"site"``.
        ValueError (nothing stored) for an order without a sane id, site or status."""

    def queue_down(
        self, site: str, records: Sequence[Mapping[str, Any]], at: datetime | None = None
    ) -> list[int]:
        """Append records (``product``, ``tracking_block``...) to a site's downlink in
        one transaction; their seqs. ValueError (nothing written) for a bad site or
        record."""
        check_site(site)
        rows = queued_rows(records)  # ValueError before anything is written
        if not rows:
            return []
        return self._queue_down(site, rows, at or utc_now())

    @abstractmethod
    def _queue_down(self, site: str, rows: Sequence[QueuedRow], at: datetime) -> list[int]:
        """:meth:`queue_down` of checked rows (at least one), in one transaction."""

    @abstractmethod
    def orders_of(self, site: str | None = None) -> list[dict[str, Any]]:
        """Stored orders (of one site, or all) by id: ``{"id", "site", "status",
        "version", "body"}``, ``body`` the order record as last queued."""

    @abstractmethod
    def down_progress(self) -> list[dict[str, Any]]:
        """Per site with a downlink, by site: ``{"site", "queued_upto", "acked_upto",
        "sent_upto", "sent_at", "acked_at", "epoch"}``."""

    @abstractmethod
    def down_epoch(self) -> str:
        """This database's downlink epoch (16 lower-case hex digits)."""

    @abstractmethod
    def down_records(self, site: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` queued records of a site with seq > ``after``, ascending,
        each with its ``seq``."""

    @abstractmethod
    def note_down_ack(self, site: str, upto: int, at: datetime | None = None) -> int:
        """A station applied its downlink up to ``upto``: ``acked_upto`` moves up to it
        (never down, never past ``queued_upto``); the acked_upto after."""

    @abstractmethod
    def note_down_sent(self, site: str, upto: int, at: datetime | None = None) -> None:
        """The sender published a site's downlink up to ``upto`` (for status)."""

    def site_view(self, site: str) -> SiteView:
        """The site's lots, farmers and products as corrected (``edge.central.lots``)."""
        return site_view(self.records_of(site, "records", VIEW_TYPES))

    @abstractmethod
    def close(self) -> None: ...

    def contiguous(self, site: str, stream: str) -> int:
        for row in self.stream_rows():
            if row.site == site and row.stream == stream:
                return row.contiguous
        return 0

    def sites(self) -> list[dict[str, Any]]:
        """The ``sites`` part of GET /status."""
        return site_views(self.site_rows(), self.stream_rows())

    def __enter__(self) -> CentralStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def plan_batches(batches: Sequence[BatchLike]) -> GroupPlan:
    """``core.plan_group``, with a record that JSON cannot hold as BatchRefused."""
    try:
        return plan_group(batches)
    except (TypeError, ValueError) as exc:
        raise BatchRefused(str(exc)) from None


def open_store(url: str) -> CentralStore:
    """The store behind a database URL (``sqlite:///...`` or ``postgresql://...``);
    creates the tables if needed. Raises DbUrlError for a bad URL and
    StoreUnavailable when the database cannot be opened."""
    parsed = parse_db_url(url)
    if parsed.kind == "sqlite":
        from edge.central.sqlite_store import SqliteStore

        assert parsed.path is not None
        return SqliteStore(parsed.path)
    from edge.central.pg_store import PgStore

    return PgStore(parsed.conninfo)
