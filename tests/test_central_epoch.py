"""Central and the station database's epoch, on a real SQLite file and a real
PostgreSQL schema (and over a real mosquitto): two databases under one site id
(an SD card replaced or cloned) never have the second one's records dropped as
duplicates of the first one's: the second is refused, counted and shown, and
nothing of the first is touched. A central database from before epochs migrates."""

from __future__ import annotations

import json
import logging
import sqlite3
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge.central.ingest import Ingest
from edge.central.status import StatusServer
from edge.central.store import CentralStore, StoreError, open_store
from edge.sync.envelope import Ack, Batch
from rigs.helpers import Broker, wait_for
from tests.central_support import Station, batch, central_db, lot

SITE = "sin-ho-01"
OLD = "0a1b2c3d4e5f6071"  # the first station database's epoch
NEW = "f0e1d2c3b4a59687"  # the replacement's


def other_records(b: Batch) -> Batch:
    """The same seqs with other contents: the new database's own lots."""
    records = tuple({**r, "net_g": r.get("net_g", 0) + 1, "new": True} for r in b.records)
    return replace(b, records=records)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with central_db(request.param, tmp_path) as db_url:
        yield db_url


@pytest.fixture
def store(url: str) -> Iterator[CentralStore]:
    s = open_store(url)
    yield s
    s.close()


def test_a_second_database_under_one_site_id_is_refused_and_shown(store: CentralStore) -> None:
    (first,) = store.store_batches([batch(SITE, 1, 50, epoch=OLD)])
    assert (first.upto, first.inserted, first.epoch, first.conflict) == (50, 50, OLD, "")
    (refused,) = store.store_batches([other_records(batch(SITE, 1, 60, epoch=NEW))])
    assert (refused.upto, refused.inserted, refused.duplicates) == (50, 0, 0)
    assert (refused.epoch, refused.conflict) == (OLD, NEW)
    assert store.seqs(SITE, "records") == list(range(1, 51))  # not even 51-60
    assert [store.record(SITE, "records", s) for s in (1, 50)] == [lot(1, SITE), lot(50, SITE)]
    (view,) = store.sites()
    conflict = view["epoch_conflict"]
    assert (conflict["stored"], conflict["seen"]) == (OLD, NEW)
    assert conflict["at"].endswith("Z")
    row = store.stream_rows()[0]
    assert (row.contiguous, row.highest, row.records, row.epoch) == (50, 50, 50, OLD)
    # The first database goes on as before; a batch without an epoch is not stored
    # now that central holds one (whose seqs would those be?).
    assert store.store_batches([batch(SITE, 51, 55, epoch=OLD)])[0].upto == 55
    (legacy,) = store.store_batches([batch(SITE, 56, 57)])
    assert (legacy.upto, legacy.inserted, legacy.epoch) == (55, 0, OLD)
    assert (legacy.conflict, legacy.missing_epoch) == ("", True)
    assert store.seqs(SITE, "records") == list(range(1, 56))
    assert store.sites()[0]["epoch_conflict"]["seen"] == NEW  # still shown


def test_the_other_databases_telemetry_does_not_replace_the_sites(store: CentralStore) -> None:
    store.store_batches([batch(SITE, 1, 3, stream="telemetry", epoch=OLD)])
    newer = batch(SITE, 1, 9, stream="telemetry", epoch=NEW)
    (p,) = store.store_batches([newer])
    assert p.conflict == NEW
    (view,) = store.sites()
    assert view["telemetry"]["seq"] == 3
    assert view["streams"]["telemetry"]["confirmed_upto"] == 3
    assert view["epoch_conflict"]["seen"] == NEW


def test_the_first_epoch_sets_it_an_empty_one_does_not(store: CentralStore) -> None:
    (p,) = store.store_batches([batch(SITE, 1, 5)])  # a sender from before epochs
    assert (p.upto, p.epoch) == (5, "")
    (p,) = store.store_batches([batch(SITE, 6, 8, epoch=NEW)])  # the same one, upgraded
    assert (p.upto, p.epoch, p.conflict) == (8, NEW, "")
    (p,) = store.store_batches([batch(SITE, 9, 9)])  # no epoch any more: refused
    assert (p.upto, p.inserted, p.missing_epoch) == (8, 0, True)
    (p,) = store.store_batches([batch(SITE, 9, 9, epoch=OLD)])
    assert (p.upto, p.conflict) == (8, OLD)
    assert store.sites()[0]["epoch_conflict"] is not None


