"""Courier handover records at central (issue 14): the uplink validation of
``manifest``, ``parcel_handover`` and ``parcel_return`` (edge.sync.validate); central's
fold of them with the parcel records (edge.central.parcels: packed, handed over,
returned, voided) from the real store on SQLite and PostgreSQL; the records sent as a
station's outbox does, and then by a real station closing a small handover, through
the shipped TLS broker and ACL to a real ``Ingest``, then asked with ``edge central
parcel`` and ``edge central manifest``."""

from __future__ import annotations

import json
import uuid
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

from edge.central.ingest import Ingest, TlsFiles
from edge.central.parcels import (
    HANDED_OVER,
    PACKED,
    RETURNED,
    VOIDED,
    fold,
    holder,
    manifest,
    manifest_parcels,
    site_parcels,
)
from edge.central.store import open_store
from edge.cli import main
from edge.sync.envelope import Batch, EnvelopeError
from edge.sync.validate import record_problem, validate_batch
from rigs.helpers import TEST_PIN, Broker, Pki, StationServer, station_config, wait_for
from tests.browser import order_record, pack_quickly, put_orders
from tests.central_support import BOOT, Station, central_db, lot

SITE = "sin-ho-01"
OTHER = "muong-te-02"
LOTS = [lot(1, SITE)["id"], lot(2, SITE)["id"]]
JT = "J&T Express"
COURIER = "Nguyễn Văn Tài"


def _id(n: int) -> str:
    return str(uuid.UUID(int=(0x019AF4D1 << 96) | (0x7000 << 64) | (0xB << 60) | n))


M1, M2, M3 = _id(9001), _id(9002), _id(9003)


def _at(minute: int) -> str:
    return f"2026-12-06T{8 + minute // 60:02d}:{minute % 60:02d}:00.000Z"


def _stamp(minute: int) -> dict[str, Any]:
    return {"recorded_at": _at(minute), "boot_id": BOOT, "uptime_s": 500.0 + minute,
            "clock_synced": True}  # fmt: skip


def tracking(n: int) -> str:
    return f"JTVN{200000 + n:08d}"


def parcel(n: int, carrier: str | None = JT) -> dict[str, Any]:
    return {
        "type": "parcel", "id": _id(n), "order_id": f"57800000000000{n:04d}",
        "tracking": tracking(n), "carrier": carrier, "net_g": 1000, "gross_g": 1000 + n,
        "expected_g": 1080, "tolerance_g": 40, "override": None, "by": "Lò Thị Mỷ",
        "by_id": "packer-01", "packed_at": _at(n), "lots": [{"lot_id": LOTS[0], "net_g": 1000}],
        "lines": [{"product": "Chè Shan tuyết", "grade": "A", "quantity": 2}], **_stamp(n),
    }  # fmt: skip


def handover(n: int, manifest_id: str, minute: int, courier: str = COURIER) -> dict[str, Any]:
    return {"type": "parcel_handover", "parcel_id": _id(n), "manifest_id": manifest_id,
            "tracking": tracking(n), "carrier": JT, "courier": courier, "at": _at(minute),
            **_stamp(minute)}  # fmt: skip


def manifest_record(mid: str, minute: int, count: int, missing: int, **kw: Any) -> dict[str, Any]:
    rec = {"type": "manifest", "id": mid, "carrier": JT, "courier": COURIER,
           "courier_id": "courier-07", "by": "Giàng A Chứ", "by_id": "lead-01",
           "closed_at": _at(minute), "count": count, "total_g": 1000 * count + 15,
           "cod_dong": 250_000 * count, "confirmed_with": "pin", "missing": missing,
           **_stamp(minute)}  # fmt: skip
    rec.update(kw)
    return rec


def ret(n: int, manifest_id: str, minute: int, reason: str = "khách không nhận") -> dict[str, Any]:
    return {"type": "parcel_return", "parcel_id": _id(n), "manifest_id": manifest_id,
            "reason": reason, "by": "Giàng A Chứ", "by_id": "lead-01", "at": _at(minute),
            **_stamp(minute)}  # fmt: skip


