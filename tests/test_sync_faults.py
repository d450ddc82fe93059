"""Every committed record reaches central exactly once, whatever breaks on the way.

The real parts end to end (rigs/sync_support.py): the station's SQLite database
and its link worker, the fault proxy, the shipped mutual-TLS mosquitto with its
ACL, and ``edge central ingest`` as a process with a central certificate, storing
into SQLite (or PostgreSQL). Each test ends with :func:`check_delivery`: central's
database compared with the station's outbox record by record (every seq 1..N
once, each body as the station committed it) and every station row confirmed by
central's acknowledgement. The link's settings (rigs/sync_support.FAST_LINK) are
the field's with shorter times: a 3 s ack time-out, 0.05-0.5 s back-off."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from edge.config import TlsConfig
from edge.sync.connection import tls_context
from rigs.helpers import Pki, wait_for
from rigs.sync_support import (
    SITE,
    Fault,
    LinkProcess,
    Lots,
    Storm,
    SyncRig,
    check_delivery,
    outbox_statuses,
    wait_delivered,
)
from tests.central_support import pg_schema

NAMED = 5
"""The Lots helper's 3 farmers and 2 products: records too, before the lots."""


def ride_out(rig: SyncRig, records: int, plan: list[Fault], timeout: float) -> Storm:
    """Record ``records`` (farmers and products included) through the storm, with the
    link running in this process, and wait until all are confirmed."""
    lots = Lots(rig.station_db)
    storm = Storm(rig, lots, records - NAMED, plan)
    try:
        with rig.link():
            storm.run()
            wait_delivered(rig, records, timeout)
    finally:
        lots.close()
    return storm


def confirmed(path: Path) -> int:
    return outbox_statuses(path)["confirmed"]


def resent(path: Path) -> int:
    """Rows that went out again because central did not confirm them in time."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE attempts >= 2").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.real_clock_only
def test_10000_records_through_50_cuts_stalls_and_5_broker_restarts(
    tmp_path: Path, tls_pki: Pki
) -> None:
    """Lots are recorded while the link is cut 50 times (15 of them after a few
    hundred bytes more, inside a batch; half with RST), stalled 4 times (the last
    longer than the ack time-out) and mosquitto is restarted 5 times (2 by SIGKILL,
    losing what it had not saved)."""
    plan = Storm.make_plan(cuts=50, cut_afters=15, stalls=4, restarts=5, kills=2)
    with SyncRig(tmp_path, tls_pki, f"sqlite:///{tmp_path}/central.db") as rig:
        storm = ride_out(rig, 10_000, plan, 60)
        assert storm.cuts == 50 and rig.proxy.stats().cuts >= 50
        assert (storm.done["cut_after"], storm.done["stall"]) == (15, 4)
        assert (storm.done["restart"], storm.done["kill_broker"]) == (3, 2)
        assert rig.broker.starts == 6
        check_delivery(rig, 10_000)


def test_postgresql_central_through_cuts_a_stall_and_a_broker_restart(
    tmp_path: Path, tls_pki: Pki
) -> None:
    plan = Storm.make_plan(cuts=10, cut_afters=4, stalls=2, restarts=1, kills=0)
    with pg_schema() as url, SyncRig(tmp_path, tls_pki, url) as rig:
        storm = ride_out(rig, 2_000, plan, 60)
        assert storm.cuts == 10 and storm.done["restart"] == 1
        check_delivery(rig, 2_000)


@pytest.mark.real_clock_only
def test_station_killed_mid_drain_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, tls_pki: Pki
) -> None:
    """The link runs as a process of its own (build_link, as the station wires it)
    and is SIGKILLed twice while batches are in flight; lots recorded meanwhile go
    out after the restart."""
    with SyncRig(tmp_path, tls_pki, f"sqlite:///{tmp_path}/central.db") as rig:
        lots = Lots(rig.station_db)
        try:
            lots.record(3_000 - NAMED)
            rig.proxy.latency(20)  # with small batches and windows: a drain of seconds
            link = LinkProcess(rig.settings(batch_max_records=25, max_inflight_batches=2), tmp_path)
            for at_least in (800, 2_000):
                link.start()
                wait_for(lambda: confirmed(rig.station_db) >= at_least, 30, "the drain")  # noqa: B023
                link.kill()
                assert 0 < confirmed(rig.station_db) < lots.recorded + NAMED, "mid-drain"
                lots.record(500)  # while the station's link is dead
            link.start()
            try:
                wait_delivered(rig, 4_000, 60)
            finally:
                link.stop()
        finally:
            lots.close()
        assert rig.ingest.status()["ingest"]["rejected"] == 0
        check_delivery(rig, 4_000)


@pytest.mark.real_clock_only
def test_central_ingest_killed_mid_stream_still_stores_exactly_once(
    tmp_path: Path, tls_pki: Pki
) -> None:
    """``edge central ingest`` SIGKILLed twice while batches arrive (perhaps in the
    middle of a transaction); while it is dead the station records more, and its
    ack time-out sends unconfirmed batches again, so the broker holds duplicates for
    the ingest's session."""
    with SyncRig(tmp_path, tls_pki, f"sqlite:///{tmp_path}/central.db") as rig:
        lots = Lots(rig.station_db)
        try:
            with rig.link():
                for at_least in (1_000, 2_500):
                    while confirmed(rig.station_db) < at_least:
                        lots.record(100)
                    rig.ingest.kill()
                    before = resent(rig.station_db)
                    lots.record(500)
                    wait_for(lambda: resent(rig.station_db) > before, 20, "sent again")  # noqa: B023
                    rig.ingest.start()
                lots.record(max(0, 4_000 - NAMED - lots.recorded))
                records = NAMED + lots.recorded
                wait_delivered(rig, records, 60)
        finally:
            lots.close()
        assert rig.ingest.status()["ingest"]["rejected"] == 0
        check_delivery(rig, records)


def test_a_tls_handshake_cut_by_the_link_closes_its_socket(tls_pki: Pki) -> None:
    """paho drops the socket of a failed handshake without closing it; the station's
    TLS context closes it itself (otherwise a reconnecting station leaks a file
    descriptor, and a ResourceWarning, per attempt until the garbage collector runs)."""
    cfg = TlsConfig(**tls_pki.client(SITE).as_config(), server_hostname="localhost")
    with socket.create_server(("127.0.0.1", 0)) as server:
        raw = socket.create_connection(server.getsockname(), timeout=5)
        sock = tls_context(cfg).wrap_socket(raw, do_handshake_on_connect=False)
        peer, _ = server.accept()
        peer.close()  # the link breaks before the broker says hello
        with pytest.raises(OSError):
            sock.do_handshake()
        assert sock.fileno() == -1, "the failed TLS socket is closed"
