"""The durable outbox (v2): everything that leaves the station is a row here first,
written in the same transaction as the record it carries.

Rows belong to a stream (``records``, then ``telemetry``, then ``bulk``: the order of
:data:`STREAMS` is the order of priority) and get that stream's next ``seq``: 1, 2, 3...
with no gaps, because the number is taken in the transaction that commits the row.
A row is ``pending``; the link worker claims a contiguous run of them as a batch
(:meth:`Outbox.next_batch`), marks it ``sent`` on the broker's PUBACK
(:meth:`Outbox.mark_sent`) and ``confirmed`` when central acknowledges the highest
contiguous seq it has stored (:meth:`Outbox.confirm`). Sent rows still unconfirmed
after ``ack_timeout_s`` go out again. Confirmed rows are pruned after the retention
period; unconfirmed rows are never dropped, whatever the disk: a nearly full disk is
reported in :meth:`Outbox.status`.

A batch central refuses for good (its records are invalid for it, or its database
refused them: the ack's ``refused``, docs/mqtt.md "Refusals") has its rows marked
``refused`` with central's reason (:meth:`Outbox.refuse`): they are kept, never sent
again and never pruned, and reported in :meth:`Outbox.status` and telemetry.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from edge.ids import iso, new_id, parse_iso, utc_now
from edge.sync.envelope import Batch, batch_id_for

if TYPE_CHECKING:
    from edge.storage.store import Store

log = logging.getLogger(__name__)

STREAMS = ("records", "telemetry", "bulk")
"""Every stream, highest priority first."""

_ROW = "seq, kind, record_id, body, status, attempts, created_at"


def add(
    db: sqlite_utils.Database,
    stream: str,
    kind: str,
    record_id: str,
    record: dict[str, Any],
    created_at: str | None = None,
) -> int:
    """Append ``record`` to ``stream`` inside the caller's write transaction (so it
    commits, or not, with the record itself); returns its seq.

    ``record`` holds the record's fields (``type`` and ``seq`` are the row's ``kind``
    and ``seq``); ``created_at`` defaults to its ``recorded_at``."""
    if stream not in STREAMS:
        raise ValueError(f"unknown outbox stream {stream!r}; streams are {', '.join(STREAMS)}")
    if record.get("type", kind) != kind:
        raise ValueError(f"record type {record.get('type')!r} differs from kind {kind!r}")
    body = {k: v for k, v in record.items() if k not in ("type", "seq")}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    when = created_at or body.get("recorded_at") or iso(utc_now())
    db.execute("UPDATE outbox_streams SET last_seq = last_seq + 1 WHERE stream = ?", [stream])
    row = db.execute("SELECT last_seq FROM outbox_streams WHERE stream = ?", [stream]).fetchone()
    seq = int(row[0])
    db.execute(
        "INSERT INTO outbox(stream, seq, kind, record_id, body, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
        [stream, seq, kind, record_id, text, when],
    )
    return seq


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": row["kind"], "seq": row["seq"], **json.loads(row["body"])}


def _contiguous(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The leading run of rows whose seqs follow one another."""
    run = rows[:1]
    for row in rows[1:]:
        if row["seq"] != run[-1]["seq"] + 1:
            break
        run.append(row)
    return run


class _Changed(Exception):
    """Rows changed between reading and claiming them."""


@dataclass(frozen=True)
class StreamStatus:
    depth: int  # unconfirmed rows: pending + sent
    pending: int
    sent: int  # sent, not yet confirmed
    confirmed: int  # confirmed, not yet pruned
    oldest_at: str | None  # created_at of the oldest unconfirmed row
    oldest_age_s: float | None
    last_seq: int
    confirmed_upto: int
    last_confirmed_at: str | None
    pending_bytes: int  # JSON bodies of the unconfirmed rows
    ack_conflict_upto: int | None = None  # central acked beyond last_seq (see confirm)
    ack_conflict_at: str | None = None
    refused: int = 0  # rows central refused for good (see refuse)
    refused_reason: str | None = None  # the latest refusal, as central said it
    refused_at: str | None = None


