"""Courier handovers in the station database (issue 14, migration 0018, docs/handover.md).

A handover is opened per carrier (one open at a time per carrier; it resumes after a
restart, being only rows). Every scan is a row, kept: its verdict is decided inside the
write transaction that keeps it (edge.handover.verdict), so two scanners at once cannot
both accept a parcel. Closing commits in one transaction: the handover closed with its
totals and how the courier confirmed, every accepted parcel handed over
(``parcel_handovers``), the manifest's print job, the ``manifest`` record and one
``parcel_handover`` record per parcel for central, and the audit entry. A parcel the
courier brings back is returned (:func:`return_parcel`, a ``parcel_return`` record): its
goods count back into stock (edge.storage.orders) and it is never offered again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlite_utils

from edge import clock
from edge.errors import StaffError
from edge.handover.reconcile import Expected, Reconciliation, reconcile
from edge.handover.verdict import Known, Parsed, Verdict, verdict
from edge.ids import iso, new_id
from edge.storage import outbox
from edge.storage.search_key import fold
from edge.storage.store import RECORD_STREAM, NotFound, Store

MAX_PERSON = 60  # characters of a name in a record for central (edge.sync.validate)

Query = Callable[[str, list[Any]], list[dict[str, Any]]]


class HandoverRefused(StaffError):
    """A handover step the station will not take (409 unless told), with why."""


class HandoverNotFound(StaffError):
    default_status = 404


class Person(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


def _in(db: sqlite_utils.Database) -> Query:
    return lambda sql, params: list(db.query(sql, params))


def _of(store: Store) -> Query:
    return lambda sql, params: store.rows(sql, tuple(params))


_WAITING = (
    "SELECT p.id AS parcel_id, p.tracking, p.order_id, p.carrier, p.gross_g, o.recipient, "
    "o.cod_dong FROM parcels p JOIN orders o ON o.id = p.order_id "
    "WHERE p.voided_at IS NULL AND o.status <> 'cancelled' "
    "AND NOT EXISTS (SELECT 1 FROM parcel_handovers h WHERE h.parcel_id = p.id)"
)
_COLUMNS = (
    "id, carrier, carrier_key, courier_id, courier_name, opened_by, opened_by_id, opened_at, "
    "status, closed_at, closed_by, closed_by_id, confirmed_with, manifest_job_id, count, "
    "total_g, cod_dong, missing"
)


def _expected(row: dict[str, Any]) -> Expected:
    return Expected(
        row["parcel_id"], row["tracking"], row["order_id"], row["recipient"],
        row["gross_g"], row["cod_dong"],
    )  # fmt: skip


def waiting(query: Query) -> list[dict[str, Any]]:
    """Every parcel waiting for a courier (packed, live, order not cancelled, never handed
    over), with its carrier."""
    return query(_WAITING, [])


def carriers(store: Store) -> list[dict[str, Any]]:
    """Carriers with parcels waiting, or with an open handover: name, waiting, open id."""
    found: dict[str, dict[str, Any]] = {}
    for row in waiting(_of(store)):
        key = fold(row["carrier"])
        entry = found.setdefault(key, {"carrier": row["carrier"], "waiting": 0})
        entry["waiting"] += 1
    opened = {
        r["carrier_key"]: r
        for r in store.rows("SELECT id, carrier, carrier_key FROM handovers WHERE status = 'open'")
    }
    for key, row in opened.items():
        found.setdefault(key, {"carrier": row["carrier"], "waiting": 0})
    return [
        {**found[key], "open_handover": opened[key]["id"] if key in opened else None}
        for key in sorted(found, key=lambda k: found[k]["carrier"])
    ]


def _row(query: Query, handover_id: str) -> dict[str, Any]:
    rows = query(f"SELECT {_COLUMNS} FROM handovers WHERE id = ?", [handover_id])
    if not rows:
        raise HandoverNotFound(
            "handover_not_found",
            "Không tìm thấy lượt bàn giao này. Tải lại trang.",
            f"No handover {handover_id}; reload the page.",
        )
    return rows[0]


def _reconcile(query: Query, row: dict[str, Any]) -> Reconciliation:
    hid = row["id"]
    scans = query(
        "SELECT code, verdict, at, parcel_id, undone_at FROM handover_scans "
        "WHERE handover_id = ? ORDER BY at, rowid",
        [hid],
    )
    confirmed = {
        r["parcel_id"]
        for r in query("SELECT parcel_id FROM handover_missing WHERE handover_id = ?", [hid])
    }
    if row["status"] == "closed":  # what it handed over, and what was confirmed missing
        expected = query(
            "SELECT p.id AS parcel_id, p.tracking, p.order_id, p.gross_g, o.recipient, "
            "o.cod_dong FROM parcels p JOIN orders o ON o.id = p.order_id "
            "WHERE p.id IN (SELECT parcel_id FROM parcel_handovers WHERE handover_id = ?) "
            "OR p.id IN (SELECT parcel_id FROM handover_missing WHERE handover_id = ?)",
            [hid, hid],
        )
        scanned = {
            r["parcel_id"]
            for r in query("SELECT parcel_id FROM parcel_handovers WHERE handover_id = ?", [hid])
        }
    else:
        key = row["carrier_key"]
        expected = [r for r in waiting(query) if fold(r["carrier"]) == key]
        scanned = {
            s["parcel_id"] for s in scans if s["verdict"] == "accepted" and s["undone_at"] is None
        }
    return reconcile([_expected(r) for r in expected], scanned, scans, confirmed)


def state(store: Store, handover_id: str) -> tuple[dict[str, Any], Reconciliation]:
    """The handover's row and its reconciliation now."""
    query = _of(store)
    row = _row(query, handover_id)
    return row, _reconcile(query, row)


