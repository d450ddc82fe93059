"""Stored photos: JPEG and thumbnail files under ``camera.photos_dir``, one ``photos``
row each, and the retention policy that keeps the disk from filling.

Order of writes, so a crash at any point loses nothing recorded and leaves no row
pointing at a missing file:

1. the JPEG and the thumbnail are written to temporary files, fsynced, renamed into
   place, and the folder fsynced;
2. then the row commits (WAL, synchronous=FULL).

A crash between 1 and 2 leaves files without a row: :meth:`PhotoStore.clean_up`
(at start) removes them, and any temporary file. Retention marks a row deleted
(committed) before it removes the full JPEG, so a crash between the two leaves a
file that the next start removes; the row says why the JPEG is gone, and its
thumbnail stays.

Retention (:meth:`PhotoStore.enforce_retention`, at start and after each new
photo): when the photos take more than the limit, full JPEGs of lots whose grade
is confirmed go first, oldest lot first (by the lot's sequence number, not the
clock). Photos of lots not yet confirmed are never deleted: if the total is still
over the limit, that is reported (``over_limit`` in the state) and logged.
"""

from __future__ import annotations

import errno
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from edge import files
from edge.camera.photos import EncodedPhoto
from edge.files import make_dirs_durably
from edge.ids import iso, new_id
from edge.storage.store import NotFound, Store

log = logging.getLogger(__name__)

_OURS = re.compile(r"^(\.)?[0-9a-f-]{36}(\.thumb)?\.jpg(\.[0-9a-f]+\.tmp)?$")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class PhotoStorageError(Exception):
    """A photo could not be written (disk full, read-only, ...); nothing was recorded."""

    def __init__(self, message: str, message_en: str, disk_full: bool) -> None:
        super().__init__(message_en)
        self.message = message
        self.message_en = message_en
        self.disk_full = disk_full


def _storage_error(path: Path, exc: OSError) -> PhotoStorageError:
    if exc.errno in _DISK_FULL:
        return PhotoStorageError(
            "Đĩa đầy: không lưu được ảnh. Lô và các ảnh trước vẫn còn nguyên. "
            "Báo kỹ thuật để giải phóng chỗ trống.",
            f"disk full: the photo could not be written to {path.parent}; the lot and "
            "earlier photos are intact; free disk space (or lower camera.max_photos_mb)",
            disk_full=True,
        )
    return PhotoStorageError(
        f"Không lưu được ảnh ({exc.strerror}). Lô và các ảnh trước vẫn còn nguyên. Báo kỹ thuật.",
        f"the photo could not be written to {path.parent}: {exc}; the lot and earlier "
        "photos are intact; check camera.photos_dir",
        disk_full=False,
    )


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path`` or nothing (:func:`edge.files.write_atomic`), its folders
    created durably; a failure is a :class:`PhotoStorageError` (``disk_full`` on ENOSPC)."""
    try:
        make_dirs_durably(path.parent)
        files.write_atomic(path, data)
    except OSError as exc:
        raise _storage_error(path, exc) from exc


@dataclass(frozen=True)
class CleanupReport:
    orphans_removed: int  # files with no row (a crash between file and row)
    temporaries_removed: int  # half-written files
    retained_removed: int  # full JPEGs retention had marked deleted
    missing: list[str]  # rows whose file is gone without retention saying so


@dataclass(frozen=True)
class RetentionReport:
    total_bytes: int  # JPEGs still kept + all thumbnails
    limit_bytes: int
    deleted: int  # full JPEGs removed by this run
    freed_bytes: int
    unconfirmed_bytes: int  # photos retention may not touch

    @property
    def over_limit(self) -> bool:
        return self.total_bytes > self.limit_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "total_bytes": self.total_bytes,
            "limit_bytes": self.limit_bytes,
            "unconfirmed_bytes": self.unconfirmed_bytes,
            "over_limit": self.over_limit,
        }


PHOTO_COLUMNS = (
    "id, lot_id, source, taken_at, width, height, bytes, thumb_width, thumb_height, "
    "thumb_bytes, deleted_at, deleted_reason, grading"
)


def photo_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``photos`` row as the API shows it (grading decoded, file URLs added)."""
    out = {k: row[k] for k in PHOTO_COLUMNS.split(", ")}
    out["grading"] = json.loads(row["grading"]) if row.get("grading") else None
    out["url"] = None if row["deleted_at"] else f"/api/photos/{row['id']}.jpg"
    out["thumb_url"] = f"/api/photos/{row['id']}/thumb.jpg"
    return out