class Outbox:
    def __init__(
        self,
        store: Store,
        *,
        ack_timeout_s: float = 60.0,
        retention_days: float = 30.0,
        min_free_mb: int = 200,
    ) -> None:
        self.store = store
        self.ack_timeout_s = ack_timeout_s
        self.retention_days = retention_days
        self.min_free_mb = min_free_mb
        self._epoch: str | None = None

    @property
    def epoch(self) -> str:
        """This database's epoch (migration 0009): every batch carries it, and an ack
        that carries another one is not for this database's records."""
        if self._epoch is None:
            self._epoch = str(self.store.rows("SELECT epoch FROM station_epoch")[0]["epoch"])
        return self._epoch

    def _now(self, now: datetime | None) -> datetime:
        return now if now is not None else self.store.now()

    # -- producers of rows ----------------------------------------------------------------

    def add(self, stream: str, kind: str, record: dict[str, Any]) -> int:
        """A record of its own (not part of another write): its own transaction."""
        with self.store.write() as db:
            return add(db, stream, kind, str(record.get("id") or new_id()), record)

    def put_telemetry(self, record: dict[str, Any], now: datetime | None = None) -> int:
        """Coalesce: the newest telemetry replaces a pending one not yet claimed by a
        batch (keeping its seq, so the stream has no gap); otherwise it is appended."""
        created = iso(self._now(now))
        body = {k: v for k, v in record.items() if k not in ("type", "seq")}
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        with self.store.write() as db:
            row = db.execute(
                "SELECT seq FROM outbox WHERE stream = 'telemetry' AND status = 'pending' "
                "AND batch_id IS NULL ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return add(db, "telemetry", "telemetry", new_id(), record, created)
            db.execute(
                "UPDATE outbox SET body = ?, record_id = ?, created_at = ? "
                "WHERE stream = 'telemetry' AND seq = ?",
                [text, new_id(), created, row[0]],
            )
            return int(row[0])

    # -- the link worker's side -----------------------------------------------------------

    def release_claims(self) -> int:
        """Forget every claim (at the link worker's start: nothing is in flight yet)."""
        with self.store.write() as db:
            cur = db.execute(
                "UPDATE outbox SET batch_id = NULL "
                "WHERE status = 'pending' AND batch_id IS NOT NULL"
            )
            return int(cur.rowcount)

    def _candidates(self, stream: str, limit: int, now: datetime) -> list[dict[str, Any]]:
        """Unclaimed pending rows and sent rows whose ack timed out, by seq."""
        return self.store.rows(
            f"SELECT {_ROW} FROM outbox WHERE stream = ? AND "
            "((status = 'pending' AND batch_id IS NULL) OR (status = 'sent' AND sent_at < ?)) "
            "ORDER BY seq LIMIT ?",
            (stream, iso(now - timedelta(seconds=self.ack_timeout_s)), limit),
        )

    def next_batch(
        self, stream: str, max_records: int, max_age_s: float, now: datetime | None = None
    ) -> Batch | None:
        """Claim the next batch of ``stream`` when one is due: ``max_records`` rows, or
        fewer once the oldest is ``max_age_s`` old (or when they are sent again after an
        ack time-out). None when nothing is due."""
        now = self._now(now)
        rows = _contiguous(self._candidates(stream, max_records, now))
        if not rows:
            return None
        oldest = parse_iso(min(r["created_at"] for r in rows))
        due = (
            len(rows) >= max_records
            or any(r["status"] == "sent" for r in rows)
            or not timedelta(0) <= now - oldest < timedelta(seconds=max_age_s)
        )  # a created_at in the future: the clock went back; do not wait for it
        if not due:
            return None
        first, last = rows[0]["seq"], rows[-1]["seq"]
        batch_id = batch_id_for(stream, first, last, max(r["attempts"] for r in rows) + 1)
        try:
            with self.store.write() as db:
                cur = db.execute(
                    "UPDATE outbox SET status = 'pending', batch_id = ? "
                    "WHERE stream = ? AND seq BETWEEN ? AND ? "
                    "AND ((status = 'pending' AND batch_id IS NULL) OR status = 'sent')",
                    [batch_id, stream, first, last],
                )
                if cur.rowcount != len(rows):
                    raise _Changed
        except _Changed:  # confirmed meanwhile: rolled back; the next round sees it
            return None
        records = tuple(_record(r) for r in rows)
        return Batch(self.store.site_id, stream, batch_id, first, last, records, epoch=self.epoch)

    def mark_sent(self, batch: Batch, now: datetime | None = None) -> int:
        """The broker acknowledged (PUBACK) the batch: its rows are sent."""
        with self.store.write() as db:
            cur = db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 "
                "WHERE stream = ? AND seq BETWEEN ? AND ? AND status = 'pending' "
                "AND batch_id = ?",
                [iso(self._now(now)), batch.stream, batch.first, batch.last, batch.batch_id],
            )
            return int(cur.rowcount)

    def release(self, batch: Batch) -> int:
        """The batch did not go out (publish refused, no PUBACK in time): unclaim it."""
        with self.store.write() as db:
            cur = db.execute(
                "UPDATE outbox SET batch_id = NULL WHERE stream = ? AND seq BETWEEN ? AND ? "
                "AND status = 'pending' AND batch_id = ?",
                [batch.stream, batch.first, batch.last, batch.batch_id],
            )
            return int(cur.rowcount)

    def confirm(self, stream: str, upto: int, now: datetime | None = None) -> int:
        """Central holds every row up to ``upto``: they are confirmed; returns how many
        rows changed.

        An ack beyond the last seq this station assigned means central holds records
        under this site id that this station never made (its database was replaced, or
        another station uses the same site id): central would drop this station's records
        as duplicates of those, so NOTHING is confirmed; the conflict is stored and
        reported (``ack_conflict_upto`` in the status) until the site id is changed."""
        if stream not in STREAMS:
            raise ValueError(f"unknown outbox stream {stream!r}")
        when = iso(self._now(now))
        with self.store.write() as db:
            last = int(
                db.execute(
                    "SELECT last_seq FROM outbox_streams WHERE stream = ?", [stream]
                ).fetchone()[0]
            )
            if upto > last:
                log.error(
                    "central acknowledges %s up to seq %d, beyond the last this station "
                    "assigned (%d): its database was replaced or another station uses "
                    "this site id; nothing is confirmed (records are kept): give this "
                    "station a new site id",
                    stream,
                    upto,
                    last,
                )
                db.execute(
                    "UPDATE outbox_streams SET ack_conflict_upto = ?, ack_conflict_at = ? "
                    "WHERE stream = ?",
                    [upto, when, stream],
                )
                return 0
            cur = db.execute(
                "UPDATE outbox SET status = 'confirmed', confirmed_at = ?, batch_id = NULL "
                "WHERE stream = ? AND seq <= ? AND status IN ('pending', 'sent')",
                [when, stream, upto],
            )
            changed = int(cur.rowcount)
            db.execute(
                "UPDATE outbox_streams SET confirmed_upto = max(confirmed_upto, ?), "
                "last_confirmed_at = CASE WHEN ? > 0 THEN ? ELSE last_confirmed_at END "
                "WHERE stream = ?",
                [upto, changed, when, stream],
            )
        return changed

    def refuse(
        self,
        stream: str,
        first: int,
        last: int,
        why: str,
        now: datetime | None = None,
    ) -> int:
        """Central refused the batch ``first``..``last`` of ``stream`` for good (``why``:
        its reason, first bad seq and detail): those rows not confirmed yet become
        ``refused`` and are never sent again; returns how many changed. Central counts
        the range as done, so the acks for the rows after it confirm them as usual."""
        if stream not in STREAMS:
            raise ValueError(f"unknown outbox stream {stream!r}")
        with self.store.write() as db:
            cur = db.execute(
                "UPDATE outbox SET status = 'refused', refusal = ?, refused_at = ?, "
                "batch_id = NULL WHERE stream = ? AND seq BETWEEN ? AND ? "
                "AND status IN ('pending', 'sent')",
                [why[:500], iso(self._now(now)), stream, first, last],
            )
            return int(cur.rowcount)

    def prune(self, now: datetime | None = None) -> int:
        """Delete confirmed rows older than the retention; unconfirmed rows stay."""
        cutoff = iso(self._now(now) - timedelta(days=self.retention_days))
        with self.store.write() as db:
            cur = db.execute(
                "DELETE FROM outbox WHERE status = 'confirmed' AND confirmed_at < ?", [cutoff]
            )
            return int(cur.rowcount)

    # -- looking at it ----------------------------------------------------------------------

    def preview(self, stream: str, max_records: int) -> Iterator[Batch]:
        """Every unconfirmed row of ``stream`` as the batches it would go out in (read
        only: nothing is claimed), for ``edge outbox show``."""
        after = 0
        while True:
            rows = _contiguous(
                self.store.rows(
                    f"SELECT {_ROW} FROM outbox WHERE stream = ? "
                    "AND status IN ('pending', 'sent') AND seq > ? ORDER BY seq LIMIT ?",
                    (stream, after, max_records),
                )
            )
            if not rows:
                return
            first, last = rows[0]["seq"], rows[-1]["seq"]
            attempt = max(r["attempts"] for r in rows) + 1
            yield Batch(
                self.store.site_id,
                stream,
                batch_id_for(stream, first, last, attempt),
                first,
                last,
                tuple(_record(r) for r in rows),
                epoch=self.epoch,
            )
            after = last

    def stream_status(self, now: datetime | None = None) -> dict[str, StreamStatus]:
        now = self._now(now)
        counts: dict[tuple[str, str], tuple[int, str | None, int]] = {}
        for r in self.store.rows(
            "SELECT stream, status, count(*) AS n, min(created_at) AS oldest, "
            "sum(CASE WHEN status IN ('pending', 'sent') "
            "    THEN length(CAST(body AS BLOB)) ELSE 0 END) AS bytes "
            "FROM outbox GROUP BY stream, status"
        ):
            counts[(r["stream"], r["status"])] = (r["n"], r["oldest"], r["bytes"] or 0)
        refusals = {
            r["stream"]: (r["refusal"], r["at"])
            for r in self.store.rows(
                "SELECT stream, refusal, max(refused_at) AS at FROM outbox "
                "WHERE status = 'refused' GROUP BY stream"
            )
        }
        out = {}
        for s in self.store.rows("SELECT * FROM outbox_streams"):
            stream = s["stream"]
            pending = counts.get((stream, "pending"), (0, None, 0))
            sent = counts.get((stream, "sent"), (0, None, 0))
            confirmed = counts.get((stream, "confirmed"), (0, None, 0))
            oldest = min((t for t in (pending[1], sent[1]) if t), default=None)
            age = (now - parse_iso(oldest)).total_seconds() if oldest else None
            out[stream] = StreamStatus(
                depth=pending[0] + sent[0],
                pending=pending[0],
                sent=sent[0],
                confirmed=confirmed[0],
                oldest_at=oldest,
                oldest_age_s=None if age is None else round(age, 3),
                last_seq=s["last_seq"],
                confirmed_upto=s["confirmed_upto"],
                last_confirmed_at=s["last_confirmed_at"],
                pending_bytes=pending[2] + sent[2],
                ack_conflict_upto=s["ack_conflict_upto"],
                ack_conflict_at=s["ack_conflict_at"],
                refused=counts.get((stream, "refused"), (0, None, 0))[0],
                refused_reason=refusals.get(stream, (None, None))[0],
                refused_at=refusals.get(stream, (None, None))[1],
            )
        return {k: out[k] for k in STREAMS if k in out}

    def _database_file(self) -> Path | None:
        for row in self.store.db.conn.execute("PRAGMA database_list"):
            if row[1] == "main" and row[2]:
                return Path(row[2])
        return None

    def disk(self) -> dict[str, Any]:
        """Free space where the database lives, and whether it is nearly full."""
        path = self._database_file()
        if path is None:
            return {"free_mb": None, "min_free_mb": self.min_free_mb, "nearly_full": False}
        free_mb = shutil.disk_usage(path.parent).free / (1024 * 1024)
        return {
            "free_mb": round(free_mb, 1),
            "min_free_mb": self.min_free_mb,
            "nearly_full": free_mb < self.min_free_mb,
        }

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        """What waits, per stream, as JSON-ready values. ``pending`` (records not yet
        confirmed by central) and ``oldest_pending_at`` are the records stream's, for
        the staff page."""
        streams = self.stream_status(now)
        records = streams["records"]
        return {
            "pending": records.depth,
            "oldest_pending_at": records.oldest_at,
            "pending_bytes": sum(s.pending_bytes for s in streams.values()),
            "streams": {name: s.__dict__ for name, s in streams.items()},
            "ack_conflict": any(s.ack_conflict_upto is not None for s in streams.values()),
            "refused": sum(s.refused for s in streams.values()),
            "disk": self.disk(),
        }
