"""The downlink end to end with real parts: central's store queues records, the real
``edge central ingest`` sends them through the shipped TLS mosquitto and its ACL, a
fault proxy cuts the station's link, and the station's link worker applies them
with handlers that write what they apply into a table (rigs/downlink_support.py).
Every record is applied exactly once, in order, whatever happens on the way."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.orders_downlink import livestream_orders
from edge.central.downlink import send_pending
from edge.central.orders.exports import read_export
from edge.central.orders.mapping import parse_mapping
from edge.central.orders.plan import plan_orders
from edge.central.store import CentralStore
from edge.sync.envelope import Batch, decode_ack, encode_batch
from rigs.downlink_support import (
    DownlinkLinkProcess,
    applied_rows,
    applied_upto,
    link,
    prepare_station,
    refused_rows,
)
from rigs.helpers import Pki, wait_for
from rigs.mqtt_probe import Probe
from rigs.order_records import import_record, order_line, tracking_block
from rigs.orders_export import make_export, mapping_csv
from rigs.sync_support import SITE, SyncRig
from tests.central_support import pg_schema

RESEND_S = 2.0


@contextmanager
def make_rig(tmp_path: Path, pki: Pki, db: str) -> Iterator[SyncRig]:
    r = SyncRig(tmp_path, pki, db)
    r.ingest.args += ["--downlink-resend-s", str(RESEND_S)]
    prepare_station(r.station_db, SITE)
    with r:
        yield r


@pytest.fixture
def rig(tmp_path: Path, tls_pki: Pki) -> Iterator[SyncRig]:
    with make_rig(tmp_path, tls_pki, f"sqlite:///{tmp_path}/central.db") as r:
        yield r


@pytest.fixture
def pg_rig(tmp_path: Path, tls_pki: Pki) -> Iterator[SyncRig]:
    """Central on PostgreSQL (a schema of the test's own)."""
    with pg_schema() as url, make_rig(tmp_path, tls_pki, url) as r:
        yield r


def order(n: int, site: str = SITE, **changes: Any) -> dict[str, Any]:
    """Order ``n`` as the import hands it to central's store, its recipient, address,
    payment and quantity varying with ``n``."""
    cod = 85_000 * (1 + n % 4)
    varying = {
        "recipient": random.Random(n).choice(["Nguyễn Thị Thu Hằng", "Lò Văn Páo", "Trần Minh"]),
        "phone": f"09{n % 100_000_000:08d}",
        "address": f"Số {n % 300}, ngõ {n % 97} Láng Hạ",
        "payment": "cod" if n % 3 else "prepaid",
        "cod_dong": cod,
        "amount_dong": cod,
        "lines": [order_line(quantity=1 + n % 4)],
    }
    return import_record(n, site, **(varying | changes))


def product(n: int) -> dict[str, Any]:
    return {
        "type": "product",
        "name": f"Chè Shan tuyết {n}",
        "unit_price_dong": 85_000 + n,
        "grading": None,
        "pack_tolerance_g": 30,
    }


def block(n: int) -> dict[str, Any]:
    return tracking_block(
        first=100_000 * n, last=100_000 * n + 999, block_id=f"0b8c2f4e-7a51-4d8e-9a55-{n:012d}"
    )


def expected(central: CentralStore, site: str = SITE) -> list[tuple[int, str, Any, Any]]:
    return [
        (r["seq"], r["type"], r.get("id", r.get("name")), r.get("version"))
        for r in central.down_records(site, 0, 1_000_000)
    ]


def wait_applied(rig: SyncRig, upto: int, timeout: float) -> None:
    def done() -> bool:
        if applied_upto(rig.station_db) < upto:
            return False
        with rig.central() as central:
            (row,) = [p for p in central.down_progress() if p["site"] == rig.site]
            return bool(row["acked_upto"] == upto)

    try:
        wait_for(done, timeout, f"the point to apply and central to hear of seq {upto}")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; applied {applied_upto(rig.station_db)}{rig.diagnostics()}"
        ) from None


def wait_seq(rig: SyncRig, seq: int, timeout: float = 30) -> None:
    wait_for(lambda: applied_upto(rig.station_db) >= seq, timeout, f"the point to apply seq {seq}")


