"""Central ingest scales past one process: three ``edge central ingest`` processes
(certificates ``central:ingest-1`` .. ``-3``) on one mosquitto running the shipped
mutual-TLS configuration and ACL, sharing the stations' batches through the MQTT 5
shared subscription ``$share/central/edge/+/<stream>``, in front of PostgreSQL.

What the broker does with the messages of a member that dies (mosquitto 2.0,
measured here, see docs/scale-out.md): it never hands them to the other members.
With the ingest's persistent session (the shipped ``--session-expiry-s``, 7 days)
the dead member's session keeps its in-flight messages AND goes on receiving its
round-robin share of new ones, until it comes back or its session expires. With a
session that ends at the disconnect (``--session-expiry-s 0``) new messages go to
the living members only, but the in-flight ones are dropped. Either way no record
is lost: the station sends every batch central has not acknowledged again after
``ack_timeout_s``, and the store is idempotent on (site, stream, seq)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from edge.central.store import open_store
from edge.storage.outbox import STREAMS
from edge.storage.store import Store
from edge.sync.link_setup import build_link
from rigs.helpers import Broker, Pki, wait_for
from rigs.ingest import IngestProcess
from rigs.sync_support import Lots, delivered, outbox_records, outbox_statuses, station_settings
from tests.central_support import Station, batch, pg_schema

CENTRALS = ("central:ingest-1", "central:ingest-2", "central:ingest-3")
SITES = ("lai-chau-01", "lai-chau-02", "lai-chau-03", "lai-chau-04")
NAMED = 5
"""The Lots helper's 3 farmers and 2 products: records too, before the lots."""
LOTS_PER_SITE = 1_500
ROUND = 50  # lots each station records per round