def _refuse_closed(row: dict[str, Any]) -> None:
    if row["status"] != "open":
        raise HandoverRefused(
            "handover_closed",
            "Lượt bàn giao này đã kết thúc. Mở lượt mới để giao tiếp.",
            "This handover is closed. Open a new one to hand over more parcels.",
        )


def open_handover(store: Store, carrier: str, courier: Person, by: Person) -> tuple[str, bool]:
    """The open handover of ``carrier`` (its id, False), or a new one (its id, True)."""
    key = fold(carrier)
    with store.write() as db:
        found = db.execute(
            "SELECT id FROM handovers WHERE carrier_key = ? AND status = 'open'", [key]
        ).fetchone()
        if found is not None:
            return str(found[0]), False
        names = {fold(r["carrier"]): r["carrier"] for r in waiting(_in(db))}
        if key not in names:
            raise HandoverRefused(
                "nothing_waiting",
                f"Không có kiện nào của {carrier} đang chờ bàn giao.",
                f"No {carrier} parcels are waiting for a pickup.",
            )
        at = store.now()
        hid = new_id(at)
        db.table("handovers").insert(
            {
                "id": hid, "carrier": names[key], "carrier_key": key,
                "courier_id": courier.id, "courier_name": courier.name,
                "opened_by": by.name, "opened_by_id": by.id, "opened_at": iso(at),
                "status": "open",
            }
        )  # fmt: skip
        store.audit(
            db, "handover.opened", hid, actor=by.name, actor_id=by.id, carrier=names[key],
            courier=courier.name, courier_id=courier.id,
        )  # fmt: skip
    return hid, True


def _known(db: sqlite_utils.Database, tracking: str, handover_id: str) -> Known | None:
    row = db.execute(
        "SELECT p.id, p.carrier, p.voided_at IS NOT NULL, o.status = 'cancelled', "
        "EXISTS (SELECT 1 FROM parcel_handovers h WHERE h.parcel_id = p.id), "
        "EXISTS (SELECT 1 FROM parcel_returns r WHERE r.parcel_id = p.id), "
        "EXISTS (SELECT 1 FROM handover_scans s WHERE s.handover_id = ? AND "
        " s.parcel_id = p.id AND s.verdict = 'accepted' AND s.undone_at IS NULL) "
        "FROM parcels p JOIN orders o ON o.id = p.order_id WHERE p.tracking = ? "
        "ORDER BY p.voided_at IS NULL DESC, p.packed_at DESC, p.rowid DESC LIMIT 1",
        [handover_id, tracking],
    ).fetchone()
    if row is None:
        return None
    pid, carrier, voided, cancelled, handed, returned, here = row
    return Known(
        str(pid), fold(carrier), bool(voided), bool(cancelled), bool(handed), bool(returned),
        bool(here),
    )  # fmt: skip


@dataclass(frozen=True)
class Scanned:
    verdict: Verdict
    tracking: str | None
    reconciliation: Reconciliation