def check_exactly_once(rig: SyncRig, n: int) -> None:
    with rig.central() as central:
        want = expected(central)
    assert len(want) == n
    assert applied_rows(rig.station_db) == want  # each once, in seq order
    assert refused_rows(rig.station_db) == []


def test_good_orders_of_a_2500_order_export_arrive_once_through_20_cuts_and_a_broker_kill(
    rig: SyncRig,
) -> None:
    start = time.monotonic()
    gen = make_export(2500, bad=50, seed=41)
    plan = plan_orders(read_export(gen.data), parse_mapping(mapping_csv()))
    orders = [{**o, "site": SITE} for o in plan.orders]  # one point packs them all here
    assert {o["id"] for o in orders} == set(gen.good) and len(orders) >= 2400
    first, total = 1500, len(orders)
    with rig.central() as central:
        counts = central.import_orders(orders[:first])
        central.import_orders([order(n, site="other-point") for n in range(5000, 5050)])
    assert counts["accepted"] == first
    cuts = 0
    at_cut: list[bool] = []  # the cut landed while the downlink was still flowing
    with link(rig):
        for step in range(1, 21):
            if step == 11:  # the second part of the livestream's orders, mid-stream
                with rig.central() as central:
                    central.import_orders(orders[first:])
                rig.broker.restart(hard=True)
            wait_for(lambda: rig.proxy.active > 0, 20, "the station to reconnect")
            wait_seq(rig, min(2400, 120 * step))
            if rig.proxy.cut(reset=step % 2 == 0):
                cuts += 1
                at_cut.append(applied_upto(rig.station_db) < (first if step < 11 else total))
        wait_applied(rig, total, 40)
    assert cuts == 20
    assert sum(at_cut) >= 10, at_cut
    check_exactly_once(rig, total)
    ids = [rid for _, _, rid, _ in applied_rows(rig.station_db)]
    assert ids == [o["id"] for o in orders]  # the good ones, each once, in order
    assert not set(ids) & gen.bad_orders
    assert time.monotonic() - start < 60


def test_sigkill_of_the_station_and_of_central_mid_stream(pg_rig: SyncRig, tmp_path: Path) -> None:
    rig = pg_rig
    with rig.central() as central:
        central.import_orders([order(n) for n in range(600)])
        for i in range(20):
            central.queue_down(SITE, [product(i), block(i)])
    station = DownlinkLinkProcess(rig.settings(), tmp_path).start()
    try:
        wait_seq(rig, 150)
        station.kill()
        with rig.central() as central:  # queued while the point is down
            central.import_orders([order(n, phone="0912345678") for n in range(300)])
        station.start()
        wait_seq(rig, 500)
        rig.ingest.kill()
        rig.ingest.start()
        wait_seq(rig, 800)
        station.kill()
        rig.ingest.kill()
        station.start()
        rig.ingest.start()
        wait_applied(rig, 940, 40)
    finally:
        station.stop()
    check_exactly_once(rig, 940)
    versions = {rid: v for _, kind, rid, v in applied_rows(rig.station_db) if kind == "order"}
    assert versions[order(0)["id"]] == 2 and versions[order(599)["id"]] == 1


