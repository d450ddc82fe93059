"""Money and paper in the real page (headless Chromium): record a priced lot, print the
farmer's receipt from the message under the record button, print a copy from today's
lots with a reason, and read the day's totals."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Browser, expect

from rigs.clock import MiddayClock
from rigs.escpos_decode import decode
from rigs.helpers import StationServer, station_config, wait_for
from tests.browser import by_id, needs_chromium, open_page, set_simulated

FARMER = "Nguyễn Thị Hương"
PRODUCT = "Chè Shan tuyết"

pytestmark = needs_chromium


def test_print_a_receipt_from_the_page_and_see_the_totals(tmp_path: Path, browser: Browser) -> None:
    with (
        StationServer(station_config(tmp_path), now=MiddayClock()) as server,
        server.client(role="lead") as lead,
    ):
        assert lead.post("/api/products", json={"name": PRODUCT, "unit_price_dong": 85_000})
        page = open_page(browser, server, 1024, 600, role="staff")
        by_id(page, "producer-add-toggle").click()
        by_id(page, "producer-name").fill(FARMER)
        by_id(page, "producer-save").click()
        expect(by_id(page, "message")).to_contain_text(f"Đã thêm nông dân: {FARMER}")
        by_id(page, "product-select").select_option(label=f"{PRODUCT} · 85.000 đ")
        set_simulated(page, 2345)
        expect(by_id(page, "weight")).to_have_text("2,345 kg")
        expect(by_id(page, "scale-status")).to_have_attribute("data-status", "stable")
        by_id(page, "record-button").click()
        expect(by_id(page, "message")).to_contain_text("Đã ghi lô số 1 ")  # the daily number

        # the receipt, one press away: 2,345 kg × 85.000 đ/kg = 199.325 đ
        offer = by_id(page, "receipt-offer")
        expect(offer).to_contain_text("Lô số 1: 2,345 kg × 85.000 đ/kg = 199.325 đ")
        by_id(page, "receipt-button").click()
        expect(by_id(page, "message")).to_have_text(
            "Đã gửi phiếu thu mua lô số 1 (199.325 đ) tới máy in."
        )
        expect(offer).to_be_hidden()
        (job,) = server.station.db.rows("SELECT id, data FROM print_jobs WHERE kind = 'receipt'")
        assert json.loads(job["data"])["farmer"] == FARMER
        prints: Path = server.cfg.printer.dir  # type: ignore[union-attr]
        wait_for(lambda: (prints / f"{job['id']}.bin").exists(), 15, "the receipt printed")
        assert len(decode((prints / f"{job['id']}.bin").read_bytes()).images) == 1

        # again from today's lots: only with a reason, and as a copy
        if by_id(page, "tab-lots").count():
            by_id(page, "tab-lots").click()
        row = by_id(page, "lot-row")
        expect(row).to_contain_text("#1")
        again = row.get_by_test_id("lot-receipt-button")
        expect(again).to_have_text("In lại phiếu")
        wait_for(
            lambda: (
                server.station.db.rows("SELECT status FROM print_jobs WHERE id = ?", (job["id"],))[
                    0
                ]["status"]
                == "printed"
            ),
            10,
            "the first receipt printed",
        )
        again.click()
        dialog = by_id(page, "reprint-dialog")
        expect(dialog).to_be_visible()
        by_id(page, "reprint-confirm").click()  # no reason chosen: asked for one
        expect(dialog.locator(".reprint-problem")).to_be_visible()
        by_id(page, "reason_wet").check()
        by_id(page, "reprint-confirm").click()
        expect(dialog).to_be_hidden()
        expect(by_id(page, "message")).to_have_text("Đã gửi bản sao phiếu lô số 1 tới máy in.")
        copies = server.station.db.rows(
            "SELECT a.actor, a.detail FROM audit_log a WHERE a.action = 'print.copied'"
        )
        assert [json.loads(c["detail"])["reason"] for c in copies] == ["Nhãn bị ướt, mờ"]

        # the day's totals
        if by_id(page, "tab-totals").count():
            by_id(page, "tab-totals").click()
        totals = by_id(page, "totals-card")
        expect(totals).to_be_visible()
        expect(by_id(page, "totals-sum")).to_have_text("1 lô · 2,345 kg · 199.325 đ")
        farmers = by_id(page, "totals-farmers")
        expect(farmers).to_contain_text(FARMER)
        expect(farmers).to_contain_text("199.325 đ")
        expect(by_id(page, "totals-products")).to_contain_text(PRODUCT)
        by_id(page, "totals-print").click()
        expect(by_id(page, "message")).to_contain_text("Đã gửi bản tổng kết ngày")
        assert (
            server.station.db.rows(
                "SELECT count(*) AS n FROM print_jobs WHERE kind = ?", ("day_summary",)
            )[0]["n"]
            == 1
        )
        assert page.errors == []  # type: ignore[attr-defined]
