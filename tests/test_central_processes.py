"""``edge central ingest`` as real processes: several share the load through the
MQTT v5 shared subscription, and one killed with SIGKILL mid-stream and started
again still leaves every record stored exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from edge.central.store import open_store
from rigs.helpers import Broker, wait_for
from rigs.ingest import IngestProcess
from tests.central_support import Station, batch, central_db

SITE = "sin-ho-01"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with central_db(request.param, tmp_path) as url:
        yield url


def test_two_processes_share_the_load_and_store_each_record_once(
    broker: Broker, db_url: str
) -> None:
    with ExitStack() as stack:
        procs = [IngestProcess(broker.port, db_url, f"ingest-{n}") for n in (1, 2)]
        for p in procs:
            p.start()
            stack.callback(p.stop)
        station = Station(broker.port, SITE)
        stack.callback(station.close)
        for first in range(1, 1000, 25):
            station.publish(batch(SITE, first, first + 24))
        wait_for(lambda: station.upto() == 1000, 20, "ack 1000")
        counts = [p.status()["ingest"] for p in procs]
        assert all(c["batches"] > 0 for c in counts), counts  # both got some
        assert sum(c["batches"] for c in counts) == 40
        assert sum(c["records"] for c in counts) == 1000
        assert sum(c["rejected"] for c in counts) == 0
        for p in procs:
            assert p.stop() == 0
    with open_store(db_url) as store:
        assert store.seqs(SITE, "records") == list(range(1, 1001))
        assert store.stream_rows()[0].records == 1000


def test_ingest_killed_mid_stream_and_restarted_stores_exactly_once(
    broker: Broker, tmp_path: Path
) -> None:
    """SIGKILL while the first half is being stored (perhaps mid-transaction);
    the second half arrives while ingest is dead; after the restart every record
    is there once."""
    db = f"sqlite:///{tmp_path}/central.db"
    ingest = IngestProcess(broker.port, db, "ingest-k").start()
    station = Station(broker.port, SITE)

    def publish(firsts: range) -> None:
        for first in firsts:
            station.publish(batch(SITE, first, first + 19))

    first_half = threading.Thread(target=publish, args=(range(1, 1500, 20),), daemon=True)
    try:
        first_half.start()
        wait_for(lambda: station.upto() >= 400, 20, "some batches stored")
        ingest.kill()
        killed_at = station.upto()
        first_half.join(30)
        publish(range(1501, 3000, 20))  # while ingest is dead: the broker keeps them
        ingest.start()
        wait_for(lambda: station.upto() == 3000, 30, "ack 3000 after the restart")
        after = ingest.status()["ingest"]
        assert after["rejected"] == 0
        # it stored the second half and what the first had not acknowledged, no more
        assert 1500 <= after["records"] <= 3000 - killed_at
        assert ingest.stop() == 0
    finally:
        ingest.stop()
        station.close()
    with open_store(db) as store:
        assert store.seqs(SITE, "records") == list(range(1, 3001))
        (row,) = store.stream_rows()
        assert (row.contiguous, row.highest, row.records) == (3000, 3000, 3000)


def _edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_refuses_bad_arguments_with_a_clear_message(tmp_path: Path) -> None:
    bad_db = _edge("central", "ingest", "--broker", "mqtt://127.0.0.1:1", "--db", "mysql://x/y")
    assert bad_db.returncode == 2
    assert "scheme 'mysql'" in bad_db.stderr and "sqlite:///" in bad_db.stderr
    db = f"sqlite:///{tmp_path}/c.db"
    bad_broker = _edge("central", "ingest", "--broker", "http://x", "--db", db)
    assert bad_broker.returncode == 2
    assert "mqtt://HOST:PORT" in bad_broker.stderr
    half_tls = _edge("central", "ingest", "--broker", "mqtts://x", "--db", db)
    assert half_tls.returncode == 2
    assert "--tls-ca" in half_tls.stderr
    assert not (tmp_path / "c.db").exists()  # refused before touching the database
    missing = _edge("central", "status", "--db", f"sqlite:///{tmp_path}/no/c.db")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_cli_status_prints_the_sites(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/c.db"
    with open_store(db) as store:
        store.store_batch(batch(SITE, 1, 12))
        store.note_status(SITE, {"state": "online", "version": "0.2.0"})
    out = _edge("central", "status", "--db", db)
    assert out.returncode == 0, out.stderr
    (site,) = json.loads(out.stdout)["sites"]
    assert site["site"] == SITE and site["online"] is True
    assert site["streams"]["records"]["confirmed_upto"] == 12
