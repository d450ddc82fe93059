"""The business view over real PostgreSQL, with records stored out of order through
central's real store: kg per product, grade, point and station-local day (voided lots
left out and said, a product correction and a product's new name applied, the latest
grade counted), totals, the province and point filters, the bounded range; orders open,
packed and handed over per point; the page in a real browser."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from edge.central.console.auth import COOKIE
from edge.central.console.business import LOCAL, today_local
from edge.central.store import open_store
from rigs.console_support import ConsoleServer
from rigs.order_records import import_record
from tests.browser import by_id
from tests.central_support import pg_schema
from tests.test_console_search import Stream, session, store, viewer

CHÈ, SÂM = "Chè Shan tuyết", "Sâm Lai Châu củ"


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LOCAL)


def order_id(n: int) -> str:
    return f"5781234567890{n:05d}"


def parcel(s: Stream, n: int, lot: str, **fields: Any) -> str:
    return s.add(
        "parcel", order_id=order_id(n), tracking=f"JTVN{n:08d}", carrier="J&T Express",
        net_g=1000, gross_g=1080, expected_g=1080, tolerance_g=32, override=None,
        by="Lò Thị Lan", by_id="staff-1", packed_at="2026-12-06T10:00:00.000Z",
        lots=[{"lot_id": lot, "net_g": 1000}],
        lines=[{"product": CHÈ, "grade": "A", "quantity": 2}], **fields,
    )  # fmt: skip


def handover(s: Stream, pid: str, n: int) -> str:
    m = s.add("manifest", carrier="J&T Express", courier="Vàng A Sủng", courier_id=None,
              by="Lò Thị Lan", by_id="staff-1", closed_at="2026-12-06T11:00:00.000Z", count=1,
              total_g=1080, cod_dong=0, confirmed_with="pin", missing=0)  # fmt: skip
    s.add("parcel_handover", parcel_id=pid, manifest_id=m, tracking=f"JTVN{n:08d}",
          carrier="J&T Express", courier="Vàng A Sủng", at="2026-12-06T11:00:00.000Z")  # fmt: skip
    return m


def streams(today: date) -> tuple[Stream, Stream]:
    a = Stream("sin-ho", local(today - timedelta(days=20), 7))
    mỷ = a.add("producer", name="Giàng Thị Mỷ", phone=None, village="Bản Lác")
    chè = a.add("product", name=CHÈ, unit_price_dong=85000, grading=None)
    sâm = a.add("product", name="Sâm Lai Châu", unit_price_dong=None, grading=None)

    def lot(product: str, grams: int, day: date, minute: int, grade: str | None = None) -> str:
        lid = a.add("lot", when=local(day, 6, minute), producer_id=mỷ, product_id=product,
                    net_g=grams)  # fmt: skip
        if grade:
            a.add("grade", lot_id=lid, grade=grade, proposed_grade=grade, confidence=None,
                  method="rules", photo_id=None, overridden=False,
                  confirmed_by="Lò Văn Páo")  # fmt: skip
        return lid

    d0, d2, d10 = today, today - timedelta(days=2), today - timedelta(days=10)
    lot(chè, 5000, d10, 1, "A")
    a5 = lot(chè, 700, d2, 1, "B")
    a6 = lot(sâm, 300, d2, 5, "B")
    a1 = lot(chè, 1000, d0, 1, "B")
    a.add("grade", lot_id=a1, grade="A", proposed_grade="B", confidence=None, method="rules",
          photo_id=None, overridden=True, confirmed_by="Lò Văn Páo")  # fmt: skip
    lot(chè, 2500, d0, 2, "A")
    lot(sâm, 400, d0, 3)
    a4 = lot(chè, 9999, d0, 4, "A")
    a.add("lot_void", lot_id=a4, reason="cân nhầm", by="Trưởng điểm", by_id="lead-1")
    a.add("lot_correction", lot_id=a6, producer_id=None, product_id=chè, was_producer_id=mỷ,
          was_product_id=sâm, reason="nhầm sản phẩm", by="Trưởng điểm", by_id="lead-1")  # fmt: skip
    a.add("product_update", product_id=sâm, name=SÂM, unit_price_dong=None, grading=None,
          by="Trưởng điểm", by_id="lead-1")  # fmt: skip
    # orders: 2 packed, 3 handed over, 4 voided then repacked, 6 handed over then returned
    parcel(a, 2, a5)
    handover(a, parcel(a, 3, a5), 3)
    first = parcel(a, 4, a5)
    a.add("parcel_void", parcel_id=first, reason="đóng lại", by="Trưởng điểm",
          by_id="lead-1", at="2026-12-06T10:05:00.000Z")  # fmt: skip
    parcel(a, 4, a5)
    p6 = parcel(a, 6, a5)
    m6 = handover(a, p6, 6)
    a.add("parcel_return", parcel_id=p6, manifest_id=m6, reason="khách không nhận",
          by="Lò Thị Lan", by_id="staff-1", at="2026-12-06T12:00:00.000Z")  # fmt: skip

    b = Stream("tuan-giao", local(today - timedelta(days=5), 7))
    farmer = b.add("producer", name="Lò Văn Sủng", phone=None, village="Quài Tở")
    tea = b.add("product", name=CHÈ, unit_price_dong=80000, grading=None)
    b1 = b.add("lot", when=local(today - timedelta(days=1), 9), producer_id=farmer,
               product_id=tea, net_g=1500)  # fmt: skip
    b.add("grade", lot_id=b1, grade="A", proposed_grade=None, confidence=None, method=None,
          photo_id=None, overridden=False, confirmed_by="Lò Văn Sủng")  # fmt: skip
    return a, b


@pytest.fixture
def console() -> Iterator[tuple[ConsoleServer, date]]:
    today = today_local()
    with pg_schema() as url:
        a, b = streams(today)
        fixes = [r["seq"] for r in a.records if r["type"] in ("lot_void", "lot_correction")]
        store(url, a, b, first=tuple(fixes))  # the void and the correction stored first
        central = open_store(url)
        central.import_orders(
            [import_record(n, "sin-ho") for n in (1, 2, 3, 4, 6)]
            + [import_record(5, "sin-ho", status="cancelled"), import_record(7, "tuan-giao")]
        )
        central.close()
        with ConsoleServer(url) as server:
            for site, name, province in (
                ("sin-ho", "Điểm Sìn Hồ", "Lai Châu"),
                ("tuan-giao", "Điểm Tuần Giáo", "Điện Biên"),
            ):
                server.db.execute(
                    "INSERT INTO points VALUES (%s, %s, %s, null, now())", (site, name, province)
                )
            yield server, today


def rows(page: str, testid: str) -> list[dict[str, str]]:
    out = []
    for attrs in re.findall(rf'<tr data-testid="{testid}" ([^>]*)>', page):
        out.append({k: html.unescape(v) for k, v in re.findall(r'data-([a-z]+)="([^"]*)"', attrs)})
    return out


def sums(page: str, testid: str, *keys: str) -> dict[tuple[str, ...], int]:
    return {tuple(r[k] for k in keys): int(r["g"]) for r in rows(page, testid)}


def test_kg_per_product_grade_point_and_day(console: tuple[ConsoleServer, date]) -> None:
    server, today = console
    d0, d1, d2 = (str(today - timedelta(days=n)) for n in range(3))
    with viewer(server) as http:
        page = http.get("/business").text
        assert f"{today - timedelta(days=6)} đến {today} (7 ngày" in html.unescape(page)
        assert sums(page, "day-row", "day", "product", "grade") == {
            (d0, CHÈ, "A"): 3500,  # the re-graded lot counts for its latest grade
            (d0, SÂM, ""): 400,  # the product's new name; not graded yet
            (d1, CHÈ, "A"): 1500,
            (d2, CHÈ, "B"): 1000,  # 700 g, and the 300 g lot corrected from Sâm to Chè
        }
        assert sums(page, "point-row", "day", "site", "product", "grade") == {
            (d0, "sin-ho", CHÈ, "A"): 3500,
            (d0, "sin-ho", SÂM, ""): 400,
            (d1, "tuan-giao", CHÈ, "A"): 1500,
            (d2, "sin-ho", CHÈ, "B"): 1000,
        }
        assert sums(page, "total-row", "product", "grade") == {
            (CHÈ, "A"): 5000,
            (CHÈ, "B"): 1000,
            (SÂM, ""): 400,
        }
        assert 'data-testid="business-total">6,4 kg' in page
        assert "Không tính 1 lô đã huỷ (10,0 kg)" in html.unescape(page)
        assert "Điểm Tuần Giáo" in page

        wider = http.get("/business", params={"start": str(today - timedelta(days=10))}).text
        assert sums(wider, "total-row", "product", "grade")[(CHÈ, "A")] == 10000

        east = http.get("/business", params={"province": "Điện Biên"}).text
        assert sums(east, "total-row", "product", "grade") == {(CHÈ, "A"): 1500}
        one = http.get("/business", params={"site": "SIN-HO "}).text
        assert sum(sums(one, "total-row", "product", "grade").values()) == 4900

        for params, said in (
            ({"start": str(today - timedelta(days=100))}, "dài quá 92 ngày"),
            ({"start": "2026-13-01"}, "không đúng dạng"),
            ({"start": str(today), "end": str(today - timedelta(days=3))}, "sau ngày kết thúc"),
        ):
            r = http.get("/business", params=params)
            assert r.status_code == 200 and said in r.text, params
            assert sums(r.text, "total-row", "product", "grade")[(CHÈ, "A")] == 5000  # 7 days
        assert http.get("/business", params={"start": "x" * 11}).status_code == 422


def test_orders_open_packed_and_handed_over_per_point(console: tuple[ConsoleServer, date]) -> None:
    server, _today = console
    with viewer(server) as http:
        page = http.get("/business").text
    got = {r["site"]: r for r in rows(page, "orders-row")}
    assert {k: got["sin-ho"][k] for k in ("open", "packed", "handed", "cancelled")} == {
        "open": "1",  # order 1: no parcel
        "packed": "3",  # 2; 4 repacked after its void; 6 returned to the point
        "handed": "1",  # 3
        "cancelled": "1",  # 5
    }
    assert got["tuan-giao"]["open"] == "1" and got["tuan-giao"]["packed"] == "0"
    assert 'data-testid="orders-open-total">2<' in page


def test_the_business_page_in_a_browser(
    console: tuple[ConsoleServer, date], browser: Browser
) -> None:
    server, today = console
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    context.add_cookies([{"name": COOKIE, "value": session(server), "url": server.url}])
    page.goto(f"{server.url}/business")
    expect(by_id(page, "business-total")).to_have_text("6,4 kg")
    by_id(page, "business-province").select_option("Điện Biên")
    by_id(page, "business-show").click()
    expect(by_id(page, "business-total")).to_have_text("1,5 kg")
    expect(by_id(page, "point-row")).to_have_count(1)
    expect(by_id(page, "point-row")).to_contain_text("Điểm Tuần Giáo")
    by_id(page, "business-start").fill(str(today - timedelta(days=200)))
    by_id(page, "business-show").click()
    expect(by_id(page, "business-problem")).to_contain_text("92 ngày")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    assert errors == []
    context.close()


def test_no_lot_no_order() -> None:
    with pg_schema() as url, ConsoleServer(url) as server, viewer(server) as http:
        page = http.get("/business").text
        assert 'data-testid="business-none"' in page and 'data-testid="business-no-orders"' in page
        assert 'data-testid="business-total">0,0 kg' in page
