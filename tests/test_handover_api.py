"""Courier handover through the station's HTTP API (issue 14, docs/handover.md).

One station packs 31 parcels through the packing API (simulated scale, file printer):
20 for J&T Express (one of them voided and packed again under a new number, one whose
order central cancelled after packing) and 11 for Viettel Post. Each test starts its own
station on a copy of that database (the same site key), printing to a real TCP printer
listener; manifests are decoded from ESC/POS, their signed QR read with zxing-cpp and
their rows compared with the manifest the test expects, rendered as the printer worker
renders it.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import zxingcpp
from PIL import Image

from edge.orders.apply import HANDLERS
from edge.printer.label import render_label
from edge.printer.payload import PayloadKind, PayloadSigner, sign, verify
from edge.sync.validate import record_problem
from rigs.clock import MiddayClock
from rigs.escpos_decode import decode
from rigs.helpers import TEST_PIN, StationServer, settle, station_config, wait_for
from rigs.order_records import order_record, tracking_block
from rigs.printer_listener import PrinterListener

JT = "J&T Express"
VTP = "Viettel Post"
SITE = "test-site"
SITE_NAME = "Điểm thu gom Sìn Hồ"
JT_ORDERS = range(1, 21)  # orders 1..20 for J&T, 21..31 for Viettel Post
VTP_ORDERS = range(21, 32)
VOIDED_ORDER = 3  # its first parcel voided, packed again
CANCELLED_ORDER = 4  # cancelled by central after packing


def grams(n: int) -> int:
    """The gross weight order n's parcel was packed at (1,080 g expected, ± 40)."""
    return 1060 + n


def cod(n: int) -> int:
    return 100_000 + 1_000 * n


@dataclass(frozen=True)
class Packed:
    folder: Path
    tracking: dict[int, str]  # order n -> its live parcel's tracking number
    parcel: dict[int, str]  # order n -> its live parcel's id
    voided_tracking: str


def send_down(server: StationServer, *records: dict[str, Any]) -> None:
    with server.station.db.write() as db:
        for record in records:
            HANDLERS[record["type"]](db, record)


def order_id(n: int) -> str:
    return f"5781234567890{n:05d}"


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """The packing station's database and site key, with every label printed."""
    folder = tmp_path_factory.mktemp("packed")
    with StationServer(station_config(folder), now=MiddayClock()) as server:
        send_down(
            server,
            tracking_block(JT, block_id="0190f0aa-0000-7000-8000-0000000000b1"),
            tracking_block(VTP, prefix="VTP", block_id="0190f0aa-0000-7000-8000-0000000000b2"),
            *(
                order_record(
                    n, carrier=JT if n in JT_ORDERS else VTP, cod_dong=cod(n), amount_dong=cod(n),
                    created_at=f"2026-12-06T10:{n:02d}:00Z",
                )
                for n in [*JT_ORDERS, *VTP_ORDERS]
            ),
        )  # fmt: skip
        tracking: dict[int, str] = {}
        parcel: dict[int, str] = {}
        with server.client("lead") as lead:
            for n in [*JT_ORDERS, *VTP_ORDERS]:
                settle(lead, grams(n))
                r = lead.post(f"/api/orders/{order_id(n)}/pack", json={})
                assert r.status_code == 201, r.text
                tracking[n], parcel[n] = r.json()["parcel"]["tracking"], r.json()["parcel"]["id"]
            voided = tracking[VOIDED_ORDER]
            r = lead.post(f"/api/parcels/{parcel[VOIDED_ORDER]}/void", json={"reason": "rách hộp"})
            assert r.status_code == 200, r.text
            settle(lead, grams(VOIDED_ORDER))
            r = lead.post(f"/api/orders/{order_id(VOIDED_ORDER)}/pack", json={})
            assert r.status_code == 201, r.text
            tracking[VOIDED_ORDER] = r.json()["parcel"]["tracking"]
            parcel[VOIDED_ORDER] = r.json()["parcel"]["id"]
            send_down(
                server,
                order_record(
                    CANCELLED_ORDER, version=2, status="cancelled", cod_dong=cod(CANCELLED_ORDER),
                    amount_dong=cod(CANCELLED_ORDER), created_at="2026-12-06T10:04:00Z",
                ),
            )  # fmt: skip
            server.client("courier").close()  # the courier exists, with the test PIN
            server.client("staff").close()
            db = server.station.db
            wait_for(
                lambda: not db.rows("SELECT 1 FROM print_jobs WHERE status <> 'printed'"),
                20,
                "every shipping label printed",
            )
    return Packed(folder, tracking, parcel, voided)


