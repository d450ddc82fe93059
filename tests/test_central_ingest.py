"""Central ingest in this process against a real mosquitto and a real SQLite
file (and PostgreSQL): store, acknowledge, refuse garbage, keep going."""

from __future__ import annotations

import json
import logging
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import zstandard

from edge.central.core import BrokerUrlError, parse_broker_url
from edge.central.ingest import Ingest, TlsFiles
from edge.central.sqlite_store import SqliteStore
from edge.central.status import StatusServer
from edge.central.store import CentralStore, open_store
from edge.sync.envelope import encode_batch
from rigs.helpers import Broker, session_pki, wait_for
from tests.central_support import Station, batch, lot, pg_schema

SITE = "sin-ho-01"


def start_ingest(store: CentralStore, broker: Broker, **kw: Any) -> Ingest:
    ingest = Ingest(store, f"mqtt://127.0.0.1:{broker.port}", **kw)
    ingest.start()
    wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions")
    return ingest


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[CentralStore]:
    s = open_store(f"sqlite:///{tmp_path}/central.db")
    yield s
    s.close()


@pytest.fixture
def station(broker: Broker) -> Iterator[Station]:
    s = Station(broker.port, SITE)
    yield s
    s.close()


def test_batches_are_stored_then_acknowledged(
    broker: Broker, sqlite_store: CentralStore, station: Station
) -> None:
    ingest = start_ingest(sqlite_store, broker)
    try:
        station.publish(batch(SITE, 1, 100))
        wait_for(lambda: station.upto() == 100, 10, "ack of 1-100")
        assert sqlite_store.seqs(SITE, "records") == list(range(1, 101))
        assert sqlite_store.record(SITE, "records", 7) == lot(7, SITE)
        station.publish(batch(SITE, 1, 2, stream="telemetry"))
        wait_for(lambda: station.upto("telemetry") == 2, 10, "telemetry ack")
        assert ingest.counters.snapshot() == {
            "batches": 2,
            "records": 102,
            "duplicates": 0,
            "rejected": 0,
            "epoch_conflicts": 0,
        }
    finally:
        ingest.stop()


def test_duplicates_overlaps_and_gaps_over_mqtt(
    broker: Broker, sqlite_store: CentralStore, station: Station
) -> None:
    ingest = start_ingest(sqlite_store, broker)
    try:
        station.publish(batch(SITE, 11, 20))  # out of order: 1-10 not there yet
        wait_for(lambda: ingest.counters.snapshot()["batches"] == 1, 10, "first batch")
        wait_for(lambda: station.acks == [("records", 0)], 10, "an ack of 0 (gap at 1)")
        station.publish(batch(SITE, 1, 10))
        wait_for(lambda: station.upto() == 20, 10, "the gap filled: ack 20")
        station.publish(batch(SITE, 15, 25))  # overlaps 15-20
        station.publish(batch(SITE, 15, 25, attempt=2))  # sent again
        wait_for(lambda: ingest.counters.snapshot()["batches"] == 4, 10, "four batches")
        wait_for(lambda: station.upto() == 25, 10, "ack 25")
        assert sqlite_store.seqs(SITE, "records") == list(range(1, 26))
        counts = ingest.counters.snapshot()
        assert (counts["records"], counts["duplicates"]) == (25, 6 + 11)
        ups = [u for _, u in station.acks]
        assert ups[:2] == [0, 20] and ups[-1] == 25
    finally:
        ingest.stop()