def void(n: int, minute: int) -> dict[str, Any]:
    return {"type": "parcel_void", "parcel_id": _id(n), "reason": "rách hộp", "by": "Giàng A Chứ",
            "at": _at(minute), **_stamp(minute)}  # fmt: skip


# -- validation -----------------------------------------------------------------------


def _with(rec: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = deepcopy(rec)
    if value is KeyError:
        del out[key]
    else:
        out[key] = value
    return out


MAN = manifest_record(M1, 30, 290, 5)
HAND = handover(1, M1, 20)
RET = ret(1, M1, 90)


def test_the_three_handover_records_are_valid() -> None:
    for rec in (
        MAN,
        manifest_record(M2, 31, 0, 3, confirmed_with="signature", courier_id=None, by_id=None),
        _with(_with(MAN, "courier_id", KeyError), "by_id", KeyError),
        HAND,
        _with(HAND, "carrier", None),
        {**HAND, "courier_id": "courier-07", "id": _id(5000)},
        RET,
        _with(RET, "by_id", KeyError),
        _with(MAN, "courier", "C" * 200),
    ):
        assert record_problem(rec) is None, rec


@pytest.mark.parametrize(
    ("rec", "says"),
    [
        (_with(MAN, "id", "M-2026-12-06"), "id 'M-2026-12-06' is not a UUID"),
        (
            _with(MAN, "confirmed_with", "thumb"),
            "confirmed_with 'thumb' is not one of pin, signature",
        ),
        (_with(MAN, "count", -1), "count -1 is not an integer in 0..100000"),
        (_with(MAN, "missing", 100_001), "missing 100001 is not an integer"),
        (_with(MAN, "total_g", 312.5), "total_g 312.5 is not an integer"),
        (_with(MAN, "total_g", True), "total_g True is not an integer"),
        (_with(MAN, "cod_dong", "12500000"), "cod_dong '12500000' is not an integer"),
        (_with(MAN, "carrier", KeyError), "carrier is missing"),
        (_with(MAN, "courier", ""), "courier is empty"),
        (_with(MAN, "courier", "C" * 201), "courier is 201 characters, more than 200"),
        (_with(MAN, "by", "B" * 61), "by is 61 characters, more than 60"),
        (_with(MAN, "courier_id", "courier 07"), "courier_id 'courier 07' is not a person id"),
        (_with(MAN, "closed_at", "06/12/2026 08:30"), "closed_at '06/12/2026 08:30' is not an ISO"),
        (_with(MAN, "recorded_at", KeyError), "recorded_at is missing"),
        (_with(HAND, "parcel_id", KeyError), "parcel_id is missing"),
        (_with(HAND, "manifest_id", "M1"), "manifest_id 'M1' is not a UUID"),
        (_with(HAND, "tracking", "JTVN\n1"), "tracking holds a control character"),
        (_with(HAND, "tracking", "T" * 65), "tracking is 65 characters, more than 64"),
        (_with(HAND, "courier", None), "courier None is not text"),
        (_with(HAND, "at", "2026-12-06"), "at '2026-12-06' is not an ISO 8601 time"),
        (_with(HAND, "id", 7), "id 7 is not a UUID"),
        (_with(RET, "reason", ""), "reason is empty"),
        (_with(RET, "manifest_id", KeyError), "manifest_id is missing"),
        (_with(RET, "by_id", "lead 01"), "by_id 'lead 01' is not a person id"),
        (_with(RET, "at", None), "at None is not an ISO 8601 time"),
        ({**RET, "signature_svg": "M0 0 L" * 40}, "unknown field signature_svg is 240 characters"),
    ],
)
def test_bad_handover_records_are_refused_with_the_field(rec: dict[str, Any], says: str) -> None:
    problem = record_problem(rec)
    assert problem is not None and says in problem, problem


def test_a_batch_with_one_bad_handover_record_is_refused_at_its_seq() -> None:
    records = [HAND, _with(MAN, "confirmed_with", None), RET]
    batch = Batch(SITE, "records", "records:1-3:1", 1, 3,
                  tuple({**r, "seq": i} for i, r in enumerate(records, 1)))  # fmt: skip
    with pytest.raises(EnvelopeError) as caught:
        validate_batch(batch)
    assert caught.value.reason == "invalid_record" and caught.value.seq == 2
    assert "record 2 (manifest): confirmed_with None is not one of pin, signature" in str(
        caught.value
    )


# -- the fold -------------------------------------------------------------------------
# Eight J&T parcels and one for another carrier packed; 8 voided. Pickup 1 (M1): 1-5
# handed over, 6 and 7 confirmed missing (no record: they stay packed), the manifest
# record after its handovers. Parcel 3 comes back. Pickup 2 (M2, its record first): 6
# and the returned 3 go out. 7 is still packed.

HISTORY = [
    *(parcel(n) for n in range(1, 9)),
    parcel(9, carrier="GHN"),
    void(8, 10),
    *(handover(n, M1, 20 + n) for n in range(1, 6)),
    manifest_record(M1, 30, 5, 2),
    ret(3, M1, 90),
    manifest_record(M2, 120, 2, 1, courier="Lê Văn Hùng", confirmed_with="signature"),
    handover(6, M2, 121, courier="Lê Văn Hùng"),
    handover(3, M2, 122, courier="Lê Văn Hùng"),
    handover(3, M2, 122, courier="Lê Văn Hùng"),  # the same handover twice: once
    ret(7, M1, 123),  # never handed over: not a return
]


def _check_view(view: Any) -> None:
    states = {n: view.parcels[_id(n)].state for n in range(1, 10)}
    assert states == {1: HANDED_OVER, 2: HANDED_OVER, 3: HANDED_OVER, 4: HANDED_OVER,
                      5: HANDED_OVER, 6: HANDED_OVER, 7: PACKED, 8: VOIDED, 9: PACKED}  # fmt: skip
    p3 = view.parcels[_id(3)]
    assert (p3.courier, p3.manifest_id, p3.handed_over_at, p3.handovers) == (
        "Lê Văn Hùng", M2, _at(122), 2,
    )  # fmt: skip
    assert view.on_manifest == {M1: [_id(n) for n in range(1, 6)], M2: [_id(6), _id(3)]}
    assert view.manifests[M1]["missing"] == 2 and view.manifests[M2]["count"] == 2
    assert view.counts() == {PACKED: 2, HANDED_OVER: 6, RETURNED: 0, VOIDED: 1}
    assert view.current(parcel(3)["order_id"]) is p3 and view.packed_twice() == {}


def test_fold_handovers_returns_and_a_second_pickup() -> None:
    _check_view(fold(HISTORY))
    returned = fold(HISTORY[:17]).parcels[_id(3)]  # up to the return of 3
    assert (returned.state, returned.return_reason, returned.returned_at) == (
        RETURNED, "khách không nhận", _at(90),
    )  # fmt: skip
    assert (returned.courier, returned.manifest_id, returned.at) == (COURIER, M1, _at(90))
    repacked = {**parcel(10), "order_id": parcel(3)["order_id"], "tracking": "JTVN00300003"}
    after = fold([*HISTORY[:17], repacked])  # 3 back in stock, its order packed again
    assert after.packed_twice() == {} and after.current(repacked["order_id"]) is not None
    assert fold([*HISTORY, repacked]).packed_twice() == {repacked["order_id"]: [_id(3), _id(10)]}
    unknown = fold([handover(44, M1, 1), ret(45, M1, 2)]).unknown
    assert [u["parcel_id"] for u in unknown] == [_id(44), _id(45)]


def _numbered(records: list[dict[str, Any]], site: str, size: int) -> list[Batch]:
    numbered = [{**r, "seq": i} for i, r in enumerate(records, 1)]
    out = []
    for start in range(0, len(numbered), size):
        part = tuple(numbered[start : start + size])
        first, last = part[0]["seq"], part[-1]["seq"]
        out.append(Batch(site, "records", f"records:{first}-{last}:1", first, last, part))
    return out


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_central_store_answers_who_holds_a_parcel_and_a_manifests_parcels(
    kind: str, tmp_path: Path
) -> None:
    other = [parcel(1), handover(1, M3, 40, courier="Vàng A Sử")]  # same ids, another point
    other[0] = {**other[0], "id": _id(301), "tracking": "GHN0000301"}
    other[1] = {**other[1], "parcel_id": _id(301), "tracking": "GHN0000301"}
    batches = _numbered(HISTORY, SITE, 5) + _numbered(other, OTHER, 5)
    for b in batches:
        validate_batch(b)
    with central_db(kind, tmp_path) as url, open_store(url) as store:
        store.store_batches(batches)
        _check_view(site_parcels(store, SITE))
        assert holder(store, SITE, tracking(1)) == {
            "state": HANDED_OVER, "parcel_id": _id(1), "tracking": tracking(1),
            "order_id": "578000000000000001", "carrier": JT, "courier": COURIER,
            "manifest_id": M1, "at": _at(21), "site": SITE, "reason": None,
        }  # fmt: skip
        by_id = holder(store, None, _id(3))
        assert by_id is not None
        assert (by_id["state"], by_id["courier"], by_id["manifest_id"]) == (
            HANDED_OVER, "Lê Văn Hùng", M2,
        )  # fmt: skip
        seven = holder(store, None, f"  {tracking(7).lower()} ")
        assert seven is not None and seven["state"] == PACKED
        assert (seven["courier"], seven["manifest_id"], seven["at"]) == (None, None, _at(7))
        eight = holder(store, None, tracking(8))
        assert eight is not None and (eight["state"], eight["reason"]) == (VOIDED, "rách hộp")
        far = holder(store, None, "GHN0000301")
        assert far is not None and (far["site"], far["courier"]) == (OTHER, "Vàng A Sử")
        assert holder(store, SITE, "GHN0000301") is None
        assert holder(store, None, "JTVN99999999") is None
        assert manifest_parcels(store, None, M1) == [
            {"parcel_id": _id(n), "tracking": tracking(n), "state": HANDED_OVER}
            for n in range(1, 6)
        ]
        assert [p["tracking"] for p in manifest_parcels(store, SITE, M2)] == [
            tracking(6), tracking(3),
        ]  # fmt: skip
        found = manifest(store, None, M3)
        assert found is not None and found["site"] == OTHER and found["record"] is None
        assert manifest_parcels(store, OTHER, M1) == [] and manifest(store, None, _id(1)) is None


# -- through the broker ---------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["central", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_handover_reaches_central_through_the_tls_broker_and_is_asked_with_the_cli(
    tmp_path: Path, tls_broker: Broker, tls_pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """The records as the station's outbox sends them (numbered, in batches, over the
    shipped TLS configuration with the site's certificate); then what a person at
    central reads from ``edge central parcel`` and ``edge central manifest``."""
    url = f"sqlite:///{tmp_path}/central.db"
    records = [
        *(parcel(n) for n in range(1, 8)),
        *(handover(n, M1, 20 + n) for n in range(1, 6)),
        manifest_record(M1, 30, 5, 2),
        ret(4, M1, 95, reason="sai địa chỉ"),
    ]
    central = tls_pki.client("central:ingest-1")
    with open_store(url) as store:
        tls = TlsFiles(central.ca_file, central.cert_file, central.key_file)
        ingest = Ingest(store, f"mqtts://127.0.0.1:{tls_broker.port}", tls=tls)
        ingest.start()
        station = None
        try:
            wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions over TLS")
            station = Station(tls_broker.port, SITE, tls=tls_pki.client(SITE))
            for b in _numbered(records, SITE, 4):
                station.publish(b)
            wait_for(lambda: station.upto() == len(records), 20, "central's ack of every record")
            bad = {**_with(ret(5, M1, 96), "manifest_id", "M1"), "seq": len(records) + 1}
            n = len(records) + 1
            station.publish(Batch(SITE, "records", f"records:{n}-{n}:1", n, n, (bad,)))
            wait_for(lambda: station.upto() == n, 20, "the refusal's ack")
            refusal = station.received[-1]
            assert refusal.refused is not None
            assert "manifest_id 'M1' is not a UUID" in str(refusal.refused)
        finally:
            if station is not None:
                station.close()
            ingest.stop()

    code, said = _cli(capsys, "parcel", tracking(2), "--db", url)
    assert code == 0
    assert said == (
        f"{tracking(2)} (parcel {_id(2)}, order 578000000000000002, J&T Express, point {SITE}): "
        f"handed over to {COURIER} at {_at(22)} on manifest {M1}\n"
    )
    code, said = _cli(capsys, "parcel", _id(4), "--db", url, "--site", SITE)
    assert code == 0 and f"returned at {_at(95)} by {COURIER} (reason: sai địa chỉ)" in said
    code, said = _cli(capsys, "parcel", tracking(6), "--db", url, "--json")
    shown = json.loads(said)
    assert code == 0 and (shown["state"], shown["manifest_id"], shown["courier"]) == (
        PACKED, None, None,
    )  # fmt: skip
    code, said = _cli(capsys, "parcel", tracking(5), "--db", url)
    assert code == 0 and "handed over" in said  # the refused return changed nothing
    code, said = _cli(capsys, "parcel", "JTVN99999999", "--db", url)
    assert code == 1 and "no parcel 'JTVN99999999' at any point" in said

    code, said = _cli(capsys, "manifest", M1, "--db", url)
    assert code == 0
    assert said.splitlines() == [
        f"Manifest {M1} (point {SITE}): J&T Express, courier {COURIER}, closed {_at(30)} by "
        "Giàng A Chứ, confirmed with pin; 5 parcels, 5.0 kg, COD 1,250,000 đ, "
        "2 missing (not handed over)",
        *(f"  {tracking(n)}  {RETURNED if n == 4 else HANDED_OVER}  {_id(n)}" for n in range(1, 6)),
    ]
    code, said = _cli(capsys, "manifest", M1, "--db", url, "--json")
    shown = json.loads(said)
    assert code == 0 and shown["record"]["count"] == 5 and len(shown["parcels"]) == 5
    assert [p["tracking"] for p in shown["parcels"]] == [tracking(n) for n in range(1, 6)]
    code, said = _cli(capsys, "manifest", M2, "--db", url)
    assert code == 1 and f"no manifest '{M2}'" in said
    code, said = _cli(capsys, "parcel", "x", "--db", "mysql://nope")
    assert code == 2 and "edge central parcel: --db mysql://nope" in said


def test_a_real_station_closes_a_handover_and_central_knows_who_holds_each_parcel(
    tmp_path: Path, tls_broker: Broker, tls_pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real station (its API, outbox and uplink over the shipped TLS broker and ACL) packs
    six J&T parcels and one GHN; a courier opens a handover and scans four, a lead
    confirms the other two as not handed over, the courier closes with the PIN, and one
    parcel comes back. Central, from its real ingest, answers as the station does."""
    site = "test-site"
    jt = [order_record(n) for n in range(1, 7)]
    ghn = [order_record(9, carrier="Giao Hàng Nhanh", tracking="GHN0000000009")]
    mqtt = {"enabled": True, "host": "localhost", "port": tls_broker.port,
            "tls": tls_pki.client(site).as_config(), "batch_max_age_s": 0.2}  # fmt: skip
    central = tls_pki.client("central:ingest-1")
    url = f"sqlite:///{tmp_path}/central.db"
    with open_store(url) as store:
        ingest = Ingest(
            store,
            f"mqtts://127.0.0.1:{tls_broker.port}",
            tls=TlsFiles(central.ca_file, central.cert_file, central.key_file),
        )
        ingest.start()
        try:
            wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions over TLS")
            cfg = station_config(tmp_path, mqtt=mqtt)
            with (
                StationServer(cfg) as server,
                server.client("courier") as courier,
                server.client("lead") as lead,
            ):
                put_orders(server, *jt, *ghn)
                pack_quickly(server, jt + ghn)
                r = courier.post("/api/handovers", json={"carrier": JT})
                assert r.status_code == 201, r.text
                hid = str(r.json()["id"])
                for record in jt[:4]:
                    r = courier.post(
                        f"/api/handovers/{hid}/scans", json={"code": record["tracking"]}
                    )
                    assert r.status_code == 200 and r.json()["verdict"] == "accepted", r.text
                r = lead.post(f"/api/handovers/{hid}/missing", json={"reason": "chưa đóng xong"})
                assert r.status_code == 200, r.text
                r = courier.post(f"/api/handovers/{hid}/close", json={"pin": TEST_PIN})
                assert r.status_code == 200, r.text
                station = server.station.db
                ids = {
                    row["tracking"]: row["id"]
                    for row in station.rows("SELECT id, tracking FROM parcels")
                }
                back = ids[jt[1]["tracking"]]
                r = lead.post(f"/api/parcels/{back}/return", json={"reason": "khách không nhận"})
                assert r.status_code == 200, r.text
                courier_name = station.rows("SELECT name FROM people WHERE role = 'courier'")[0][
                    "name"
                ]
                last = "SELECT max(seq) AS seq FROM outbox WHERE stream = 'records'"
                wait_for(  # the labels' records come as they print: up to the latest
                    lambda: store.contiguous(site, "records") == station.rows(last)[0]["seq"],
                    30,
                    "central's ack of every record",
                )
            assert ingest.counters.snapshot()["rejected"] == 0
        finally:
            ingest.stop()

        kinds = [
            r["type"]
            for r in store.records_of(
                site, "records", ["manifest", "parcel_handover", "parcel_return"]
            )
        ]
        assert sorted(kinds) == ["manifest"] + ["parcel_handover"] * 4 + ["parcel_return"]
        first = holder(store, None, jt[0]["tracking"])
        assert first is not None
        assert (first["state"], first["courier"], first["manifest_id"], first["site"]) == (
            HANDED_OVER, courier_name, hid, site,
        )  # fmt: skip
        returned = holder(store, site, back)
        assert returned is not None and (returned["state"], returned["reason"]) == (
            RETURNED, "khách không nhận",
        )  # fmt: skip
        for record in jt[4:] + ghn:  # confirmed missing, or another carrier's: still packed
            kept = holder(store, None, record["tracking"])
            assert kept is not None and (kept["state"], kept["manifest_id"]) == (PACKED, None)
        assert manifest_parcels(store, None, hid) == [
            {"parcel_id": ids[r["tracking"]], "tracking": r["tracking"],
             "state": RETURNED if r is jt[1] else HANDED_OVER}
            for r in jt[:4]
        ]  # fmt: skip
        shown = manifest(store, None, hid)
        assert shown is not None and shown["record"] is not None
        rec = shown["record"]
        assert (rec["count"], rec["missing"], rec["confirmed_with"], rec["courier"]) == (
            4, 2, "pin", courier_name,
        )  # fmt: skip
        assert site_parcels(store, site).counts() == {
            PACKED: 3,
            HANDED_OVER: 3,
            RETURNED: 1,
            VOIDED: 0,
        }

    code, said = _cli(capsys, "parcel", jt[2]["tracking"], "--db", url)
    assert code == 0 and said == (
        f"{jt[2]['tracking']} (parcel {ids[jt[2]['tracking']]}, order {jt[2]['id']}, {JT}, "
        f"point {site}): handed over to {courier_name} at {rec['closed_at']} on manifest {hid}\n"
    )
    code, said = _cli(capsys, "manifest", hid, "--db", url)
    assert code == 0 and said.splitlines()[1:] == [
        f"  {r['tracking']}  {RETURNED if r is jt[1] else HANDED_OVER}  {ids[r['tracking']]}"
        for r in jt[:4]
    ]
    assert "4 parcels, 4.3 kg, " in said and ", 2 missing (not handed over)" in said
