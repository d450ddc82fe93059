"""``edge backup`` and ``edge restore`` on a real station process: an online copy made
while the station runs (checked, one self-contained file), copies older than a week
pruned (never the newest three, never other files), a copy refused with nothing written
when the card is too full, and the restore that puts the lots of that night back."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from edge.ops.backup import STAMP
from rigs.helpers import PortHold, lots_of_day, settle
from rigs.station_process import StationProcess, station_toml

SITE = "sin-ho-02"


def _edge(*args: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120
    )
    body = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, body, done.stderr


def _record(c: httpx.Client, producer: str, product: str, grams: int) -> dict[str, Any]:
    settle(c, grams)
    r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
    assert r.status_code == 201, r.text
    lot: dict[str, Any] = r.json()
    return lot


def _lots(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(conn.execute("SELECT id, net_g FROM lots").fetchall())
    finally:
        conn.close()


def _stop(station: StationProcess) -> None:
    assert station.proc is not None
    station.proc.send_signal(signal.SIGTERM)
    station.proc.wait(30)


def test_backup_while_running_prune_and_restore(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    folder = tmp_path / "backups"
    folder.mkdir()
    now = datetime.now(UTC)
    old = {days: folder / f"station-{(now - timedelta(days=days)).strftime(STAMP)}.db"
           for days in (12, 10, 9, 1)}  # fmt: skip
    for path in old.values():
        path.write_bytes(b"an old copy")
    premigration = folder / "station.db.v14-20261101T000000Z.bak"  # not ours to prune
    premigration.write_bytes(b"a pre-migration copy")

    with PortHold() as web:
        printer = f'type = "file"\ndir = "{tmp_path / "prints"}"'
        config = station_toml(tmp_path, SITE, web.port, printer)
        station = StationProcess(tmp_path, config, f"http://127.0.0.1:{web.port}", SITE)
        try:
            with station.start("lead") as c:
                producer = c.post("/api/producers", json={"name": "Lò Văn Sáng"}).json()["id"]
                product = c.post("/api/products", json={"name": "Mật ong bạc hà"}).json()["id"]
                first = [_record(c, producer, product, g) for g in (1250, 2500)]

                # the nightly copy, the station running
                code, body, err = _edge("backup", "--config", str(config))
                assert code == 0, err
                copy = Path(body["backup"])
                assert copy.parent == folder and copy.name.startswith("station-")
                assert body["bytes"] == copy.stat().st_size > 0
                # older than 7 days and not among the newest three: 12 and 10 days
                assert body["removed"] == [str(old[12]), str(old[10])]
                assert body["kept"] == [str(old[9]), str(old[1]), str(copy)]
                assert premigration.exists()
                assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []

                # the copy: sound, self-contained (no WAL beside it), the two lots
                conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
                try:
                    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
                    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
                finally:
                    conn.close()
                assert _lots(copy) == sorted((lot["id"], lot["net_g"]) for lot in first)

                # the day goes on after the copy
                _record(c, producer, product, 4000)

                # refused while the station runs
                code, _, err = _edge("restore", str(copy), "--config", str(config))
                assert code == 1 and "stop it first" in err
            _stop(station)
            assert len(_lots(db)) == 3

            code, body, err = _edge("restore", str(copy), "--config", str(config))
            assert code == 0, err
            assert body["restored"] == str(db) and body["from"] == str(copy)
            replaced = [Path(p) for p in body["replaced"]]
            assert replaced[0].name.startswith("station.db.replaced-")
            assert len(_lots(replaced[0])) == 3  # what was replaced is kept, whole
            assert _lots(db) == _lots(copy)

            # the station starts on the restored database: the night's two lots
            with station.start("lead") as c:
                listed = lots_of_day(c, first[0])
                assert sorted(lot["id"] for lot in listed) == sorted(lot["id"] for lot in first)
        finally:
            station.stop()


def test_backup_refuses_without_room_or_database(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    sqlite3.connect(db).close()
    config = tmp_path / "station.toml"
    web = PortHold()  # no station answers there: restore goes ahead
    # more free space asked for than any disk here has: refused, nothing written
    config.write_text(
        f'[storage]\npath = "{db}"\nmin_free_mb = 100000000\n[web]\nport = {web.port}\n',
        encoding="utf-8",
    )
    code, body, err = _edge("backup", "--config", str(config))
    assert code == 1 and body is None
    assert err.startswith(f"backup failed: not enough free space in {tmp_path / 'backups'}")
    assert "min_free_mb" in err and "nothing was written" in err
    assert list((tmp_path / "backups").iterdir()) == []

    config.write_text(
        f'[storage]\npath = "{tmp_path / "none.db"}"\n[web]\nport = {web.port}\n',
        encoding="utf-8",
    )
    code, _, err = _edge("backup", "--config", str(config))
    assert code == 1
    assert (
        err == f"backup failed: no station database at {tmp_path / 'none.db'}: "
        "nothing to back up (check [storage] path)\n"
    )

    # a file that is not a station database is never restored
    code, _, err = _edge("restore", str(db), "--config", str(config))
    assert code == 1 and "holds no station schema" in err
    web.close()
