"""Grades in the database: a product's grading key, a lot's proposed grade (from its
latest graded photo) and its confirmed grade, and every confirmation as a record for
central (``grade_confirmations``, one row per confirmation or override, UUIDv7 id).

A confirmation and its audit entry are one transaction. It does not go through the
outbox yet: :func:`confirmation_record` is the record central will receive (type
``grade``), for the ``outbox.add`` call to be made in :meth:`Grades.confirm`'s
transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edge import clock
from edge.ids import iso, new_id
from edge.storage import outbox
from edge.storage.store import RECORD_STREAM, NotFound, Store


@dataclass(frozen=True)
class Confirmation:
    id: str
    site_id: str
    lot_id: str
    grade: str
    proposed_grade: str | None
    confidence: float | None
    method: str | None
    photo_id: str | None
    overridden: bool
    confirmed_by: str
    confirmed_at: str


def confirmation_record(c: Confirmation) -> dict[str, Any]:
    """The record central receives for a confirmed (or overridden) grade: its fields,
    with ``type`` (the outbox kind); the outbox adds ``seq``, the caller the time stamp."""
    record: dict[str, Any] = {"type": "grade", **asdict(c)}
    del record["site_id"]  # the topic names the site
    return record


class Grades:
    """Grading keys of products and grades of lots, on the station's :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- products -------------------------------------------------------------------------

    def list_products(self) -> list[dict[str, Any]]:
        return self.store.rows(
            "SELECT id, seq, name, unit_price_dong, grading FROM products ORDER BY name"
        )

    def add_product(
        self, name: str, unit_price_dong: int | None, grading: str | None, actor: str = "staff"
    ) -> dict[str, Any]:
        """A product with its grading key, in the one transaction that creates it."""
        row = self.store.add_product(name, unit_price_dong, grading, actor=actor)
        return {k: row[k] for k in ("id", "seq", "name", "unit_price_dong", "grading")}

    def set_product_grading(self, product_id: str, grading: str | None, actor: str) -> None:
        with self.store.write() as db:
            cur = db.execute("UPDATE products SET grading = ? WHERE id = ?", [grading, product_id])
            if cur.rowcount == 0:
                raise NotFound(f"product {product_id} not found")
            self.store.audit(db, "product.grading", product_id, actor=actor, grading=grading)

    # -- lots -----------------------------------------------------------------------------

    def lot_context(self, lot_id: str) -> dict[str, Any]:
        """The lot's weight, product and grading key (``NotFound`` for an unknown lot)."""
        rows = self.store.rows(
            "SELECT l.id, l.seq, l.net_g, l.product_id, p.name AS product_name, p.grading "
            "FROM lots_current l "  # its product as corrected (migration 0014)
            "JOIN products p ON p.id = l.product_id WHERE l.id = ?",
            (lot_id,),
        )
        if not rows:
            raise NotFound(f"lot {lot_id} not found")
        return rows[0]

    def propose(
        self, lot_id: str, grade: str, confidence: float, method: str, photo_id: str
    ) -> None:
        """The lot's proposal is its latest graded photo's grade."""
        with self.store.write() as db:
            db.execute(
                "INSERT INTO lot_grades(lot_id, proposed_grade, confidence, method, photo_id, "
                "proposed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(lot_id) DO UPDATE SET "
                "proposed_grade = excluded.proposed_grade, confidence = excluded.confidence, "
                "method = excluded.method, photo_id = excluded.photo_id, "
                "proposed_at = excluded.proposed_at",
                [lot_id, grade, confidence, method, photo_id, iso(self.store.now())],
            )

    def lot_grade(self, lot_id: str) -> dict[str, Any] | None:
        rows = self.store.rows("SELECT * FROM lot_grades WHERE lot_id = ?", (lot_id,))
        return rows[0] if rows else None

    def lot_grades(self, lot_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not lot_ids:
            return {}
        marks = ",".join("?" * len(lot_ids))
        rows = self.store.rows(
            f"SELECT * FROM lot_grades WHERE lot_id IN ({marks})", tuple(lot_ids)
        )
        return {r["lot_id"]: r for r in rows}

    def confirm(self, lot_id: str, grade: str, by: str) -> Confirmation:
        """Confirm the proposal or override it: the lot's grade, a confirmation record
        and an audit entry (``grade.confirmed`` or ``grade.overridden``), one transaction.
        The caller checks ``grade`` against the product's grades."""
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM lots WHERE id = ?", [lot_id]).fetchone() is None:
                raise NotFound(f"lot {lot_id} not found")
            row = db.execute(
                "SELECT proposed_grade, confidence, method, photo_id FROM lot_grades "
                "WHERE lot_id = ?",
                [lot_id],
            ).fetchone()
            proposed, confidence, method, photo_id = row if row else (None, None, None, None)
            when = self.store.now()
            now = iso(when)
            c = Confirmation(
                id=new_id(when),
                site_id=self.store.site_id,
                lot_id=lot_id,
                grade=grade,
                proposed_grade=proposed,
                confidence=confidence,
                method=method,
                photo_id=photo_id,
                overridden=grade != proposed,
                confirmed_by=by,
                confirmed_at=now,
            )
            db.execute(
                "INSERT INTO lot_grades(lot_id, grade, confirmed_by, confirmed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(lot_id) DO UPDATE SET grade = excluded.grade, "
                "confirmed_by = excluded.confirmed_by, confirmed_at = excluded.confirmed_at",
                [lot_id, grade, by, now],
            )
            db.table("grade_confirmations").insert({**asdict(c), "overridden": int(c.overridden)})
            # Central gets the grade as a record, committed with the confirmation itself.
            record = {k: v for k, v in confirmation_record(c).items() if k != "confirmed_at"}
            outbox.add(db, RECORD_STREAM, "grade", c.id, {**record, **clock.stamp(when)})
            self.store.audit(
                db,
                "grade.overridden" if c.overridden else "grade.confirmed",
                lot_id,
                actor=by,
                grade=grade,
                proposed_grade=proposed,
                confidence=confidence,
                confirmation_id=c.id,
            )
        return c

    def confirmations(self, lot_id: str) -> list[Confirmation]:
        rows = self.store.rows(
            "SELECT * FROM grade_confirmations WHERE lot_id = ? ORDER BY rowid", (lot_id,)
        )
        return [Confirmation(**{**r, "overridden": bool(r["overridden"])}) for r in rows]