class PhotoStore:
    """Photo files under ``root`` and their rows in ``store``."""

    def __init__(self, store: Store, root: Path, limit_bytes: int) -> None:
        self.store = store
        self.root = root
        self.limit_bytes = limit_bytes
        self._warned_over = False

    # -- adding and reading ---------------------------------------------------------------

    def add(self, lot_id: str, source: str, photo: EncodedPhoto) -> dict[str, Any]:
        """Files first (atomically), then the row; returns the row. ``NotFound`` for an
        unknown lot (checked before anything is written), :class:`PhotoStorageError`
        when the files cannot be written, ``StorageError`` when the row cannot."""
        if not self.store.rows("SELECT 1 FROM lots WHERE id = ?", (lot_id,)):
            raise NotFound(f"lot {lot_id} not found")
        photo_id = new_id()
        taken = self.store.now()
        folder = PurePosixPath(taken.strftime("%Y-%m"))
        rel, thumb_rel = folder / f"{photo_id}.jpg", folder / f"{photo_id}.thumb.jpg"
        write_atomic(self.root / rel, photo.jpeg)
        try:
            write_atomic(self.root / thumb_rel, photo.thumb)
            row: dict[str, Any] = {
                "id": photo_id,
                "lot_id": lot_id,
                "source": source,
                "taken_at": iso(taken),
                "width": photo.width,
                "height": photo.height,
                "bytes": len(photo.jpeg),
                "path": str(rel),
                "thumb_width": photo.thumb_width,
                "thumb_height": photo.thumb_height,
                "thumb_bytes": len(photo.thumb),
                "thumb_path": str(thumb_rel),
                "deleted_at": None,
                "deleted_reason": None,
                "grading": None,
            }
            with self.store.write() as db:
                db.table("photos").insert(row)
                self.store.audit(db, "photo.stored", photo_id, lot_id=lot_id, source=source)
        except BaseException:
            for p in (self.root / rel, self.root / thumb_rel):
                p.unlink(missing_ok=True)
            raise
        return row

    def get(self, photo_id: str) -> dict[str, Any]:
        rows = self.store.rows("SELECT * FROM photos WHERE id = ?", (photo_id,))
        if not rows:
            raise NotFound(f"photo {photo_id} not found")
        return rows[0]

    def for_lot(self, lot_id: str) -> list[dict[str, Any]]:
        return self.store.rows(
            "SELECT * FROM photos WHERE lot_id = ? ORDER BY taken_at, rowid", (lot_id,)
        )

    def full_path(self, row: dict[str, Any]) -> Path | None:
        """The full JPEG, or ``None`` when retention removed it."""
        return None if row["deleted_at"] else self.root / str(row["path"])

    def thumb_path(self, row: dict[str, Any]) -> Path:
        return self.root / str(row["thumb_path"])

    def set_grading(self, photo_id: str, result: dict[str, Any]) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE photos SET grading = ? WHERE id = ?",
                [json.dumps(result, ensure_ascii=False), photo_id],
            )

    # -- start-up clean-up ----------------------------------------------------------------

    def clean_up(self) -> CleanupReport:
        """Remove files no row owns (a crash between file and row), half-written
        temporaries and JPEGs retention had already let go; report rows whose file is
        missing. Run at start, before any photo is taken."""
        rows = self.store.rows("SELECT path, thumb_path, deleted_at FROM photos")
        kept = {r["thumb_path"] for r in rows} | {r["path"] for r in rows if not r["deleted_at"]}
        released = {r["path"] for r in rows if r["deleted_at"]}
        orphans = temporaries = retained = 0
        if self.root.is_dir():
            for path in sorted(self.root.rglob("*")):
                if not path.is_file() or not _OURS.match(path.name):
                    continue
                rel = path.relative_to(self.root).as_posix()
                if path.name.endswith(".tmp"):
                    temporaries += 1
                elif rel in released:
                    retained += 1
                elif rel not in kept:
                    orphans += 1
                else:
                    continue
                path.unlink(missing_ok=True)
        missing = sorted(p for p in kept if not (self.root / p).is_file())
        if orphans or temporaries or retained:
            log.warning(
                "photos: removed %d file(s) without a row, %d half-written, %d released by "
                "retention",
                orphans,
                temporaries,
                retained,
            )
        if missing:
            log.error("photos: %d file(s) recorded but missing: %s", len(missing), missing[:5])
        return CleanupReport(orphans, temporaries, retained, missing)

    # -- retention ------------------------------------------------------------------------

    def usage(self) -> tuple[int, int]:
        """(bytes kept in total, bytes of photos of lots not confirmed)."""
        [row] = self.store.rows(
            "SELECT COALESCE(SUM(p.thumb_bytes + CASE WHEN p.deleted_at IS NULL "
            "  THEN p.bytes ELSE 0 END), 0) AS total, "
            "COALESCE(SUM(CASE WHEN g.grade IS NULL THEN p.thumb_bytes + CASE WHEN "
            "  p.deleted_at IS NULL THEN p.bytes ELSE 0 END ELSE 0 END), 0) AS unconfirmed "
            "FROM photos p LEFT JOIN lot_grades g ON g.lot_id = p.lot_id"
        )
        return int(row["total"]), int(row["unconfirmed"])

    def enforce_retention(self) -> RetentionReport:
        total, unconfirmed = self.usage()
        doomed: list[dict[str, Any]] = []
        freed = 0
        if total > self.limit_bytes:
            candidates = self.store.rows(
                "SELECT p.id, p.path, p.bytes FROM photos p "
                "JOIN lot_grades g ON g.lot_id = p.lot_id AND g.grade IS NOT NULL "
                "JOIN lots l ON l.id = p.lot_id "
                "WHERE p.deleted_at IS NULL ORDER BY l.seq, p.taken_at, p.id"
            )
            for c in candidates:
                if total - freed <= self.limit_bytes:
                    break
                doomed.append(c)
                freed += int(c["bytes"])
        if doomed:
            now = iso(self.store.now())
            with self.store.write() as db:
                db.conn.executemany(
                    "UPDATE photos SET deleted_at = ?, deleted_reason = 'retention' "
                    "WHERE id = ? AND deleted_at IS NULL",
                    [(now, c["id"]) for c in doomed],
                )
                self.store.audit(
                    db,
                    "photos.retention",
                    None,
                    actor="station",
                    photos=[c["id"] for c in doomed],
                    freed_bytes=freed,
                    limit_bytes=self.limit_bytes,
                )
            for c in doomed:  # after the commit: a crash here leaves files clean_up removes
                (self.root / c["path"]).unlink(missing_ok=True)
            log.info("photos: retention removed %d JPEG(s), %d bytes", len(doomed), freed)
        report = RetentionReport(total - freed, self.limit_bytes, len(doomed), freed, unconfirmed)
        if report.over_limit and not self._warned_over:
            log.warning(
                "photos take %d bytes, over the %d limit; %d bytes are photos of lots not "
                "yet confirmed, which are never deleted: confirm grades or raise "
                "camera.max_photos_mb",
                report.total_bytes,
                report.limit_bytes,
                report.unconfirmed_bytes,
            )
        self._warned_over = report.over_limit
        return report