def third_ingest_acl(tmp: Path, pki: Pki) -> str:
    """The ACL block ``edge certs central ingest-3`` tells the operator to add: the
    shipped edge.acl names ingest-1 and ingest-2 only. (Its certificate is the Pki's,
    issued on the suite's earlier clock; the one the command writes is not used.)"""
    out = subprocess.run(
        [sys.executable, "-m", "edge", "certs", "central", "ingest-3",
         "--ca", str(pki.folder), "--out", str(tmp / "certs-ingest-3")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    block = out[out.index("user central:ingest-3") :]
    assert "topic write edge/+/ack" in block, out
    return block


@contextmanager
def tls_broker_for_three(tmp: Path, pki: Pki) -> Iterator[Broker]:
    with Broker(tmp / "broker", tls=pki.broker_tls, acl_extra=third_ingest_acl(tmp, pki)) as b:
        yield b


def ingest(broker: Broker, pki: Pki, db: str, name: str, *extra: str) -> IngestProcess:
    tls = pki.client(name)
    return IngestProcess(
        broker.port, db, name,
        "--tls-ca", str(tls.ca_file), "--tls-cert", str(tls.cert_file),
        "--tls-key", str(tls.key_file), *extra,
    )  # fmt: skip


def wait_gone(broker: Broker, client_id: str, log_from: int) -> None:
    """Until the broker has logged ``client_id``'s connection as closed (after the
    first ``log_from`` characters of its log): it has handled the disconnect."""

    def gone() -> bool:
        new = broker.log.read_text(errors="replace")[log_from:]
        return any(
            client_id in line and ("closed its connection" in line or "disconnect" in line)
            for line in new.splitlines()
        )

    wait_for(gone, 20, f"the broker to see {client_id} gone")


def log_size(broker: Broker) -> int:
    return len(broker.log.read_text(errors="replace"))


def stored(procs: list[IngestProcess]) -> list[int]:
    """Batches each process stored since it started (GET /status)."""
    return [p.status()["ingest"]["batches"] for p in procs]


def check_site(db: str, station_db: Path, site: str, records: int) -> None:
    """Central holds each of the station's committed records once, with its body, and
    every station row is confirmed."""
    assert delivered(station_db, records), dict(outbox_statuses(station_db))
    with open_store(db) as central:
        for stream in STREAMS:
            rows = outbox_records(station_db, stream)
            assert central.seqs(site, stream) == list(range(1, len(rows) + 1)), (site, stream)
            got = [central.record(site, stream, seq) for seq in range(1, len(rows) + 1)]
            assert got == rows, f"{site}: central's {stream} differ from what the station sent"
        (progress,) = [r for r in central.stream_rows() if (r.site, r.stream) == (site, "records")]
        assert (progress.contiguous, progress.highest, progress.records) == (records,) * 3


SCALE_OUT_SESSION = ("--session-expiry-s", "0")
"""How ingest processes of one shared-subscription group run on mosquitto 2.0 (see
docs/scale-out.md): with the shipped 7-day session a dead member keeps receiving its
round-robin share, and a lone station re-sending N batches a cycle can land its
first one on the dead member every time (measured: never stored, until it returns)."""


def count_rows(path: Path, where: str, *params: int) -> int:
    """The station's records-stream outbox rows that match ``where``."""
    conn = sqlite3.connect(path)
    try:
        sql = f"SELECT count(*) FROM outbox WHERE stream = 'records' AND {where}"
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def highest_seq(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT max(seq) FROM outbox WHERE stream = 'records'").fetchone()
    finally:
        conn.close()
    return int(row[0] or 0)


@pytest.mark.real_clock_only
@pytest.mark.timeout(420)
def test_three_ingests_share_four_stations_and_one_killed_loses_nothing(
    tmp_path: Path, tls_pki: Pki
) -> None:
    """Four stations (the real link worker over the real station database) record
    1,500 lots each while three ingest processes share their batches. Mid-stream
    ingest-1 hangs (SIGSTOP) while every station's next batch reaches the broker, so
    the broker surely gave it some it never PUBACKed, and is then SIGKILLed; later it
    comes back (a new session) and takes its share again. Every record ends in
    PostgreSQL once, with the body the station committed, confirmed at its station;
    each process stored batches, both survivors kept storing after the kill, and the
    dead process's in-flight batches came back by the stations' re-send (rows sent
    twice), not by the broker."""
    with ExitStack() as stack:
        broker = stack.enter_context(tls_broker_for_three(tmp_path, tls_pki))
        db = stack.enter_context(pg_schema())
        procs = [ingest(broker, tls_pki, db, name, *SCALE_OUT_SESSION) for name in CENTRALS]
        for p in procs:
            stack.callback(p.stop)
            p.start()
        dying = procs[0]
        lots: dict[str, Lots] = {}
        paths = {site: tmp_path / site / "station.db" for site in SITES}
        for site, path in paths.items():
            path.parent.mkdir()
            lots[site] = Lots(path, site)
            stack.callback(lots[site].close)
            store = Store.open(path, site)
            stack.callback(store.close)
            link = build_link(station_settings(path, broker.port, tls_pki, site), store)
            link.start()
            stack.callback(link.stop)  # unwound first: the link stops before its store

        def record_until(lots_per_site: int) -> None:
            while lots[SITES[0]].recorded < lots_per_site:
                for one in lots.values():
                    one.record(ROUND)

        record_until(LOTS_PER_SITE // 2)
        wait_for(lambda: min(stored(procs)) > 0, 60, "every ingest to store some batches")
        before = stored(procs)
        assert dying.proc is not None
        dying.proc.send_signal(signal.SIGSTOP)
        marks = {site: highest_seq(path) for site, path in paths.items()}
        record_until(LOTS_PER_SITE // 2 + ROUND)  # one new batch or more per station

        def routed() -> bool:
            """Every row recorded since the freeze was PUBACKed by the broker, which
            routes a message before it PUBACKs it: four or more messages since the
            freeze, so the round robin over three gave the frozen one some."""
            unsent = "seq > ? AND attempts = 0"
            return all(count_rows(paths[s], unsent, marks[s]) == 0 for s in SITES)

        wait_for(routed, 60, "the stations' batches since the freeze to reach the broker")
        dying.kill()
        record_until(LOTS_PER_SITE * 3 // 4)
        dying.start()  # back, on a new session: it takes its share again
        assert dying.saw("session new")
        record_until(LOTS_PER_SITE)
        records = NAMED + LOTS_PER_SITE

        def all_delivered() -> bool:
            return all(delivered(path, records) for path in paths.values())

        try:
            wait_for(all_delivered, 240, "every station's records confirmed")
        except AssertionError as exc:
            outboxes = {site: dict(outbox_statuses(path)) for site, path in paths.items()}
            counts = [p.status()["ingest"] for p in procs]
            raise AssertionError(f"{exc}\noutboxes {outboxes}\ningest {counts}") from None
        assert all(n > 0 for n in before), f"the load was shared before the kill: {before}"
        after = stored(procs)
        assert all(a > b for a, b in zip(after[1:], before[1:], strict=True)), (before, after)
        assert after[0] > 0, "ingest-1, back, took a share again"
        for p in procs:
            assert p.status()["ingest"]["rejected"] == 0
        resent = sum(count_rows(path, "attempts >= 2") for path in paths.values())
        assert resent > 0, "the frozen ingest's batches went out again from the stations"
        for site, path in paths.items():
            check_site(db, path, site, records)
        for p in procs:
            assert p.stop() == 0


SESSIONS = {
    "kept-7-days": ("--session-expiry-s", "604800"),  # the ingest's default when written
    "ends-at-disconnect": ("--session-expiry-s", "0"),
}


@pytest.mark.parametrize("session", SESSIONS)
def test_the_broker_never_hands_a_dead_members_messages_to_the_others(
    tmp_path: Path, tls_pki: Pki, session: str
) -> None:
    """A station stand-in that never sends anything twice, so only the broker could
    deliver a lost message. ingest-1 is frozen (SIGSTOP) while batches arrive, so it
    surely holds some un-PUBACKed, then SIGKILLed, and more batches follow.

    Session kept: the frozen member's messages and its share of the later ones wait
    in its session; ingest-1 started again stores them (the others never got them).
    Session ends at the disconnect: the later batches all go to the survivors, but
    the frozen member's in-flight ones are gone; the station's re-send (here: by
    hand, as its ack time-out would) is what brings them."""
    site = "lai-chau-09"
    db = f"sqlite:///{tmp_path}/central.db"
    extra = SESSIONS[session]
    with ExitStack() as stack:
        broker = stack.enter_context(tls_broker_for_three(tmp_path, tls_pki))
        procs = [ingest(broker, tls_pki, db, name, *extra) for name in CENTRALS]
        for p in procs:
            stack.callback(p.stop)
            p.start()
        station = Station(broker.port, site, tls=tls_pki.client(site))
        stack.callback(station.close)

        def publish(first: int, last: int) -> None:
            for start in range(first, last, 20):
                station.publish(batch(site, start, start + 19))

        publish(1, 600)
        wait_for(lambda: station.upto() == 600, 30, "ack 600")
        assert min(stored(procs)) > 0, "round robin over the three"
        frozen = procs[0]
        assert frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)
        publish(601, 1200)  # about a third of these go to the frozen ingest-1
        log_from = log_size(broker)
        frozen.kill()
        wait_gone(broker, CENTRALS[0], log_from)
        publish(1201, 1800)
        if session == "kept-7-days":
            assert station.upto() < 1800
            frozen.start()
            wait_for(lambda: station.upto() == 1800, 60, "ack 1800 once ingest-1 is back")
            assert frozen.saw("session resumed")
            kept = frozen.status()["ingest"]["records"]
            assert kept > 0, "ingest-1's share was kept in its session, not handed over"
        else:
            with open_store(db) as central:
                wait_for(
                    lambda: set(range(1201, 1801)) <= set(central.seqs(site, "records")),
                    60,
                    "the survivors to store every batch published after the kill",
                )
                lost = sorted(set(range(1, 1801)) - set(central.seqs(site, "records")))
            assert lost, "the frozen member's in-flight batches were not delivered again"
            assert station.upto() < 1800
            for start in sorted({seq - (seq - 1) % 20 for seq in lost}):
                station.publish(batch(site, start, start + 19, attempt=2))  # as on ack time-out
            wait_for(lambda: station.upto() == 1800, 60, "ack 1800 after the re-send")
        with open_store(db) as central:
            assert central.seqs(site, "records") == list(range(1, 1801))
