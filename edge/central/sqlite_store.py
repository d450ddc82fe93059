"""The SQLite back-end: one file, WAL, ``synchronous=FULL`` (an acknowledged
batch survives a power cut), one ``BEGIN IMMEDIATE`` transaction per group of
batches. Several ingest processes may share the file: SQLite lets one writer
in at a time and the others wait (busy timeout), so reading the contiguous mark
and advancing it happen under the same lock."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edge.central.core import (
    EPOCH_CONFLICT,
    EPOCH_MISSING,
    EPOCH_OK,
    REPEAT_REFUSAL_S,
    GroupPlan,
    RecentRefusal,
    Refused,
    RefusedProgress,
    SiteRow,
    StreamProgress,
    StreamRow,
    advance_upto,
    covered_upto,
    epoch_verdict,
)
from edge.central.downqueue import (
    QueuedRow,
    StoredOrder,
    canonical_json,
    check_orders,
    new_epoch,
    plan_import,
    queued_rows,
)
from edge.central.store import (
    MIGRATABLE,
    SCHEMA_VERSION,
    BatchRefused,
    CentralStore,
    StoreError,
    StoreUnavailable,
)
from edge.ids import iso, parse_iso, utc_now

BUSY_TIMEOUT_S = 60.0
ID_CHUNK = 500
"""Order ids looked up per query (SQLite's bound parameters are limited)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS central_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (site, stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS progress (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    contiguous_seq INTEGER NOT NULL DEFAULT 0,
    highest_seq INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT NOT NULL,
    epoch TEXT,
    conflict_epoch TEXT,
    conflict_at TEXT,
    PRIMARY KEY (site, stream)
);
CREATE TABLE IF NOT EXISTS refused (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    epoch TEXT,
    reason TEXT NOT NULL,
    seq INTEGER NOT NULL,
    detail TEXT NOT NULL,
    times INTEGER NOT NULL DEFAULT 1,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (site, stream, first_seq, last_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    last_seen TEXT,
    status TEXT,
    status_at TEXT,
    telemetry TEXT,
    telemetry_seq INTEGER,
    telemetry_at TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_site ON orders (site, id);
CREATE TABLE IF NOT EXISTS down_queue (
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (site, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS down_progress (
    site TEXT PRIMARY KEY,
    queued_upto INTEGER NOT NULL DEFAULT 0,
    acked_upto INTEGER NOT NULL DEFAULT 0,
    sent_upto INTEGER NOT NULL DEFAULT 0,
    sent_at TEXT,
    acked_at TEXT
);
"""

EPOCH_COLUMNS = ("epoch", "conflict_epoch", "conflict_at")
"""Added by schema version 2 (a version 1 database gets them when opened)."""

INSERT_RECORD = (
    "INSERT INTO records (site, stream, seq, kind, record_id, body, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
PROGRESS = (
    "SELECT contiguous_seq, highest_seq, epoch, (SELECT max(last_seq) FROM refused r "
    "WHERE r.site = p.site AND r.stream = p.stream) FROM progress p "
    "WHERE site = ? AND stream = ?"
)
REFUSED_END = (
    "SELECT max(last_seq) FROM refused "
    "WHERE site = ? AND stream = ? AND first_seq <= ? AND last_seq > ?"
)
LATEST_REFUSED = (
    "SELECT first_seq, last_seq, seq, reason FROM refused "
    "WHERE site = ? AND stream = ? AND last_at >= ? "
    "ORDER BY last_at DESC, last_seq DESC LIMIT 1"
)
UPSERT_REFUSED = (
    "INSERT INTO refused (site, stream, first_seq, last_seq, epoch, reason, seq, detail, "
    "first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (site, stream, first_seq, last_seq) DO UPDATE SET "
    "times = times + 1, last_at = excluded.last_at, reason = excluded.reason, "
    "seq = excluded.seq, detail = excluded.detail, epoch = excluded.epoch"
)
RUN_END = (
    "SELECT r.seq FROM records r WHERE r.site = ? AND r.stream = ? AND r.seq > ? "
    "AND NOT EXISTS (SELECT 1 FROM records n "
    "WHERE n.site = r.site AND n.stream = r.stream AND n.seq = r.seq + 1) "
    "ORDER BY r.seq LIMIT 1"
)


DATA_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,  # a value sqlite3 cannot bind
    OverflowError,  # an integer beyond 64 bits
    ValueError,  # UnicodeEncodeError: a lone surrogate cannot be UTF-8
)
"""Failures caused by the values stored, never by the database's state: permanent.
Every other sqlite3.Error (OperationalError: locked, read-only, disk full, I/O; a
damaged or missing schema) is the database's state: transient, retried."""


class SqliteStore(CentralStore):
    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.description = f"SQLite {path.resolve()}"
        if not path.parent.exists():
            raise StoreUnavailable(
                f"cannot open SQLite database {path}: folder {path.parent} does not exist"
            )
        try:
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._wal(busy_timeout_s)
            self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {path}: {exc}") from None
        self._lock = threading.Lock()
        with self._transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute(
                "SELECT value FROM central_meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is not None and int(row[0]) not in (SCHEMA_VERSION, *MIGRATABLE):
                raise StoreError(
                    f"{path} has central schema version {row[0]}, this program knows "
                    f"{SCHEMA_VERSION}: use a matching edge version"
                )
            have = {r[1] for r in self._db.execute("PRAGMA table_info(progress)")}
            for column in EPOCH_COLUMNS:
                if column not in have:  # a version 1 database
                    self._db.execute(f"ALTER TABLE progress ADD COLUMN {column} TEXT")
            self._db.execute(
                "INSERT INTO central_meta VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
            self._db.execute(
                "INSERT INTO central_meta VALUES ('down_epoch', ?) ON CONFLICT DO NOTHING",
                (new_epoch(),),
            )

    def _wal(self, busy_timeout_s: float) -> None:
        """WAL mode; switching a new file to it while another process opens the same
        file may report "locked" at once (no busy handler for that step): retried."""
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: cannot start a write: {exc}") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(exc, DATA_ERRORS):  # these values can never be stored
                    raise BatchRefused(f"{self.path}: {type(exc).__name__}: {exc}") from None
                if isinstance(exc, sqlite3.Error):  # locked, read-only, full, I/O, schema
                    raise StoreUnavailable(f"{self.path}: {exc}") from None
                raise

    def store_plan(
        self, plan: GroupPlan, received_at: datetime | None = None
    ) -> list[StreamProgress]:
        if not plan.rows:
            return []
        now = iso(received_at or utc_now())
        with self._transaction() as db:
            out = [self._store_key(db, plan, key, now) for key in plan.keys]
            refused = {
                p.site for p in out if (p.conflict or p.missing_epoch) and p.stream == "telemetry"
            }
            for site in plan.sites:
                db.execute(
                    "INSERT INTO sites (site, last_seen) VALUES (?, ?) ON CONFLICT (site) "
                    "DO UPDATE SET last_seen = max(coalesce(last_seen, ''), excluded.last_seen)",
                    (site, now),
                )
            for site, (seq, body) in plan.telemetry.items():
                if site in refused:
                    continue  # another database's telemetry: not this site's state
                db.execute(
                    "UPDATE sites SET telemetry = ?, telemetry_seq = ?, telemetry_at = ? "
                    "WHERE site = ? AND coalesce(telemetry_seq, 0) < ?",
                    (body, seq, now, site, seq),
                )
        return out

    def _store_key(
        self, db: sqlite3.Connection, plan: GroupPlan, key: tuple[str, str], now: str
    ) -> StreamProgress:
        site, stream = key
        row = db.execute(PROGRESS, key).fetchone()
        contiguous, highest, stored, refused_upto = (
            (row[0], row[1], row[2], row[3] or 0) if row else (0, 0, None, 0)
        )
        seen = plan.epochs[key]
        epoch, verdict = epoch_verdict(stored, seen)
        if verdict == EPOCH_MISSING:
            return StreamProgress(site, stream, contiguous, 0, 0, stored or "", missing_epoch=True)
        if verdict == EPOCH_CONFLICT:
            db.execute(
                "UPDATE progress SET conflict_epoch = ?, conflict_at = ? "
                "WHERE site = ? AND stream = ?",
                (seen, now, site, stream),
            )
            return StreamProgress(site, stream, contiguous, 0, 0, stored or "", seen)
        before = db.total_changes
        db.executemany(INSERT_RECORD, [(*row, now) for row in plan.rows[key]])
        inserted = db.total_changes - before
        ranges = plan.ranges[key]
        highest = max(highest, *(last for _, last in ranges))
        upto = self._advance(db, key, covered_upto(contiguous, ranges), highest, refused_upto)
        self._set_progress(db, key, upto, highest, inserted, now, epoch)
        received = plan.received[key]
        refusal = None
        if refused_upto:  # a stream that had a refusal: say the latest again for a while
            since = iso(parse_iso(now) - timedelta(seconds=REPEAT_REFUSAL_S))
            row = db.execute(LATEST_REFUSED, (*key, since)).fetchone()
            refusal = RecentRefusal(*row) if row else None
        return StreamProgress(
            site, stream, upto, inserted, received - inserted, epoch or "", refusal=refusal
        )

    def _advance(
        self, db: sqlite3.Connection, key: tuple[str, str], upto: int, highest: int, refused: int
    ) -> int:
        def refused_end(at: int) -> int:
            row = db.execute(REFUSED_END, (*key, at + 1, at)).fetchone()
            return int(row[0]) if row and row[0] is not None else at

        return advance_upto(
            upto, highest, refused, lambda at: self._run_end(db, *key, at), refused_end
        )

    @staticmethod
    def _set_progress(
        db: sqlite3.Connection,
        key: tuple[str, str],
        upto: int,
        highest: int,
        inserted: int,
        now: str,
        epoch: str | None,
    ) -> None:
        db.execute(
            "INSERT INTO progress "
            "(site, stream, contiguous_seq, highest_seq, records, last_seen, epoch) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, stream) DO UPDATE SET "
            "contiguous_seq = excluded.contiguous_seq, highest_seq = excluded.highest_seq, "
            "records = records + excluded.records, last_seen = excluded.last_seen, "
            "epoch = excluded.epoch",
            (*key, upto, highest, inserted, now, epoch),
        )

    def refuse(
        self, refusals: Sequence[Refused], received_at: datetime | None = None
    ) -> list[RefusedProgress]:
        if not refusals:
            return []
        now = iso(received_at or utc_now())
        out: list[RefusedProgress] = []
        with self._transaction() as db:
            for r in refusals:
                key = (r.site, r.stream)
                row = db.execute(PROGRESS, key).fetchone()
                contiguous, highest, stored, refused_upto = (
                    (row[0], row[1], row[2], row[3] or 0) if row else (0, 0, None, 0)
                )
                epoch, verdict = epoch_verdict(stored, r.epoch)
                if verdict == EPOCH_CONFLICT:
                    db.execute(
                        "UPDATE progress SET conflict_epoch = ?, conflict_at = ? "
                        "WHERE site = ? AND stream = ?",
                        (r.epoch, now, *key),
                    )
                if verdict != EPOCH_OK:
                    out.append(RefusedProgress(r, 0, "", verdict))
                    continue
                db.execute(
                    UPSERT_REFUSED,
                    (*key, r.first, r.last, epoch, r.reason, r.seq, r.detail, now, now),
                )
                upto = self._advance(db, key, contiguous, highest, max(refused_upto, r.last))
                self._set_progress(db, key, upto, highest, 0, now, epoch)
                out.append(RefusedProgress(r, upto, epoch or "", verdict))
        return out

    @staticmethod
    def _run_end(db: sqlite3.Connection, site: str, stream: str, upto: int) -> int:
        """Past ``upto``, the end of the run of stored seqs that starts at upto + 1."""
        nxt = db.execute(
            "SELECT 1 FROM records WHERE site = ? AND stream = ? AND seq = ?",
            (site, stream, upto + 1),
        ).fetchone()
        if nxt is None:
            return upto
        end = db.execute(RUN_END, (site, stream, upto)).fetchone()
        return int(end[0])

    def note_status(self, site: str, status: Mapping[str, Any], at: datetime | None = None) -> None:
        now = iso(at or utc_now())
        body = json.dumps(dict(status), ensure_ascii=False, separators=(",", ":"))
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sites (site, last_seen, status, status_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (site) DO UPDATE SET status = excluded.status, "
                "status_at = excluded.status_at, "
                "last_seen = max(coalesce(last_seen, ''), excluded.last_seen)",
                (site, now, body, now),
            )

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from None

    def stream_rows(self) -> list[StreamRow]:
        rows = self._read(
            "SELECT site, stream, contiguous_seq, highest_seq, records, epoch, "
            "conflict_epoch, conflict_at FROM progress ORDER BY site, stream"
        )
        return [StreamRow(*row) for row in rows]

    def site_rows(self) -> list[SiteRow]:
        rows = self._read("SELECT site, last_seen, status, telemetry FROM sites ORDER BY site")
        return [
            SiteRow(
                site,
                last_seen,
                json.loads(status) if status else None,
                json.loads(telemetry) if telemetry else None,
            )
            for site, last_seen, status, telemetry in rows
        ]

    def seqs(self, site: str, stream: str) -> list[int]:
        rows = self._read(
            "SELECT seq FROM records WHERE site = ? AND stream = ? ORDER BY seq", (site, stream)
        )
        return [int(r[0]) for r in rows]

    def record(self, site: str, stream: str, seq: int) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT body FROM records WHERE site = ? AND stream = ? AND seq = ?",
            (site, stream, seq),
        )
        return json.loads(rows[0][0]) if rows else None

    def records_of(self, site: str, stream: str, kinds: Sequence[str]) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in kinds)
        rows = self._read(
            f"SELECT body FROM records WHERE site = ? AND stream = ? AND kind IN ({marks}) "
            "ORDER BY seq",
            (site, stream, *kinds),
        )
        return [json.loads(r[0]) for r in rows]

    # -- downlink ------------------------------------------------------------------------

    def import_orders(
        self, orders: Sequence[Mapping[str, Any]], at: datetime | None = None
    ) -> dict[str, int]:
        now = iso(at or utc_now())
        ids = check_orders(orders)
        with self._transaction() as db:
            stored: dict[str, StoredOrder] = {}
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start : start + ID_CHUNK]
                marks = ", ".join("?" for _ in chunk)
                for oid, site, status, version, digest, body in db.execute(
                    "SELECT id, site, status, version, content_hash, body FROM orders "
                    f"WHERE id IN ({marks})",
                    chunk,
                ):
                    stored[oid] = StoredOrder(oid, site, status, version, digest, json.loads(body))
            plan = plan_import(orders, stored, now)
            db.executemany(
                "INSERT INTO orders (id, site, status, version, body, content_hash, "
                "imported_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET site = excluded.site, status = excluded.status, "
                "version = excluded.version, body = excluded.body, "
                "content_hash = excluded.content_hash, updated_at = excluded.updated_at",
                [
                    (r.id, r.site, r.status, r.version, canonical_json(r.body), r.hash, now, now)
                    for r in plan.rows.values()
                ],
            )
            for site in sorted(plan.queue):
                self._queue(db, site, queued_rows(plan.queue[site]), now)
        return plan.counts

    @staticmethod
    def _queue(db: sqlite3.Connection, site: str, rows: Sequence[QueuedRow], now: str) -> list[int]:
        db.execute("INSERT INTO down_progress (site) VALUES (?) ON CONFLICT DO NOTHING", (site,))
        (upto,) = db.execute(
            "SELECT queued_upto FROM down_progress WHERE site = ?", (site,)
        ).fetchone()
        seqs = list(range(upto + 1, upto + 1 + len(rows)))
        db.executemany(
            "INSERT INTO down_queue (site, seq, kind, record_id, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(site, seq, *row, now) for seq, row in zip(seqs, rows, strict=True)],
        )
        db.execute(
            "UPDATE down_progress SET queued_upto = ? WHERE site = ?", (upto + len(rows), site)
        )
        return seqs

    def _queue_down(self, site: str, rows: Sequence[QueuedRow], at: datetime) -> list[int]:
        with self._transaction() as db:
            return self._queue(db, site, rows, iso(at))

    def orders_of(self, site: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE site = ?", (site,)) if site is not None else ("", ())
        rows = self._read(
            f"SELECT id, site, status, version, body FROM orders {where} ORDER BY id", params
        )
        return [
            {"id": i, "site": s, "status": st, "version": v, "body": json.loads(b)}
            for i, s, st, v, b in rows
        ]

    def down_epoch(self) -> str:
        rows = self._read("SELECT value FROM central_meta WHERE key = 'down_epoch'")
        return str(rows[0][0])

    def down_progress(self) -> list[dict[str, Any]]:
        epoch = self.down_epoch()
        rows = self._read(
            "SELECT site, queued_upto, acked_upto, sent_upto, sent_at, acked_at "
            "FROM down_progress ORDER BY site"
        )
        keys = ("site", "queued_upto", "acked_upto", "sent_upto", "sent_at", "acked_at")
        return [{**dict(zip(keys, row, strict=True)), "epoch": epoch} for row in rows]

    def down_records(self, site: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT seq, body FROM down_queue WHERE site = ? AND seq > ? ORDER BY seq LIMIT ?",
            (site, after, limit),
        )
        return [{**json.loads(body), "seq": seq} for seq, body in rows]

    def note_down_ack(self, site: str, upto: int, at: datetime | None = None) -> int:
        now = iso(at or utc_now())
        with self._transaction() as db:
            db.execute(
                "UPDATE down_progress SET acked_upto = min(queued_upto, ?), acked_at = ? "
                "WHERE site = ? AND acked_upto < min(queued_upto, ?)",
                (upto, now, site, upto),
            )
            row = db.execute(
                "SELECT acked_upto FROM down_progress WHERE site = ?", (site,)
            ).fetchone()
        return int(row[0]) if row else 0

    def note_down_sent(self, site: str, upto: int, at: datetime | None = None) -> None:
        now = iso(at or utc_now())
        with self._transaction() as db:
            db.execute(
                "UPDATE down_progress SET sent_upto = max(sent_upto, ?), sent_at = ? "
                "WHERE site = ?",
                (upto, now, site),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
