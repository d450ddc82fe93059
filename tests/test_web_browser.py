"""The station page in a real headless Chromium against the real app: add a farmer
and a product through the page, weigh on the simulated scale, record and print,
see the refusal for an unsteady scale, confirm a held label, and check the layout
on a phone and on the 7-inch station screen."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from edge.sync.link_setup import station_outbox
from rigs.helpers import StationServer, station_config, wait_for
from tests.browser import (
    by_id,
    choose_farmer,
    needs_chromium,
    open_page,
    set_simulated,
    show_tab,
)

FARMER = "Giàng Thị Mỷ"
PRODUCT = "Sâm Lai Châu"
ALL_LOTS = (  # whatever day they count in
    "SELECT l.net_g, p.name AS producer_name, pr.name AS product_name FROM lots l "
    "JOIN producers p ON p.id = l.producer_id JOIN products pr ON pr.id = l.product_id"
)

pytestmark = needs_chromium


def check_layout(page: Page, width: int, height: int, shot: Path) -> None:
    page.set_viewport_size({"width": width, "height": height})
    show_tab(page, "station")  # for the practice scale's buttons
    expect(by_id(page, "record-button")).to_be_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    inner_width = page.evaluate("window.innerWidth")
    assert scroll_width <= inner_width, f"horizontal scroll at {width}x{height}"
    box = by_id(page, "record-button").bounding_box()
    assert box is not None
    assert box["height"] >= 48, f"record button {box['height']} px tall at {width}x{height}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    for testid in ("producer-select", "product-select", "lang-toggle", "sim-set", "tare-button"):
        b = by_id(page, testid).bounding_box()
        assert b is not None and b["height"] >= 48, f"{testid} too small at {width}x{height}"
    page.screenshot(path=str(shot))
    page.screenshot(path=str(shot.with_name(shot.stem + "-full.png")), full_page=True)


def test_record_a_lot_through_the_page(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server:
        page = open_page(browser, server, 1024, 600)
        errors: list[str] = page.errors  # type: ignore[attr-defined]

        expect(page.locator("html")).to_have_attribute("lang", "vi")
        show_tab(page, "station")  # the practice scale is in the station's tab
        expect(by_id(page, "simulator")).to_be_visible()
        expect(by_id(page, "outbox-pending")).to_have_text("0")

        # A new farmer and a new product, both through the page's add forms.
        by_id(page, "producer-add-toggle").click()
        by_id(page, "producer-name").fill(FARMER)
        by_id(page, "producer-village").fill("Bản Hon")
        by_id(page, "producer-save").click()
        expect(by_id(page, "message")).to_contain_text(f"Đã thêm nông dân: {FARMER}")
        by_id(page, "product-add-toggle").click()
        by_id(page, "product-name").fill(PRODUCT)
        by_id(page, "product-price").fill("1200000")
        by_id(page, "product-save").click()
        expect(by_id(page, "message")).to_contain_text(f"Đã thêm sản phẩm: {PRODUCT}")
        assert [p["name"] for p in server.station.db.list_producers()] == [FARMER]
        assert [p["unit_price_dong"] for p in server.station.db.list_products()] == [1_200_000]

        # 2.5 kg on the simulated scale, shown the Vietnamese way.
        set_simulated(page, 2500)
        expect(by_id(page, "weight")).to_have_text("2,500 kg")
        expect(by_id(page, "scale-status")).to_have_attribute("data-status", "stable")
        expect(by_id(page, "scale-status")).to_have_text("Ổn định")

        record = by_id(page, "record-button")
        choose_farmer(page, "giang my", FARMER)
        by_id(page, "product-select").select_option(label=f"{PRODUCT} · 1.200.000 đ")
        expect(record).to_be_enabled()
        record.click()

        message = by_id(page, "message")
        expect(message).to_have_attribute("data-kind", "ok")
        expect(message).to_contain_text("Đã ghi lô số")
        expect(message).to_contain_text(f"2,500 kg — {FARMER}, {PRODUCT}")
        row = by_id(page, "lot-row")
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("lot-producer")).to_have_text(FARMER)
        expect(row.get_by_test_id("lot-product")).to_have_text(PRODUCT)
        expect(row.get_by_test_id("lot-weight")).to_have_text("2,500 kg")
        expect(row.get_by_test_id("lot-sync")).to_have_text("Chờ gửi")
        expect(row.get_by_test_id("lot-print")).to_have_text("Đã in", timeout=15_000)
        # the farmer, the product and the lot are records central has not confirmed yet
        expect(by_id(page, "outbox-pending")).to_have_text("3")
        expect(by_id(page, "link-status")).to_have_attribute("data-status", "disabled")

        lots = wait_for(lambda: server.station.db.rows(ALL_LOTS), 5, "the lot in the database")
        assert len(lots) == 1

        # Central acknowledges seqs this station never assigned (a replaced database or
        # a site id used twice): nothing is confirmed and staff are told to call support.
        assert station_outbox(server.station.cfg, server.station.db).confirm("records", 900) == 0
        expect(by_id(page, "link-status")).to_have_attribute("data-status", "conflict")
        expect(by_id(page, "link-status")).to_contain_text("Trùng mã điểm")
        expect(by_id(page, "outbox-pending")).to_have_text("3")
        assert lots[0]["net_g"] == 2500
        assert lots[0]["producer_name"] == FARMER
        assert lots[0]["product_name"] == PRODUCT

        # An unsteady scale: the button is off, and the station's own refusal
        # is shown if a press gets through anyway (a stale page, a double tap).
        show_tab(page, "station")  # Ghi & In brought the photo step forward
        by_id(page, "sim-unstable").click()
        expect(by_id(page, "scale-status")).to_have_attribute("data-status", "unstable")
        expect(by_id(page, "scale-status")).to_have_text("Đang dao động")
        expect(record).to_be_disabled()
        expect(by_id(page, "record-hint")).to_have_text("Chờ số cân đứng yên (ổn định).")
        page.evaluate(
            """() => {
                const b = document.querySelector('[data-testid="record-button"]');
                b.disabled = false;
                b.click();
            }"""
        )
        expect(message).to_have_attribute("data-kind", "error")
        expect(message).to_have_text("Cân chưa ổn định. Chờ số cân đứng yên rồi bấm lại.")
        assert len(server.station.db.rows(ALL_LOTS)) == 1

        by_id(page, "lang-toggle").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(by_id(page, "record-label")).to_have_text("Record & Print")
        expect(message).to_contain_text("The weight is not stable.")
        expect(message).to_contain_text("Cân chưa ổn định.")
        by_id(page, "lang-toggle").click()
        expect(by_id(page, "record-label")).to_have_text("Ghi & In")

        # Unplugged: red, no weight, no recording.
        by_id(page, "sim-unplug").click()
        expect(by_id(page, "scale-status")).to_have_attribute("data-status", "offline")
        expect(by_id(page, "scale-status")).to_have_text("Mất kết nối")
        expect(record).to_be_disabled()
        by_id(page, "sim-replug").click()
        by_id(page, "sim-stable").click()
        expect(by_id(page, "scale-status")).to_have_attribute("data-status", "stable")
        expect(record).to_be_enabled()

        # A label cut off by a power cut is held until staff say "print again".
        job_id = server.station.db.rows("SELECT id FROM print_jobs")[0]["id"]
        with server.station.db.write() as db:
            db.execute("UPDATE print_jobs SET status = 'held' WHERE id = ?", [job_id])
        held = by_id(page, "held-job")
        expect(held).to_have_count(1)
        expect(held).to_contain_text(f"{FARMER} · {PRODUCT} · 2,500 kg")
        expect(row.get_by_test_id("lot-print")).to_have_text("In gián đoạn")
        held.get_by_test_id("reprint-button").click()
        expect(message).to_have_text("Đã đưa nhãn vào hàng chờ in lại.")
        expect(held).to_have_count(0)
        expect(row.get_by_test_id("lot-print")).to_have_text("Đã in", timeout=15_000)
        audit = server.station.db.rows(
            "SELECT actor FROM audit_log WHERE action = 'print.requeued' AND record_id = ?",
            (job_id,),
        )
        assert [a["actor"] for a in audit] == ["Thử lead"]  # the person signed in on the page

        # A software tare (the simulated "ST,GS" scale has no tare command): the crate's
        # weight is subtracted and shown; no zero button (no software zero).
        tare_info = by_id(page, "tare-info")
        expect(tare_info).to_be_hidden()
        expect(by_id(page, "zero-button")).to_be_hidden()
        expect(by_id(page, "tare-clear-button")).to_be_hidden()
        set_simulated(page, 400)
        expect(by_id(page, "weight")).to_have_text("0,400 kg")
        expect(by_id(page, "scale-status")).to_have_attribute("data-status", "stable")
        by_id(page, "tare-button").click()
        # the answer takes its turn on a busy machine (two suites on two cores)
        expect(tare_info).to_have_text("Trừ bì (phần mềm): 0,400 kg", timeout=15_000)
        expect(message).to_contain_text("Đã trừ bì (phần mềm) 0,400 kg")
        expect(by_id(page, "weight")).to_have_text("0,000 kg")
        expect(page.locator(".weight-label")).to_have_text("Khối lượng tịnh")
        set_simulated(page, 2900)
        expect(by_id(page, "weight")).to_have_text("2,500 kg")
        expect(record).to_be_enabled()
        record.click()
        expect(message).to_contain_text("Đã ghi lô số")
        expect(message).to_contain_text("2,500 kg")
        [tared] = server.station.db.rows(
            "SELECT net_g, tare_g, tare_source FROM lots ORDER BY seq DESC LIMIT 1"
        )
        assert tared == {"net_g": 2500, "tare_g": 400, "tare_source": "software"}
        expect(by_id(page, "tare-clear-button")).to_be_visible()

        # Usable with a thumb on a phone and on the 7-inch station screen (tare shown).
        check_layout(page, 360, 740, tmp_path / "page-360x740.png")
        check_layout(page, 1024, 600, tmp_path / "page-1024x600.png")
        by_id(page, "tare-clear-button").click()
        expect(tare_info).to_be_hidden()
        expect(by_id(page, "weight")).to_have_text("2,900 kg")
        expect(message).to_contain_text("Đã bỏ trừ bì")
        assert errors == []
