"""The durable outbox: everything that leaves the station is a row here first,
written in the same transaction as the record it carries. A row becomes
'sent' only after the broker acknowledged it (QoS 1 PUBACK)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.ids import iso
from edge.storage.store import Store


@dataclass(frozen=True)
class OutboxRow:
    id: int
    stream: str
    topic: str
    record_id: str
    seq: int
    payload: bytes


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def pending(
        self, limit: int, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[OutboxRow]:
        """Oldest pending rows first, skipping those already in flight."""
        rows = self.store.rows(
            "SELECT id, stream, topic, record_id, seq, payload FROM outbox "
            "WHERE status = 'pending' ORDER BY id LIMIT ?",
            (limit + len(exclude),),
        )
        return [OutboxRow(**r) for r in rows if r["id"] not in exclude][:limit]

    def mark_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        marks = ",".join("?" for _ in ids)
        with self.store.write() as db:
            db.execute(
                f"UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 "
                f"WHERE id IN ({marks}) AND status = 'pending'",
                [iso(self.store.now()), *ids],
            )

    def status(self) -> dict[str, Any]:
        rows = self.store.rows(
            "SELECT count(*) AS pending, min(created_at) AS oldest "
            "FROM outbox WHERE status = 'pending'"
        )
        sent = self.store.rows("SELECT count(*) AS n FROM outbox WHERE status = 'sent'")
        return {
            "pending": rows[0]["pending"],
            "oldest_pending_at": rows[0]["oldest"],
            "sent": sent[0]["n"],
        }