def test_garbage_is_counted_and_logged_not_fatal(
    broker: Broker,
    sqlite_store: CentralStore,
    station: Station,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.central")
    ingest = start_ingest(sqlite_store, broker)
    try:
        topic = f"edge/{SITE}/records"
        station.send(topic, b"garbage")
        station.send(topic, b"")
        station.send(topic, zstandard.ZstdCompressor(write_content_size=True).compress(b"\xff\x00"))
        station.send(topic, encode_batch(batch("ta-phin", 1, 5)))  # another site's batch
        station.send(f"edge/{SITE}/telemetry", encode_batch(batch(SITE, 1, 5)))  # wrong stream
        station.send(f"edge/{SITE}/status", b"\xff\xfe", retain=True)
        station.publish(batch(SITE, 1, 5))  # a good one after all that
        wait_for(lambda: station.upto() == 5, 10, "the good batch acknowledged")
        wait_for(lambda: ingest.counters.snapshot()["rejected"] == 6, 10, "six rejected")
        assert sqlite_store.seqs(SITE, "records") == [1, 2, 3, 4, 5]
        assert sqlite_store.seqs("ta-phin", "records") == []
        rejected = ingest.status()["rejected_by_site"][SITE]
        assert rejected["by_reason"] == {"undecodable": 3, "wrong_topic": 2, "invalid_status": 1}
        assert rejected["total"] == 6 and rejected["garbage"] is True  # 5 within 10 minutes
        text = caplog.text  # once per site and reason (then at most once a minute)
        assert f"site {SITE}: rejected" in text
        assert "not a zstd frame" in text  # the first undecodable one
        assert "empty payload" not in text and "not valid CBOR" not in text
        assert "batch says site 'ta-phin'" in text
        assert "arrived on the 'telemetry' topic" not in text  # the second wrong topic
        assert "status payload is not UTF-8" in text
    finally:
        ingest.stop()


def test_status_messages_and_the_status_endpoint(
    broker: Broker, sqlite_store: CentralStore, station: Station
) -> None:
    ingest = start_ingest(sqlite_store, broker)
    server = StatusServer(ingest.status).start()
    try:
        online = {"state": "online", "version": "0.2.0", "config_hash": "9f2c"}
        station.send(f"edge/{SITE}/status", json.dumps(online).encode(), retain=True)
        station.send("edge/ta-phin/status", b"offline", retain=True)  # a v1 station
        station.publish(batch(SITE, 1, 30))
        station.publish(batch(SITE, 1, 3, stream="telemetry"))
        wait_for(lambda: station.upto("telemetry") == 3, 10, "telemetry stored")

        def fetch() -> dict[str, Any]:
            with urllib.request.urlopen(server.url, timeout=5) as resp:
                assert resp.headers["Content-Type"].startswith("application/json")
                data: dict[str, Any] = json.loads(resp.read())
                return data

        wait_for(lambda: len(fetch()["sites"]) == 2, 10, "two sites")
        body = fetch()
        sin_ho, ta_phin = body["sites"]
        assert sin_ho["site"] == SITE and sin_ho["online"] is True
        assert sin_ho["status"] == online
        assert sin_ho["streams"]["records"] == {
            "confirmed_upto": 30,
            "records": 30,
            "highest_seq": 30,
        }
        assert sin_ho["streams"]["telemetry"]["confirmed_upto"] == 3
        assert sin_ho["telemetry"]["seq"] == 3
        assert sin_ho["last_seen"].endswith("Z")
        assert ta_phin == {
            "site": "ta-phin",
            "last_seen": ta_phin["last_seen"],
            "online": False,
            "status": {"state": "offline"},
            "streams": {},
            "telemetry": None,
            "epoch_conflict": None,
        }
        assert sin_ho["epoch_conflict"] is None
        assert body["ingest"] == {
            "batches": 2,
            "records": 33,
            "duplicates": 0,
            "rejected": 0,
            "epoch_conflicts": 0,
        }
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url.replace("/status", "/nope"), timeout=5)
        assert err.value.code == 404
        err.value.close()
    finally:
        server.stop()
        ingest.stop()


