"""Choosing a farmer among many in headless Chromium against the real station: type
"huong" and pick Nguyễn Thị Hương, find one by phone digits with the keyboard only, keep
the choice across a reload (and forget one the station does not have), and the
duplicate-farmer question of the "+ thêm" form: choose the one the station has, or
create a new one anyway."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from rigs.helpers import StationServer, station_config
from tests.browser import by_id, choose_farmer, needs_chromium, open_page, set_simulated

pytestmark = needs_chromium

FARMERS = [
    ("Nguyễn Thị Hương", "0987 654 321", "Bản Lác"),
    ("Nguyễn Văn Hướng", "0912 000 111", "Mường Khoa"),
    ("Nguyễn Thị Lan", "0977 123 456", "Bản Lác"),
    ("Nguyễn Văn Dũng", None, "Sìn Hồ"),
    ("Lò Thị Xuân", "0966 222 333", "Hương Sơn"),
]


def test_search_pick_and_keep_the_farmer_across_a_reload(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server:
        with server.client(role="lead") as c:
            ids = {}
            for name, phone, village in FARMERS:
                r = c.post(
                    "/api/producers", json={"name": name, "phone": phone, "village": village}
                )
                assert r.status_code == 201, r.text
                ids[name] = r.json()["id"]
            assert c.post("/api/products", json={"name": "Chè"}).status_code == 201
        page = open_page(browser, server, 1024, 600, role="staff")
        picker = by_id(page, "producer-select")
        expect(picker).to_have_text("— Chọn nông dân —")
        expect(picker).to_have_attribute("value", "")

        # A tap opens the search with farmers listed (none has a lot yet: by name).
        picker.click()
        search = by_id(page, "producer-search")
        expect(search).to_be_focused()
        options = by_id(page, "producer-option")
        expect(options).to_have_count(len(FARMERS))
        expect(by_id(page, "producer-results-heading")).to_have_text("Nông dân gần đây")

        # "huong" without diacritics: the two whose names say it, then the village match.
        search.press_sequentially("huong")
        expect(by_id(page, "producer-results-heading")).to_have_text("Kết quả")
        expect(options).to_have_count(3)
        expect(options.nth(0)).to_contain_text("Nguyễn Thị Hương")
        expect(options.nth(0)).to_contain_text("Bản Lác · …4321")
        expect(options.nth(1)).to_contain_text("Nguyễn Văn Hướng")
        expect(options.nth(2)).to_contain_text("Lò Thị Xuân")
        box = options.nth(0).bounding_box()
        assert box is not None and box["height"] >= 44, box  # a thumb can hit it
        options.nth(0).click()
        expect(by_id(page, "producer-panel")).to_be_hidden()
        expect(picker).to_have_attribute("value", ids["Nguyễn Thị Hương"])
        expect(by_id(page, "producer-chosen-name")).to_have_text("Nguyễn Thị Hương")
        expect(by_id(page, "producer-chosen-detail")).to_have_text("Bản Lác · …4321")

        # The choice is a real one: with a product and a steady weight, Ghi & In is on.
        by_id(page, "product-select").select_option(label="Chè")
        set_simulated(page, 1500)
        expect(by_id(page, "record-button")).to_be_enabled()

        # It survives a reload, checked with the station.
        page.reload()
        expect(picker).to_have_attribute("value", ids["Nguyễn Thị Hương"])
        expect(by_id(page, "producer-chosen-name")).to_have_text("Nguyễn Thị Hương")

        # Keyboard only, by phone digits: type on the picker and press Enter at once (before
        # the answer came: the first row of the answer to what was typed is chosen).
        picker.focus()
        page.keyboard.type("0977")
        page.keyboard.press("Enter")
        expect(picker).to_have_attribute("value", ids["Nguyễn Thị Lan"])
        expect(picker).to_be_focused()
        # ↓ opens the recent farmers; ↓ ↓ Enter chooses the third
        page.keyboard.press("ArrowDown")
        expect(search).to_be_focused()
        expect(options).to_have_count(len(FARMERS))
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        third = options.nth(2)
        expect(third).to_have_attribute("aria-selected", "true")
        third_id = third.get_attribute("data-producer-id")
        page.keyboard.press("Enter")
        expect(picker).to_have_attribute("value", str(third_id))
        choose_farmer(page, "0977", "Nguyễn Thị Lan")
        # Esc closes the search and keeps the choice
        page.keyboard.press("ArrowDown")
        expect(by_id(page, "producer-panel")).to_be_visible()
        page.keyboard.type("xyz")
        expect(by_id(page, "producer-none")).to_have_text(
            "Không tìm thấy “xyz”. Thử gõ ít chữ hơn, hoặc bấm “+ thêm”."
        )
        page.keyboard.press("Escape")
        expect(by_id(page, "producer-panel")).to_be_hidden()
        expect(picker).to_have_attribute("value", ids["Nguyễn Thị Lan"])

        # A remembered farmer the station does not have is forgotten on load.
        page.evaluate(
            """() => localStorage.setItem('station.farmer',
                JSON.stringify({id: 'no-such-farmer', name: 'Ma Văn Ma', village: null}))"""
        )
        page.reload()
        expect(picker).to_have_attribute("value", "")
        expect(picker).to_have_text("— Chọn nông dân —")
        # ... once the station has answered that it does not know it (the page asks after load)
        page.wait_for_function("() => localStorage.getItem('station.farmer') === null")
        expect(picker).to_have_attribute("value", "")
        assert page.errors == []  # type: ignore[attr-defined]


def test_a_duplicate_farmer_is_asked_about(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server:
        with server.client(role="lead") as c:
            first = c.post(
                "/api/producers",
                json={"name": "Nguyễn Thị Hương", "phone": "0987 654 321", "village": "Bản Lác"},
            ).json()["id"]
        page = open_page(browser, server, 1024, 600, role="staff")

        def add(name: str, village: str) -> None:
            by_id(page, "producer-add-toggle").click()
            by_id(page, "producer-name").fill(name)
            by_id(page, "producer-village").fill(village)
            by_id(page, "producer-save").click()

        # Same name and village, typed without diacritics: the page asks.
        add("nguyen thi huong", "ban lac")
        question = by_id(page, "duplicate-question")
        expect(question).to_contain_text(
            "Đã có nông dân Nguyễn Thị Hương ở thôn Bản Lác. Vẫn tạo mới?"
        )
        pick = by_id(page, "duplicate-pick")
        expect(pick).to_have_text("Chọn người đã có: Nguyễn Thị Hương · Bản Lác · …4321")
        pick.click()
        expect(by_id(page, "producer-form")).to_be_hidden()
        expect(by_id(page, "producer-select")).to_have_attribute("value", first)
        expect(by_id(page, "message")).to_contain_text("Đã chọn nông dân: Nguyễn Thị Hương")
        assert len(server.station.db.list_producers()) == 1

        # Asked again, and this time it is another person of the same name.
        add("Nguyễn Thị Hương", "Bản Lác")
        expect(question).to_be_visible()
        by_id(page, "lang-toggle").click()  # the question in English too
        expect(question).to_contain_text("There is already a farmer Nguyễn Thị Hương of Bản Lác.")
        expect(by_id(page, "duplicate-create")).to_have_text("Create a new one anyway")
        by_id(page, "lang-toggle").click()
        by_id(page, "duplicate-create").click()
        expect(by_id(page, "message")).to_contain_text("Đã thêm nông dân: Nguyễn Thị Hương")
        expect(by_id(page, "producer-form")).to_be_hidden()
        rows = server.station.db.list_producers()
        assert len(rows) == 2
        second = next(r["id"] for r in rows if r["id"] != first)
        expect(by_id(page, "producer-select")).to_have_attribute("value", second)
        assert page.errors == []  # type: ignore[attr-defined]
