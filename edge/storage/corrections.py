"""Corrections without deleting history (issue 12): a lead voids a lot or corrects its
farmer or product with a reason, edits a farmer or a product, merges two farmers.

Nothing is deleted or rewritten (migration 0014): a lot row stays as it was recorded and
each correction is a row of its own; a farmer's or product's edit keeps what it was
before; a merged farmer stays, with its lots, and only ``producers.merged_into`` says
where its lots now count. Each change is one write transaction holding its row, its
record for central (outbox, ``records`` stream, docs/mqtt.md: ``lot_void``,
``lot_correction``, ``producer_update``, ``product_update``, ``producer_merge``) and its
audit entry, whose actor is the signed-in person who asked (never a name from a request).

A lot as it stands now is the ``lots_current`` view: its farmer and product after
corrections and merges, and whether it is voided. Lists, totals and labels read it
(:meth:`Corrections.lot`, and the station's lot queries join it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlite_utils

from edge import clock
from edge.errors import StaffError
from edge.ids import new_id
from edge.storage import outbox
from edge.storage.store import RECORD_STREAM, NotFound, Store, usable_producer
from edge.sync.validate import MAX_PERSON

PRODUCER_FIELDS = ("name", "phone", "village")
PRODUCT_FIELDS = ("name", "unit_price_dong", "grading")
_CORRECTION_FIELDS = (
    "lot_id", "producer_id", "product_id", "was_producer_id", "was_product_id", "reason",
)  # fmt: skip


class Actor(Protocol):
    """Who asks: the signed-in person (edge.web.auth.Person)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class CorrectionRefused(StaffError):
    """A correction that cannot be made as asked (409), with what to do."""


@dataclass(frozen=True)
class LotState:
    """A lot as it stands now (``lots_current``), with the names staff read."""

    id: str
    seq: int
    net_g: int
    recorded_at: str
    producer_id: str
    producer_name: str
    product_id: str
    product_name: str
    recorded_producer_id: str
    recorded_product_id: str
    voided: bool
    void_reason: str | None
    voided_at: str | None
    voided_by: str | None
    corrected: bool


_LOT_STATE = (
    "SELECT c.id, c.seq, c.net_g, c.recorded_at, c.producer_id, p.name AS producer_name, "
    "c.product_id, pr.name AS product_name, c.recorded_producer_id, c.recorded_product_id, "
    "c.voided, c.void_reason, c.voided_at, c.voided_by, c.corrected "
    "FROM lots_current c JOIN producers p ON p.id = c.producer_id "
    "JOIN products pr ON pr.id = c.product_id WHERE c.id = ?"
)


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise CorrectionRefused(
            "reason_required",
            "Cần ghi lý do sửa hoặc hủy.",
            "A reason is required.",
            422,
        )
    return text


def _by(actor: Actor) -> dict[str, str]:
    """Who, in a record for central (which takes at most MAX_PERSON characters of a name;
    the station keeps the whole name)."""
    return {"by": actor.name[:MAX_PERSON], "by_id": actor.id}


