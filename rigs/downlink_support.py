"""The downlink rig for tests and the benchmark: the sync rig (rigs/sync_support.py:
the shipped TLS mosquitto and ACL, the fault proxy on the station's side, ``edge
central ingest`` as a process, which sends the downlink) and a station link worker
with downlink handlers that write what they apply into a table of their own
(``down_applied``), in this process or as a process to SIGKILL
(``python -m rigs.downlink_support CONFIG.json``).

    central DB ──> edge central ingest ──> mosquitto ──> FaultProxy ──> station link ──> DB
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.config import StationConfig
from edge.storage.store import Store
from edge.sync.downlink import DownlinkRefused, Handler
from edge.sync.mqtt import MqttSync
from rigs.sync_support import ChildProcess, SyncRig, run_link

APPLIED_TABLE = (
    "CREATE TABLE IF NOT EXISTS down_applied ("
    "seq INTEGER NOT NULL, kind TEXT NOT NULL, rid TEXT, version INTEGER, body TEXT NOT NULL)"
)
"""What the test handlers applied, one row per application (no key: a record applied
twice shows as two rows)."""


def _applied(db: sqlite_utils.Database, record: dict[str, Any]) -> None:
    if record.get("refuse_me"):
        raise DownlinkRefused(str(record["refuse_me"]))
    db.execute(
        "INSERT INTO down_applied (seq, kind, rid, version, body) VALUES (?, ?, ?, ?, ?)",
        [
            record["seq"],
            record["type"],
            record.get("id", record.get("name")),
            record.get("version"),
            json.dumps(record, ensure_ascii=False, sort_keys=True),
        ],
    )


HANDLERS: dict[str, Handler] = {"order": _applied, "product": _applied, "tracking_block": _applied}


def prepare_station(path: Path, site: str) -> None:
    """The station database (migrated) with the test handlers' table."""
    store = Store.open(path, site)
    try:
        with store.write() as db:
            db.execute(APPLIED_TABLE)
    finally:
        store.close()


def applied_rows(path: Path) -> list[tuple[int, str, str | None, int | None]]:
    """(seq, type, id, version) of every application, in the order they committed."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT seq, kind, rid, version FROM down_applied ORDER BY rowid"
        ).fetchall()
    finally:
        conn.close()


def applied_upto(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=10)
    try:
        row = conn.execute("SELECT applied_upto FROM downlink_state").fetchone()
        return int(row[0])
    finally:
        conn.close()


def refused_rows(path: Path) -> list[tuple[int, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT seq, kind, reason FROM downlink_refused ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


@contextmanager
def link(rig: SyncRig, **mqtt: Any) -> Iterator[MqttSync]:
    """The station's link worker with the test handlers, in this process."""
    with rig.link(handlers=HANDLERS, **mqtt) as sync:
        yield sync


class DownlinkLinkProcess(ChildProcess):
    """The link worker with the test handlers in a process of its own, to SIGKILL."""

    def __init__(self, cfg: StationConfig, workdir: Path, handlers: str = "test") -> None:
        super().__init__(workdir / "downlink-link.log")
        self.handlers = handlers
        self.config_file = workdir / "downlink-link.json"
        self.config_file.write_text(cfg.model_dump_json())

    def start(self) -> DownlinkLinkProcess:
        self._spawn(
            "rigs.downlink_support",
            str(self.config_file),
            self.handlers,
            what="the link process to start",
        )
        return self


def _run(config_file: Path, handlers: str) -> None:
    """``handlers``: ``test`` (:data:`HANDLERS`) or ``station`` (the station's own,
    edge.orders.apply)."""
    chosen = HANDLERS
    if handlers == "station":
        from edge.orders.apply import HANDLERS as chosen
    run_link(config_file, chosen)


if __name__ == "__main__":
    _run(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "test")
