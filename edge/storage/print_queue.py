"""The durable print queue: queued -> sending -> printed, with 'held' for a job whose
sending was cut off (power cut, crash, printer switched off mid-job) and 'failed' for one
that can never print (its record is gone, its data does not fit its kind).

A held job is printed again only when staff say so (:meth:`PrintQueue.requeue`, audited
with who, when and why), so a label is never doubled silently. A job waiting for the
printer (unreachable, out of paper, cover open) stays 'queued' with the reason in
``last_error`` and ``printer_status``; the queue keeps its order (oldest first).

A job is a label ``kind`` and either a ``record_id`` it is rendered from (a lot label) or
its ``data`` (JSON) for the kinds printed from their data.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from edge.ids import iso, new_id
from edge.storage.orders import label_printed
from edge.storage.store import NotFound, Store

STATUSES = ("queued", "sending", "printed", "held", "failed")
REPRINTABLE = ("held", "failed", "printed")


class PrintQueue:
    def __init__(self, store: Store) -> None:
        self.store = store

    def enqueue(
        self,
        kind: str,
        data: dict[str, Any] | None = None,
        *,
        record_id: str | None = None,
        actor: str = "station",
    ) -> str:
        """Queue a label of ``kind`` from ``data`` (or from ``record_id``); returns its id."""
        if data is None and record_id is None:
            raise ValueError("a print job needs its data or the id of its record")
        job_id = new_id()
        with self.store.write() as db:
            now = iso(self.store.now())
            db.table("print_jobs").insert(
                {
                    "id": job_id,
                    "kind": kind,
                    "record_id": record_id or job_id,
                    "data": None if data is None else json.dumps(data, ensure_ascii=False),
                    "status": "queued",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.store.audit(db, "print.queued", job_id, actor=actor, kind=kind)
        return job_id

    def hold_interrupted(self) -> int:
        """At start: a job left in 'sending' may or may not have printed; hold it (its
        ``printer_status`` says ``restart``: the station stopped while sending it)."""
        with self.store.write() as db:
            rows = db.execute("SELECT id FROM print_jobs WHERE status = 'sending'").fetchall()
            for (job_id,) in rows:
                self._set(db, job_id, "held", "interrupted while sending; print again if no label")
                db.execute(
                    "UPDATE print_jobs SET printer_status = 'restart' WHERE id = ?", [job_id]
                )
                self.store.audit(db, "print.held", job_id, actor="station", cause="restart")
        return len(rows)

    def next_queued(self) -> dict[str, Any] | None:
        rows = self.store.rows(
            "SELECT * FROM print_jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1"
        )
        return rows[0] if rows else None

    def get(self, job_id: str) -> dict[str, Any]:
        rows = self.store.rows("SELECT * FROM print_jobs WHERE id = ?", (job_id,))
        if not rows:
            raise NotFound(f"print job {job_id} not found")
        return rows[0]

    def mark_sending(self, job_id: str) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE print_jobs SET status = 'sending', attempts = attempts + 1, "
                "updated_at = ?, printer_status = NULL, bytes_sent = NULL WHERE id = ?",
                [iso(self.store.now()), job_id],
            )

    def mark_printed(self, job_id: str) -> None:
        with self.store.write() as db:
            now = iso(self.store.now())
            db.execute(
                "UPDATE print_jobs SET status = 'printed', printed_at = ?, updated_at = ?, "
                "last_error = NULL, printer_status = NULL WHERE id = ?",
                [now, now, job_id],
            )
            label_printed(db, job_id, now)  # a parcel's label: its record for central (issue 13)

    def mark_waiting(self, job_id: str, error: str, printer_status: str | None = None) -> None:
        """Not delivered (printer unreachable, out of paper...): stays queued, with why."""
        with self.store.write() as db:
            self._set(db, job_id, "queued", error)
            db.execute(
                "UPDATE print_jobs SET printer_status = ? WHERE id = ?", [printer_status, job_id]
            )

    def mark_held(
        self,
        job_id: str,
        error: str,
        bytes_sent: int | None = None,
        cause: str = "interrupted",
    ) -> None:
        """Cut off after part of it may have reached the printer: held for staff.
        ``cause`` goes to ``printer_status``: ``interrupted`` (the connection failed) or
        the condition the printer reported right after (``paper_out``, ``cover_open``...)."""
        with self.store.write() as db:
            self._set(db, job_id, "held", error)
            db.execute(
                "UPDATE print_jobs SET printer_status = ?, bytes_sent = ? WHERE id = ?",
                [cause, bytes_sent, job_id],
            )
            self.store.audit(
                db,
                "print.held",
                job_id,
                actor="station",
                error=error,
                bytes_sent=bytes_sent,
                cause=cause,
            )

    def mark_failed(self, job_id: str, error: str) -> None:
        """Cannot ever print (e.g. its record is gone); staff can still reprint."""
        with self.store.write() as db:
            self._set(db, job_id, "failed", error)
            self.store.audit(db, "print.failed", job_id, actor="station", error=error)

    def requeue(self, job_id: str, actor: str, reason: str) -> str:
        """Staff confirm a held, failed or printed job should print (again); returns the id
        of the job that will print. A held or failed job (no whole label came out) is queued
        again as it is; a printed one is copied into a new job (``copy_of``) whose label
        says "BẢN SAO", so a second genuine-looking label never exists. The audit log keeps
        who (``actor``), when (``at``) and why (``reason``)."""
        if not actor.strip() or not reason.strip():
            raise ValueError("a reprint needs who asks for it and why")
        with self.store.write() as db:
            row = db.execute("SELECT status FROM print_jobs WHERE id = ?", [job_id]).fetchone()
            if row is None:
                raise NotFound(f"print job {job_id} not found")
            if row[0] not in REPRINTABLE:
                raise ValueError(
                    f"print job {job_id} is {row[0]}; "
                    "only held, failed or printed jobs can be printed again"
                )
            if row[0] == "printed":
                return self._copy(db, job_id, actor.strip(), reason.strip())
            self._set(db, job_id, "queued", None)
            db.execute(
                "UPDATE print_jobs SET printer_status = NULL, bytes_sent = NULL WHERE id = ?",
                [job_id],
            )
            self.store.audit(
                db, "print.requeued", job_id, actor=actor.strip(), reason=reason.strip(), was=row[0]
            )
        return job_id

    def _copy(self, db: sqlite_utils.Database, job_id: str, actor: str, reason: str) -> str:
        """A new queued job printing what ``job_id`` printed, marked as a copy. The copy of
        a copy names the original (``copy_of`` is always the first job)."""
        kind, record_id, data, copy_of = db.execute(
            "SELECT kind, record_id, data, copy_of FROM print_jobs WHERE id = ?", [job_id]
        ).fetchone()
        original = copy_of or job_id
        new = new_id()
        now = iso(self.store.now())
        db.table("print_jobs").insert(
            {
                "id": new,
                "kind": kind,
                "record_id": record_id,
                "data": data,
                "status": "queued",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "copy_of": original,
            }
        )
        # on the original (its history shows every copy) and on the copy itself
        self.store.audit(db, "print.copied", original, actor=actor, reason=reason, copy=new)
        self.store.audit(
            db, "print.queued", new, actor=actor, kind=kind, copy_of=original, reason=reason
        )
        return new

    def copies(self, job_id: str) -> list[dict[str, Any]]:
        """The copies printed of ``job_id``, oldest first."""
        return self.store.rows(
            "SELECT id, status, created_at FROM print_jobs WHERE copy_of = ? "
            "ORDER BY created_at, rowid",
            (job_id,),
        )

    def jobs(self, statuses: tuple[str, ...] = STATUSES, limit: int = 100) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in statuses)
        return self.store.rows(
            f"SELECT id, kind, record_id, status, attempts, last_error, printer_status, "
            f"bytes_sent, created_at, printed_at, copy_of "
            f"FROM print_jobs WHERE status IN ({marks}) "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (*statuses, limit),
        )

    def counts(self) -> dict[str, int]:
        found = {s: 0 for s in STATUSES}
        for row in self.store.rows("SELECT status, count(*) AS n FROM print_jobs GROUP BY status"):
            found[row["status"]] = row["n"]
        return found

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """The job's audit entries, oldest first: who did what, when and why."""
        rows = self.store.rows(
            "SELECT at, actor, action, detail FROM audit_log WHERE record_id = ? ORDER BY id",
            (job_id,),
        )
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def _set(self, db: sqlite_utils.Database, job_id: str, status: str, error: str | None) -> None:
        db.execute(
            "UPDATE print_jobs SET status = ?, last_error = ?, updated_at = ? WHERE id = ?",
            [status, error, iso(self.store.now()), job_id],
        )
