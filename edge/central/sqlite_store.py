"""The SQLite back-end: one file, WAL, ``synchronous=FULL`` (an acknowledged
batch survives a power cut), one ``BEGIN IMMEDIATE`` transaction per group of
batches. Several ingest processes may share the file: SQLite lets one writer
in at a time and the others wait (busy timeout), so reading the contiguous mark
and advancing it happen under the same lock."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.central.core import (
    GroupPlan,
    SiteRow,
    StreamProgress,
    StreamRow,
    covered_upto,
    epoch_verdict,
)
from edge.central.store import (
    MIGRATABLE,
    SCHEMA_VERSION,
    BatchRefused,
    CentralStore,
    StoreError,
    StoreUnavailable,
)
from edge.ids import iso, utc_now

BUSY_TIMEOUT_S = 60.0

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
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    last_seen TEXT,
    status TEXT,
    status_at TEXT,
    telemetry TEXT,
    telemetry_seq INTEGER,
    telemetry_at TEXT
);
"""

EPOCH_COLUMNS = ("epoch", "conflict_epoch", "conflict_at")
"""Added by schema version 2 (a version 1 database gets them when opened)."""

INSERT_RECORD = (
    "INSERT INTO records (site, stream, seq, kind, record_id, body, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
RUN_END = (
    "SELECT r.seq FROM records r WHERE r.site = ? AND r.stream = ? AND r.seq > ? "
    "AND NOT EXISTS (SELECT 1 FROM records n "
    "WHERE n.site = r.site AND n.stream = r.stream AND n.seq = r.seq + 1) "
    "ORDER BY r.seq LIMIT 1"
)


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
            self._db.execute("PRAGMA journal_mode=WAL")
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
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(f"{self.path}: {exc}") from None
                if isinstance(exc, sqlite3.Error | OverflowError):
                    raise BatchRefused(f"{self.path}: {exc}") from None
                raise

    def store_plan(
        self, plan: GroupPlan, received_at: datetime | None = None
    ) -> list[StreamProgress]:
        if not plan.rows:
            return []
        now = iso(received_at or utc_now())
        with self._transaction() as db:
            out = [self._store_key(db, plan, key, now) for key in plan.keys]
            refused = {p.site for p in out if p.conflict and p.stream == "telemetry"}
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
        row = db.execute(
            "SELECT contiguous_seq, highest_seq, epoch FROM progress WHERE site = ? AND stream = ?",
            key,
        ).fetchone()
        contiguous, highest, stored = (row[0], row[1], row[2]) if row else (0, 0, None)
        seen = plan.epochs[key]
        epoch, refused = epoch_verdict(stored, seen)
        if refused:
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
        upto = covered_upto(contiguous, ranges)
        if upto < highest:
            upto = self._run_end(db, site, stream, upto)
        db.execute(
            "INSERT INTO progress "
            "(site, stream, contiguous_seq, highest_seq, records, last_seen, epoch) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, stream) DO UPDATE SET "
            "contiguous_seq = excluded.contiguous_seq, highest_seq = excluded.highest_seq, "
            "records = records + excluded.records, last_seen = excluded.last_seen, "
            "epoch = excluded.epoch",
            (site, stream, upto, highest, inserted, now, epoch),
        )
        received = plan.received[key]
        return StreamProgress(site, stream, upto, inserted, received - inserted, epoch or "")

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

    def close(self) -> None:
        with self._lock:
            self._db.close()
