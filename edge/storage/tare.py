"""The software tare in force, kept in the station database so a restart keeps it.

A software tare (a scale family without a tare command: the station subtracts the empty
crate's weight itself) lives in the scale reader while the station runs; this is its
durable copy. Setting and clearing it are audited (``scale.tare_set``,
``scale.tare_cleared``: who, the grams, and why when the station cleared it itself) in
the same transaction as the change.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from edge.ids import iso
from edge.storage.store import Store


class SoftwareTare:
    def __init__(self, store: Store) -> None:
        self.store = store

    def current(self) -> int | None:
        """The tare in grams last set and not cleared, else None."""
        rows = self.store.rows("SELECT tare_g FROM software_tare WHERE id = 1")
        return int(rows[0]["tare_g"]) if rows else None

    def set(self, tare_g: int, *, actor: str = "staff") -> None:
        """Keep ``tare_g`` (> 0) as the tare in force, replacing any earlier one."""
        if tare_g <= 0:
            raise ValueError(f"a software tare is a positive weight, got {tare_g} g")
        with self.store.write() as db:
            previous = _current(db)
            db.execute(
                "INSERT INTO software_tare(id, tare_g, set_at) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET tare_g = excluded.tare_g, set_at = excluded.set_at",
                [tare_g, iso(self.store.now())],
            )
            self.store.audit(
                db, "scale.tare_set", None, actor=actor, tare_g=tare_g, previous_g=previous
            )

    def clear(self, *, actor: str = "staff", reason: str | None = None) -> int | None:
        """Drop the tare in force; returns it (None, and no audit entry, if there was none)."""
        with self.store.write() as db:
            previous = _current(db)
            if previous is None:
                return None
            db.execute("DELETE FROM software_tare WHERE id = 1")
            detail: dict[str, Any] = {"tare_g": previous}
            if reason is not None:
                detail["reason"] = reason
            self.store.audit(db, "scale.tare_cleared", None, actor=actor, **detail)
        return previous


def _current(db: sqlite_utils.Database) -> int | None:
    row = db.execute("SELECT tare_g FROM software_tare WHERE id = 1").fetchone()
    return int(row[0]) if row else None
