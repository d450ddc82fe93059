"""``edge backup``: an online copy of the station database, kept for a week.

The copy is made with SQLite's online backup API while the station runs (WAL: the
station keeps writing meanwhile), into ``<name>.part``, checked with ``PRAGMA
quick_check``, fsynced, then renamed into place and the folder fsynced: a power cut
leaves either the whole checked copy or none. Before anything is written the free space
is checked: the copy needs the database's size (database and WAL files), and the card
must keep ``[storage] min_free_mb`` free after it (the station's "disk nearly full" mark)
so a backup never pushes the station into it.

Nightly copies go to ``[storage] backup_dir`` (default ``<database folder>/backups``) as
``<db stem>-YYYYMMDDTHHMMSSZ.db`` (UTC). Copies older than ``keep_days`` (7) are removed
after a copy succeeds (and before, to make room), but the newest :data:`KEEP_AT_LEAST`
always stay, whatever the clock says (a Pi without a real-time clock may start with a
wrong one). ``--out FILE`` writes one copy exactly there and prunes nothing (an upgrade's
copy before it migrates). Restoring: docs/deploy.md "The station service".
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.config import StationConfig

MIB = 1 << 20
KEEP_AT_LEAST = 3
STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """The backup was not made; the message says why and what to do."""


@dataclass
class BackupResult:
    path: Path
    bytes: int
    seconds: float
    free_mb: int
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "backup": str(self.path),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "free_mb_after": self.free_mb,
            "removed": [str(p) for p in self.removed],
            "kept": [str(p) for p in self.kept],
        }


def backup_dir(cfg: StationConfig) -> Path:
    return cfg.storage.backup_dir or cfg.storage.path.parent / "backups"


def _pattern(db: Path) -> re.Pattern[str]:
    return re.compile(re.escape(db.stem) + r"-(\d{8}T\d{6}Z)\.db")


def nightly_copies(folder: Path, db: Path) -> list[tuple[datetime, Path]]:
    """The nightly copies in ``folder`` with their time, oldest first (other files,
    pre-migration copies among them, are not ours and never touched)."""
    found = []
    pattern = _pattern(db)
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file():
            stamp = datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
            found.append((stamp, entry))
    return sorted(found)


def prune(folder: Path, db: Path, now: datetime, keep_days: int) -> list[Path]:
    """Remove copies older than ``keep_days``, never the newest :data:`KEEP_AT_LEAST`."""
    copies = nightly_copies(folder, db)
    removable = copies[:-KEEP_AT_LEAST] if len(copies) > KEEP_AT_LEAST else []
    removed = []
    for stamp, path in removable:
        if stamp < now - timedelta(days=keep_days):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _database_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_database(db: Path, target: Path, min_free_mb: int) -> int:
    """The checked copy of ``db`` at ``target`` (see the module's docstring); its size."""
    if not db.is_file():
        raise BackupError(f"no station database at {db}: nothing to back up (check [storage] path)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot make the backup folder {target.parent}: {exc}") from exc
    need = _database_bytes(db)
    free = shutil.disk_usage(target.parent).free
    if free - need < min_free_mb * MIB:
        raise BackupError(
            f"not enough free space in {target.parent}: the copy needs {need / MIB:.1f} MB and "
            f"{min_free_mb} MB must stay free ([storage] min_free_mb), {free / MIB:.1f} MB free; "
            "nothing was written. Remove old backups or photos, or use a larger card"
        )
    part = target.with_name(f".{target.name}.part")
    try:
        part.unlink(missing_ok=True)
        source = sqlite3.connect(db.resolve().as_uri() + "?mode=rw", uri=True, timeout=30)
        try:
            copy = sqlite3.connect(part)
            try:
                source.backup(copy)  # SQLite's online backup: consistent while the station writes
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                copy.close()
        finally:
            source.close()
        with part.open("rb+") as fh:
            os.fsync(fh.fileno())
        if verdict != "ok":
            raise BackupError(f"the copy of {db} fails its check ({verdict}); nothing was kept")
        os.replace(part, target)
        _fsync_dir(target.parent)
    except (sqlite3.Error, OSError) as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"backup of {db} to {target} failed: {exc}; nothing was kept") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def run_backup(
    cfg: StationConfig,
    out: Path | None = None,
    folder: Path | None = None,
    keep_days: int = 7,
    now: datetime | None = None,
) -> BackupResult:
    """``edge backup``: one copy at ``out``, or a dated copy in ``folder`` (default
    :func:`backup_dir`) with the old ones pruned."""
    db = cfg.storage.path
    started = time.monotonic()
    when = now or datetime.now(UTC)
    removed: list[Path] = []
    if out is None:
        folder = folder or backup_dir(cfg)
        removed += prune(folder, db, when, keep_days)  # room first
        target = folder / f"{db.stem}-{when.strftime(STAMP)}.db"
    else:
        target = out
    size = copy_database(db, target, cfg.storage.min_free_mb)
    kept: list[Path] = []
    if out is None and folder is not None:
        removed += prune(folder, db, when, keep_days)
        kept = [p for _, p in nightly_copies(folder, db)]
    free_mb = shutil.disk_usage(target.parent).free // MIB
    return BackupResult(target, size, time.monotonic() - started, free_mb, removed, kept)


@dataclass
class RestoreResult:
    database: Path
    source: Path
    replaced: list[Path]

    def as_json(self) -> dict[str, object]:
        return {
            "restored": str(self.database),
            "from": str(self.source),
            "replaced": [str(p) for p in self.replaced],
        }


def check_copy(path: Path, newest_schema: int) -> None:
    """Refuse a file that is not a sound station database this software can open."""
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    if verdict != "ok":
        raise BackupError(f"{path} fails its check ({verdict}): choose an older backup")
    if version == 0:
        raise BackupError(f"{path} holds no station schema: not a station backup")
    if version > newest_schema:
        raise BackupError(
            f"{path} has schema version {version}, newer than this software knows "
            f"({newest_schema}): restore it with the release that made it"
        )


def restore_database(db: Path, source: Path, newest_schema: int, now: datetime) -> RestoreResult:
    """Put the checked copy ``source`` in place of ``db`` (the station must be stopped).
    The database it replaces is kept beside it, renamed ``<name>.replaced-<UTC stamp>``
    with its WAL, and the restored file gets the replaced one's owner."""
    check_copy(source, newest_schema)
    stamp = now.strftime(STAMP)
    # the copy first, beside the database: if it fails, the database is still in place
    incoming = db.with_name(f".{db.name}.restoring")
    try:
        shutil.copyfile(source, incoming)
        with incoming.open("rb+") as fh:
            os.fsync(fh.fileno())
        if db.exists() and os.geteuid() == 0:
            st = db.stat()
            os.chown(incoming, st.st_uid, st.st_gid)
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    replaced: list[Path] = []
    for suffix in ("", "-wal", "-shm"):
        current = db.with_name(db.name + suffix)
        if current.exists():
            aside = db.with_name(f"{db.name}.replaced-{stamp}{suffix}")
            os.replace(current, aside)
            replaced.append(aside)
    os.replace(incoming, db)
    _fsync_dir(db.parent)
    return RestoreResult(db, source, replaced)