@dataclass
class Point:
    server: StationServer
    printer: PrinterListener
    packed: Packed

    def key(self) -> bytes:
        return (self.packed.folder / "site.key").read_bytes()


@pytest.fixture
def point(packed: Packed, tmp_path: Path) -> Iterator[Point]:
    """A station on a copy of the packed database, printing to a TCP listener."""
    source = sqlite3.connect(packed.folder / "station.db")
    target = sqlite3.connect(tmp_path / "station.db")
    source.backup(target)
    source.close()
    target.close()
    shutil.copy(packed.folder / "site.key", tmp_path / "site.key")
    with PrinterListener() as printer:
        printer_cfg = {"type": "network", "host": "127.0.0.1", "port": printer.port}
        cfg = station_config(tmp_path, printer=printer_cfg)
        with StationServer(cfg, now=MiddayClock()) as server:
            yield Point(server, printer, packed)


def scan(c: httpx.Client, hid: str, code: str, source: str = "keyboard") -> dict[str, Any]:
    r = c.post(f"/api/handovers/{hid}/scans", json={"code": code, "source": source})
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    code: str = r.json()["error"]["code"]
    return code


def open_handover(c: httpx.Client, carrier: str, **body: Any) -> dict[str, Any]:
    r = c.post("/api/handovers", json={"carrier": carrier, **body})
    assert r.status_code in (200, 201), r.text
    found: dict[str, Any] = r.json()
    return found


def records(server: StationServer, kind: str) -> list[dict[str, Any]]:
    rows = server.station.db.rows(
        "SELECT seq, body FROM outbox WHERE kind = ? ORDER BY seq", (kind,)
    )
    found = [{"type": kind, "seq": r["seq"], **json.loads(r["body"])} for r in rows]
    for record in found:  # central takes every one of them
        assert record_problem(record) is None, (record_problem(record), record)
    return found