def record_scan(
    store: Store, handover_id: str, code: str, source: str, parsed: Parsed, person: Person
) -> Scanned:
    """Keep one scan with its verdict (decided here, in the transaction that keeps it)."""
    with store.write() as db:
        row = _row(_in(db), handover_id)
        _refuse_closed(row)
        known = _known(db, parsed.tracking, handover_id) if parsed.tracking else None
        found = verdict(parsed, known, row["carrier_key"])
        db.table("handover_scans").insert(
            {
                "id": new_id(store.now()), "handover_id": handover_id, "code": code,
                "source": source, "verdict": found, "tracking": parsed.tracking,
                "parcel_id": known.parcel_id if known else None, "by_id": person.id,
                "by_name": person.name, "at": iso(store.now()),
            }
        )  # fmt: skip
        return Scanned(found, parsed.tracking, _reconcile(_in(db), row))


def undo(store: Store, handover_id: str, person: Person) -> str | None:
    """Mark the last accepted scan not yet undone as undone (kept); its tracking number,
    or None when there was none to undo."""
    with store.write() as db:
        row = _row(_in(db), handover_id)
        _refuse_closed(row)
        last = db.execute(
            "SELECT id, tracking FROM handover_scans WHERE handover_id = ? "
            "AND verdict = 'accepted' AND undone_at IS NULL ORDER BY at DESC, rowid DESC LIMIT 1",
            [handover_id],
        ).fetchone()
        if last is None:
            raise HandoverRefused(
                "nothing_to_undo",
                "Chưa có lần quét nào để hoàn tác.",
                "There is no accepted scan to undo.",
            )
        db.execute(
            "UPDATE handover_scans SET undone_at = ?, undone_by = ? WHERE id = ?",
            [iso(store.now()), person.name, last[0]],
        )
        store.audit(db, "handover.scan_undone", handover_id, actor=person.name,
                    actor_id=person.id, scan_id=last[0], tracking=last[1])  # fmt: skip
        return str(last[1])


def confirm_missing(store: Store, handover_id: str, reason: str, person: Person) -> int:
    """A lead confirms the parcels missing now as not handed over; how many."""
    with store.write() as db:
        row = _row(_in(db), handover_id)
        _refuse_closed(row)
        missing = _reconcile(_in(db), row).missing
        if not missing:
            raise HandoverRefused(
                "nothing_missing",
                "Không thiếu kiện nào: không cần xác nhận.",
                "No parcel is missing: nothing to confirm.",
            )
        at = iso(store.now())
        db.table("handover_missing").insert_all(
            ({"handover_id": handover_id, "parcel_id": e.parcel_id, "reason": reason,
              "by_id": person.id, "by_name": person.name, "at": at} for e in missing),
            ignore=True,
        )  # fmt: skip
        store.audit(db, "handover.missing_confirmed", handover_id, actor=person.name,
                    actor_id=person.id, reason=reason,
                    tracking=[e.tracking for e in missing])  # fmt: skip
        return len(missing)


@dataclass(frozen=True)
class Closing:
    """How the courier confirmed: ``pin`` or ``signature`` (the PNG kept with the row)."""

    courier_confirmed: str
    signature_png: bytes | None


Manifest = Callable[[dict[str, Any], list[Expected], datetime, Person], dict[str, Any]]
"""The manifest's print data from the handover row, the parcels, the time and who closes."""


