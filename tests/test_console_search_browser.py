"""The search box in headless Chromium, as a keyboard-wedge scanner uses it: the box has
the focus when the page opens, the scanner types a label's QR payload and Enter, and
the parcel's chain shows (farmers, grades, the courier); a forged label is refused;
the page fits a phone."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from edge.central.console.auth import COOKIE
from edge.printer.payload import PayloadKind, ensure_site_key, sign
from rigs.console_support import ConsoleServer
from tests.browser import by_id, needs_chromium
from tests.central_support import pg_schema
from tests.test_console_search import SITE, chain, session, store

pytestmark = needs_chromium


def test_a_scanned_label_shows_the_chain(tmp_path: Path, browser: Browser) -> None:
    keys = tmp_path / "site-keys"
    key = ensure_site_key(keys / f"{SITE}.key")
    c = chain()
    n = len(c.stream.records)
    with pg_schema() as url:
        store(url, c.stream, first=(c.correction_seq, n - 2))
        with ConsoleServer(url, site_keys_dir=keys) as console:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            context.add_cookies([{"name": COOKIE, "value": session(console), "url": console.url}])
            page.goto(f"{console.url}/search")
            box = by_id(page, "search-q")
            expect(box).to_be_focused()

            payload = sign(SITE, PayloadKind.SHIPPING, c.tracking, key)
            page.keyboard.type(payload)  # the scanner: characters, then Enter
            page.keyboard.press("Enter")
            page.wait_for_url("**/search?q=*")
            expect(by_id(page, "search-signature")).to_contain_text("Chữ ký đúng")
            parcel = by_id(page, "parcel")
            expect(parcel).to_have_count(1)
            expect(by_id(page, "parcel-tracking")).to_have_text(c.tracking)
            expect(by_id(page, "parcel-state")).to_have_text("Đã bàn giao cho bưu tá")
            farmers = by_id(page, "lot-farmer")
            expect(farmers).to_have_count(3)
            expect(farmers.nth(0)).to_contain_text("Giàng Thị Mỷ")
            expect(farmers.nth(0)).to_contain_text("Bản Lác Trên")
            expect(farmers.nth(1)).to_contain_text("Nguyễn Văn Hướng")
            expect(farmers.nth(2)).to_contain_text("Nguyễn Văn Hướng")
            expect(by_id(page, "lot-corrected")).to_contain_text("Giàng Thị Mỷ")
            expect(by_id(page, "lot-grade").first).to_contain_text("Hạng A")
            expect(by_id(page, "parcel-courier")).to_have_text(["Vàng A Sủng", "Sùng Seo Dình"])
            expect(box).to_have_value(payload)
            # the page fits the phone: nothing wider than the screen but scrolled tables
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width

            # the next scan replaces the box's text (the page selects it) and is checked
            expect(box).to_be_focused()
            forged = payload[:-2] + ("AA" if not payload.endswith("AA") else "BB")
            page.keyboard.type(forged)
            page.keyboard.press("Enter")
            expect(by_id(page, "search-signature")).to_contain_text("Chữ ký sai")
            expect(by_id(page, "parcel")).to_have_count(0)

            # English, and a lot id typed by hand
            page.goto(f"{console.url}/lang/en?next=/search")
            box = by_id(page, "search-q")
            box.fill(c.lots["l1"])
            box.press("Enter")
            expect(by_id(page, "lot")).to_be_visible()
            expect(by_id(page, "lot-farmer")).to_contain_text("Giàng Thị Mỷ")
            expect(by_id(page, "lot-parcel")).to_contain_text(c.tracking)
            expect(page.get_by_text("Parcels packed from this lot")).to_be_visible()
            assert errors == []
            context.close()
