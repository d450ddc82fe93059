"""Exports for the accountants (issue 15, part 6) on real PostgreSQL: lots, parcels and
handovers of a station-local date range as CSV (UTF-8 with a BOM, parsed with csv) and
XLSX (opened with openpyxl): the same rows, names resolved (farmer as edited, a lot's
farmer as corrected, the product's price when the lot was weighed), voided lots marked,
days as the point counts them (Asia/Ho_Chi_Minh); the range bounded; anonymous 401;
the page's form in a real browser."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from playwright.sync_api import Browser, expect

from edge.central.console.db import ConsoleDb
from rigs.console_support import ConsoleServer
from tests.browser import needs_chromium
from tests.central_support import pg_schema

pytestmark = needs_chromium

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY = datetime.now(LOCAL).date()
START, END = TODAY - timedelta(days=5), TODAY - timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> str:
    """A station-local time as the records carry it (UTC, ms, Z)."""
    t = datetime.combine(day, time(hour, minute), LOCAL).astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def uid(n: int) -> str:
    return str(uuid.UUID(int=(0x019AB3C0 << 96) | (0x7000 << 64) | (0x8 << 60) | n))


FARMER, OTHER, TEA = uid(1), uid(2), uid(3)
LOTS = {name: uid(10 + i) for i, name in enumerate(["first", "mid", "voided", "late", "early"])}
PARCEL, VOIDED_PARCEL, MANIFEST = uid(30), uid(31), uid(32)


def lot(key: str, when: str, net_g: int, day_no: int) -> dict[str, Any]:
    return {"type": "lot", "id": LOTS[key], "producer_id": FARMER, "product_id": TEA,
            "net_g": net_g, "recorded_at": when, "day_no": day_no}  # fmt: skip


def records() -> list[dict[str, Any]]:
    """Sìn Hồ's records stream, in seq order."""
    d2 = TODAY - timedelta(days=2)
    return [
        {"type": "producer", "id": FARMER, "name": "Giàng Mỷ", "phone": "0987000111",
         "village": "Bản Hồ"},
        {"type": "producer", "id": OTHER, "name": "Lò Thị Hoa", "phone": None, "village": None},
        {"type": "product", "id": TEA, "name": "Chè Shan tuyết", "unit_price_dong": 85000,
         "grading": None},
        # 00:30 on the first day: the day before in UTC, still the first day at the point
        lot("first", at(START, 0, 30), 12_500, 1),
        lot("early", at(START - timedelta(days=1), 23, 30), 1_000, 7),  # the day before
        {"type": "product_update", "id": uid(40), "product_id": TEA, "name": "Chè Shan tuyết",
         "unit_price_dong": 90000, "grading": None},
        lot("mid", at(d2, 9), 8_000, 1),
        lot("voided", at(d2, 10), 3_000, 2),
        {"type": "lot_void", "id": uid(41), "lot_id": LOTS["voided"], "reason": "cân nhầm",
         "by": "Trưởng điểm"},
        {"type": "lot_correction", "id": uid(42), "lot_id": LOTS["mid"], "producer_id": OTHER,
         "product_id": None, "by": "Trưởng điểm"},
        {"type": "grade", "id": uid(43), "lot_id": LOTS["mid"], "grade": "A"},
        {"type": "producer_update", "id": uid(44), "producer_id": FARMER,
         "name": "Giàng A Mỷ", "phone": "0987000111", "village": "Bản Hồ"},
        lot("late", at(TODAY, 8), 2_000, 1),  # today: after the range
        {"type": "parcel", "id": PARCEL, "order_id": "SO-1", "tracking": "JT0001",
         "carrier": "J&T Express", "net_g": 1000, "gross_g": 1082, "expected_g": 1080,
         "tolerance_g": 32, "override": None, "by": "Nguyễn Văn Đóng", "packed_at": at(d2, 11),
         "lots": [{"lot_id": LOTS["mid"], "net_g": 1000}],
         "lines": [{"product": "Chè Shan tuyết", "grade": "A", "quantity": 2}]},
        {"type": "parcel", "id": VOIDED_PARCEL, "order_id": "SO-2", "tracking": "JT0002",
         "carrier": "J&T Express", "net_g": 500, "gross_g": 540, "expected_g": 540,
         "tolerance_g": 16, "override": None, "by": "Nguyễn Văn Đóng", "packed_at": at(d2, 12),
         "lots": [], "lines": [{"product": "Chè Shan tuyết", "grade": None, "quantity": 1}]},
        {"type": "parcel_void", "id": uid(45), "parcel_id": VOIDED_PARCEL, "reason": "hỏng hộp",
         "by": "Trưởng điểm", "at": at(d2, 13)},
        {"type": "manifest", "id": MANIFEST, "carrier": "J&T Express", "courier": "Phạm Văn Giao",
         "courier_id": "JT-88", "by": "Trưởng điểm", "closed_at": at(d2, 16), "count": 1,
         "total_g": 1082, "cod_dong": 370000, "confirmed_with": "pin", "missing": []},
        {"type": "parcel_handover", "id": uid(46), "parcel_id": PARCEL, "manifest_id": MANIFEST,
         "tracking": "JT0001", "carrier": "J&T Express", "courier": "Phạm Văn Giao",
         "at": at(d2, 16)},
    ]  # fmt: skip


