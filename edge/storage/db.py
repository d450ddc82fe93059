"""Opening the station database: pragmas, numbered migrations, pre-migration copies.

The database is SQLite in WAL mode with ``synchronous=FULL``: a record is
recorded when its transaction commits, and a commit is on disk (fsync of the
WAL) before the caller hears about it. Migrations are the numbered files in
``migrations/`` (``0001_initial.sql`` ...); ``PRAGMA user_version`` holds the
last one applied. Before any migration runs on a database that already holds
a schema, a consistent copy is taken with SQLite's online backup API.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import sqlite_utils

from edge.storage.search_key import producer_key

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class StorageError(Exception):
    """The database cannot be opened or written; the message says what to do."""


def migrations() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) for every bundled migration, in order."""
    found = []
    for entry in resources.files("edge.storage").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations must be numbered 1..N without gaps, found {numbers}")
    return found


def connect(path: Path) -> sqlite_utils.Database:
    """Open (creating if needed) the database file with the station's pragmas."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        # the farmer search key (migration 0013's backfill and triggers call it)
        conn.create_function("edge_search_key", 3, producer_key, deterministic=True)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(
            f"cannot open database {path}: {exc}; check the path in [storage] and free disk space"
        ) from exc
    return sqlite_utils.Database(conn)


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so two writers
    wait for each other (busy_timeout) instead of failing half-way."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def schema_version(db: sqlite_utils.Database) -> int:
    row = db.conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def backup(db: sqlite_utils.Database, target: Path) -> None:
    """A consistent copy of the live database (SQLite online backup), fsynced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    dest = sqlite3.connect(target)
    try:
        db.conn.backup(dest)
    finally:
        dest.close()
    with target.open("rb+") as fh:
        os.fsync(fh.fileno())


def migrate(db: sqlite_utils.Database, db_path: Path, backup_dir: Path | None = None) -> list[int]:
    """Apply pending migrations in order; returns the numbers applied."""
    current = schema_version(db)
    pending = [m for m in migrations() if m[0] > current]
    latest = len(migrations())
    if current > latest:
        raise StorageError(
            f"database {db_path} has schema version {current}, newer than this software "
            f"knows ({latest}); install the newer station software or restore a backup"
        )
    if not pending:
        return []
    if current > 0:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = (backup_dir or db_path.parent) / f"{db_path.name}.v{current}-{stamp}.bak"
        log.info("copying %s to %s before migrating", db_path, target)
        backup(db, target)
    applied = []
    for number, name, sql in pending:
        log.info("applying migration %s", name)
        try:
            # executescript runs statements as written: the file runs inside our transaction
            db.conn.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise StorageError(
                f"migration {name} failed: {exc}; the database was left as it was"
            ) from exc
        applied.append(number)
    return applied


def open_database(path: Path, backup_dir: Path | None = None) -> sqlite_utils.Database:
    db = connect(path)
    migrate(db, path, backup_dir)
    return db