def test_a_scheduled_link_gets_what_was_queued_while_it_was_closed(
    rig: SyncRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("edge.sync.mqtt.DOWN_LINGER_S", 1.0)  # the field's 10 s, shortened
    with link(rig, connect_every_min=0.1):  # a window every 6 s
        wait_for(lambda: rig.proxy.active > 0, 20, "the first window")
        wait_for(lambda: rig.proxy.active == 0, 30, "the window to close (nothing to send)")
        with rig.central() as central:
            central.import_orders([order(n) for n in range(300)])
        wait_applied(rig, 300, 30)
    check_exactly_once(rig, 300)


def test_garbage_gaps_and_duplicates_on_the_down_topic_do_no_harm(
    rig: SyncRig, tls_pki: Pki
) -> None:
    central_probe = Probe(rig.broker.port, tls_pki.client("central:ingest-2"), client_id="x")
    try:
        assert central_probe.connect().ok
        assert central_probe.subscribe(f"edge/{SITE}/downack") == [1]
        with rig.central() as central:
            epoch = central.down_epoch()
        topic = f"edge/{SITE}/down"

        def batch(first: int, last: int, site: str = SITE) -> bytes:
            records = tuple(
                {**product(s), "seq": s, "name": f"forged {s}"} for s in range(first, last + 1)
            )
            return encode_batch(
                Batch(site, "down", f"down:{first}-{last}:9", first, last, records, 2, epoch)
            )

        with link(rig):
            wait_for(lambda: central_probe.messages(), 20, "the station's ack at connect")
            garbage = [
                b"",
                b"\x28\xb5\x2f\xfd" + random.Random(1).randbytes(3000),
                random.Random(2).randbytes(3 * 1024 * 1024),
                batch(1, 3, site="other-point"),
                batch(5, 6),  # a gap: nothing applied
            ]
            for payload in garbage:
                assert central_probe.publish(topic, payload) == 0
            assert central_probe.publish(topic, batch(1, 2)) == 0
            assert central_probe.publish(topic, batch(1, 2)) == 0  # a duplicate
            acks = [decode_ack(m.payload) for m in central_probe.wait_messages(4)]
            assert [a.upto for a in acks] == [0, 0, 2, 2]  # connect, gap, batch, duplicate
            assert {a.epoch for a in acks[2:]} == {epoch}
            # the real downlink then numbers from 1 too: the point skips 1-2 as applied
            with rig.central() as central:
                central.queue_down(SITE, [product(i) for i in range(5)])
            wait_applied(rig, 5, 30)
    finally:
        central_probe.close()
    rows = applied_rows(rig.station_db)
    assert [seq for seq, *_ in rows] == [1, 2, 3, 4, 5]
    assert [rid for *_, rid, _ in rows[2:]] == [
        "Chè Shan tuyết 2",
        "Chè Shan tuyết 3",
        "Chè Shan tuyết 4",
    ]


def test_the_import_sends_what_it_queued_and_hears_the_acks(rig: SyncRig, tls_pki: Pki) -> None:
    rig.ingest.stop()  # the running central sends nothing meanwhile
    with link(rig):
        wait_for(lambda: rig.proxy.active > 0, 20, "the station to connect")
        with rig.central() as central:
            central.import_orders([order(n) for n in range(250)])
            central.queue_down(SITE, [{**product(1), "refuse_me": "a price this point refuses"}])
            result = send_pending(
                central,
                f"mqtt://localhost:{rig.broker.port}",
                tls=tls_pki.client("central:import"),
                timeout_s=30,
            )
            assert result["published"] == 251 and result["pending"] == 0
            assert result["acknowledged"] == 251
            assert result["sites"][SITE] == {"queued_upto": 251, "acked_upto": 251}
            (row,) = central.down_progress()
            assert row["acked_upto"] == 251
    assert len(applied_rows(rig.station_db)) == 250
    assert [(seq, kind) for seq, kind, _ in refused_rows(rig.station_db)] == [(251, "product")]


def test_orders_reach_the_points_own_tables_and_a_cancellation_cancels(
    rig: SyncRig, tmp_path: Path
) -> None:
    orders = [{**o, "site": SITE} for o in livestream_orders(40)]
    station = DownlinkLinkProcess(rig.settings(), tmp_path, handlers="station").start()
    try:
        with rig.central() as central:
            central.import_orders(orders)
            wait_applied(rig, 40, 30)
            changed = [dict(o) for o in orders]
            changed[0]["status"] = "cancelled"
            changed[1]["phone"] = "0912345678"
            assert central.import_orders(changed) == {
                "accepted": 0,
                "updated": 1,
                "cancelled": 1,
                "unchanged": 38,
            }
            wait_applied(rig, 42, 30)
    finally:
        station.stop()
    conn = sqlite3.connect(rig.station_db)
    try:
        held = {
            oid: (status, version, phone)
            for oid, status, version, phone in conn.execute(
                "SELECT id, status, version, phone FROM orders"
            )
        }
    finally:
        conn.close()
    assert len(held) == 40
    assert held[orders[0]["id"]][:2] == ("cancelled", 2)
    assert held[orders[1]["id"]] == ("open", 2, "0912345678")
    assert held[orders[2]["id"]][:2] == ("open", 1)
    assert refused_rows(rig.station_db) == []
