"""Admins manage the console's operators on its page: add one (checked: a short password
is refused on the form and nothing is added), disable one (their session ends at once),
never themselves; an editor may not open the page; every change is audited."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, expect

from rigs.console_support import ConsoleServer
from tests.browser import needs_chromium
from tests.central_support import pg_schema

pytestmark = needs_chromium


def test_an_admin_adds_and_disables_an_operator(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url, alerts_every_s=3600) as console:
        with console.client("editor") as editor:
            assert editor.get("/operators").status_code == 403
            new = {"username": "x", "name": "X", "role": "admin", "password": "mật-khẩu-dài-1"}
            r = editor.post("/operators", data=new)
            assert r.status_code == 403
        context = browser.new_context(viewport={"width": 390, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        console.sign_in_page(page, "admin", "/operators")
        expect(page.locator("header nav")).to_contain_text("Người vận hành")
        form = page.get_by_test_id("operator-form")
        form.locator("input[name=username]").fill("Mai.Hoa")
        form.locator("input[name=name]").fill("Trần Thị Mai Hoa")
        form.locator("select[name=role]").select_option("editor")
        form.locator("input[name=password]").fill("ngắn-quá")
        form.locator("input[name=password]").evaluate("e => e.removeAttribute('minlength')")
        form.locator("button").click()
        expect(page.get_by_test_id("ops-error")).to_contain_text("password: 10 to 200")
        assert console.db.scalar("SELECT count(*) FROM operators WHERE username = 'mai.hoa'") == 0
        form.locator("input[name=password]").fill("mật-khẩu-của-Mai-1")
        form.locator("button").click()
        expect(page.get_by_test_id("ops-message")).to_have_text("Đã thêm mai.hoa.")
        row = page.locator("[data-testid=operator-row][data-username='mai.hoa']")
        expect(row).to_contain_text("Trần Thị Mai Hoa")
        expect(row).to_contain_text("sửa danh mục")
        expect(row).to_contain_text("đang dùng")
        # the new operator signs in and reads the catalogue
        signed = httpx.post(
            f"{console.url}/signin",
            headers={"Origin": console.url},
            data={"username": "mai.hoa", "password": "mật-khẩu-của-Mai-1"},
        )
        assert signed.status_code == 303
        mai = httpx.Client(base_url=console.url, cookies=dict(signed.cookies))
        assert mai.get("/catalogue").status_code == 200
        # an admin may not disable themselves: no button on their own row
        own = page.locator("[data-testid=operator-row][data-username='test-admin']")
        expect(own.locator("button")).to_have_count(0)
        row.locator("button").click()
        expect(page.get_by_test_id("ops-message")).to_contain_text("Đã khoá mai.hoa")
        expect(row).to_contain_text("đã khoá")
        assert mai.get("/catalogue").status_code == 401  # the session ended
        mai.close()
        audit = console.db.rows("SELECT username, action, detail FROM console_audit ORDER BY id")
        assert [(a["username"], a["action"], a["detail"]) for a in audit] == [
            ("test-admin", "operator.add", {"username": "mai.hoa", "role": "editor"}),
            ("test-admin", "operator.disable", {"username": "mai.hoa"}),
        ]
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        assert errors == []
        context.close()