def test_two_epochs_in_one_call_the_first_wins(store: CentralStore) -> None:
    out = store.store_batches(
        [batch(SITE, 1, 10, epoch=OLD), other_records(batch(SITE, 1, 20, epoch=NEW))]
    )
    assert [(p.upto, p.conflict) for p in out] == [(10, ""), (10, NEW)]
    assert store.seqs(SITE, "records") == list(range(1, 11))
    assert store.record(SITE, "records", 3) == lot(3, SITE)


def test_sites_and_streams_have_their_own_epochs(store: CentralStore) -> None:
    out = store.store_batches([batch(SITE, 1, 4, epoch=OLD), batch("ta-phin", 1, 2, epoch=NEW)])
    assert sorted((p.site, p.upto, p.epoch, p.conflict) for p in out) == [
        (SITE, 4, OLD, ""),
        ("ta-phin", 2, NEW, ""),
    ]
    assert [v["epoch_conflict"] for v in store.sites()] == [None, None]


# -- a central database from before epochs ------------------------------------------------------

V1_SQLITE = [
    "CREATE TABLE central_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE records (site TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, "
    "kind TEXT NOT NULL, record_id TEXT, body TEXT NOT NULL, received_at TEXT NOT NULL, "
    "PRIMARY KEY (site, stream, seq)) WITHOUT ROWID",
    "CREATE TABLE progress (site TEXT NOT NULL, stream TEXT NOT NULL, "
    "contiguous_seq INTEGER NOT NULL DEFAULT 0, highest_seq INTEGER NOT NULL DEFAULT 0, "
    "records INTEGER NOT NULL DEFAULT 0, last_seen TEXT NOT NULL, PRIMARY KEY (site, stream))",
    "CREATE TABLE sites (site TEXT PRIMARY KEY, last_seen TEXT, status TEXT, status_at TEXT, "
    "telemetry TEXT, telemetry_seq INTEGER, telemetry_at TEXT)",
    "INSERT INTO central_meta VALUES ('schema_version', '1')",
    "INSERT INTO records VALUES ('sin-ho-01', 'records', 1, 'lot', NULL, '{\"type\":\"lot\"}', "
    "'2026-11-20T08:00:00.000Z'), ('sin-ho-01', 'records', 2, 'lot', NULL, "
    "'{\"type\":\"lot\"}', '2026-11-20T08:00:00.000Z')",
    "INSERT INTO progress VALUES ('sin-ho-01', 'records', 2, 2, 2, '2026-11-20T08:00:00.000Z')",
    "INSERT INTO sites VALUES ('sin-ho-01', '2026-11-20T08:00:00.000Z', NULL, NULL, NULL, "
    "NULL, NULL)",
]
V1_PG = [
    "CREATE TABLE central_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE records (site text NOT NULL, stream text NOT NULL, seq bigint NOT NULL, "
    "kind text NOT NULL, record_id text, body json NOT NULL, received_at timestamptz NOT NULL, "
    "PRIMARY KEY (site, stream, seq))",
    "CREATE TABLE progress (site text NOT NULL, stream text NOT NULL, "
    "contiguous_seq bigint NOT NULL DEFAULT 0, highest_seq bigint NOT NULL DEFAULT 0, "
    "records bigint NOT NULL DEFAULT 0, last_seen timestamptz NOT NULL, "
    "PRIMARY KEY (site, stream))",
    "CREATE TABLE sites (site text PRIMARY KEY, last_seen timestamptz, status jsonb, "
    "status_at timestamptz, telemetry jsonb, telemetry_seq bigint, telemetry_at timestamptz)",
    *(s for s in V1_SQLITE if s.startswith("INSERT")),
]


