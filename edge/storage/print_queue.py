"""The durable print queue: queued -> sending -> printed, with 'held' for a
job whose sending was cut off (power cut, crash). A held job is printed again
only when staff say so, so a label is never doubled silently."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from edge.ids import iso
from edge.storage.store import NotFound, Store

STATUSES = ("queued", "sending", "printed", "held", "failed")


class PrintQueue:
    def __init__(self, store: Store) -> None:
        self.store = store

    def hold_interrupted(self) -> int:
        """At start: a job left in 'sending' may or may not have printed; hold it."""
        with self.store.write() as db:
            rows = db.execute("SELECT id FROM print_jobs WHERE status = 'sending'").fetchall()
            for (job_id,) in rows:
                self._set(db, job_id, "held", "interrupted while sending; print again if no label")
                self.store.audit(db, "print.held", job_id, actor="station")
        return len(rows)

    def next_queued(self) -> dict[str, Any] | None:
        rows = self.store.rows(
            "SELECT * FROM print_jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1"
        )
        return rows[0] if rows else None

    def mark_sending(self, job_id: str) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE print_jobs SET status = 'sending', attempts = attempts + 1, updated_at = ? "
                "WHERE id = ?",
                [iso(self.store.now()), job_id],
            )

    def mark_printed(self, job_id: str) -> None:
        with self.store.write() as db:
            now = iso(self.store.now())
            db.execute(
                "UPDATE print_jobs SET status = 'printed', printed_at = ?, updated_at = ?, "
                "last_error = NULL WHERE id = ?",
                [now, now, job_id],
            )

    def mark_waiting(self, job_id: str, error: str) -> None:
        """Not delivered (printer unreachable): back in the queue, error kept for the page."""
        with self.store.write() as db:
            self._set(db, job_id, "queued", error)

    def mark_failed(self, job_id: str, error: str) -> None:
        """Cannot ever print (e.g. its record is gone); staff can still reprint."""
        with self.store.write() as db:
            self._set(db, job_id, "failed", error)
            self.store.audit(db, "print.failed", job_id, actor="station", error=error)

    def requeue(self, job_id: str, actor: str, reason: str) -> None:
        """Staff confirm a held or failed job should print (again)."""
        with self.store.write() as db:
            row = db.execute("SELECT status FROM print_jobs WHERE id = ?", [job_id]).fetchone()
            if row is None:
                raise NotFound(f"print job {job_id} not found")
            if row[0] not in ("held", "failed", "printed"):
                raise ValueError(
                    f"print job {job_id} is {row[0]}; "
                    "only held, failed or printed jobs can be printed again"
                )
            self._set(db, job_id, "queued", None)
            self.store.audit(db, "print.requeued", job_id, actor=actor, reason=reason, was=row[0])

    def jobs(self, statuses: tuple[str, ...] = STATUSES, limit: int = 100) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in statuses)
        return self.store.rows(
            f"SELECT id, kind, record_id, status, attempts, last_error, created_at, printed_at "
            f"FROM print_jobs WHERE status IN ({marks}) ORDER BY created_at DESC LIMIT ?",
            (*statuses, limit),
        )

    def counts(self) -> dict[str, int]:
        found = {s: 0 for s in STATUSES}
        for row in self.store.rows("SELECT status, count(*) AS n FROM print_jobs GROUP BY status"):
            found[row["status"]] = row["n"]
        return found

    def _set(self, db: sqlite_utils.Database, job_id: str, status: str, error: str | None) -> None:
        db.execute(
            "UPDATE print_jobs SET status = ?, last_error = ?, updated_at = ? WHERE id = ?",
            [status, error, iso(self.store.now()), job_id],
        )
