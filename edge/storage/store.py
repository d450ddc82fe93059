"""The station's records: producers, products, lots, with their print job,
outbox row and audit entry written in the same transaction.

A lot is recorded when ``record_lot`` returns: its transaction has committed
(WAL, synchronous=FULL), so a power cut after that cannot lose it, its label
or its record for central (an outbox row in the ``records`` stream,
docs/mqtt.md). Producers and products go to central as records too, so central
can resolve the ids a lot refers to.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from edge import clock
from edge.ids import Now, iso, new_id, utc_now
from edge.storage import outbox
from edge.storage.db import StorageError, open_database, write_transaction

RECORD_STREAM = "records"


class NotFound(Exception):
    """A referenced producer, product or job does not exist."""


@dataclass(frozen=True)
class Lot:
    id: str
    seq: int
    site_id: str
    producer_id: str
    producer_name: str
    product_id: str
    product_name: str
    net_g: int
    recorded_at: str
    print_job_id: str


def lot_record(
    lot: Lot,
    stamp: dict[str, Any],
    tare_g: int | None = None,
    tare_source: str | None = None,
) -> dict[str, Any]:
    """The lot record central receives (docs/mqtt.md, record schema 2), without its
    seq (the outbox assigns it). ``stamp`` is :func:`edge.clock.stamp` at recording.
    Names are not repeated: central knows them from the producer and product records."""
    record: dict[str, Any] = {
        "type": "lot",
        "id": lot.id,
        "producer_id": lot.producer_id,
        "product_id": lot.product_id,
        "net_g": lot.net_g,
    }
    if tare_source is not None:  # issue 3: the tare subtracted, only when there was one
        record["tare_g"] = tare_g
        record["tare_source"] = tare_source
    return {**record, **stamp}


class Store:
    """One connection shared by the web handlers (serialised by a lock);
    background workers open their own with :meth:`open` on the same file."""

    def __init__(self, db: sqlite_utils.Database, site_id: str, now: Now = utc_now) -> None:
        self.db = db
        self.site_id = site_id
        self.now = now
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls, path: Path, site_id: str, backup_dir: Path | None = None, now: Now = utc_now
    ) -> Store:
        return cls(open_database(path, backup_dir), site_id, now)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """A committed-or-nothing write; disk and lock errors become StorageError."""
        with self._lock:
            try:
                with write_transaction(self.db) as db:
                    yield db
            except sqlite3.IntegrityError:
                raise
            except sqlite3.OperationalError as exc:
                hint = "free disk space" if "full" in str(exc) else "retry; if it persists, restart"
                raise StorageError(f"could not save: {exc}; nothing was recorded; {hint}") from exc

    def rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def _next_seq(self, db: sqlite_utils.Database) -> int:
        db.execute(
            "INSERT INTO site_sequence(site_id, last_seq) VALUES (?, 1) "
            "ON CONFLICT(site_id) DO UPDATE SET last_seq = last_seq + 1",
            [self.site_id],
        )
        row = db.execute(
            "SELECT last_seq FROM site_sequence WHERE site_id = ?", [self.site_id]
        ).fetchone()
        return int(row[0])

    def audit(
        self,
        db: sqlite_utils.Database,
        action: str,
        record_id: str | None,
        actor: str = "staff",
        **detail: Any,
    ) -> None:
        db.table("audit_log").insert(
            {
                "at": iso(self.now()),
                "actor": actor,
                "action": action,
                "record_id": record_id,
                "detail": json.dumps(detail, ensure_ascii=False),
            }
        )

    # -- producers and products -------------------------------------------------------------

    def _add_named(self, table: str, name: str, **fields: Any) -> dict[str, Any]:
        """A producer or product: id, sequence number and audit entry in one transaction."""
        with self.write() as db:
            now = self.now()
            stamp = clock.stamp(now)
            row: dict[str, Any] = {
                "id": new_id(now),
                "seq": self._next_seq(db),
                "site_id": self.site_id,
                "name": name.strip(),
                **fields,
                "created_at": stamp["recorded_at"],
            }
            db.table(table).insert(row)
            kind = table[:-1]  # producer, product
            record = {k: v for k, v in row.items() if k not in ("seq", "site_id", "created_at")}
            outbox.add(db, RECORD_STREAM, kind, row["id"], {**record, **stamp})
            self.audit(db, f"{kind}.created", row["id"], name=row["name"])
        return row

    def add_producer(
        self, name: str, phone: str | None = None, village: str | None = None
    ) -> dict[str, Any]:
        return self._add_named("producers", name, phone=phone, village=village)

    def list_producers(self) -> list[dict[str, Any]]:
        return self.rows("SELECT id, seq, name, phone, village FROM producers ORDER BY name")

    def add_product(
        self, name: str, unit_price_dong: int | None = None, grading: str | None = None
    ) -> dict[str, Any]:
        """A product; ``grading`` names its rules (<grading.rules_dir>/<key>.toml)."""
        return self._add_named("products", name, unit_price_dong=unit_price_dong, grading=grading)

    def list_products(self) -> list[dict[str, Any]]:
        return self.rows("SELECT id, seq, name, unit_price_dong FROM products ORDER BY name")

    # -- lots ----------------------------------------------------------------------------------

    def record_lot(
        self,
        producer_id: str,
        product_id: str,
        net_g: int,
        scale_frame: str,
        *,
        tare_g: int | None = None,
        tare_source: str | None = None,
    ) -> Lot:
        """Lot + print job + outbox row + audit entry, in one transaction."""
        if net_g <= 0:
            raise ValueError("net weight must be positive")
        with self.write() as db:
            producer = db.execute(
                "SELECT name FROM producers WHERE id = ?", [producer_id]
            ).fetchone()
            if producer is None:
                raise NotFound(f"producer {producer_id} not found")
            product = db.execute("SELECT name FROM products WHERE id = ?", [product_id]).fetchone()
            if product is None:
                raise NotFound(f"product {product_id} not found")
            at = self.now()
            stamp = clock.stamp(at)
            now = stamp["recorded_at"]
            lot = Lot(
                id=new_id(at),
                seq=self._next_seq(db),
                site_id=self.site_id,
                producer_id=producer_id,
                producer_name=producer[0],
                product_id=product_id,
                product_name=product[0],
                net_g=net_g,
                recorded_at=now,
                print_job_id=new_id(),
            )
            db.table("lots").insert(
                {
                    "id": lot.id,
                    "seq": lot.seq,
                    "site_id": lot.site_id,
                    "producer_id": producer_id,
                    "product_id": product_id,
                    "net_g": net_g,
                    "scale_frame": scale_frame,
                    "tare_g": tare_g,
                    "tare_source": tare_source,
                    "recorded_at": now,
                    "boot_id": stamp["boot_id"],
                    "uptime_s": stamp["uptime_s"],
                }
            )
            db.table("print_jobs").insert(
                {
                    "id": lot.print_job_id,
                    "kind": "lot",
                    "record_id": lot.id,
                    "status": "queued",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            outbox.add(
                db, RECORD_STREAM, "lot", lot.id, lot_record(lot, stamp, tare_g, tare_source)
            )
            self.audit(db, "lot.recorded", lot.id, seq=lot.seq, net_g=net_g)
        return lot

    def get_lot(self, lot_id: str) -> Lot:
        rows = self.rows(
            "SELECT l.id, l.seq, l.site_id, l.producer_id, p.name AS producer_name, "
            "l.product_id, pr.name AS product_name, l.net_g, l.recorded_at, "
            "(SELECT j.id FROM print_jobs j WHERE j.record_id = l.id "
            " ORDER BY j.created_at DESC LIMIT 1) AS print_job_id "
            "FROM lots l JOIN producers p ON p.id = l.producer_id "
            "JOIN products pr ON pr.id = l.product_id WHERE l.id = ?",
            (lot_id,),
        )
        if not rows:
            raise NotFound(f"lot {lot_id} not found")
        return Lot(**rows[0])

    def lots_since(self, since_iso: str, limit: int = 200) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT l.id, l.seq, l.net_g, l.recorded_at, p.name AS producer_name, "
            "pr.name AS product_name, "
            "(SELECT j.status FROM print_jobs j WHERE j.record_id = l.id "
            " ORDER BY j.created_at DESC LIMIT 1) AS print_status, "
            "(SELECT o.status FROM outbox o WHERE o.record_id = l.id LIMIT 1) AS sync_status "
            "FROM lots l JOIN producers p ON p.id = l.producer_id "
            "JOIN products pr ON pr.id = l.product_id "
            "WHERE l.recorded_at >= ? ORDER BY l.seq DESC LIMIT ?",
            (since_iso, limit),
        )