def test_a_batch_whose_store_failed_is_redelivered(
    broker: Broker, tmp_path: Path, station: Station, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is locked by someone else: ingest holds the message (no
    PUBACK, no ack); stopped and started again, the broker redelivers it."""
    path = tmp_path / "central.db"
    store = SqliteStore(path, busy_timeout_s=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ingest = start_ingest(store, broker, client_id="ingest-x", retry_max_s=0.2)
    try:
        station.publish(batch(SITE, 1, 10))
        wait_for(lambda: "store unavailable" in caplog.text, 10, "a failed store")
    finally:
        ingest.stop()
    assert station.acks == []
    assert ingest.counters.snapshot()["batches"] == 0
    blocker.execute("ROLLBACK")
    blocker.close()
    again = start_ingest(store, broker, client_id="ingest-x")
    try:
        wait_for(lambda: station.upto() == 10, 10, "the redelivered batch acknowledged")
        assert store.seqs(SITE, "records") == list(range(1, 11))
    finally:
        again.stop()
        store.close()


def test_postgresql_end_to_end(broker: Broker, station: Station) -> None:
    with pg_schema() as url, open_store(url) as store:
        ingest = start_ingest(store, broker)
        try:
            for first in range(1, 500, 100):
                station.publish(batch(SITE, first, first + 99))
            station.publish(batch(SITE, 101, 200, attempt=2))
            wait_for(lambda: station.upto() == 500, 10, "ack 500")
            wait_for(lambda: ingest.counters.snapshot()["batches"] == 6, 10, "six batches")
            assert store.seqs(SITE, "records") == list(range(1, 501))
            assert ingest.counters.snapshot()["duplicates"] == 100
        finally:
            ingest.stop()


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.example:1884", "broker.example", 1884, False),
        ("mqtts://broker.example", "broker.example", 8883, True),
        ("127.0.0.1", "127.0.0.1", 1883, False),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool) -> None:
    a = parse_broker_url(url)
    assert (a.host, a.port, a.tls) == (host, port, tls)


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h:port", "mqtt://h/path"])
def test_bad_broker_urls(url: str) -> None:
    with pytest.raises(BrokerUrlError, match="mqtt://HOST:PORT"):
        parse_broker_url(url)


def test_over_mutual_tls_with_the_shipped_acl(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, sqlite_store: CentralStore
) -> None:
    """The shipped broker configuration: ingest with a central certificate reads
    every site through the shared subscription and may publish acks; a site's
    batch that claims another site is refused by ingest."""
    pki = session_pki(tmp_path_factory)
    broker = Broker(tmp_path / "tls-broker", tls=pki.broker_tls)
    broker.start()
    central = pki.client("central:ingest-1")
    tls = TlsFiles(central.ca_file, central.cert_file, central.key_file)
    ingest = Ingest(sqlite_store, f"mqtts://127.0.0.1:{broker.port}", tls=tls)
    station = None
    try:
        ingest.start()
        wait_for(ingest.subscribed.is_set, 10, "ingest subscribed over TLS")
        station = Station(broker.port, "site-a", tls=pki.client("site-a"))
        station.publish(batch("site-a", 1, 50))
        wait_for(lambda: station is not None and station.upto() == 50, 10, "ack over TLS")
        station.send("edge/site-a/records", encode_batch(batch("site-b", 1, 5)))
        wait_for(lambda: ingest.counters.snapshot()["rejected"] == 1, 10, "forged site refused")
        assert sqlite_store.seqs("site-a", "records") == list(range(1, 51))
        assert sqlite_store.seqs("site-b", "records") == []
    finally:
        if station is not None:
            station.close()
        ingest.stop()
        broker.stop()


REFUSING_SQLITE = (
    "CREATE TRIGGER refuse_odd BEFORE INSERT ON records WHEN NEW.seq = 6 "
    "BEGIN SELECT RAISE(ABORT, 'seq 6 refused by a constraint'); END"
)
REFUSING_PG = [
    "CREATE FUNCTION refuse_odd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.seq = 6 THEN RAISE EXCEPTION 'seq 6 refused' USING ERRCODE = '22P05'; END IF; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER refuse_odd BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION refuse_odd()",
]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_batch_the_database_refuses_is_rejected_the_rest_stored(
    kind: str,
    broker: Broker,
    tmp_path: Path,
    station: Station,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A valid batch that the database refuses (a constraint on its values: what a
    NUL in jsonb or a lone surrogate for SQLite would do, which the validator stops
    before) is refused for good: PUBACKed, counted, answered with a refusal, never
    retried; batches around it, even in the same transaction, are stored, and its
    range counts as done, so the ack moves past it."""
    caplog.set_level(logging.WARNING, logger="edge.central")
    with ExitStack() as stack:
        if kind == "sqlite":
            store = stack.enter_context(open_store(f"sqlite:///{tmp_path}/central.db"))
            conn = sqlite3.connect(tmp_path / "central.db")
            conn.execute(REFUSING_SQLITE)
            conn.commit()
            conn.close()
        else:
            url = stack.enter_context(pg_schema())
            store = stack.enter_context(open_store(url))
            import psycopg

            with psycopg.connect(url, autocommit=True) as pg:
                for statement in REFUSING_PG:
                    pg.execute(statement)
        ingest = start_ingest(store, broker)
        stack.callback(ingest.stop)
        station.publish(batch(SITE, 1, 5))
        station.publish(batch(SITE, 6, 6))
        station.publish(batch(SITE, 7, 9))
        wait_for(lambda: ingest.counters.snapshot()["rejected"] == 1, 10, "the refused batch")
        wait_for(lambda: ingest.counters.snapshot()["batches"] == 2, 10, "the good batches")
        wait_for(lambda: station.upto() == 9, 10, "ack 9: seq 6 refused, counted as done")
        assert store.seqs(SITE, "records") == [1, 2, 3, 4, 5, 7, 8, 9]
        refusals = {a.refused for a in station.received if a.refused is not None}
        assert {(r.first, r.last, r.reason) for r in refusals} == {(6, 6, "store_refused")}
        assert ingest.status()["rejected_by_site"][SITE]["by_reason"] == {"store_refused": 1}
        assert "refused records:6-6:1" in caplog.text
