"""A lead's corrections in the real page (headless Chromium): correct a lot's farmer and
product, void a lot (struck through, "Đã hủy"), merge two farmers from the leads' card;
staff see none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from rigs.clock import MiddayClock
from rigs.helpers import StationServer, settle, station_config
from tests.browser import by_id, needs_chromium, open_page

pytestmark = needs_chromium


def _post(c: httpx.Client, path: str, body: dict[str, Any], status: int = 201) -> str:
    r = c.post(path, json=body)
    assert r.status_code == status, r.text
    return str(r.json()["id"])


def _row(page: Page, lot_id: str) -> Any:
    return page.locator(f'[data-testid="lot-row"][data-lot-id="{lot_id}"]')


def _lots_tab(page: Page) -> None:
    if by_id(page, "tab-lots").count():
        by_id(page, "tab-lots").click()


def test_a_lead_corrects_and_voids_lots_and_merges_farmers(
    tmp_path: Path, browser: Browser
) -> None:
    with (
        StationServer(station_config(tmp_path), now=MiddayClock()) as server,
        server.client(role="lead") as lead,
    ):
        a = _post(lead, "/api/producers", {"name": "Giàng Thị Mỷ", "village": "Sìn Hồ"})
        b = _post(lead, "/api/producers", {"name": "Lò Văn Páo", "village": "Nậm Tăm"})
        tea = _post(lead, "/api/products", {"name": "Chè Shan tuyết"})
        herb = _post(lead, "/api/products", {"name": "Thảo quả"})
        lots = []
        for grams in (1500, 2600):
            settle(lead, grams)
            lots.append(_post(lead, "/api/lots", {"producer_id": a, "product_id": tea}))
        me = lead.get("/api/me").json()

        staff = open_page(browser, server, 1024, 600, role="staff")
        _lots_tab(staff)
        expect(_row(staff, lots[0])).to_be_visible()
        expect(staff.get_by_test_id("lot-correct-button")).to_have_count(0)
        expect(staff.get_by_test_id("lot-void-button")).to_have_count(0)
        expect(by_id(staff, "catalog-edit")).to_have_count(0)
        staff.context.close()

        page = open_page(browser, server, 1024, 600, role="lead")
        _lots_tab(page)
        first = _row(page, lots[0])
        first.get_by_test_id("lot-correct-button").click()
        dialog = by_id(page, "correct-dialog")
        expect(dialog).to_be_visible()
        by_id(page, "correct-producer").select_option(b)
        by_id(page, "correct-product").select_option(herb)
        by_id(page, "correct-confirm").click()  # no reason: asked for one, nothing sent
        expect(by_id(page, "correct-problem")).to_have_text("Cần ghi lý do.")
        by_id(page, "correct-reason").fill("chọn nhầm người bán")
        by_id(page, "correct-confirm").click()
        expect(dialog).to_be_hidden()
        expect(by_id(page, "message")).to_contain_text("Đã sửa lô #1")
        expect(first.get_by_test_id("lot-producer")).to_have_text("Lò Văn Páo")
        expect(first.get_by_test_id("lot-product")).to_have_text("Thảo quả")

        second = _row(page, lots[1])
        second.get_by_test_id("lot-void-button").click()
        expect(by_id(page, "correct-producer")).to_be_hidden()  # voiding asks only why
        by_id(page, "correct-reason").fill("cân nhầm bao rỗng")
        by_id(page, "correct-confirm").click()
        expect(dialog).to_be_hidden()
        expect(by_id(page, "message")).to_contain_text("Đã hủy lô #2")
        expect(second).to_have_attribute("data-voided", "true")
        expect(second.get_by_test_id("lot-voided")).to_have_text("Đã hủy")
        struck = second.get_by_test_id("lot-weight").evaluate(
            "n => getComputedStyle(n).textDecorationLine"
        )
        assert struck == "line-through"
        expect(second.get_by_test_id("lot-void-button")).to_have_count(0)
        expect(first).not_to_have_attribute("data-voided", "true")

        # the leads' card: merge the first farmer into the second
        by_id(page, "tab-station").click()
        card = by_id(page, "catalog-edit")
        expect(card).to_be_visible()
        by_id(page, "merge-from").select_option(a)
        by_id(page, "merge-into").select_option(b)
        by_id(page, "merge-reason").fill("cùng một người")
        by_id(page, "merge-save").click()
        expect(by_id(page, "message")).to_contain_text("Đã gộp Giàng Thị Mỷ vào Lò Văn Páo")
        expect(by_id(page, "merge-from").locator(f'option[value="{a}"]')).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]

        assert [p["id"] for p in lead.get("/api/producers").json()] == [b]
        done = [lead.get(f"/api/lots/{x}/corrections").json() for x in lots]
        assert [h["kind"] for d in done for h in d["corrections"]] == ["correct", "void"]
        assert {h["actor_name"] for d in done for h in d["corrections"]} == {me["name"]}
        assert done[1]["lot"]["voided"] is True
        assert done[0]["lot"]["producer_id"] == b and done[0]["lot"]["product_id"] == herb
