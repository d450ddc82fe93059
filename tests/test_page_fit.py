"""The page fits the screens it is used on, in a real headless Chromium: the official
7-inch screen (800x480), the 1024x600 7-inch screens and a 390x844 phone. The weight,
the farmer and product pickers and "Ghi & In" are on screen without scrolling (the
page cannot scroll at all), none covers another, also with a long Vietnamese farmer name
chosen and with the photo step open; the secondary panels sit behind tabs. The orders
tab too: with an order open, "Đóng gói & In nhãn" is on screen beside (or under) the
weighing column, in Vietnamese and English.

And the weight is pushed: with the event stream up the page does not poll
GET /api/state, and with the stream refused it polls (and still shows the weight)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from edge.web import events
from rigs.helpers import StationServer, settle, station_config, wait_for
from tests.browser import by_id, needs_chromium, open_page, order_record, put_orders, show_tab

pytestmark = needs_chromium

SIZES = [(800, 480), (1024, 600), (390, 844)]
LONG_NAME = "Nguyễn Thị Phương Thảo Hoàng Ngọc Bích Diễm Kiều"
VILLAGE = "Bản Nậm Tăm, xã Pa Ủ, huyện Mường Tè"
PRODUCT = "Thảo quả khô loại một Mường Tè"
MAIN = ("scale-status", "weight", "producer-select", "product-select", "record-button")


def boxes_fit(page: Page, width: int, height: int, what: str) -> dict[str, Any]:
    """The weighing column's boxes (the scale's status, the weight, the pickers, the
    button), each checked inside the viewport, uncovered (the point at its centre is
    the element itself or inside it) and overlapping no other; neither the page nor the
    column scrolled."""
    doc = page.evaluate(
        """() => { const s = document.scrollingElement;
             return {top: s.scrollTop, left: s.scrollLeft, height: s.scrollHeight,
                     width: s.scrollWidth, client: s.clientHeight}; }"""
    )
    where = f"at {width}x{height} ({what})"
    assert doc["top"] == 0 and doc["left"] == 0, f"the page was scrolled {where}: {doc}"
    assert doc["height"] <= height, f"the page is taller than the screen {where}: {doc}"
    assert doc["width"] <= width, f"the page is wider than the screen {where}: {doc}"
    column = page.evaluate("document.querySelector('.col-main').scrollTop")
    assert column == 0, f"the weighing column was scrolled by {column} px {where}"
    boxes = {}
    for testid in MAIN:
        box = by_id(page, testid).bounding_box()
        assert box is not None, f"{testid} not shown {where}"
        assert box["x"] >= 0 and box["y"] >= 0, f"{testid} starts off screen {where}: {box}"
        assert box["x"] + box["width"] <= width, f"{testid} beyond the right edge {where}: {box}"
        assert box["y"] + box["height"] <= height, f"{testid} below the bottom edge {where}: {box}"
        if testid != "scale-status":  # the rest are big enough for a thumb
            assert box["height"] >= 48, f"{testid} is {box['height']} px tall {where}"
        on_top = by_id(page, testid).evaluate(
            """(el) => { const r = el.getBoundingClientRect();
                 const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                 return at !== null && (at === el || el.contains(at)); }"""
        )
        assert on_top, f"{testid} is covered or scrolled out of its column {where}"
        boxes[testid] = box
    for i, a in enumerate(MAIN):
        for b in MAIN[i + 1 :]:
            p, q = boxes[a], boxes[b]
            apart = (
                p["x"] + p["width"] <= q["x"]
                or q["x"] + q["width"] <= p["x"]
                or p["y"] + p["height"] <= q["y"]
                or q["y"] + q["height"] <= p["y"]
            )
            assert apart, f"{a} and {b} overlap {where}: {p} {q}"
    weight_cut = by_id(page, "weight").evaluate("(el) => el.scrollWidth > el.clientWidth")
    assert not weight_cut, f"the weight's digits are cut off {where}"
    return boxes


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_weighing_column_fits_without_scrolling(
    tmp_path: Path, browser: Browser, width: int, height: int
) -> None:
    with StationServer(station_config(tmp_path)) as server, server.client(role="lead") as c:
        assert c.post("/api/producers", json={"name": LONG_NAME, "village": VILLAGE}).is_success
        product = c.post("/api/products", json={"name": PRODUCT, "unit_price_dong": 250_000})
        assert product.is_success
        settle(c, 2500)
        page = open_page(browser, server, width, height, role="lead")
        expect(by_id(page, "weight")).to_have_text("2,500 kg")
        # the secondary panels are tabs; today's lots in front, the others behind
        expect(by_id(page, "panel-lots")).to_be_visible()
        for tab in ("orders", "photo", "totals", "station"):
            expect(by_id(page, f"panel-{tab}")).to_be_hidden()
            expect(by_id(page, f"tab-{tab}")).to_be_visible()
        first = boxes_fit(page, width, height, "on opening")
        # they are in reading order: weight, farmer, product, then the button
        ys = [first[t]["y"] for t in MAIN]
        assert ys == sorted(ys), f"out of order at {width}x{height}: {ys}"
        page.screenshot(path=str(tmp_path / f"fit-{width}x{height}.png"))

        # A long name chosen through the farmer search, and the product.
        by_id(page, "producer-select").click()
        by_id(page, "producer-search").fill("phuong thao")
        by_id(page, "producer-option").first.click()
        expect(by_id(page, "producer-select")).to_contain_text("Nguyễn Thị Phương Thảo")
        by_id(page, "product-select").select_option(label=f"{PRODUCT} · 250.000 đ")
        record = by_id(page, "record-button")
        expect(record).to_be_enabled()
        boxes_fit(page, width, height, "long farmer name chosen")

        # The station's tab: the practice scale is there, the weighing column stays.
        show_tab(page, "station")
        expect(by_id(page, "simulator")).to_be_visible()
        expect(by_id(page, "panel-lots")).to_be_hidden()
        boxes_fit(page, width, height, "station tab")

        # Ghi & In: the photo step opens in its tab, the weighing column stays put.
        record.click()
        expect(by_id(page, "message")).to_contain_text("Đã ghi lô số")
        expect(by_id(page, "photo-card")).to_be_visible()
        expect(by_id(page, "tab-photo")).to_have_attribute("aria-selected", "true")
        expect(by_id(page, "capture-button")).to_be_visible()
        boxes_fit(page, width, height, "photo step open")
        message = by_id(page, "message").bounding_box()
        assert message is not None and message["y"] >= 0
        assert message["y"] < height, f"the message starts off screen at {width}x{height}"
        page.screenshot(path=str(tmp_path / f"fit-{width}x{height}-photo.png"))

        # "Xong" closes the step and goes back to the tab shown before.
        by_id(page, "photo-close").click()
        expect(by_id(page, "photo-card")).to_be_hidden()
        expect(by_id(page, "panel-station")).to_be_visible()
        boxes_fit(page, width, height, "photo step closed")
        assert page.errors == []  # type: ignore[attr-defined]


def uncovered_in_view(page: Page, testid: str, width: int, height: int, where: str) -> None:
    box = by_id(page, testid).bounding_box()
    assert box is not None, f"{testid} not shown {where}"
    assert box["x"] >= 0 and box["y"] >= 0, f"{testid} starts off screen {where}: {box}"
    assert box["x"] + box["width"] <= width, f"{testid} beyond the right edge {where}: {box}"
    assert box["y"] + box["height"] <= height, f"{testid} below the bottom edge {where}: {box}"
    assert box["height"] >= 48, f"{testid} is {box['height']} px tall {where}"
    on_top = by_id(page, testid).evaluate(
        """(el) => { const r = el.getBoundingClientRect();
             const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
             return at !== null && (at === el || el.contains(at)); }"""
    )
    assert on_top, f"{testid} is covered or scrolled out of its panel {where}"
    panel = page.evaluate("document.querySelector('#panel-orders').scrollTop")
    assert panel == 0, f"the orders panel was scrolled by {panel} px {where}"


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_orders_tab_and_an_open_order_fit(
    tmp_path: Path, browser: Browser, width: int, height: int
) -> None:
    """Five tabs in the side column; an order open (a long name, three goods lines, a
    buyer's message) with its pack button in view without scrolling, in both languages."""
    long = order_record(
        1,
        recipient=LONG_NAME,
        address="Số 118, ngách 25/47 ngõ 25 phố Vũ Ngọc Phan, tổ dân phố số 12",
        buyer_message="Gọi trước khi giao, để hàng ở quán tạp hóa đầu ngõ nếu không có nhà",
    )
    line = long["lines"][0]
    long["lines"] = [
        line,
        {**line, "sku": "SHAN-1000-B", "name": "Chè Shan tuyết 1kg", "grade": "B",
         "pack_net_g": 1000, "pack_tare_g": 60},
        {**line, "sku": "QUA-200", "name": "Thảo quả khô 200g", "product": PRODUCT,
         "grade": "A", "quantity": 3, "pack_net_g": 200, "pack_tare_g": 15},
    ]  # fmt: skip
    with StationServer(station_config(tmp_path)) as server, server.client(role="lead") as c:
        put_orders(server, long, order_record(2), order_record(3))
        settle(c, 2500)
        page = open_page(browser, server, width, height, role="lead")
        expect(by_id(page, "weight")).to_have_text("2,500 kg")
        tabs = [by_id(page, f"tab-{t}") for t in ("lots", "orders", "photo", "totals", "station")]
        for tab in tabs:  # five tabs, none cut off or wrapping out of the bar
            expect(tab).to_be_visible()
            fits = tab.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
            assert fits, f"{tab} is cut off at {width}x{height}"
        show_tab(page, "orders")
        expect(by_id(page, "order-row")).to_have_count(3)
        boxes_fit(page, width, height, "orders tab")
        for lang in ("vi", "en"):
            if lang == "en":
                by_id(page, "lang-toggle").click()
                expect(by_id(page, "pack-button")).to_contain_text("Pack & print label")
            else:
                by_id(page, "order-row").first.click()
                expect(by_id(page, "pack-button")).to_contain_text("Đóng gói & In nhãn")
            where = f"at {width}x{height} ({lang}, an order open)"
            expect(by_id(page, "order-line")).to_have_count(3)
            expect(by_id(page, "pack-button")).to_be_enabled()
            boxes_fit(page, width, height, f"{lang}, an order open")
            uncovered_in_view(page, "pack-button", width, height, where)
            expected = by_id(page, "order-expected").bounding_box()
            assert expected is not None and expected["y"] + expected["height"] <= height, where
            page.screenshot(path=str(tmp_path / f"order-{width}x{height}-{lang}.png"))
        assert page.errors == []  # type: ignore[attr-defined]


def state_requests(page: Page) -> list[float]:
    """Times of the page's GET /api/state requests from now on."""
    seen: list[float] = []
    page.on(
        "request",
        lambda r: seen.append(time.monotonic()) if r.url.endswith("/api/state") else None,
    )
    return seen


def test_weight_is_pushed_not_polled(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server, server.client(role="lead") as c:
        page = open_page(browser, server, 800, 480, role="lead")
        expect(by_id(page, "record-hint")).not_to_have_text("")
        app = server.server.config.app
        hub = wait_for(lambda: events.hub_in(app), 10, "the page's event stream")
        assert hub is not None
        wait_for(lambda: hub.streams == 1, 10, "the page's event stream")
        polls = state_requests(page)
        started = time.monotonic()
        for grams in (1200, 3400, 560):
            settle(c, grams)
            shown = f"{grams // 1000},{grams % 1000:03d} kg"
            expect(by_id(page, "weight")).to_have_text(shown, timeout=2000)
        elapsed = time.monotonic() - started
        # polling every 500 ms would have asked about 2 a second
        assert len(polls) <= 1, f"{len(polls)} polls in {elapsed:.1f} s with the stream up"
        assert hub.streams == 1  # still the page's one stream


def test_page_polls_while_the_stream_is_refused(
    tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "STREAM_LIMIT", 0)  # every stream refused: 503
    with StationServer(station_config(tmp_path)) as server, server.client(role="lead") as c:
        page = open_page(browser, server, 800, 480, role="lead")
        polls = state_requests(page)
        settle(c, 1800)
        expect(by_id(page, "weight")).to_have_text("1,800 kg", timeout=3000)
        page.wait_for_timeout(1500)
        assert len(polls) >= 2, f"only {len(polls)} polls with the stream refused"