def make_v1(url: str) -> None:
    """The central database as the previous version created it, with two records."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        with conn:
            for statement in V1_SQLITE:
                conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for statement in V1_PG:
            pg.execute(statement)


def schema_version(url: str) -> str:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            query = "SELECT value FROM central_meta WHERE key = 'schema_version'"
            return str(conn.execute(query).fetchone()[0])
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as pg:
        row = pg.execute("SELECT value FROM central_meta WHERE key = 'schema_version'").fetchone()
        assert row is not None
        return str(row[0])


def test_a_central_database_from_before_epochs_migrates(url: str) -> None:
    make_v1(url)
    with open_store(url) as s:
        row = s.stream_rows()[0]
        assert (row.site, row.contiguous, row.records, row.epoch) == (SITE, 2, 2, None)
        assert s.sites()[0]["epoch_conflict"] is None
        # The station, upgraded, sends its epoch: accepted, and from now on it is the one.
        (p,) = s.store_batches([batch(SITE, 3, 5, epoch=OLD)])
        assert (p.upto, p.epoch) == (5, OLD)
        assert s.store_batches([batch(SITE, 1, 6, epoch=NEW)])[0].conflict == NEW
        assert s.seqs(SITE, "records") == [1, 2, 3, 4, 5]
    assert schema_version(url) == "4"
    with open_store(url) as s:  # opened again: nothing to migrate, nothing lost
        assert s.contiguous(SITE, "records") == 5
        assert s.sites()[0]["epoch_conflict"]["stored"] == OLD


def test_a_newer_central_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(V1_SQLITE[0])
        conn.execute("INSERT INTO central_meta VALUES ('schema_version', '5')")
    conn.close()
    with pytest.raises(StoreError, match="schema version 5, this program knows 4"):
        open_store(f"sqlite:///{path}")


# -- over MQTT: refused, not acknowledged, counted, logged, shown ------------------------------


def test_ingest_refuses_the_second_database_and_says_what_to_do(
    url: str, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="edge.central")
    with ExitStack() as stack:
        store = stack.enter_context(open_store(url))
        ingest = Ingest(store, f"mqtt://127.0.0.1:{broker.port}")
        ingest.start()
        stack.callback(ingest.stop)
        wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions")
        server = StatusServer(ingest.status).start()
        stack.callback(server.stop)
        station = Station(broker.port, SITE)
        stack.callback(station.close)

        station.publish(batch(SITE, 1, 50, epoch=OLD))
        wait_for(lambda: station.upto() == 50, 10, "the first database's ack")
        replaced = other_records(batch(SITE, 1, 60, epoch=NEW))
        station.publish(replaced)
        wait_for(lambda: ingest.counters.snapshot()["epoch_conflicts"] == 1, 10, "the conflict")
        station.publish(replace(replaced, batch_id="records:1-60:2"))  # the station resends
        wait_for(lambda: ingest.counters.snapshot()["epoch_conflicts"] == 2, 10, "counted again")
        station.publish(batch(SITE, 51, 52, epoch=OLD))
        wait_for(lambda: station.upto() == 52, 10, "the first database goes on")

        assert station.received == [Ack("records", 50, OLD), Ack("records", 52, OLD)]
        assert store.seqs(SITE, "records") == list(range(1, 53))
        assert store.record(SITE, "records", 7) == lot(7, SITE)
        counts = ingest.counters.snapshot()
        assert (counts["batches"], counts["records"], counts["rejected"]) == (2, 52, 0)
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            body: dict[str, Any] = json.loads(resp.read())
        (site,) = body["sites"]
        assert site["epoch_conflict"]["stored"] == OLD
        assert site["epoch_conflict"]["seen"] == NEW
        assert body["ingest"]["epoch_conflicts"] == 2
    text = caplog.text
    assert f"site {SITE}: refused records:1-60:1" in text
    assert OLD in text and NEW in text
    assert (
        "the station's database was replaced or cloned: give it a new site id, "
        "or reset central's progress for this site" in text
    )


def test_two_epochs_in_one_ingest_group_are_stored_one_after_the_other(tmp_path: Path) -> None:
    """When both arrive in one group, the second epoch's batch goes back to the queue,
    to be stored (and refused) after the first: the decoder's split, driven directly."""
    from paho.mqtt.client import MQTTMessage

    from edge.central.ingest import _Item
    from edge.sync.envelope import encode_batch

    def item(b: Batch) -> _Item:
        msg = MQTTMessage(mid=1, topic=f"edge/{SITE}/records".encode())
        msg.payload = encode_batch(b)
        return _Item(0, msg)

    with open_store(f"sqlite:///{tmp_path}/c.db") as store:
        ingest = Ingest(store, "mqtt://127.0.0.1:1")  # never started: no connection
        first, second = item(batch(SITE, 1, 5, epoch=OLD)), item(batch(SITE, 1, 9, epoch=NEW))
        group = ingest._prepare([first, second, item(batch(SITE, 6, 7, epoch=OLD))])
        assert [i.batch.epoch for i in group.items if i.batch] == [OLD, OLD]
        assert group.plan is not None and group.plan.epochs == {(SITE, "records"): OLD}
        assert ingest._queue.take(5, 0) == [second]  # decoded once, kept for the next group
        later = ingest._prepare([second])
        assert [i.batch.epoch for i in later.items if i.batch] == [NEW]
        assert store.store_plan(group.plan)[0].upto == 7
        assert later.plan is not None and store.store_plan(later.plan)[0].conflict == NEW
