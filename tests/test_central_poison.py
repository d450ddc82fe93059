"""One bad or stolen station certificate never stops the fleet: the attacks seen in
the field, each sent with a site's own certificate on its own topics (which the
shipped ACL allows) to the shipped mutual-TLS mosquitto, against ``edge central
ingest`` as a process, on SQLite and on PostgreSQL. After each, another site's batch
is acknowledged and central holds exactly its records; the poison is counted per
site and reason in GET /status and not stored; the same ingest process goes on
(never restarted to get past it). A database that is unavailable for a while is the
other case: its messages stay unacknowledged and are stored once it is back.

Waits are for events, with generous bounds (10 s for an ack: a loaded machine makes
them slower, never wrong); the speed under a flood is the benchmarks' business
(bench/ingest.py ``ingest_poison_flood_innocent_ack_ms_p95``)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from edge.central.store import open_store
from edge.storage.outbox import Outbox, add
from edge.sync.envelope import Ack
from rigs import poison
from rigs.helpers import Broker, Pki, wait_for
from rigs.ingest import IngestProcess
from rigs.sync_support import Lots, SyncRig, wait_delivered
from tests.central_support import Station, batch, central_db, lot

ATTACKER = "site-a"  # a stolen certificate: its own topics only, as the ACL says
INNOCENT = "site-b"
EPOCH = "0a1b2c3d4e5f6071"
OTHER = "f0e1d2c3b4a59687"
CENTRAL = "central:ingest-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with central_db(request.param, tmp_path) as url:
        yield url


def ingest_process(broker: Broker, pki: Pki, db_url: str) -> IngestProcess:
    tls = pki.client(CENTRAL)
    return IngestProcess(
        broker.port, db_url, CENTRAL,
        "--tls-ca", str(tls.ca_file), "--tls-cert", str(tls.cert_file),
        "--tls-key", str(tls.key_file),
    )  # fmt: skip


@pytest.fixture
def ingest(tls_broker: Broker, tls_pki: Pki, db_url: str) -> Iterator[IngestProcess]:
    proc = ingest_process(tls_broker, tls_pki, db_url).start()
    yield proc
    proc.stop()


@pytest.fixture
def stations(tls_broker: Broker, tls_pki: Pki) -> Iterator[tuple[Station, Station]]:
    with ExitStack() as stack:
        made = []
        for site in (ATTACKER, INNOCENT):
            station = Station(tls_broker.port, site, tls=tls_pki.client(site))
            stack.callback(station.close)
            made.append(station)
        yield made[0], made[1]


def rejected(ingest: IngestProcess, site: str = ATTACKER) -> dict[str, Any]:
    found: dict[str, Any] = ingest.status()["rejected_by_site"].get(site, {})
    return found


def innocent_goes_on(ingest: IngestProcess, station: Station, db_url: str, upto: int) -> None:
    """The innocent site's next batch is acknowledged (10 s: generous) and central
    holds exactly its records 1..upto+20, and nothing of the attacker's records."""
    pid = ingest.proc.pid if ingest.proc else None
    first = upto + 1
    station.publish(batch(INNOCENT, first, first + 19, epoch=OTHER))
    wait_for(lambda: station.upto() == first + 19, 10, "the innocent site's ack")
    assert ingest.proc is not None and ingest.proc.poll() is None and ingest.proc.pid == pid
    with open_store(db_url) as store:
        assert store.seqs(INNOCENT, "records") == list(range(1, first + 20))
        assert store.record(INNOCENT, "records", first) == lot(first, INNOCENT)


@pytest.mark.parametrize(
    "payload", [poison.NUL_STATUS, poison.SURROGATE_STATUS], ids=["nul", "lone-surrogate"]
)
def test_a_flood_of_unstorable_status_messages_stalls_nobody(
    ingest: IngestProcess,
    stations: tuple[Station, Station],
    db_url: str,
    tls_broker: Broker,
    tls_pki: Pki,
    payload: bytes,
) -> None:
    """200 retained status messages with a U+0000 (PostgreSQL's jsonb refuses it) or a
    lone surrogate (SQLite's UTF-8 cannot hold it): each is refused, counted and
    PUBACKed; another site is acknowledged meanwhile; after a restart the broker does
    not deliver the 200 again (the retained one, once, on subscribing)."""
    attacker, innocent = stations
    innocent.publish(batch(INNOCENT, 1, 10, epoch=OTHER))
    wait_for(lambda: innocent.upto() == 10, 10, "the innocent site's first ack")
    for _ in range(200):
        attacker.send(f"edge/{ATTACKER}/status", payload, retain=True)
    innocent_goes_on(ingest, innocent, db_url, 10)
    wait_for(lambda: rejected(ingest).get("total") == 200, 10, "200 counted")
    counts = rejected(ingest)
    assert set(counts["by_reason"]) <= {"invalid_status", "shed"}, counts
    assert counts["by_reason"]["invalid_status"] >= 1 and counts["garbage"] is True
    assert ingest.saw("holds a control character, NUL or a lone surrogate [invalid_status]")
    assert ingest.status()["ingest"]["rejected"] == 200
    with open_store(db_url) as store:
        assert [s["site"] for s in store.sites()] == [INNOCENT]  # no status stored
    assert ingest.stop() == 0
    ingest.start()  # same client id: the persistent session is resumed
    innocent_goes_on(ingest, innocent, db_url, 30)
    assert rejected(ingest).get("total", 0) <= 1  # the retained one, not the 200