def seed(db: ConsoleDb) -> None:
    db.execute(
        "INSERT INTO points (site, name, province, updated_at) VALUES "
        "('sin-ho-01', 'Điểm Sìn Hồ', 'Lai Châu', now()), "
        "('bac-ha-02', 'Điểm Bắc Hà', 'Lào Cai', now())"
    )
    for seq, rec in enumerate(records(), start=1):
        db.execute(
            "INSERT INTO records (site, stream, seq, kind, record_id, body, received_at) "
            "VALUES ('sin-ho-01', 'records', %s, %s, %s, %s, now())",
            (seq, rec["type"], rec["id"], json.dumps({**rec, "seq": seq}, ensure_ascii=False)),
        )
    # another province's lot in the range: not in Lai Châu's file
    other = {**lot("first", at(START, 9), 4_000, 1), "id": uid(50)}
    db.execute(
        "INSERT INTO records (site, stream, seq, kind, record_id, body, received_at) "
        "VALUES ('bac-ha-02', 'records', 1, 'lot', %s, %s, now())",
        (other["id"], json.dumps(other)),
    )
    for oid, amount in (("SO-1", 370000), ("SO-2", 185000)):
        body = {"type": "order", "id": oid, "amount_dong": amount, "cod_dong": amount}
        db.execute(
            "INSERT INTO orders (id, site, status, version, body, content_hash, imported_at, "
            "updated_at) VALUES (%s, 'sin-ho-01', 'open', 1, %s, 'x', now(), now())",
            (oid, json.dumps(body)),
        )


def params(**more: str) -> dict[str, str]:
    return {"start": START.isoformat(), "end": END.isoformat(), **more}


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data[3:].decode("utf-8"))))


