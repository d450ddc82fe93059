"""Orders and packing through the station's HTTP API (issue 13): orders arrive as the
downlink applies them (edge.orders.apply, in the store's write transaction), lots are
recorded and graded on the simulated scale, parcels are check-weighed with a settled
weight, and shipping labels come out of the station's file printer as ESC/POS, decoded
here (Code 128 read with zxing-cpp)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import zxingcpp

from edge.orders.apply import HANDLERS
from edge.sync.validate import record_problem
from rigs.clock import MiddayClock
from rigs.escpos_decode import decode
from rigs.helpers import StationServer, settle, station_config, wait_for
from rigs.order_records import order_record, tracking_block

TEA = "Chè Shan tuyết"
JT = "J&T Express"
BLOCK = tracking_block(JT, last=100011, block_id="0190f0aa-0000-7000-8000-0000000000b1")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    with StationServer(station_config(tmp_path), now=MiddayClock()) as s:
        yield s


def send_down(server: StationServer, *records: dict[str, Any]) -> None:
    """As the downlink applies a batch: each record's handler in one write transaction."""
    with server.station.db.write() as db:
        for record in records:
            HANDLERS[record["type"]](db, record)


def line(quantity: int, grade: str | None = "A", net: int = 500, tare: int = 40,
         product: str = TEA) -> dict[str, Any]:  # fmt: skip
    return {"sku": f"SKU-{product[:3]}-{net}-{grade}", "name": f"{product} {net}g",
            "variation": None, "product": product, "grade": grade, "quantity": quantity,
            "pack_net_g": net, "pack_tare_g": tare}  # fmt: skip