def test_bombs_and_a_million_rows_cost_little_and_are_not_stored(
    ingest: IngestProcess, stations: tuple[Station, Station], db_url: str
) -> None:
    """A 1 KiB zstd frame of 31.5 MiB of empty CBOR maps and an 877-byte batch of
    1,000,000 lots: refused from their headers before anything is allocated (the
    process's peak memory stays far below the 2.7 GB the first one used to take)."""
    attacker, innocent = stations
    bomb, million = poison.zstd_bomb(), poison.million_rows(ATTACKER, EPOCH)
    assert len(bomb) < 1200 and len(million) < 1000
    for _ in range(10):
        attacker.send(f"edge/{ATTACKER}/records", bomb)
        attacker.send(f"edge/{ATTACKER}/records", million)
    innocent_goes_on(ingest, innocent, db_url, 0)
    wait_for(lambda: rejected(ingest).get("total") == 20, 10, "20 counted")
    assert set(rejected(ingest)["by_reason"]) <= {"oversize", "shed"}
    with open_store(db_url) as store:
        assert store.seqs(ATTACKER, "records") == []
    assert ingest.proc is not None
    status = Path(f"/proc/{ingest.proc.pid}/status").read_text()
    peak_kib = int(
        next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]
    )
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib // 1024} MiB"


def test_invalid_records_are_refused_and_the_station_is_told(
    ingest: IngestProcess, stations: tuple[Station, Station], db_url: str
) -> None:
    """A lot of -5 g, a record of type drop_table, seqs 2**62 and 2**63 - 1, and a
    batch without an epoch once central holds one: none stored; a refused batch whose
    header decoded is answered with a refusal (reason, first bad seq) and its range
    counts as done, so the site's later records are acknowledged past it."""
    attacker, innocent = stations
    topic = f"edge/{ATTACKER}/records"
    attacker.send(topic, poison.batch_of(ATTACKER, 1, 5, EPOCH))
    wait_for(lambda: attacker.upto() == 5, 10, "ack 5")
    attacker.send(topic, poison.batch_of(ATTACKER, 6, 10, EPOCH, s8={"net_g": -5}))
    attacker.send(topic, poison.batch_of(ATTACKER, 11, 12, EPOCH, s11={"type": "drop_table"}))
    attacker.send(topic, poison.huge_seq(ATTACKER, 2**62, EPOCH))
    attacker.send(topic, poison.huge_seq(ATTACKER, 2**63 - 1, EPOCH))
    attacker.send(topic, poison.batch_of(ATTACKER, 13, 14))  # no epoch
    attacker.send(topic, poison.batch_of(ATTACKER, 13, 15, EPOCH))
    wait_for(lambda: attacker.upto() == 15, 10, "ack 15, past the refused 6-12")
    innocent_goes_on(ingest, innocent, db_url, 0)
    wait_for(lambda: rejected(ingest).get("total") == 5, 10, "five counted")
    assert rejected(ingest)["by_reason"] == {
        "invalid_record": 2,
        "seq_range": 2,
        "epoch_missing": 1,
    }
    told: dict[tuple[int, int], Ack] = {}  # the first ack telling each refusal
    for ack in attacker.received:
        if ack.refused is not None:
            told.setdefault((ack.refused.first, ack.refused.last), ack)
    assert sorted(told) == [(6, 10), (11, 12), (13, 14)]
    shown = {k: (a.epoch, a.refused.seq, a.refused.reason) for k, a in told.items() if a.refused}
    assert shown == {
        (6, 10): (EPOCH, 8, "invalid_record"),
        (11, 12): (EPOCH, 11, "invalid_record"),
        (13, 14): ("", 13, "epoch_missing"),
    }
    assert told[(6, 10)].upto >= 10 and told[(11, 12)].upto >= 12  # counted as done
    assert told[(13, 14)].upto == 0  # no epoch: this ack confirms nothing, whoever reads it
    details = {k: a.refused.detail for k, a in told.items() if a.refused}
    assert "net_g -5" in details[(6, 10)] and "drop_table" in details[(11, 12)]
    # Acks may be lost (the station takes them at QoS 0): the later ones say the latest
    # refusal again, so an ack moving past 11-12 never confirms those records.
    last = attacker.received[-1]
    assert (last.upto, last.epoch) == (15, EPOCH)
    assert last.refused is not None and (last.refused.first, last.refused.last) == (11, 12)
    with open_store(db_url) as store:
        assert store.seqs(ATTACKER, "records") == [1, 2, 3, 4, 5, 13, 14, 15]
        assert store.record(ATTACKER, "records", 13) == poison.lot(13)
        assert all(store.record(ATTACKER, "records", s) is None for s in (8, 11, 2**62))