def read_xlsx(data: bytes) -> list[dict[str, Any]]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def test_lots_parcels_and_handovers_as_csv_and_xlsx() -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        seed(console.db)
        with console.client("viewer") as c:
            r = c.get("/exports/lots.csv", params=params(province="Lai Châu"))
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/csv")
            name = f"lots_Lai_Chau_{START.isoformat()}_{END.isoformat()}.csv"
            assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
            lots = read_csv(r.content)
            assert [x["Mã lô / Lot id"] for x in lots] == [
                LOTS["first"],
                LOTS["mid"],
                LOTS["voided"],
            ]
            first, mid, voided = lots
            assert first["Ngày / Date"] == START.isoformat()
            assert first["Giờ / Time"] == "00:30:00"
            assert first["Nông dân / Farmer"] == "Giàng A Mỷ"  # as edited
            assert first["Sản phẩm / Product"] == "Chè Shan tuyết"
            assert first["Điểm / Point"] == "Điểm Sìn Hồ"
            assert (first["Tịnh (g)"], first["Tịnh (kg)"]) == ("12500", "12.5")
            assert first["Đơn giá (đồng/kg)"] == "85000"  # the price when it was weighed
            assert first["Thành tiền (đồng)"] == "1062500"
            assert mid["Nông dân / Farmer"] == "Lò Thị Hoa"  # as corrected
            assert (mid["Hạng / Grade"], mid["Đơn giá (đồng/kg)"]) == ("A", "90000")
            assert mid["Thành tiền (đồng)"] == "720000"
            assert mid["Đã huỷ / Voided"] == ""
            assert (voided["Đã huỷ / Voided"], voided["Lý do huỷ / Void reason"]) == (
                "x",
                "cân nhầm",
            )

            x = c.get("/exports/lots.xlsx", params=params(province="Lai Châu"))
            assert x.status_code == 200
            assert x.headers["content-disposition"].endswith('.xlsx"')
            sheet = read_xlsx(x.content)
            assert [str(s["Mã lô / Lot id"]) for s in sheet] == [s["Mã lô / Lot id"] for s in lots]
            assert [s["Nông dân / Farmer"] for s in sheet] == [
                "Giàng A Mỷ",
                "Lò Thị Hoa",
                "Giàng A Mỷ",
            ]
            assert [s["Tịnh (g)"] for s in sheet] == [12500, 8000, 3000]
            assert [s["Đã huỷ / Voided"] for s in sheet] == [None, None, "x"]

            # every point: Bắc Hà's lot too; one point: only its own
            every = read_csv(c.get("/exports/lots.csv", params=params()).content)
            assert len(every) == 4 and {e["Mã điểm / Site"] for e in every} == {
                "sin-ho-01",
                "bac-ha-02",
            }
            one = read_csv(c.get("/exports/lots.csv", params=params(site="bac-ha-02")).content)
            assert [(o["Mã điểm / Site"], o["Tỉnh / Province"]) for o in one] == [
                ("bac-ha-02", "Lào Cai")
            ]

            parcels = read_csv(c.get("/exports/parcels.csv", params=params()).content)
            assert [(p["Mã vận đơn / Tracking"], p["Trạng thái / State"]) for p in parcels] == [
                ("JT0001", "handed_over"),
                ("JT0002", "voided"),
            ]
            handed, gone = parcels
            assert handed["Người giao / Courier"] == "Phạm Văn Giao"
            assert handed["Thu hộ COD (đồng)"] == "370000"
            assert handed["Cân được (kg)"] == "1.082"
            assert handed["Hàng / Goods"] == "Chè Shan tuyết A ×2"
            assert (gone["Đã huỷ / Voided"], gone["Lý do huỷ / Void reason"]) == ("x", "hỏng hộp")
            sheet = read_xlsx(c.get("/exports/parcels.xlsx", params=params()).content)
            assert [s["Mã vận đơn / Tracking"] for s in sheet] == ["JT0001", "JT0002"]
            assert [s["Thu hộ COD (đồng)"] for s in sheet] == [370000, 185000]

            handovers = read_csv(c.get("/exports/handovers.csv", params=params()).content)
            assert [(h["Biên bản / Manifest"], h["Người giao / Courier"]) for h in handovers] == [
                (MANIFEST, "Phạm Văn Giao")
            ]
            assert handovers[0]["Tổng (kg)"] == "1.082"
            assert handovers[0]["Thu hộ COD (đồng)"] == "370000"
            sheet = read_xlsx(c.get("/exports/handovers.xlsx", params=params()).content)
            assert [(s["Số kiện / Parcels"], s["Tổng (g)"]) for s in sheet] == [(1, 1082)]

            # bounds: at most 92 days, a known place, a known kind
            long = {"start": (END - timedelta(days=92)).isoformat(), "end": END.isoformat()}
            r = c.get("/exports/lots.csv", params=long)
            assert r.status_code == 400 and "92" in r.text
            assert c.get("/exports/lots.csv", params=params(site="nowhere")).status_code == 400
            assert c.get("/exports/farmers.csv", params=params()).status_code == 400
            assert c.get("/exports/lots.pdf", params=params()).status_code == 400
            backwards = {"start": END.isoformat(), "end": START.isoformat()}
            assert c.get("/exports/lots.csv", params=backwards).status_code == 400
        with console.client(None) as anon:
            for path in ("/exports/lots.csv", "/exports/parcels.xlsx", "/exports/handovers.csv"):
                r = anon.get(path, params=params())
                assert r.status_code == 401, path
            assert anon.get("/exports", headers={"accept": "text/html"}).status_code == 303


def test_the_export_form_in_a_browser(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        seed(console.db)
        context = browser.new_context(viewport={"width": 390, "height": 900}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        console.sign_in_page(page, "viewer", "/exports")
        page.get_by_test_id("exp-start").fill(START.isoformat())
        page.get_by_test_id("exp-end").fill(END.isoformat())
        page.get_by_test_id("exp-province").select_option("Lai Châu")
        page.get_by_test_id("exp-what-lots").check()
        with page.expect_download() as info:
            page.get_by_test_id("exp-go").click()
        download = info.value
        assert download.suggested_filename == (
            f"lots_Lai_Chau_{START.isoformat()}_{END.isoformat()}.csv"
        )
        with open(download.path(), "rb") as f:
            rows = read_csv(f.read())
        assert [r["Nông dân / Farmer"] for r in rows] == ["Giàng A Mỷ", "Lò Thị Hoa", "Giàng A Mỷ"]
        # a range too long is refused on the form, said in words
        page.get_by_test_id("exp-start").fill((END - timedelta(days=100)).isoformat())
        page.get_by_test_id("exp-go").click()
        expect(page.get_by_test_id("exp-error")).to_have_text(
            "Khoảng ngày dài quá 92 ngày: chia nhỏ ra."
        )
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        assert errors == []
        context.close()
