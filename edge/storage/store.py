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
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import sqlite_utils

from edge import clock
from edge.errors import StaffError
from edge.ids import Now, iso, new_id, parse_iso, utc_now
from edge.storage import outbox
from edge.storage.db import StorageError, open_database, write_transaction

RECORD_STREAM = "records"


class NotFound(Exception):
    """A referenced producer, product or job does not exist."""


def newest_job(kind: str, record: str) -> str:
    """SQL for the id of the newest print job of ``kind`` printing the row ``record``
    (a column, e.g. ``l.id``): a reprint's copy is newer than what it copies, and jobs of
    one millisecond go by insertion order (``rowid``; an id is random within it)."""
    return (
        f"(SELECT x.id FROM print_jobs x WHERE x.record_id = {record} AND x.kind = '{kind}' "
        "ORDER BY x.created_at DESC, x.rowid DESC LIMIT 1)"
    )


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
    day_no: int | None = None  # 1, 2, 3... per station-local day: the number staff see
    day: str | None = None  # that station-local day (YYYY-MM-DD)


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
    if lot.day_no is not None:  # issue 12: the daily lot number staff see
        record["day_no"] = lot.day_no
    if tare_source is not None:  # issue 3: the tare subtracted, only when there was one
        record["tare_g"] = tare_g
        record["tare_source"] = tare_source
    return {**record, **stamp}