class Corrections:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading ----------------------------------------------------------------------

    def lot(self, lot_id: str) -> LotState:
        rows = self.store.rows(_LOT_STATE, (lot_id,))
        if not rows:
            raise NotFound(f"lot {lot_id} not found")
        row = rows[0]
        return LotState(
            **{**row, "voided": bool(row["voided"]), "corrected": bool(row["corrected"])}
        )

    def history(self, lot_id: str) -> list[dict[str, Any]]:
        """The lot's corrections, oldest first."""
        return self.store.rows(
            "SELECT id, kind, producer_id, product_id, was_producer_id, was_product_id, "
            "reason, actor_id, actor_name, at FROM corrections WHERE lot_id = ? ORDER BY rowid",
            (lot_id,),
        )

    def producer_edits(self, producer_id: str) -> list[dict[str, Any]]:
        return self.store.rows(
            "SELECT * FROM producer_edits WHERE producer_id = ? ORDER BY rowid", (producer_id,)
        )

    def product_edits(self, product_id: str) -> list[dict[str, Any]]:
        return self.store.rows(
            "SELECT * FROM product_edits WHERE product_id = ? ORDER BY rowid", (product_id,)
        )

    # -- lots -------------------------------------------------------------------------

    @staticmethod
    def _correction(
        db: sqlite_utils.Database,
        lot_id: str,
        kind: str,
        new: tuple[str | None, str | None],
        was: tuple[str, str],
        why: str,
        actor: Actor,
        at: datetime,
    ) -> dict[str, Any]:
        """The ``corrections`` row of a void or a correction (new and former farmer and
        product), inserted in ``db``'s transaction."""
        row = {
            "id": new_id(at),
            "lot_id": lot_id,
            "kind": kind,
            "producer_id": new[0],
            "product_id": new[1],
            "was_producer_id": was[0],
            "was_product_id": was[1],
            "reason": why,
            "actor_id": actor.id,
            "actor_name": actor.name,
            "at": clock.stamp(at)["recorded_at"],
        }
        db.table("corrections").insert(row)
        return row

    @staticmethod
    def _send(
        db: sqlite_utils.Database,
        kind: str,
        record_id: str,
        fields: dict[str, Any],
        actor: Actor,
        stamp: dict[str, Any],
    ) -> None:
        """The record for central: its fields, who (``by``, ``by_id``) and when."""
        record = {"id": record_id, **fields, **_by(actor), **stamp}
        outbox.add(db, RECORD_STREAM, kind, record_id, record)

    def _audit(
        self, db: sqlite_utils.Database, action: str, subject: str, actor: Actor, **detail: Any
    ) -> None:
        self.store.audit(db, action, subject, actor=actor.name, actor_id=actor.id, **detail)

    @staticmethod
    def _current(db: sqlite_utils.Database, lot_id: str) -> tuple[str, str, bool, int]:
        row = db.execute(
            "SELECT producer_id, product_id, voided, seq FROM lots_current WHERE id = ?", [lot_id]
        ).fetchone()
        if row is None:
            raise NotFound(f"lot {lot_id} not found")
        return str(row[0]), str(row[1]), bool(row[2]), int(row[3])

    @staticmethod
    def _refuse_voided(seq: int) -> CorrectionRefused:
        return CorrectionRefused(
            "lot_voided",
            f"Lô #{seq} đã bị hủy; không sửa hay hủy lại được. Cần thì cân và ghi lô mới.",
            f"Lot #{seq} is already voided; it cannot be corrected or voided again. "
            "Weigh and record a new lot if needed.",
        )

    def void_lot(self, lot_id: str, reason: str, actor: Actor) -> dict[str, Any]:
        """Void a lot: it stays recorded, counts for nothing and its label says "ĐÃ HỦY"."""
        why = _reason(reason)
        with self.store.write() as db:
            producer_id, product_id, voided, seq = self._current(db, lot_id)
            if voided:
                raise self._refuse_voided(seq)
            at = self.store.now()
            stamp = clock.stamp(at)
            was = (producer_id, product_id)
            row = self._correction(db, lot_id, "void", (None, None), was, why, actor, at)
            fields = {"lot_id": lot_id, "reason": why}
            self._send(db, "lot_void", row["id"], fields, actor, stamp)
            self._audit(db, "lot.voided", lot_id, actor, correction_id=row["id"], reason=why)
        return row

    def correct_lot(
        self,
        lot_id: str,
        reason: str,
        actor: Actor,
        *,
        producer_id: str | None = None,
        product_id: str | None = None,
    ) -> dict[str, Any]:
        """Correct a lot's farmer and/or product; the lot row keeps what was recorded."""
        why = _reason(reason)
        with self.store.write() as db:
            was_producer, was_product, voided, seq = self._current(db, lot_id)
            if voided:
                raise self._refuse_voided(seq)
            new_producer = None if producer_id in (None, was_producer) else producer_id
            new_product = None if product_id in (None, was_product) else product_id
            if new_producer is None and new_product is None:
                raise CorrectionRefused(
                    "nothing_to_correct",
                    f"Lô #{seq} đã đúng nông dân và sản phẩm này; không có gì để sửa.",
                    f"Lot #{seq} already has this farmer and product; nothing to correct.",
                )
            if new_producer is not None:
                usable_producer(db, new_producer, CorrectionRefused)
            if (
                new_product is not None
                and not db.execute("SELECT 1 FROM products WHERE id = ?", [new_product]).fetchone()
            ):
                raise NotFound(f"product {new_product} not found")
            at = self.store.now()
            stamp = clock.stamp(at)
            new, was = (new_producer, new_product), (was_producer, was_product)
            row = self._correction(db, lot_id, "correct", new, was, why, actor, at)
            fields = {k: row[k] for k in _CORRECTION_FIELDS}
            self._send(db, "lot_correction", row["id"], fields, actor, stamp)
            detail = {k: v for k, v in fields.items() if k != "lot_id"}
            self._audit(db, "lot.corrected", lot_id, actor, correction_id=row["id"], **detail)
        return row

    # -- farmers and products ---------------------------------------------------------

    def edit_producer(
        self, producer_id: str, changes: dict[str, str | None], actor: Actor
    ) -> dict[str, Any]:
        """Change a farmer's name, phone or village (only the keys of ``changes``; None
        clears phone or village). The edit keeps what was there before."""
        unknown = set(changes) - set(PRODUCER_FIELDS)
        if unknown:
            raise ValueError(f"not producer fields: {sorted(unknown)}")
        with self.store.write() as db:
            was = usable_producer(db, producer_id, CorrectionRefused)
            return self._edit(db, "producer", PRODUCER_FIELDS, was, changes, actor)

    def edit_product(
        self, product_id: str, changes: dict[str, Any], actor: Actor
    ) -> dict[str, Any]:
        """Change a product's name, price or grading rules (only the keys of ``changes``;
        None clears price or grading). Lots already recorded keep the price they had."""
        unknown = set(changes) - set(PRODUCT_FIELDS)
        if unknown:
            raise ValueError(f"not product fields: {sorted(unknown)}")
        with self.store.write() as db:
            row = db.execute(
                "SELECT id, name, unit_price_dong, grading FROM products WHERE id = ?",
                [product_id],
            ).fetchone()
            if row is None:
                raise NotFound(f"product {product_id} not found")
            was = {"id": row[0], "name": row[1], "unit_price_dong": row[2], "grading": row[3]}
            return self._edit(db, "product", PRODUCT_FIELDS, was, changes, actor)

    def _edit(
        self,
        db: sqlite_utils.Database,
        kind: str,
        fields: tuple[str, ...],
        was: dict[str, Any],
        changes: dict[str, Any],
        actor: Actor,
    ) -> dict[str, Any]:
        """In ``db``'s transaction: a farmer's or product's (``kind``) new ``fields``, the
        edit kept beside what was there, its ``<kind>_update`` record for central and
        the audit entry; nothing written when nothing changes."""
        now = {**was, **changes}
        name = str(now["name"] or "").strip()
        if not name:
            what = ("Họ tên", "name") if kind == "producer" else ("Tên sản phẩm", "product name")
            raise CorrectionRefused(
                "name_required",
                f"{what[0]} không được để trống.",
                f"The {what[1]} is empty.",
                422,
            )
        now["name"] = name
        if all(now[k] == was[k] for k in fields):
            return now
        at = self.store.now()
        stamp = clock.stamp(at)
        edit_id = new_id(at)
        current = {k: now[k] for k in fields}
        sets = ", ".join(f"{k} = ?" for k in fields)
        db.execute(f"UPDATE {kind}s SET {sets} WHERE id = ?", [*current.values(), was["id"]])
        db.table(f"{kind}_edits").insert(
            {
                "id": edit_id,
                f"{kind}_id": was["id"],
                **current,
                **{f"was_{k}": was[k] for k in fields},
                "actor_id": actor.id,
                "actor_name": actor.name,
                "at": stamp["recorded_at"],
            }
        )
        self._send(
            db, f"{kind}_update", edit_id, {f"{kind}_id": was["id"], **current}, actor, stamp
        )
        was_fields = {k: was[k] for k in fields}
        self._audit(
            db, f"{kind}.edited", was["id"], actor, edit_id=edit_id, was=was_fields, now=current
        )
        return now

    def merge_producers(
        self, merged_id: str, survivor_id: str, reason: str, actor: Actor
    ) -> dict[str, Any]:
        """Merge farmer ``merged_id`` into ``survivor_id``: its lots count for the
        survivor from now on (the lot rows are not changed) and it leaves the picker."""
        why = _reason(reason)
        if merged_id == survivor_id:
            raise CorrectionRefused(
                "merge_same",
                "Không gộp một nông dân vào chính mình. Chọn hai người khác nhau.",
                "A farmer cannot be merged into themselves; choose two different farmers.",
                422,
            )
        with self.store.write() as db:
            merged = usable_producer(db, merged_id, CorrectionRefused)
            survivor = usable_producer(db, survivor_id, CorrectionRefused)
            at = self.store.now()
            stamp = clock.stamp(at)
            row = {
                "id": new_id(at),
                "survivor_id": survivor_id,
                "merged_id": merged_id,
                "reason": why,
                "actor_id": actor.id,
                "actor_name": actor.name,
                "at": stamp["recorded_at"],
            }
            lots = db.execute(  # the lots that counted for the merged farmer until now
                "SELECT count(*) FROM lots_current WHERE producer_id = ?", [merged_id]
            ).fetchone()[0]
            db.table("producer_merges").insert(row)
            db.execute(  # the farmers merged into this one before now count for the survivor
                "UPDATE producers SET merged_into = ? WHERE id = ? OR merged_into = ?",
                [survivor_id, merged_id, merged_id],
            )
            fields = {"merged_id": merged_id, "survivor_id": survivor_id, "reason": why}
            self._send(db, "producer_merge", row["id"], fields, actor, stamp)
            self._audit(
                db, "producer.merged", merged_id, actor, merge_id=row["id"],
                survivor_id=survivor_id, reason=why, merged_name=merged["name"],
                survivor_name=survivor["name"],
            )  # fmt: skip
        return {**row, "lots_moved": int(lots)}