def manifest_printed(point: Point, jobs: int, view: dict[str, Any], copy: bool = False) -> str:
    """The ``jobs``-th job at the printer is the manifest of the closed handover ``view``:
    its signed QR names the handover, and it is, dot for dot, the manifest listing the
    parcels scanned (tracking, weight, COD) as the printer worker renders it. Returns the
    QR's payload."""
    data = point.printer.wait_for_jobs(jobs, timeout=15)[jobs - 1]
    decoded = decode(data)
    assert decoded.cuts == 1 and len(decoded.images) == 1
    printed = decoded.images[0]
    pixels = np.array(printed.convert("L"))
    qrs = zxingcpp.read_barcodes(
        pixels, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    assert len(qrs) == 1
    payload = verify(qrs[0].text, point.key(), site=SITE)
    assert payload.kind is PayloadKind.MANIFEST and payload.ref == view["id"]
    handed = [e for e in view["expected"] if e["scanned"]]
    expected = {
        "batch_id": view["id"],
        "collection_point": SITE_NAME,
        "courier": view["carrier"],
        "courier_staff": view["courier"]["name"],
        "staff": view["courier"]["name"],
        "handed_over_at": view["closed_at"].replace("Z", "+00:00"),
        "parcels": [
            {"tracking_code": e["tracking"], "weight_g": e["gross_g"], "cod_dong": e["cod_dong"]}
            for e in sorted(handed, key=lambda e: e["tracking"])
        ],
        "is_copy": copy,
    }
    signer = PayloadSigner(SITE, point.key())
    station = point.server.station
    reference = render_label("manifest", expected, printed.width, signer=signer, tz=station.tz)
    assert reference.size == printed.size
    assert np.array_equal(np.array(reference), np.array(printed)), "manifest rows differ"
    return qrs[0].text


# -- tests -----------------------------------------------------------------------------


def test_every_verdict_undo_counts_weight_and_cod(point: Point) -> None:
    p = point.packed
    key = point.key()
    with point.server.client("courier") as courier:
        carriers = courier.get("/api/handovers/carriers").json()
        assert carriers == [
            {"carrier": JT, "waiting": 19, "open_handover": None},  # 20 less the cancelled
            {"carrier": VTP, "waiting": 11, "open_handover": None},
        ]
        r = courier.post("/api/handovers", json={"carrier": "j&t  EXPRESS"})  # folded alike
        assert r.status_code == 201, r.text
        view = r.json()
        hid = view["id"]
        assert view["carrier"] == JT and view["status"] == "open"
        assert view["courier"]["name"] == "Thử courier"
        assert view["counts"] == {"expected": 19, "scanned": 0, "missing": 19, "extra": 0}
        jt = [n for n in JT_ORDERS if n != CANCELLED_ORDER]
        assert sorted(e["tracking"] for e in view["expected"]) == sorted(p.tracking[n] for n in jt)
        assert view["expected_g"] == sum(grams(n) for n in jt)
        assert view["expected_cod_dong"] == sum(cod(n) for n in jt)

        first = scan(courier, hid, p.tracking[1] + "\n")  # Code 128, the scanner's Enter
        assert (first["verdict"], first["tracking"]) == ("accepted", p.tracking[1])
        assert first["message"] == f"Đã nhận kiện {p.tracking[1]}."
        qr = sign(SITE, PayloadKind.SHIPPING, p.tracking[2], key)
        second = scan(courier, hid, qr, "phone")
        assert (second["verdict"], second["tracking"]) == ("accepted", p.tracking[2])
        assert second["counts"] == {"expected": 19, "scanned": 2, "missing": 17, "extra": 0}
        assert second["scanned_g"] == grams(1) + grams(2)
        assert second["scanned_cod_dong"] == cod(1) + cod(2)

        other_key = bytes(range(32))
        forged = sign(SITE, PayloadKind.SHIPPING, p.tracking[5], other_key)
        foreign = sign("other-site", PayloadKind.SHIPPING, p.tracking[5], other_key)
        lot = sign(SITE, PayloadKind.LOT, "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11", key)
        refused = {
            "duplicate": scan(courier, hid, p.tracking[1]),
            "duplicate_qr": scan(courier, hid, qr),
            "unknown": scan(courier, hid, "JTVN99999999"),
            "forged": scan(courier, hid, forged),
            "other_site": scan(courier, hid, foreign),
            "lot_qr": scan(courier, hid, lot),
            "other_carrier": scan(courier, hid, p.tracking[21]),
            "voided": scan(courier, hid, p.voided_tracking),
            "cancelled": scan(courier, hid, p.tracking[CANCELLED_ORDER]),
            "garbage": scan(courier, hid, "x" * 512),
        }  # fmt: skip
        assert {k: v["verdict"] for k, v in refused.items()} == {
            "duplicate": "duplicate",
            "duplicate_qr": "duplicate",
            "unknown": "unknown",
            "forged": "forged",
            "other_site": "unknown",
            "lot_qr": "unknown",
            "other_carrier": "other_carrier",
            "voided": "voided",
            "cancelled": "cancelled",
            "garbage": "unknown",
        }
        assert "chữ ký sai" in refused["forged"]["message"]
        assert refused["other_carrier"]["message_en"] == (
            f"Parcel {p.tracking[21]} is for another carrier: not for this pickup."
        )
        last = refused["garbage"]
        assert last["counts"] == {"expected": 19, "scanned": 2, "missing": 17, "extra": 8}
        assert last["scanned_g"] == grams(1) + grams(2)
        r = courier.post(f"/api/handovers/{hid}/scans", json={"code": "x" * 513})
        assert r.status_code == 422, r.text  # at most 512 characters

        r = courier.post(f"/api/handovers/{hid}/undo")
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["counts"]["scanned"] == 1 and view["scanned_g"] == grams(1)
        scanned = {e["tracking"] for e in view["expected"] if e["scanned"]}
        assert scanned == {p.tracking[1]}
        assert [x["verdict"] for x in view["extra"]] == [
            "unknown", "forged", "unknown", "unknown", "other_carrier", "voided", "cancelled",
            "unknown",
        ]  # fmt: skip
        again = scan(courier, hid, p.tracking[2])  # undone: it can be scanned again
        assert again["verdict"] == "accepted" and again["counts"]["scanned"] == 2
        assert courier.post(f"/api/handovers/{hid}/undo").status_code == 200
        assert courier.post(f"/api/handovers/{hid}/undo").status_code == 200
        assert error(courier.post(f"/api/handovers/{hid}/undo"), 409) == "nothing_to_undo"
        kept = point.server.station.db.rows(
            "SELECT verdict, undone_at IS NOT NULL AS undone FROM handover_scans "
            "WHERE handover_id = ? ORDER BY rowid",
            (hid,),
        )
        assert len(kept) == 13  # every scan kept, the undone ones marked
        assert sum(r["undone"] for r in kept) == 3
        r = courier.post(f"/api/handovers/{hid}/close", json={"pin": TEST_PIN})
        assert error(r, 409) == "nothing_scanned"
        view = courier.get(f"/api/handovers/{hid}").json()
        assert view["counts"]["scanned"] == 0 and view["status"] == "open"


def test_close_confirms_missing_pin_manifest_copy_records_then_next_pickup(point: Point) -> None:
    p = point.packed
    server = point.server
    jt = [n for n in JT_ORDERS if n != CANCELLED_ORDER]
    missing = jt[-2:]
    with (
        server.client("courier") as courier,
        server.client("lead") as lead,
        server.client("staff") as staff,
    ):
        hid = open_handover(courier, JT)["id"]
        for n in jt[:-2]:
            assert scan(courier, hid, p.tracking[n])["verdict"] == "accepted"
        r = courier.post(f"/api/handovers/{hid}/close", json={"pin": TEST_PIN})
        assert error(r, 409) == "missing_unconfirmed"
        assert "Còn thiếu 2 kiện" in r.json()["error"]["message"]
        reason = {"reason": "Kiện chưa mang ra"}
        assert error(staff.post(f"/api/handovers/{hid}/missing", json=reason), 403) == "forbidden"
        r = courier.post(f"/api/handovers/{hid}/missing", json=reason)
        assert error(r, 403) == "forbidden"
        r = lead.post(f"/api/handovers/{hid}/missing", json=reason)
        assert r.status_code == 200, r.text
        assert r.json()["missing_confirmed"] is True and r.json()["counts"]["missing"] == 2
        r = courier.post(f"/api/handovers/{hid}/close", json={"pin": "1357"})
        assert error(r, 403) == "wrong_pin"
        assert courier.get("/api/me").status_code == 200  # a wrong PIN keeps the session
        r = courier.post(f"/api/handovers/{hid}/close", json={"pin": TEST_PIN})
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["status"] == "closed" and view["manifest_job_id"]
        assert view["counts"] == {"expected": 19, "scanned": 17, "missing": 2, "extra": 0}
        assert error(courier.post(f"/api/handovers/{hid}/close", json={"pin": TEST_PIN}), 409) == (
            "handover_closed"
        )
        assert error(
            courier.post(f"/api/handovers/{hid}/scans", json={"code": p.tracking[1]}), 409
        ) == ("handover_closed")

        payload = manifest_printed(point, 1, view)
        r = courier.post(f"/api/handovers/{hid}/reprint")
        assert r.status_code == 201, r.text
        assert r.json()["copy"] is True
        assert manifest_printed(point, 2, view, copy=True) == payload

        [manifest] = records(server, "manifest")
        handed = [n for n in jt if n not in missing]
        assert manifest["id"] == hid and manifest["carrier"] == JT
        assert (manifest["count"], manifest["missing"]) == (17, 2)
        assert manifest["total_g"] == sum(grams(n) for n in handed)
        assert manifest["cod_dong"] == sum(cod(n) for n in handed)
        assert manifest["confirmed_with"] == "pin" and manifest["courier"] == "Thử courier"
        handovers = records(server, "parcel_handover")
        assert sorted(r["tracking"] for r in handovers) == sorted(p.tracking[n] for n in handed)
        assert {r["manifest_id"] for r in handovers} == {hid}
        orders = {o["id"]: o for o in lead.get("/api/orders", params={"status": "all"}).json()}
        assert orders[order_id(handed[0])]["status"] == "handed_over"
        assert orders[order_id(missing[0])]["status"] == "packed"
        day = server.station.today().isoformat()
        [summary] = courier.get("/api/handovers", params={"day": day}).json()
        assert (summary["id"], summary["count"], summary["missing"]) == (hid, 17, 2)

        # The next pickup: only the two missing parcels are offered again.
        carriers = {c["carrier"]: c for c in courier.get("/api/handovers/carriers").json()}
        assert carriers[JT] == {"carrier": JT, "waiting": 2, "open_handover": None}
        second = open_handover(courier, JT)
        assert second["id"] != hid
        assert sorted(e["tracking"] for e in second["expected"]) == sorted(
            p.tracking[n] for n in missing
        )
        assert scan(courier, second["id"], p.tracking[handed[0]])["verdict"] == "handed_over"

        r = lead.post(f"/api/parcels/{p.parcel[handed[1]]}/void", json={"reason": "nhầm"})
        assert error(r, 409) == "parcel_handed_over"

        # The courier brings one back: returned, its goods back in stock, never offered.
        stock = lead.get("/api/orders/picklist").json()["stock"]
        before = sum(s["on_hand_g"] for s in stock)
        back = p.parcel[handed[0]]
        r = staff.post(f"/api/parcels/{back}/return", json={"reason": "Khách không nhận"})
        assert r.status_code == 200, r.text
        assert r.json()["manifest_id"] == hid
        stock = lead.get("/api/orders/picklist").json()["stock"]
        assert sum(s["on_hand_g"] for s in stock) == before + 1000  # 2 packs of 500 g
        orders = {o["id"]: o for o in lead.get("/api/orders", params={"status": "all"}).json()}
        assert orders[order_id(handed[0])]["status"] == "returned"
        r = staff.post(f"/api/parcels/{back}/return", json={"reason": "lại"})
        assert error(r, 409) == "already_returned"
        r = staff.post(f"/api/parcels/{p.parcel[missing[0]]}/return", json={"reason": "x"})
        assert error(r, 409) == "not_handed_over"
        assert error(courier.post(f"/api/parcels/{back}/return", json={"reason": "x"}), 403) == (
            "forbidden"
        )
        assert scan(courier, second["id"], p.tracking[handed[0]])["verdict"] == "returned"
        [ret] = records(server, "parcel_return")
        assert (ret["parcel_id"], ret["manifest_id"]) == (back, hid)
        assert ret["reason"] == "Khách không nhận" and ret["by"] == "Thử staff"
        view = courier.get(f"/api/handovers/{second['id']}").json()
        assert view["counts"] == {"expected": 2, "scanned": 0, "missing": 2, "extra": 2}


def signature(size: int = 64) -> str:
    image = Image.new("1", (size, size // 2), 1)
    for x in range(size):
        image.putpixel((x, (x * x) % (size // 2)), 0)
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_two_carriers_at_once_a_lead_opens_for_the_courier_signature_close(point: Point) -> None:
    p = point.packed
    server = point.server
    with (
        server.client("courier") as courier,
        server.client("lead") as lead,
        server.client("staff") as staff,
    ):
        courier_id = courier.get("/api/me").json()["id"]
        jt = open_handover(courier, JT)
        r = lead.post("/api/handovers", json={"carrier": VTP, "courier_id": courier_id})
        assert r.status_code == 201, r.text
        vtp = r.json()
        assert vtp["courier"] == {"id": courier_id, "name": "Thử courier"}
        staff_id = staff.get("/api/me").json()["id"]
        r = lead.post("/api/handovers", json={"carrier": VTP, "courier_id": staff_id})
        assert error(r, 422) == "not_a_courier"
        r = courier.post("/api/handovers", json={"carrier": VTP, "courier_id": staff_id})
        assert error(r, 403) == "courier_id_lead_only"
        r = courier.post("/api/handovers", json={"carrier": "Giao Hàng Nhanh"})
        assert error(r, 409) == "nothing_waiting"
        r = courier.post("/api/handovers", json={"carrier": VTP})  # resumed: one per carrier
        assert r.status_code == 200 and r.json()["id"] == vtp["id"]
        carriers = courier.get("/api/handovers/carriers").json()
        assert [(c["carrier"], c["open_handover"]) for c in carriers] == [
            (JT, jt["id"]),
            (VTP, vtp["id"]),
        ]
        for n in VTP_ORDERS:
            assert scan(courier, vtp["id"], p.tracking[n])["verdict"] == "accepted"
            assert scan(courier, jt["id"], p.tracking[n])["verdict"] == "other_carrier"
        assert scan(courier, jt["id"], p.tracking[1])["verdict"] == "accepted"
        assert scan(courier, vtp["id"], p.tracking[1])["verdict"] == "other_carrier"

        close = f"/api/handovers/{vtp['id']}/close"
        big = (
            "data:image/png;base64,"
            + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(200_001)).decode()
        )
        assert error(courier.post(close, json={"signature_png": big}), 413) == "signature_too_large"
        r = courier.post(close, json={"signature_png": "data:image/png;base64,aGVsbG8="})
        assert error(r, 422) == "bad_signature_image"
        r = courier.post(close, json={})
        assert error(r, 422) == "confirm_needed"
        drawn = signature()
        r = courier.post(close, json={"signature_png": drawn})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "closed" and r.json()["counts"]["scanned"] == 11
        kept = server.station.db.rows(
            "SELECT confirmed_with, signature_png FROM handovers WHERE id = ?", (vtp["id"],)
        )[0]
        assert kept["confirmed_with"] == "signature"
        assert kept["signature_png"] == base64.b64decode(drawn.split(",", 1)[1])
        [manifest] = records(server, "manifest")
        assert manifest["confirmed_with"] == "signature" and manifest["count"] == 11
        manifest_printed(point, 1, r.json())
        view = courier.get(f"/api/handovers/{jt['id']}").json()
        assert view["status"] == "open" and view["counts"]["scanned"] == 1
        carriers = courier.get("/api/handovers/carriers").json()
        assert [(c["carrier"], c["waiting"], c["open_handover"]) for c in carriers] == [
            (JT, 19, jt["id"]),
        ]


def label_photo(point: Point, tracking: str) -> bytes:
    """A phone's photo of a parcel's shipping label: the label rendered as it prints, on
    a grey table, a little turned."""
    signer = PayloadSigner(SITE, point.key())
    label = render_label(
        "shipping",
        {
            "tracking_code": tracking, "courier": JT, "collection_point": SITE_NAME,
            "recipient": {"name": "Nguyễn Thị Thu Hằng", "phone": "0987654321",
                          "address": "Số 18, ngõ 25 Láng Hạ, Hà Nội"},
            "product": "Chè Shan tuyết", "net_g": 1000, "gross_g": 1080, "cod_dong": 0,
            "created_at": "2026-12-06T10:12:03+07:00",
        },
        576,
        signer=signer,
    ).convert("L")  # fmt: skip
    table = Image.new("L", (label.width + 200, label.height + 200), 150)
    table.paste(label, (100, 100))
    photo = table.rotate(4, expand=True, fillcolor=150).convert("RGB")
    out = io.BytesIO()
    photo.save(out, "PNG")
    return out.getvalue()


def test_photo_scan_reads_a_generated_label_once(point: Point) -> None:
    p = point.packed
    with point.server.client("courier") as courier:
        hid = open_handover(courier, JT)["id"]
        url = f"/api/handovers/{hid}/scans/photo"
        headers = {"Content-Type": "image/png"}
        r = courier.post(url, content=label_photo(point, p.tracking[7]), headers=headers)
        assert r.status_code == 200, r.text
        [result] = r.json()["results"]  # its QR and its Code 128: one scan
        assert (result["verdict"], result["tracking"]) == ("accepted", p.tracking[7])
        assert result["counts"]["scanned"] == 1
        r = courier.post(url, content=label_photo(point, p.tracking[7]), headers=headers)
        assert [x["verdict"] for x in r.json()["results"]] == ["duplicate"]
        blank = io.BytesIO()
        Image.new("RGB", (320, 240), (150, 150, 150)).save(blank, "PNG")
        r = courier.post(url, content=blank.getvalue(), headers=headers)
        assert error(r, 400) == "no_code"
        r = courier.post(url, content=b"not an image", headers=headers)
        assert error(r, 422) == "not_an_image"
        r = courier.post(f"/api/handovers/{hid}/scans/capture")  # the simulated camera
        assert error(r, 400) == "no_code"
        view = courier.get(f"/api/handovers/{hid}").json()
        assert view["counts"]["scanned"] == 1