def close(
    store: Store, handover_id: str, person: Person, closing: Closing, manifest: Manifest
) -> str:
    """Close (see the module's note); the manifest's print job id."""
    with store.write() as db:
        row = _row(_in(db), handover_id)
        _refuse_closed(row)
        rec = _reconcile(_in(db), row)
        if not rec.scanned:
            raise HandoverRefused(
                "nothing_scanned",
                "Chưa nhận kiện nào: không có gì để bàn giao.",
                "No parcel was accepted: there is nothing to hand over.",
            )
        if rec.missing and not rec.missing_confirmed:
            raise HandoverRefused(
                "missing_unconfirmed",
                f"Còn thiếu {len(rec.missing)} kiện. Quét nốt, hoặc nhờ trưởng điểm xác nhận "
                "các kiện này không bàn giao.",
                f"{len(rec.missing)} parcel(s) are missing. Scan them, or ask the lead to "
                "confirm them as not handed over.",
            )
        at = store.now()
        stamp = clock.stamp(at)
        when = stamp["recorded_at"]
        job_id = new_id(at)
        db.table("print_jobs").insert(
            {
                "id": job_id, "kind": "manifest", "record_id": handover_id,
                "data": json.dumps(manifest(row, rec.scanned, at, person), ensure_ascii=False),
                "status": "queued", "attempts": 0, "created_at": when, "updated_at": when,
            }
        )  # fmt: skip
        totals = {
            "count": len(rec.scanned),
            "total_g": rec.scanned_g,
            "cod_dong": rec.scanned_cod_dong,
            "missing": len(rec.missing),
        }
        db.execute(
            "UPDATE handovers SET status = 'closed', closed_at = ?, closed_by = ?, "
            "closed_by_id = ?, confirmed_with = ?, signature_png = ?, manifest_job_id = ?, "
            "count = ?, total_g = ?, cod_dong = ?, missing = ? WHERE id = ?",
            [when, person.name, person.id, closing.courier_confirmed, closing.signature_png,
             job_id, totals["count"], totals["total_g"], totals["cod_dong"], totals["missing"],
             handover_id],
        )  # fmt: skip
        db.table("parcel_handovers").insert_all(
            {"parcel_id": e.parcel_id, "handover_id": handover_id, "at": when} for e in rec.scanned
        )
        record = {
            "id": handover_id, "carrier": row["carrier"],
            "courier": row["courier_name"][:MAX_PERSON], "courier_id": row["courier_id"],
            "by": person.name[:MAX_PERSON], "by_id": person.id, "closed_at": when, **totals,
            "confirmed_with": closing.courier_confirmed, **stamp,
        }  # fmt: skip
        outbox.add(db, RECORD_STREAM, "manifest", handover_id, record)
        for e in rec.scanned:
            outbox.add(
                db, RECORD_STREAM, "parcel_handover", e.parcel_id,
                {"parcel_id": e.parcel_id, "manifest_id": handover_id, "tracking": e.tracking,
                 "carrier": row["carrier"], "courier": row["courier_name"][:MAX_PERSON],
                 "courier_id": row["courier_id"], "at": when, **stamp},
            )  # fmt: skip
        store.audit(
            db, "handover.closed", handover_id, actor=person.name, actor_id=person.id,
            courier=row["courier_name"], confirmed_with=closing.courier_confirmed,
            manifest_job_id=job_id, **totals,
        )  # fmt: skip
    return job_id


def return_parcel(store: Store, parcel_id: str, reason: str, person: Person) -> dict[str, Any]:
    """A handed-over parcel the courier brought back: returned, its goods back in stock."""
    with store.write() as db:
        row = db.execute(
            "SELECT p.tracking, p.order_id, h.handover_id, r.parcel_id IS NOT NULL "
            "FROM parcels p LEFT JOIN parcel_handovers h ON h.parcel_id = p.id "
            "LEFT JOIN parcel_returns r ON r.parcel_id = p.id WHERE p.id = ?",
            [parcel_id],
        ).fetchone()
        if row is None:
            raise NotFound(f"parcel {parcel_id} not found")
        tracking, order_id, manifest_id, returned = row
        if returned:
            raise HandoverRefused(
                "already_returned",
                f"Kiện {tracking} đã nhận hoàn về rồi.",
                f"Parcel {tracking} was already returned.",
            )
        if manifest_id is None:
            raise HandoverRefused(
                "not_handed_over",
                f"Kiện {tracking} chưa bàn giao cho hãng vận chuyển: không nhận hoàn được.",
                f"Parcel {tracking} was never handed over: it cannot be returned.",
            )
        at = store.now()
        stamp = clock.stamp(at)
        db.table("parcel_returns").insert(
            {"parcel_id": parcel_id, "handover_id": manifest_id, "reason": reason,
             "by_id": person.id, "by_name": person.name, "at": stamp["recorded_at"]}
        )  # fmt: skip
        outbox.add(
            db, RECORD_STREAM, "parcel_return", parcel_id,
            {"parcel_id": parcel_id, "manifest_id": manifest_id, "reason": reason,
             "by": person.name[:MAX_PERSON], "by_id": person.id, "at": stamp["recorded_at"],
             **stamp},
        )  # fmt: skip
        store.audit(db, "parcel.returned", parcel_id, actor=person.name, actor_id=person.id,
                    order_id=order_id, tracking=tracking, manifest_id=manifest_id,
                    reason=reason)  # fmt: skip
    return {
        "parcel_id": parcel_id,
        "tracking": tracking,
        "order_id": order_id,
        "manifest_id": manifest_id,
        "reason": reason,
        "returned_at": stamp["recorded_at"],
    }


def of_day(store: Store, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Handovers opened in [start, end), oldest first (summary rows)."""
    return store.rows(
        f"SELECT {_COLUMNS} FROM handovers WHERE opened_at >= ? AND opened_at < ? "
        "ORDER BY opened_at, rowid",
        (iso(start), iso(end)),
    )


def manifest_job(store: Store, handover_id: str) -> str | None:
    rows = store.rows("SELECT manifest_job_id FROM handovers WHERE id = ?", (handover_id,))
    return rows[0]["manifest_job_id"] if rows else None
