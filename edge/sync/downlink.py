"""The station's end of the downlink (docs/mqtt.md "Downlink"): what central sends
down on ``<prefix>/<site>/down``, applied exactly once, in order.

A payload is the uplink's batch envelope (edge.sync.envelope) with stream ``down``,
this site, seqs ``first``..``last`` of the site's downlink and central's downlink
``epoch``. :meth:`Downlink.receive` decodes it within the envelope's bounds (longer
text items allowed: :data:`MAX_TEXT_ITEM`) and applies it in ONE write transaction
(migration 0016's ``downlink_state``):

- records with seq <= ``applied_upto`` are duplicates and skipped; a batch starting
  after ``applied_upto + 1`` (a gap) applies nothing;
- each other record goes to the handler of its ``type`` (``handlers``, given by the
  station: this module does not know what an order is), inside a savepoint: a record
  whose handler raises :class:`DownlinkRefused` (any ValueError, a KeyError or
  TypeError of a malformed record, a constraint of the database), or whose type has
  no handler, is rolled back alone, kept in ``downlink_refused`` with the reason
  (logged, counted in telemetry) and counts as applied;
- ``applied_upto`` becomes ``last`` and the transaction commits. Only then is the
  acknowledgement made: ``{"v": 2, "stream": "down", "upto": applied_upto, "epoch"}``.

A transient failure (disk full, database locked) raises out of :meth:`receive` with
nothing applied: central sends the batch again. A batch of another epoch than the
first one this station applied (central's database was replaced) is ignored and
reported (``foreign_epoch`` in the state, telemetry and ``edge downlink status``)
until an operator accepts it (``edge downlink accept-epoch``, docs/mqtt.md).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from edge.ids import iso
from edge.storage.store import Store
from edge.sync.envelope import Ack, Batch, EnvelopeError, decode_batch, encode_ack

log = logging.getLogger(__name__)

STREAM = "down"
MAX_TEXT_ITEM = 8192
"""Bytes of one text item in a downlink batch: a buyer's message of 2,000 characters
of Vietnamese (up to 4 bytes each in UTF-8) fits; the uplink allows 1,024."""
MAX_REASON = 500

Handler = Callable[[sqlite_utils.Database, dict[str, Any]], None]
REFUSALS = (ValueError, KeyError, TypeError, sqlite3.IntegrityError)
"""What a handler raising means "this record cannot be applied", never "try later"."""


class DownlinkRefused(ValueError):
    """A downlink record this point will not apply; ``str()`` is the reason."""


@dataclass(frozen=True)
class Outcome:
    """What one payload did. ``result``: ``applied`` (something new was applied),
    ``duplicate`` (all of it was applied before), ``gap`` (it starts after the next
    seq expected), ``foreign_epoch`` (another central database), ``invalid`` (not a
    downlink batch for this site: not decodable, another site or stream, no epoch).
    ``ack``: the acknowledgement to publish (None after an invalid payload)."""

    result: str
    upto: int
    applied: int = 0
    refused: int = 0
    detail: str = ""
    ack: bytes | None = None


class Downlink:
    """Applies downlink batches to the station database (``store``: a connection the
    caller's thread owns)."""

    def __init__(self, store: Store, site: str, handlers: Mapping[str, Handler]) -> None:
        self.store = store
        self.site = site
        self.handlers = dict(handlers)
        self._warned_epochs: set[str] = set()

    def state(self) -> dict[str, Any]:
        rows = self.store.rows(
            "SELECT epoch, applied_upto, applied_at, foreign_epoch, foreign_at "
            "FROM downlink_state WHERE stream = ?",
            (STREAM,),
        )
        return rows[0]

    def ack(self) -> bytes:
        """The acknowledgement of what is applied now (sent on every connect too, so
        central learns where this station is after either side restarts)."""
        state = self.state()
        return encode_ack(Ack(STREAM, int(state["applied_upto"]), state["epoch"] or ""))

    def summary(self) -> dict[str, Any]:
        """For telemetry: ``{"applied_upto", "refused", "foreign_epoch"}``."""
        state = self.state()
        refused = self.store.rows("SELECT count(*) AS n FROM downlink_refused")[0]["n"]
        return {
            "applied_upto": state["applied_upto"],
            "refused": refused,
            "foreign_epoch": state["foreign_epoch"],
        }

    def receive(self, payload: bytes) -> Outcome:
        try:
            batch = decode_batch(payload, max_text=MAX_TEXT_ITEM)
        except EnvelopeError as exc:
            return self._invalid(f"not a batch: {exc}")
        if batch.stream != STREAM or batch.site != self.site:
            return self._invalid(
                f"batch {batch.batch_id} is for {batch.site}/{batch.stream}, "
                f"not {self.site}/{STREAM}"
            )
        if not batch.epoch:
            return self._invalid(f"batch {batch.batch_id} carries no epoch")
        outcome = self._apply(batch)
        if outcome.result == "foreign_epoch":
            if batch.epoch not in self._warned_epochs:
                self._warned_epochs.add(batch.epoch)
                log.error(
                    "ignoring central's downlink batch %s: it is of epoch %s, this station "
                    "applied central's epoch %s; central's database was replaced. Nothing "
                    "from it is applied until an operator runs `edge downlink accept-epoch` "
                    "(docs/mqtt.md)",
                    batch.batch_id,
                    batch.epoch,
                    outcome.detail,
                )
        elif outcome.result == "gap":
            log.info(
                "downlink batch %d-%d skipped: applied up to %d, waiting for %d",
                batch.first,
                batch.last,
                outcome.upto,
                outcome.upto + 1,
            )
        return outcome

    def _invalid(self, why: str) -> Outcome:
        log.warning("ignoring a downlink message: %s", why)
        return Outcome("invalid", int(self.state()["applied_upto"]), detail=why)

    def _apply(self, batch: Batch) -> Outcome:
        now = iso(self.store.now())
        applied = refused = 0
        with self.store.write() as db:
            row = db.execute(
                "SELECT epoch, applied_upto FROM downlink_state WHERE stream = ?", [STREAM]
            ).fetchone()
            epoch, upto = row[0], int(row[1])
            if epoch is not None and epoch != batch.epoch:
                db.execute(
                    "UPDATE downlink_state SET foreign_epoch = ?, foreign_at = ? WHERE stream = ?",
                    [batch.epoch, now, STREAM],
                )
                ack = encode_ack(Ack(STREAM, upto, epoch))
                return Outcome("foreign_epoch", upto, detail=epoch, ack=ack)
            if batch.first > upto + 1:
                return Outcome("gap", upto, ack=encode_ack(Ack(STREAM, upto, epoch or "")))
            if batch.last <= upto:
                return Outcome("duplicate", upto, ack=encode_ack(Ack(STREAM, upto, batch.epoch)))
            for record in batch.records:
                if record["seq"] <= upto:
                    continue
                reason = self._apply_one(db, record)
                if reason is None:
                    applied += 1
                    continue
                refused += 1
                self._keep_refused(db, batch.epoch, record, reason, now)
            db.execute(
                "UPDATE downlink_state SET epoch = ?, applied_upto = ?, applied_at = ?, "
                "foreign_epoch = NULL, foreign_at = NULL WHERE stream = ?",
                [batch.epoch, batch.last, now, STREAM],
            )
        # committed: only now may central hear that these seqs are applied
        ack = encode_ack(Ack(STREAM, batch.last, batch.epoch))
        return Outcome("applied", batch.last, applied, refused, ack=ack)

    def _apply_one(self, db: sqlite_utils.Database, record: dict[str, Any]) -> str | None:
        """Apply one record in a savepoint; the reason it was refused, or None."""
        kind = record.get("type")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return f"unknown record type {kind!r}: this station has no handler for it"
        db.execute("SAVEPOINT downlink_record")
        try:
            handler(db, record)
        except REFUSALS as exc:
            db.execute("ROLLBACK TO downlink_record")
            db.execute("RELEASE downlink_record")
            if isinstance(exc, ValueError):
                return str(exc) or type(exc).__name__
            return f"{type(exc).__name__}: {exc}"
        db.execute("RELEASE downlink_record")
        return None

    def _keep_refused(
        self, db: sqlite_utils.Database, epoch: str, record: dict[str, Any], reason: str, now: str
    ) -> None:
        kind = record.get("type")
        rid = record.get("id", record.get("name"))
        log.warning(
            "downlink record %d (%s %s) refused and kept as refused: %s",
            record["seq"],
            kind,
            rid,
            reason,
        )
        db.execute(
            "INSERT INTO downlink_refused (epoch, seq, kind, record_id, reason, body, refused_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                epoch,
                record["seq"],
                str(kind)[:64] if kind is not None else "?",
                str(rid)[:128] if rid is not None else None,
                reason[:MAX_REASON],
                json.dumps(record, ensure_ascii=False, default=str),
                now,
            ],
        )

    def accept_epoch(self) -> str | None:
        """An operator's word that central's new database is the one: its epoch is
        taken by the next batch, numbered from 1 again (records applied before stay;
        the handlers ignore what they already have). The epoch given up, or None."""
        with self.store.write() as db:
            row = db.execute(
                "SELECT epoch FROM downlink_state WHERE stream = ?", [STREAM]
            ).fetchone()
            db.execute(
                "UPDATE downlink_state SET epoch = NULL, applied_upto = 0, applied_at = NULL, "
                "foreign_epoch = NULL, foreign_at = NULL WHERE stream = ?",
                [STREAM],
            )
        self._warned_epochs.clear()
        return str(row[0]) if row and row[0] else None