def order(n: int, *lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return (
        order_record(
            n,
            buyer_message="Gọi trước khi giao",
            package_id=f"PKG{n:05d}",
            created_at=f"2026-12-06T10:{n:02d}:00Z",
            lines=list(lines or [line(2)]),
        )
        | fields
    )


def tea_product(server: StationServer, tolerance: int | None = 20) -> None:
    send_down(server, {"type": "product", "name": TEA, "unit_price_dong": 85000,
                       "grading": None, "pack_tolerance_g": tolerance})  # fmt: skip


def product_id(c: httpx.Client, name: str) -> str:
    return str(next(p["id"] for p in c.get("/api/products").json() if p["name"] == name))


def lot(c: httpx.Client, producer: str, product: str, grams: int, grade: str | None) -> str:
    settle(c, grams)
    r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
    assert r.status_code == 201, r.text
    lot_id = str(r.json()["id"])
    if grade is not None:
        assert c.post(f"/api/lots/{lot_id}/grade", json={"grade": grade}).status_code == 200
    return lot_id


def pack(c: httpx.Client, order_id: str, grams: int, **body: Any) -> httpx.Response:
    settle(c, grams)
    return c.post(f"/api/orders/{order_id}/pack", json=body)


def error(r: httpx.Response, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    found: dict[str, str] = r.json()["error"]
    return found


def records(server: StationServer, kind: str) -> list[dict[str, Any]]:
    rows = server.station.db.rows("SELECT body FROM outbox WHERE kind = ? ORDER BY seq", (kind,))
    return [json.loads(r["body"]) for r in rows]


def central_takes_them(server: StationServer) -> None:
    """Every parcel record in the outbox passes central's validation (edge.sync.validate)."""
    rows = server.station.db.rows(
        "SELECT seq, kind, body FROM outbox WHERE kind LIKE 'parcel%' ORDER BY seq"
    )
    assert rows
    for row in rows:
        record = {"type": row["kind"], "seq": row["seq"], **json.loads(row["body"])}
        assert record_problem(record) is None, (record_problem(record), record)


def printed(server: StationServer, job_id: str) -> bytes:
    directory: Path = server.cfg.printer.dir  # type: ignore[union-attr]
    path = directory / f"{job_id}.bin"
    wait_for(path.exists, 15, "the label printed")
    return path.read_bytes()


def code128(data: bytes) -> list[str]:
    """The Code 128 barcodes on a printed label."""
    decoded = decode(data)
    assert decoded.cuts == 1
    found = []
    for image in decoded.images:
        pixels = np.array(image.convert("L"))
        formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.Code128)
        found += [b.text for b in zxingcpp.read_barcodes(pixels, formats=formats)]
    return found


def test_pick_list_stock_and_coverage_count_grades_corrections_and_voids(
    server: StationServer,
) -> None:
    tea_product(server)
    with server.client("lead") as c:
        farmer = c.post("/api/producers", json={"name": "Giàng Thị Mỷ"}).json()["id"]
        tea = product_id(c, TEA)
        honey = c.post("/api/products", json={"name": "Mật ong"}).json()["id"]
        first = lot(c, farmer, tea, 1200, "A")
        lot(c, farmer, tea, 800, "A")
        lot(c, farmer, tea, 500, None)  # no grade confirmed: counts under grade None
        voided = lot(c, farmer, tea, 700, "A")
        r = c.post(f"/api/lots/{voided}/void", json={"reason": "cân nhầm"})
        assert r.status_code == 200, r.text
        corrected = lot(c, farmer, honey, 600, None)  # recorded as honey, it was tea
        r = c.post(f"/api/lots/{corrected}/correct", json={"product_id": tea, "reason": "nhầm"})
        assert r.status_code == 200, r.text
        assert c.post(f"/api/lots/{corrected}/grade", json={"grade": "A"}).status_code == 200

        send_down(
            server,
            order(1, line(2)),  # 1,000 g of A: covered (2,600 g on hand)
            order(2, line(3)),  # 1,500 g: covered, 100 g left
            order(3, line(1)),  # 500 g: 400 g short
            order(4, line(1, grade=None)),  # the ungraded lot covers it
            order(5, line(9), status="cancelled"),  # counts for nothing
            BLOCK,
        )
        picks = c.get("/api/orders/picklist").json()
        assert picks["lines"] == [
            {"product": TEA, "grade": None, "packs": 1, "net_g": 500},
            {"product": TEA, "grade": "A", "packs": 6, "net_g": 3000},
        ]
        assert picks["stock"] == [
            {"product": TEA, "grade": None, "on_hand_g": 500},
            {"product": TEA, "grade": "A", "on_hand_g": 2600},
        ]
        o3 = order(3)["id"]
        assert picks["short"] == [{"order_id": o3, "product": TEA, "grade": "A", "missing_g": 400}]
        assert picks["tracking"] == [{"carrier": JT, "left": 12, "low": True}]

        listed = c.get("/api/orders").json()
        assert [(o["id"][-2:], o["covered"]) for o in listed] == [
            ("01", True), ("02", True), ("03", False), ("04", True),
        ]  # fmt: skip
        assert listed[0]["expected_g"] == 1080 and listed[0]["tolerance_g"] == 40
        assert [o["status"] for o in c.get("/api/orders?status=cancelled").json()] == ["cancelled"]

        # packing the first takes its grams from the oldest lot, and from stock
        r = pack(c, order(1)["id"], 1080)
        assert r.status_code == 201, r.text
        assert [(x["lot_id"], x["net_g"]) for x in r.json()["parcel"]["lots"]] == [(first, 1000)]
        picks = c.get("/api/orders/picklist").json()
        assert picks["stock"][1] == {"product": TEA, "grade": "A", "on_hand_g": 1600}
        assert picks["lines"][1] == {"product": TEA, "grade": "A", "packs": 4, "net_g": 2000}
        assert picks["tracking"] == [{"carrier": JT, "left": 11, "low": True}]
        assert [o["id"] for o in c.get("/api/orders?status=packed").json()] == [order(1)["id"]]


def test_a_parcel_packed_with_a_settled_weight_prints_its_label_and_goes_to_central(
    server: StationServer,
) -> None:
    tea_product(server)
    send_down(server, order(1, line(2), line(1, grade="B", net=250, tare=20)), BLOCK)
    oid = order(1)["id"]
    with server.client("staff") as c:
        r = pack(c, oid, 1350)  # expected 2 x 540 + 270 = 1,350 g
        assert r.status_code == 201, r.text
        parcel, shown = r.json()["parcel"], r.json()["order"]
        assert parcel["tracking"] == "JTVN00100000" and parcel["gross_g"] == 1350
        assert (parcel["net_g"], parcel["expected_g"], parcel["tolerance_g"]) == (1250, 1350, 60)
        assert shown["status"] == "packed" and shown["parcel"]["id"] == parcel["id"]

        label = printed(server, parcel["print_job_id"])
        assert "JTVN00100000" in code128(label)

        [record] = records(server, "parcel")
        me = c.get("/api/me").json()["name"]
        assert {k: record[k] for k in ("id", "order_id", "tracking", "carrier", "net_g",
                                       "gross_g", "expected_g", "tolerance_g", "override",
                                       "by", "lines")} == {
            "id": parcel["id"], "order_id": oid, "tracking": "JTVN00100000", "carrier": JT,
            "net_g": 1250, "gross_g": 1350, "expected_g": 1350, "tolerance_g": 60,
            "override": None, "by": me,
            "lines": [{"product": TEA, "grade": "A", "quantity": 2},
                      {"product": TEA, "grade": "B", "quantity": 1}],
        }  # fmt: skip
        assert record["lots"] == []  # no lot of this tea recorded: packed from stock unlisted
        job = server.station.db.rows(
            "SELECT kind, record_id, data FROM print_jobs WHERE id = ?", (parcel["print_job_id"],)
        )[0]
        data = json.loads(job["data"])
        assert (job["kind"], job["record_id"]) == ("shipping", parcel["id"])
        assert data["product"] == TEA and data["order_id"] == oid
        assert data["recipient"]["address"] == (
            "Số 18, ngõ 25 Láng Hạ, Phường Láng Hạ, Quận Đống Đa, Hà Nội"
        )
        assert [g["quantity"] for g in data["goods"]] == [2, 1]

        def label_record() -> list[dict[str, Any]]:
            return records(server, "parcel_label")

        [printed_record] = wait_for(label_record, 10, "the parcel_label record")
        assert (printed_record["parcel_id"], printed_record["copy"]) == (parcel["id"], False)
        after = c.get(f"/api/orders/{oid}").json()
        assert after["parcel"]["print_status"] == "printed"
        audit = server.station.db.rows(
            "SELECT actor FROM audit_log WHERE action = 'parcel.packed' AND record_id = ?",
            (parcel["id"],),
        )
        assert audit == [{"actor": me}]
        # one weighing, one parcel: the same reading cannot pack another order
        send_down(server, order(2, line(2)))
        again = c.post(f"/api/orders/{order(2)['id']}/pack", json={})
        assert error(again, 409)["code"] == "already_recorded"


def test_a_wrong_weight_is_refused_with_the_numbers_and_only_a_lead_passes_it(
    server: StationServer,
) -> None:
    tea_product(server)
    send_down(server, order(1), order(2), BLOCK)
    light, heavy = order(1)["id"], order(2)["id"]
    with server.client("staff") as staff, server.client("lead") as lead:
        err = error(pack(staff, light, 960), 409)
        assert err["code"] == "weight_too_light"
        assert err["message"] == "Nhẹ hơn 120 g: cân được 0,960 kg, cần 1,080 kg ± 0,040 kg"
        assert err["message_en"] == (
            "Too light by 120 g: weighed 0.960 kg, expected 1.080 kg ± 0.040 kg"
        )
        err = error(pack(staff, heavy, 1150), 409)
        assert err["code"] == "weight_too_heavy" and err["message"].startswith("Nặng hơn 70 g")
        # a staff member cannot pass it
        r = staff.post(f"/api/orders/{heavy}/pack", json={"override_reason": "thùng to hơn"})
        assert error(r, 403)["code"] == "override_lead_only"
        # the lead can, on the same weighing, with a reason
        r = lead.post(f"/api/orders/{heavy}/pack", json={"override_reason": "thùng to hơn"})
        assert r.status_code == 201, r.text
        assert r.json()["parcel"]["override_reason"] == "thùng to hơn"
        [record] = records(server, "parcel")
        assert record["override"] == {"reason": "thùng to hơn"} and record["gross_g"] == 1150
        [audit] = server.station.db.rows(
            "SELECT detail FROM audit_log WHERE action = 'parcel.packed'"
        )
        assert json.loads(audit["detail"])["override_reason"] == "thùng to hơn"
        central_takes_them(server)
        # lighter than the goods alone: missing goods, nobody passes that
        err = error(pack(lead, light, 990, override_reason="hộp nhẹ"), 409)
        assert err["code"] == "weight_below_goods"
        assert lead.get(f"/api/orders/{light}").json()["status"] == "open"


def test_cancelled_and_already_packed_orders_are_refused(server: StationServer) -> None:
    tea_product(server)
    send_down(server, order(1), order(2), BLOCK)
    one, two = order(1)["id"], order(2)["id"]
    with server.client("staff") as c:
        send_down(server, {**order(1), "version": 2, "status": "cancelled"})
        err = error(pack(c, one, 1080), 409)
        assert err["code"] == "order_cancelled" and one in err["message"]
        assert pack(c, two, 1080).status_code == 201
        err = error(pack(c, two, 1080), 409)
        assert err["code"] == "already_packed" and "JTVN00100000" in err["message"]
        # cancelled once packed: the point keeps the parcel and says so
        send_down(server, {**order(2), "version": 2, "status": "cancelled"})
        assert c.get(f"/api/orders/{two}").json()["status"] == "cancelled_after_packing"
        assert error(c.get("/api/orders/nope"), 404)["code"] == "order_not_found"
        assert error(c.post("/api/orders/nope/pack", json={}), 404)["code"] == "order_not_found"


def test_void_and_repack_keep_both_parcels_and_never_reuse_a_number(
    server: StationServer,
) -> None:
    tea_product(server)
    send_down(server, order(1), order(2, tracking="SPX0123456789"), BLOCK)
    one, two = order(1)["id"], order(2)["id"]
    with server.client("staff") as staff, server.client("lead") as lead:
        first = pack(staff, one, 1080).json()["parcel"]
        mine = pack(staff, two, 1080).json()["parcel"]
        assert mine["tracking"] == "SPX0123456789"  # the marketplace's own number
        r = staff.post(f"/api/parcels/{first['id']}/void", json={"reason": "rách hộp"})
        assert r.status_code == 403
        r = lead.post(f"/api/parcels/{first['id']}/void", json={"reason": "rách hộp, đóng lại"})
        assert r.status_code == 200, r.text
        assert r.json()["order"]["status"] == "open" and r.json()["parcel"]["voided_at"]
        again = lead.post(f"/api/parcels/{first['id']}/void", json={"reason": "lần nữa"})
        assert error(again, 409)["code"] == "parcel_voided"
        second = pack(staff, one, 1075).json()["parcel"]
        assert second["tracking"] == "JTVN00100001"  # a new number: the old label is void
        lead.post(f"/api/parcels/{mine['id']}/void", json={"reason": "đóng lại"})
        assert pack(staff, two, 1080).json()["parcel"]["tracking"] == "SPX0123456789"

        parcels = server.station.db.rows(
            "SELECT order_id, tracking, voided_at IS NOT NULL AS voided FROM parcels "
            "ORDER BY packed_at"
        )
        assert [(p["tracking"], p["voided"]) for p in parcels] == [
            ("JTVN00100000", 1), ("SPX0123456789", 1), ("JTVN00100001", 0),
            ("SPX0123456789", 0),
        ]  # fmt: skip
        voids = records(server, "parcel_void")
        assert [(v["parcel_id"], v["reason"]) for v in voids] == [
            (first["id"], "rách hộp, đóng lại"), (mine["id"], "đóng lại"),
        ]  # fmt: skip
        assert len(records(server, "parcel")) == 4
        central_takes_them(server)


def test_a_reprint_is_a_copy_and_a_voided_parcel_is_not_reprinted(
    server: StationServer,
) -> None:
    tea_product(server)
    send_down(server, order(1), BLOCK)
    with server.client("staff") as c, server.client("lead") as lead:
        parcel = pack(c, order(1)["id"], 1080).json()["parcel"]
        printed(server, parcel["print_job_id"])
        wait_for(lambda: records(server, "parcel_label"), 10, "the first label record")
        r = c.post(f"/api/parcels/{parcel['id']}/reprint", json={})
        assert r.status_code == 201, r.text
        assert r.json()["copy"] is True
        copy = r.json()["job_id"]
        assert "JTVN00100000" in code128(printed(server, copy))
        labels = wait_for(lambda: records(server, "parcel_label")[1:], 10, "the copy's record")
        assert (labels[0]["job_id"], labels[0]["copy"]) == (copy, True)
        row = server.station.db.rows("SELECT copy_of FROM print_jobs WHERE id = ?", (copy,))
        assert row == [{"copy_of": parcel["print_job_id"]}]
        lead.post(f"/api/parcels/{parcel['id']}/void", json={"reason": "hủy"})
        r = c.post(f"/api/parcels/{parcel['id']}/reprint", json={})
        assert error(r, 409)["code"] == "parcel_voided"
        central_takes_them(server)


def test_block_numbers_are_issued_once_and_run_out_with_a_warning(
    server: StationServer,
) -> None:
    tea_product(server, tolerance=None)  # the default: max(20 g, 3 %) = 32 g for 1,080 g
    small = {**BLOCK, "first": 7, "last": 9, "digits": 6, "prefix": "JTX"}
    send_down(server, small, *(order(n) for n in range(1, 5)),
              order(5, carrier="GHN"))  # fmt: skip
    with server.client("staff") as c:
        assert c.get("/api/orders").json()[0]["tolerance_g"] == 32
        picks = c.get("/api/orders/picklist").json()["tracking"]
        assert picks == [{"carrier": "GHN", "left": 0, "low": True},
                         {"carrier": JT, "left": 3, "low": True}]  # fmt: skip
        issued = [pack(c, order(n)["id"], 1080 + n).json()["parcel"]["tracking"]
                  for n in (1, 2, 3)]  # fmt: skip
        assert issued == ["JTX000007", "JTX000008", "JTX000009"]
        err = error(pack(c, order(4)["id"], 1080), 409)
        assert err["code"] == "no_tracking_number" and JT in err["message"]
        assert error(pack(c, order(5)["id"], 1081), 409)["code"] == "no_tracking_number"
        # a new block: the next order gets its first number
        send_down(server, {**BLOCK, "id": "b2", "first": 1, "last": 500})
        assert pack(c, order(4)["id"], 1079).json()["parcel"]["tracking"] == "JTVN00000001"
        picks = c.get("/api/orders/picklist").json()["tracking"]
        assert picks[1] == {"carrier": JT, "left": 499, "low": False}
        numbers = [r["tracking"] for r in server.station.db.rows("SELECT tracking FROM parcels")]
        assert len(numbers) == len(set(numbers)) == 4


def test_an_order_slip_is_looked_up_by_any_of_its_codes(server: StationServer) -> None:
    tea_product(server)
    send_down(server, order(1), order(2, tracking="SPX0123456789"), BLOCK)
    one, two = order(1)["id"], order(2)["id"]
    with server.client("staff") as c:
        for code, found in ((one, one), ("PKG00001", one), ("SPX0123456789", two)):
            r = c.get("/api/orders/lookup", params={"code": code})
            assert r.status_code == 200, r.text
            assert r.json()["id"] == found
        tracking = pack(c, one, 1080).json()["parcel"]["tracking"]
        r = c.get("/api/orders/lookup", params={"code": f" {tracking} "})
        assert r.json()["id"] == one and r.json()["status"] == "packed"
        missing = error(c.get("/api/orders/lookup", params={"code": "578000"}), 404)
        assert missing["code"] == "order_not_found" and "578000" in missing["message"]
