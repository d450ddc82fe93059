"""The central store, on a real SQLite file and a real PostgreSQL schema:
idempotent, and the acknowledgement is the highest contiguous seq stored."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.central.core import DbUrlError, parse_db_url
from edge.central.store import BatchRefused, CentralStore, StoreUnavailable, open_store
from edge.sync.envelope import Batch
from tests.central_support import batch, central_db, lot, pg_schema

SITE = "sin-ho-01"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentralStore]:
    with central_db(request.param, tmp_path) as url:
        s = open_store(url)
        yield s
        s.close()


def test_a_batch_is_stored_and_acknowledged(store: CentralStore) -> None:
    assert store.store_batch(batch(SITE, 1, 100)) == 100
    assert store.seqs(SITE, "records") == list(range(1, 101))
    assert store.record(SITE, "records", 42) == lot(42, SITE)


def test_the_same_batch_twice_is_stored_once(store: CentralStore) -> None:
    first = store.store_batches([batch(SITE, 1, 50)])
    again = store.store_batches([batch(SITE, 1, 50, attempt=2)])
    assert (first[0].upto, first[0].inserted, first[0].duplicates) == (50, 50, 0)
    assert (again[0].upto, again[0].inserted, again[0].duplicates) == (50, 0, 50)
    assert store.seqs(SITE, "records") == list(range(1, 51))
    assert store.stream_rows()[0].records == 50


def test_overlapping_ranges_keep_each_seq_once(store: CentralStore) -> None:
    store.store_batch(batch(SITE, 1, 30))
    result = store.store_batches([batch(SITE, 20, 60)])[0]
    assert (result.upto, result.inserted, result.duplicates) == (60, 30, 11)
    assert store.seqs(SITE, "records") == list(range(1, 61))


def test_a_gap_holds_the_ack_until_it_is_filled(store: CentralStore) -> None:
    assert store.store_batch(batch(SITE, 1, 10)) == 10
    assert store.store_batch(batch(SITE, 21, 30)) == 10  # 11-20 missing
    assert store.store_batch(batch(SITE, 41, 50)) == 10
    assert store.store_batch(batch(SITE, 11, 20)) == 30  # fills the first gap only
    assert store.store_batch(batch(SITE, 31, 40)) == 50
    row = store.stream_rows()[0]
    assert (row.contiguous, row.highest, row.records) == (50, 50, 50)


def test_nothing_at_seq_1_means_nothing_acknowledged(store: CentralStore) -> None:
    assert store.store_batch(batch(SITE, 5, 9)) == 0
    assert store.store_batch(batch(SITE, 1, 4)) == 9


def test_a_group_of_batches_in_any_order_in_one_transaction(store: CentralStore) -> None:
    group = [batch(SITE, 31, 40), batch(SITE, 1, 10), batch(SITE, 11, 30), batch("ta-phin", 1, 3)]
    out = {(p.site, p.stream): p for p in store.store_batches(group)}
    assert out[(SITE, "records")].upto == 40
    assert out[(SITE, "records")].inserted == 40
    assert out[("ta-phin", "records")].upto == 3
    assert store.contiguous("ta-phin", "records") == 3


def test_streams_and_sites_are_counted_apart(store: CentralStore) -> None:
    store.store_batch(batch(SITE, 1, 5))
    store.store_batch(batch(SITE, 1, 2, stream="telemetry"))
    store.store_batch(batch("ta-phin", 1, 7))
    assert store.contiguous(SITE, "records") == 5
    assert store.contiguous(SITE, "telemetry") == 2
    assert store.contiguous("ta-phin", "records") == 7
    assert store.contiguous("ta-phin", "telemetry") == 0


def test_latest_telemetry_and_status_per_site(store: CentralStore) -> None:
    at = datetime(2020, 1, 1, tzinfo=UTC)
    store.store_batch(batch(SITE, 3, 4, stream="telemetry"), received_at=at)
    store.store_batch(batch(SITE, 1, 2, stream="telemetry"))  # older, arrives later
    store.note_status(SITE, {"state": "online", "version": "0.1.0", "config_hash": "ab12"})
    (view,) = store.sites()
    assert view["site"] == SITE
    assert view["online"] is True
    assert view["telemetry"]["seq"] == 4
    assert view["streams"]["telemetry"] == {"confirmed_upto": 4, "records": 4, "highest_seq": 4}
    assert view["last_seen"] > "2020-01-01T00:00:00.000Z"  # the later arrivals count
    store.note_status(SITE, {"state": "offline"})
    assert store.sites()[0]["online"] is False


def test_vietnamese_text_survives(store: CentralStore) -> None:
    rec = {"type": "producer", "seq": 1, "id": "p-1", "name": "Giàng Thị Mỷ", "village": "Sìn Hồ"}
    store.store_batch(Batch(SITE, "records", "records:1-1:1", 1, 1, (rec,)))
    assert store.record(SITE, "records", 1) == rec


def test_a_record_that_cannot_be_json_is_refused_and_nothing_is_kept(
    store: CentralStore,
) -> None:
    bad = Batch(SITE, "records", "b", 1, 2, (lot(1), {"type": "x", "seq": 2, "v": {1, 2}}))
    with pytest.raises(BatchRefused, match="set"):
        store.store_batch(bad)
    assert store.seqs(SITE, "records") == []
    assert store.store_batch(batch(SITE, 1, 2)) == 2


def test_postgres_keeps_a_nul_character_as_sent(tmp_path: Path) -> None:
    """Bodies are `json` (validated text, not jsonb, which refuses U+0000): a name
    holding a NUL character is stored and read back exactly as the station sent it."""
    with pg_schema() as url, open_store(url) as s:
        odd = Batch(SITE, "records", "b", 1, 1, ({"type": "x", "seq": 1, "name": "Mỷ\x00b"},))
        assert s.store_batch(odd) == 1
        body = s.record(SITE, "records", 1)
        assert body is not None and body["name"] == "Mỷ\x00b"
        assert s.store_batch(batch(SITE, 2, 3)) == 3


def _writer(url: str, start: int, step: int, n: int) -> None:
    with open_store(url) as s:
        for first in range(start, n, step):
            s.store_batch(batch(SITE, first, first + 9))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_processes_interleaving_batches_of_one_stream(kind: str, tmp_path: Path) -> None:
    """Two writers store alternate batches of the same stream at the same time:
    every record once, and the mark reaches the end whatever the order."""

    def run(url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_writer, args=(url, start, 20, 400)) for start in (1, 11)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        with open_store(url) as s:
            assert s.seqs(SITE, "records") == list(range(1, 401))
            assert s.contiguous(SITE, "records") == 400

    if kind == "sqlite":
        run(f"sqlite:///{tmp_path}/shared.db")
    else:
        with pg_schema() as url:
            run(url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "empty"),
        ("mysql://u@h/db", "scheme 'mysql'"),
        ("central.db", "no scheme"),
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///x.db?mode=ro", "no '?'"),
        ("postgresql://u@127.0.0.1:5432", "names no database"),
    ],
)
def test_a_bad_url_says_what_to_write(url: str, words: str) -> None:
    with pytest.raises(DbUrlError, match="sqlite:///") as err:
        open_store(url)
    assert words in str(err.value)


def test_url_forms() -> None:
    assert parse_db_url("sqlite:///var/c.db").path == Path("var/c.db")
    assert parse_db_url("sqlite:////srv/c.db").path == Path("/srv/c.db")
    pg = parse_db_url("postgres://root@127.0.0.1:5432/root")
    assert (pg.kind, pg.conninfo) == ("postgresql", "postgres://root@127.0.0.1:5432/root")


def test_a_missing_folder_or_server_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/nowhere/c.db")
    with pytest.raises(StoreUnavailable, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1/x"):
        open_store("postgresql://u@127.0.0.1:1/x")


def test_a_seq_beyond_64_bits_is_refused(store: CentralStore) -> None:
    huge = 2**63
    bad = Batch(SITE, "records", "b", huge, huge, (lot(1),))
    with pytest.raises(BatchRefused):
        store.store_batch(bad)
    assert store.store_batch(batch(SITE, 1, 3)) == 3


def test_postgres_connection_lost_is_unavailable_then_reconnects() -> None:
    import psycopg

    from edge.central.pg_store import PgStore

    with pg_schema() as url, open_store(url) as s:
        assert isinstance(s, PgStore)
        assert s.store_batch(batch(SITE, 1, 10)) == 10
        assert s._conn is not None  # the test reaches in to find its server process
        pid = s._conn.info.backend_pid
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable):
            s.store_batch(batch(SITE, 11, 20))
        assert s.store_batch(batch(SITE, 11, 20)) == 20  # a new connection