def usable_producer(
    db: sqlite_utils.Database, producer_id: str, refused: type[StaffError] = StaffError
) -> dict[str, Any]:
    """A farmer a lot may be recorded for or corrected to (id, name, phone, village):
    NotFound, or ``refused`` (409 ``producer_merged``) for a farmer a lead merged into
    another (migration 0014), naming the one to choose."""
    row = db.execute(
        "SELECT p.id, p.name, p.phone, p.village, s.name FROM producers p "
        "LEFT JOIN producers s ON s.id = p.merged_into WHERE p.id = ?",
        [producer_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"producer {producer_id} not found")
    if row[4] is not None:
        raise refused(
            "producer_merged",
            f"Nông dân “{row[1]}” đã được gộp vào “{row[4]}”. Chọn “{row[4]}”.",
            f"Farmer {row[1]!r} was merged into {row[4]!r}; choose {row[4]!r}.",
            409,
        )
    return {"id": row[0], "name": row[1], "phone": row[2], "village": row[3]}


class Store:
    """One connection shared by the web handlers (serialised by a lock);
    background workers open their own with :meth:`open` on the same file."""

    def __init__(
        self, db: sqlite_utils.Database, site_id: str, now: Now = utc_now, tz: tzinfo = UTC
    ) -> None:
        self.db = db
        self.site_id = site_id
        self.now = now
        self.tz = tz  # the station's zone: where a day (and its lot numbers) begins
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        path: Path,
        site_id: str,
        backup_dir: Path | None = None,
        now: Now = utc_now,
        tz: tzinfo = UTC,
    ) -> Store:
        return cls(open_database(path, backup_dir), site_id, now, tz)

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

    def _add_named(
        self, table: str, name: str, *, actor: str = "staff", **fields: Any
    ) -> dict[str, Any]:
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
            self.audit(db, f"{kind}.created", row["id"], actor=actor, name=row["name"])
        return row

    def add_producer(
        self,
        name: str,
        phone: str | None = None,
        village: str | None = None,
        actor: str = "staff",
    ) -> dict[str, Any]:
        return self._add_named("producers", name, actor=actor, phone=phone, village=village)

    def list_producers(self) -> list[dict[str, Any]]:
        return self.rows(  # a farmer merged into another is no longer offered (0014)
            "SELECT id, seq, name, phone, village FROM producers WHERE merged_into IS NULL "
            "ORDER BY name"
        )

    def add_product(
        self,
        name: str,
        unit_price_dong: int | None = None,
        grading: str | None = None,
        actor: str = "staff",
    ) -> dict[str, Any]:
        """A product; ``grading`` names its rules (<grading.rules_dir>/<key>.toml)."""
        return self._add_named(
            "products", name, actor=actor, unit_price_dong=unit_price_dong, grading=grading
        )

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
        actor: str = "staff",
    ) -> Lot:
        """Lot + print job + outbox row + audit entry (by ``actor``), in one transaction."""
        if net_g <= 0:
            raise ValueError("net weight must be positive")
        with self.write() as db:
            producer = usable_producer(db, producer_id)
            product = db.execute(
                "SELECT name, unit_price_dong FROM products WHERE id = ?", [product_id]
            ).fetchone()
            if product is None:
                raise NotFound(f"product {product_id} not found")
            at = self.now()
            stamp = clock.stamp(at)
            now = stamp["recorded_at"]
            day = self.local_day(at)
            lot = Lot(
                id=new_id(at),
                seq=self._next_seq(db),
                site_id=self.site_id,
                producer_id=producer_id,
                producer_name=producer["name"],
                product_id=product_id,
                product_name=product[0],
                net_g=net_g,
                recorded_at=now,
                print_job_id=new_id(),
                day_no=self._next_day_no(db, day),
                day=day,
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
                    "day": day,
                    "day_no": lot.day_no,
                    "unit_price_dong": product[1],
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
            self.audit(
                db, "lot.recorded", lot.id, actor=actor, seq=lot.seq, day_no=lot.day_no, net_g=net_g
            )
        return lot

    # -- daily lot numbers (issue 12) -----------------------------------------------------

    def local_day(self, at: datetime) -> str:
        """The station-local date of ``at`` (YYYY-MM-DD): the day a lot counts in."""
        return at.astimezone(self.tz).date().isoformat()

    def _next_day_no(self, db: sqlite_utils.Database, day: str) -> int:
        row = db.execute(
            "SELECT COALESCE(MAX(day_no), 0) + 1 FROM lots WHERE site_id = ? AND day = ?",
            [self.site_id, day],
        ).fetchone()
        return int(row[0])

    def number_lot_days(self) -> int:
        """Give lots recorded before migration 0015 their local day and daily number (in
        the order they were recorded); returns how many. Run at start, before any lot."""
        with self.write() as db:
            rows = db.execute(
                "SELECT id, recorded_at FROM lots WHERE day_no IS NULL ORDER BY recorded_at, seq"
            ).fetchall()
            for lot_id, recorded_at in rows:
                day = self.local_day(parse_iso(recorded_at))
                db.execute(
                    "UPDATE lots SET day = ?, day_no = ? WHERE id = ?",
                    [day, self._next_day_no(db, day), lot_id],
                )
        return len(rows)

    def get_lot(self, lot_id: str) -> Lot:
        rows = self.rows(
            "SELECT l.id, l.seq, l.site_id, c.producer_id, p.name AS producer_name, "
            "c.product_id, pr.name AS product_name, l.net_g, l.recorded_at, "
            f"{newest_job('lot', 'l.id')} AS print_job_id, l.day_no, l.day "
            "FROM lots l JOIN lots_current c ON c.id = l.id "  # as corrected (migration 0014)
            "JOIN producers p ON p.id = c.producer_id "
            "JOIN products pr ON pr.id = c.product_id WHERE l.id = ?",
            (lot_id,),
        )
        if not rows:
            raise NotFound(f"lot {lot_id} not found")
        return Lot(**rows[0])

    def lots_of_day(self, day: str, limit: int = 200) -> list[dict[str, Any]]:
        """The lots of station-local ``day`` (YYYY-MM-DD), newest first, as corrected."""
        return self.rows(
            "SELECT l.id, l.seq, l.day, l.day_no, l.net_g, l.recorded_at, p.name AS producer_name, "
            "pr.name AS product_name, j.status AS print_status, j.id AS print_job_id, "
            "CASE WHEN c.product_id = l.product_id THEN "  # a corrected product: its price
            " COALESCE(l.unit_price_dong, pr.unit_price_dong) ELSE pr.unit_price_dong "
            "END AS unit_price_dong, "
            "c.producer_id, c.product_id, c.voided, c.void_reason, c.corrected, "
            f"{newest_job('receipt', 'l.id')} AS receipt_job_id, "
            "(SELECT o.status FROM outbox o WHERE o.record_id = l.id LIMIT 1) AS sync_status "
            "FROM lots l JOIN lots_current c ON c.id = l.id "  # as corrected (migration 0014)
            "JOIN producers p ON p.id = c.producer_id "
            "JOIN products pr ON pr.id = c.product_id "
            f"LEFT JOIN print_jobs j ON j.id = {newest_job('lot', 'l.id')} "
            "WHERE l.site_id = ? AND l.day = ? ORDER BY l.seq DESC LIMIT ?",
            (self.site_id, day, limit),
        )
