"""The PostgreSQL back-end (psycopg 3). A group of batches is one transaction:
the progress rows of its (site, stream) keys are locked first, in one order
(so several ingest processes serialise per stream and never deadlock), the
records of each key go in as one ``INSERT ... SELECT FROM unnest(arrays) ON
CONFLICT DO NOTHING`` (one round trip, arrays sent in binary), and the
contiguous mark moves past any gap that is now filled. Bodies are ``json``:
validated text stored as sent (cheaper to insert than ``jsonb``, and it keeps a
U+0000 that ``jsonb`` refuses); cast to ``jsonb`` in queries that need its operators."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from edge.central.core import (
    EPOCH_CONFLICT,
    EPOCH_MISSING,
    EPOCH_OK,
    REPEAT_REFUSAL_S,
    DbUrlError,
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
from edge.ids import iso, utc_now

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS central_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS records (
        site text NOT NULL,
        stream text NOT NULL,
        seq bigint NOT NULL,
        kind text NOT NULL,
        record_id text,
        body json NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (site, stream, seq))""",
    """CREATE TABLE IF NOT EXISTS progress (
        site text NOT NULL,
        stream text NOT NULL,
        contiguous_seq bigint NOT NULL DEFAULT 0,
        highest_seq bigint NOT NULL DEFAULT 0,
        records bigint NOT NULL DEFAULT 0,
        last_seen timestamptz NOT NULL,
        epoch text,
        conflict_epoch text,
        conflict_at timestamptz,
        PRIMARY KEY (site, stream))""",
    """CREATE TABLE IF NOT EXISTS refused (
        site text NOT NULL,
        stream text NOT NULL,
        first_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        epoch text,
        reason text NOT NULL,
        seq bigint NOT NULL,
        detail text NOT NULL,
        times bigint NOT NULL DEFAULT 1,
        first_at timestamptz NOT NULL,
        last_at timestamptz NOT NULL,
        PRIMARY KEY (site, stream, first_seq, last_seq))""",
    """CREATE TABLE IF NOT EXISTS sites (
        site text PRIMARY KEY,
        last_seen timestamptz,
        status jsonb,
        status_at timestamptz,
        telemetry jsonb,
        telemetry_seq bigint,
        telemetry_at timestamptz)""",
    """CREATE TABLE IF NOT EXISTS orders (
        id text PRIMARY KEY,
        site text NOT NULL,
        status text NOT NULL,
        version bigint NOT NULL,
        body json NOT NULL,
        content_hash text NOT NULL,
        imported_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS orders_site ON orders (site, id)",
    """CREATE TABLE IF NOT EXISTS down_queue (
        site text NOT NULL,
        seq bigint NOT NULL,
        kind text NOT NULL,
        record_id text,
        body json NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (site, seq))""",
    """CREATE TABLE IF NOT EXISTS down_progress (
        site text PRIMARY KEY,
        queued_upto bigint NOT NULL DEFAULT 0,
        acked_upto bigint NOT NULL DEFAULT 0,
        sent_upto bigint NOT NULL DEFAULT 0,
        sent_at timestamptz,
        acked_at timestamptz)""",
]

TO_VERSION_2 = [  # the station database's epoch, on a version 1 database (3: SCHEMA)
    "ALTER TABLE progress ADD COLUMN IF NOT EXISTS epoch text",
    "ALTER TABLE progress ADD COLUMN IF NOT EXISTS conflict_epoch text",
    "ALTER TABLE progress ADD COLUMN IF NOT EXISTS conflict_at timestamptz",
]

LOCK_PROGRESS = (
    "INSERT INTO progress AS p (site, stream, last_seen) VALUES (%s, %s, %s) "
    "ON CONFLICT (site, stream) DO UPDATE SET site = p.site "
    "RETURNING contiguous_seq, highest_seq, epoch, (SELECT max(last_seq) FROM refused r "
    "WHERE r.site = p.site AND r.stream = p.stream)"
)
REFUSED_END = (
    "SELECT max(last_seq) FROM refused "
    "WHERE site = %s AND stream = %s AND first_seq <= %s AND last_seq > %s"
)
UPSERT_REFUSED = (
    "INSERT INTO refused AS f (site, stream, first_seq, last_seq, epoch, reason, seq, "
    "detail, first_at, last_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (site, stream, first_seq, last_seq) DO UPDATE SET "
    "times = f.times + 1, last_at = excluded.last_at, reason = excluded.reason, "
    "seq = excluded.seq, detail = excluded.detail, epoch = excluded.epoch"
)
LATEST_REFUSED = (
    "SELECT first_seq, last_seq, seq, reason FROM refused "
    "WHERE site = %s AND stream = %s AND last_at >= %s "
    "ORDER BY last_at DESC, last_seq DESC LIMIT 1"
)
SET_PROGRESS = (
    "UPDATE progress SET contiguous_seq = %s, highest_seq = %s, "
    "records = records + %s, last_seen = %s, epoch = %s "
    "WHERE site = %s AND stream = %s"
)
INSERT_RECORDS = (
    "INSERT INTO records (site, stream, seq, kind, record_id, body, received_at) "
    "SELECT %s, %s, seq, kind, record_id, body::json, %s "
    "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[]) "
    "AS t(seq, kind, record_id, body) ON CONFLICT DO NOTHING"
)
_NEWER = "excluded.telemetry_seq > coalesce(s.telemetry_seq, 0)"
UPSERT_SITE = (
    "INSERT INTO sites AS s (site, last_seen, telemetry, telemetry_seq, telemetry_at) "
    "VALUES (%s, %s, %s::jsonb, %s, %s) ON CONFLICT (site) DO UPDATE "
    "SET last_seen = greatest(s.last_seen, excluded.last_seen), "
    f"telemetry = CASE WHEN {_NEWER} THEN excluded.telemetry ELSE s.telemetry END, "
    f"telemetry_at = CASE WHEN {_NEWER} THEN excluded.telemetry_at ELSE s.telemetry_at END, "
    "telemetry_seq = greatest(s.telemetry_seq, excluded.telemetry_seq)"
)
RUN_END = (
    "SELECT r.seq FROM records r WHERE r.site = %s AND r.stream = %s AND r.seq > %s "
    "AND NOT EXISTS (SELECT 1 FROM records n "
    "WHERE n.site = r.site AND n.stream = r.stream AND n.seq = r.seq + 1) "
    "ORDER BY r.seq LIMIT 1"
)


def _where(conninfo: str) -> str:
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise DbUrlError(f"bad PostgreSQL URL {conninfo!r}: {exc}") from None
    host = parts.get("host", "localhost")
    return f"{host}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


DATA_ERRORS = (
    psycopg.DataError,  # e.g. U+0000 in jsonb or text, a number out of range
    psycopg.IntegrityError,
    ValueError,  # raised while adapting a value (UnicodeEncodeError included)
    OverflowError,
)
"""Failures caused by the values stored, never by the server's state: permanent.
Every other psycopg.Error (OperationalError: server down, connection lost, admin
shutdown, disk full; ProgrammingError: a table or schema missing, privileges;
InternalError...) is the database's state: transient, retried. A limit the server
puts on one value (ProgramLimitExceeded, an OperationalError) cannot be reached by
what the validator lets through (edge.sync.validate)."""


class PgStore(CentralStore):
    def __init__(self, conninfo: str, connect_timeout_s: int = 10) -> None:
        self.conninfo = conninfo
        self.where = _where(conninfo)
        self.description = f"PostgreSQL {self.where}"
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('edge-central-schema'))")
            cur.execute(SCHEMA[0])
            cur.execute("SELECT value FROM central_meta WHERE key = 'schema_version'")
            row = cur.fetchone()
            if row is not None and int(row[0]) not in (SCHEMA_VERSION, *MIGRATABLE):
                raise StoreError(
                    f"{self.where} has central schema version {row[0]}, this program knows "
                    f"{SCHEMA_VERSION}: use a matching edge version"
                )
            for statement in SCHEMA[1:]:
                cur.execute(statement)
            if row is not None and int(row[0]) != SCHEMA_VERSION:
                for statement in TO_VERSION_2:
                    cur.execute(statement)
            if row is None or int(row[0]) != SCHEMA_VERSION:
                cur.execute(
                    "INSERT INTO central_meta VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
            cur.execute(
                "INSERT INTO central_meta VALUES ('down_epoch', %s) ON CONFLICT DO NOTHING",
                (new_epoch(),),
            )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        try:
            self._conn = psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=self.connect_timeout_s
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {self.where}: {exc}") from None
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except DATA_ERRORS as exc:  # these values can never be stored
                raise BatchRefused(
                    f"PostgreSQL at {self.where} refused the data: {type(exc).__name__}: {exc}"
                ) from None
            except psycopg.Error as exc:  # down, connection lost, locks, schema: retried
                raise StoreUnavailable(f"PostgreSQL at {self.where}: {exc}") from None

    def store_plan(
        self, plan: GroupPlan, received_at: datetime | None = None
    ) -> list[StreamProgress]:
        if not plan.rows:
            return []
        now = received_at or utc_now()
        out: list[StreamProgress] = []
        with self._transaction() as cur:
            before: dict[tuple[str, str], tuple[int, int, str | None, int]] = {}
            for key in plan.keys:  # one global order: no deadlock between processes
                before[key] = self._lock_progress(cur, key, now)
            refused: set[str] = set()
            for key in plan.keys:
                site, stream = key
                contiguous, highest, stored, refused_upto = before[key]
                seen = plan.epochs[key]
                epoch, verdict = epoch_verdict(stored, seen)
                if verdict == EPOCH_MISSING:
                    out.append(
                        StreamProgress(
                            site, stream, contiguous, 0, 0, stored or "", missing_epoch=True
                        )
                    )
                elif verdict == EPOCH_CONFLICT:
                    cur.execute(
                        "UPDATE progress SET conflict_epoch = %s, conflict_at = %s "
                        "WHERE site = %s AND stream = %s",
                        (seen, now, site, stream),
                    )
                    out.append(StreamProgress(site, stream, contiguous, 0, 0, stored or "", seen))
                if verdict != EPOCH_OK:
                    if stream == "telemetry":
                        refused.add(site)  # another (or an unknown) database's telemetry
                    continue
                _, _, seqs, kinds, ids, bodies = zip(*plan.rows[key], strict=True)
                cols = [list(seqs), list(kinds), list(ids), list(bodies)]
                cur.execute(INSERT_RECORDS, (site, stream, now, *cols))
                new = cur.rowcount
                ranges = plan.ranges[key]
                highest = max(highest, *(last for _, last in ranges))
                upto = covered_upto(contiguous, ranges)
                upto = self._advance(cur, key, upto, highest, refused_upto)
                cur.execute(SET_PROGRESS, (upto, highest, new, now, epoch, site, stream))
                received = plan.received[key]
                refusal = None
                if refused_upto:  # a stream that had a refusal: say the latest again a while
                    since = now - timedelta(seconds=REPEAT_REFUSAL_S)
                    cur.execute(LATEST_REFUSED, (site, stream, since))
                    row = cur.fetchone()
                    refusal = RecentRefusal(*row) if row else None
                out.append(
                    StreamProgress(
                        site, stream, upto, new, received - new, epoch or "", refusal=refusal
                    )
                )
            for site in plan.sites:
                telemetry = None if site in refused else plan.telemetry.get(site)
                cur.execute(
                    UPSERT_SITE,
                    (
                        site,
                        now,
                        telemetry[1] if telemetry else None,
                        telemetry[0] if telemetry else None,
                        now if telemetry else None,
                    ),
                )
        return out

    @staticmethod
    def _lock_progress(
        cur: psycopg.Cursor[Any], key: tuple[str, str], now: datetime
    ) -> tuple[int, int, str | None, int]:
        """Lock (creating it if new) the progress row of ``key``: (contiguous,
        highest, epoch, the highest refused seq or 0)."""
        cur.execute(LOCK_PROGRESS, (*key, now))
        row = cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), row[2], int(row[3] or 0)

    def _advance(
        self, cur: psycopg.Cursor[Any], key: tuple[str, str], upto: int, highest: int, refused: int
    ) -> int:
        def refused_end(at: int) -> int:
            cur.execute(REFUSED_END, (*key, at + 1, at))
            row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else at

        return advance_upto(
            upto, highest, refused, lambda at: self._run_end(cur, *key, at), refused_end
        )

    def refuse(
        self, refusals: Sequence[Refused], received_at: datetime | None = None
    ) -> list[RefusedProgress]:
        if not refusals:
            return []
        now = received_at or utc_now()
        out: list[RefusedProgress] = []
        with self._transaction() as cur:
            for key in sorted({(r.site, r.stream) for r in refusals}):  # the global order
                self._lock_progress(cur, key, now)
            for r in refusals:
                key = (r.site, r.stream)
                contiguous, highest, stored, refused_upto = self._lock_progress(cur, key, now)
                epoch, verdict = epoch_verdict(stored, r.epoch)
                if verdict == EPOCH_CONFLICT:
                    cur.execute(
                        "UPDATE progress SET conflict_epoch = %s, conflict_at = %s "
                        "WHERE site = %s AND stream = %s",
                        (r.epoch, now, *key),
                    )
                if verdict != EPOCH_OK:
                    out.append(RefusedProgress(r, 0, "", verdict))
                    continue
                cur.execute(
                    UPSERT_REFUSED,
                    (*key, r.first, r.last, epoch, r.reason, r.seq, r.detail, now, now),
                )
                upto = self._advance(cur, key, contiguous, highest, max(refused_upto, r.last))
                cur.execute(SET_PROGRESS, (upto, highest, 0, now, epoch, *key))
                out.append(RefusedProgress(r, upto, epoch or "", verdict))
        return out

    @staticmethod
    def _run_end(cur: psycopg.Cursor[Any], site: str, stream: str, upto: int) -> int:
        """Past ``upto``, the end of the run of stored seqs that starts at upto + 1."""
        cur.execute(
            "SELECT 1 FROM records WHERE site = %s AND stream = %s AND seq = %s",
            (site, stream, upto + 1),
        )
        if cur.fetchone() is None:
            return upto
        cur.execute(RUN_END, (site, stream, upto))
        end = cur.fetchone()
        assert end is not None
        return int(end[0])

    def note_status(self, site: str, status: Mapping[str, Any], at: datetime | None = None) -> None:
        now = at or utc_now()
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO sites AS s (site, last_seen, status, status_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET "
                "status = excluded.status, status_at = excluded.status_at, "
                "last_seen = greatest(s.last_seen, excluded.last_seen)",
                (site, now, Jsonb(dict(status)), now),
            )

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def stream_rows(self) -> list[StreamRow]:
        rows = self._read(
            "SELECT site, stream, contiguous_seq, highest_seq, records, epoch, "
            "conflict_epoch, conflict_at FROM progress ORDER BY site, stream"
        )
        return [
            StreamRow(s, st, int(c), int(h), int(n), e, ce, iso(at) if at else None)
            for s, st, c, h, n, e, ce, at in rows
        ]

    def site_rows(self) -> list[SiteRow]:
        rows = self._read("SELECT site, last_seen, status, telemetry FROM sites ORDER BY site")
        return [
            SiteRow(site, iso(seen) if seen else None, status, telemetry)
            for site, seen, status, telemetry in rows
        ]

    def seqs(self, site: str, stream: str) -> list[int]:
        rows = self._read(
            "SELECT seq FROM records WHERE site = %s AND stream = %s ORDER BY seq", (site, stream)
        )
        return [int(r[0]) for r in rows]

    def record(self, site: str, stream: str, seq: int) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT body FROM records WHERE site = %s AND stream = %s AND seq = %s",
            (site, stream, seq),
        )
        return dict(rows[0][0]) if rows else None

    def records_of(self, site: str, stream: str, kinds: Sequence[str]) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT body FROM records WHERE site = %s AND stream = %s AND kind = ANY(%s) "
            "ORDER BY seq",
            (site, stream, list(kinds)),
        )
        return [dict(r[0]) for r in rows]

    # -- downlink ------------------------------------------------------------------------

    def import_orders(
        self, orders: Sequence[Mapping[str, Any]], at: datetime | None = None
    ) -> dict[str, int]:
        now = at or utc_now()
        ids = check_orders(orders)
        with self._transaction() as cur:
            # one import at a time: two imports of one new order must not both insert it
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('edge-central-orders'))")
            cur.execute(
                "SELECT id, site, status, version, content_hash, body FROM orders "
                "WHERE id = ANY(%s)",
                (ids,),
            )
            stored = {
                oid: StoredOrder(oid, site, status, int(version), digest, dict(body))
                for oid, site, status, version, digest, body in cur.fetchall()
            }
            plan = plan_import(orders, stored, iso(now))
            if plan.rows:
                rows = list(plan.rows.values())
                cur.execute(
                    "INSERT INTO orders AS o (id, site, status, version, body, content_hash, "
                    "imported_at, updated_at) "
                    "SELECT id, site, status, version, body::json, content_hash, %s, %s "
                    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], "
                    "%s::text[], %s::text[]) AS t(id, site, status, version, body, content_hash) "
                    "ON CONFLICT (id) DO UPDATE SET site = excluded.site, "
                    "status = excluded.status, version = excluded.version, body = excluded.body, "
                    "content_hash = excluded.content_hash, updated_at = excluded.updated_at",
                    (
                        now,
                        now,
                        [r.id for r in rows],
                        [r.site for r in rows],
                        [r.status for r in rows],
                        [r.version for r in rows],
                        [canonical_json(r.body) for r in rows],
                        [r.hash for r in rows],
                    ),
                )
            for site in sorted(plan.queue):  # one global order of row locks
                self._queue(cur, site, queued_rows(plan.queue[site]), now)
        return plan.counts

    @staticmethod
    def _queue(
        cur: psycopg.Cursor[Any], site: str, rows: Sequence[QueuedRow], now: datetime
    ) -> list[int]:
        cur.execute(
            "INSERT INTO down_progress AS d (site) VALUES (%s) "
            "ON CONFLICT (site) DO UPDATE SET site = d.site RETURNING queued_upto",
            (site,),
        )  # locks the site's row: concurrent queuers number one after the other
        found = cur.fetchone()
        assert found is not None
        upto = int(found[0])
        seqs = list(range(upto + 1, upto + 1 + len(rows)))
        kinds, ids, bodies = (list(col) for col in zip(*rows, strict=True))
        cur.execute(
            "INSERT INTO down_queue (site, seq, kind, record_id, body, created_at) "
            "SELECT %s, seq, kind, record_id, body::json, %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
            "AS t(seq, kind, record_id, body)",
            (site, now, seqs, kinds, ids, bodies),
        )
        cur.execute(
            "UPDATE down_progress SET queued_upto = %s WHERE site = %s", (upto + len(rows), site)
        )
        return seqs

    def _queue_down(self, site: str, rows: Sequence[QueuedRow], at: datetime) -> list[int]:
        with self._transaction() as cur:
            return self._queue(cur, site, rows, at)

    def orders_of(self, site: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE site = %s", (site,)) if site is not None else ("", ())
        rows = self._read(
            f"SELECT id, site, status, version, body FROM orders {where} ORDER BY id", params
        )
        return [
            {"id": i, "site": s, "status": st, "version": int(v), "body": dict(b)}
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
        return [
            {
                "site": site,
                "queued_upto": int(queued),
                "acked_upto": int(acked),
                "sent_upto": int(sent),
                "sent_at": iso(sent_at) if sent_at else None,
                "acked_at": iso(acked_at) if acked_at else None,
                "epoch": epoch,
            }
            for site, queued, acked, sent, sent_at, acked_at in rows
        ]

    def down_records(self, site: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT seq, body FROM down_queue WHERE site = %s AND seq > %s ORDER BY seq LIMIT %s",
            (site, after, limit),
        )
        return [{**dict(body), "seq": int(seq)} for seq, body in rows]

    def note_down_ack(self, site: str, upto: int, at: datetime | None = None) -> int:
        now = at or utc_now()
        with self._transaction() as cur:
            cur.execute(
                "UPDATE down_progress SET acked_upto = least(queued_upto, %s), acked_at = %s "
                "WHERE site = %s AND acked_upto < least(queued_upto, %s)",
                (upto, now, site, upto),
            )
            cur.execute("SELECT acked_upto FROM down_progress WHERE site = %s", (site,))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def note_down_sent(self, site: str, upto: int, at: datetime | None = None) -> None:
        now = at or utc_now()
        with self._transaction() as cur:
            cur.execute(
                "UPDATE down_progress SET sent_upto = greatest(sent_upto, %s), sent_at = %s "
                "WHERE site = %s",
                (upto, now, site),
            )

    def backend_pid(self) -> int | None:
        """The server process serving this store's connection (logs, benchmarks)."""
        conn = self._conn
        return conn.info.backend_pid if conn is not None and not conn.closed else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