def test_a_transient_database_failure_holds_the_message_until_it_is_back(
    tls_broker: Broker, tls_pki: Pki, stations: tuple[Station, Station], db_url: str
) -> None:
    """The records table is away (an operator's migration gone wrong: SQLite and
    PostgreSQL both say it does not exist): nothing is PUBACKed, so even an ingest
    killed meanwhile gets the message again from the broker, and it is stored and
    acknowledged once the table is back. Not counted as poison."""
    _, innocent = stations
    proc = ingest_process(tls_broker, tls_pki, db_url).start()
    try:
        rename(db_url, "records", "records_away")
        innocent.publish(batch(INNOCENT, 1, 20, epoch=OTHER))
        wait_for(lambda: proc.saw("store unavailable, holding messages"), 10, "a failed store")
        assert innocent.acks == []
        proc.kill()  # the message was never PUBACKed: the broker still holds it
        rename(db_url, "records_away", "records")
        proc.start()
        wait_for(lambda: innocent.upto() == 20, 10, "the held batch stored and acked")
        assert proc.status()["rejected_by_site"] == {}
    finally:
        proc.stop()
    with open_store(db_url) as store:
        assert store.seqs(INNOCENT, "records") == list(range(1, 21))


def test_a_transient_failure_recovers_in_the_same_process(
    ingest: IngestProcess, stations: tuple[Station, Station], db_url: str
) -> None:
    _, innocent = stations
    rename(db_url, "records", "records_away")
    innocent.publish(batch(INNOCENT, 1, 20, epoch=OTHER))
    wait_for(lambda: ingest.saw("store unavailable, holding messages"), 10, "a failed store")
    assert innocent.acks == []
    rename(db_url, "records_away", "records")
    wait_for(lambda: innocent.upto() == 20, 45, "stored on a retry (back-off up to 30 s)")
    assert ingest.saw("store available again")
    assert ingest.status()["rejected_by_site"] == {}


def records_statuses(path: Path) -> Counter[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT status FROM outbox WHERE stream = 'records'").fetchall()
    finally:
        conn.close()
    return Counter(s for (s,) in rows)


def rename(db_url: str, old: str, new: str) -> None:
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url[len("sqlite:///") :], timeout=30)
        try:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as pg:
        pg.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_the_station_keeps_a_refused_batch_and_goes_on(
    tmp_path: Path, tls_pki: Pki, db_url: str
) -> None:
    """The real link: a record central refuses (a lot of 0 g that slipped into the
    outbox) gets its batch refused; the station marks those rows refused (reported,
    not sent again) and the records after them are confirmed."""
    with SyncRig(tmp_path, tls_pki, db_url, site=ATTACKER) as rig:
        lots = Lots(rig.station_db, site=ATTACKER)  # 3 producers and 2 products
        lots.record(20)
        with rig.link():
            wait_delivered(rig, 25, 20)
        store = lots.store
        with store.write() as db:
            add(db, "records", "lot", poison.lot(26)["id"], {**poison.lot(26), "net_g": 0})
        lots.record(3)  # 27-29: in the refused batch with 26
        with rig.link():
            wait_for(lambda: records_statuses(rig.station_db)["refused"] == 4, 20, "refused")
            lots.record(10)  # 30-39
            wait_for(lambda: records_statuses(rig.station_db)["confirmed"] == 35, 20, "confirmed")
        status = Outbox(store).status()
        lots.close()
        records = status["streams"]["records"]
        assert (records["refused"], records["depth"]) == (4, 0)
        assert "net_g 0" in records["refused_reason"]
        with rig.central() as central:
            assert central.seqs(ATTACKER, "records") == [*range(1, 26), *range(30, 40)]
            assert central.contiguous(ATTACKER, "records") == 39
        counts = rig.ingest.status()["rejected_by_site"][ATTACKER]["by_reason"]
        assert counts == {"invalid_record": 1}  # refused once, never sent again
