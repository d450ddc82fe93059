"""The console in a real browser: an anonymous visit lands on the sign-in form, a wrong
password is said on the form, the right one leads back to the page asked for, the
language switch turns the page English and back, and signing out ends the session."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from rigs.console_support import PASSWORD, ConsoleServer
from tests.browser import needs_chromium
from tests.central_support import pg_schema

pytestmark = needs_chromium


def test_sign_in_language_and_sign_out(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        username = console.operator("editor")
        context = browser.new_context(viewport={"width": 390, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{console.url}/fleet?province=L%C3%A0o%20Cai")
        expect(page).to_have_url(
            f"{console.url}/signin?next=%2Ffleet%3Fprovince%3DL%25C3%25A0o%2520Cai"
        )
        expect(page.locator("h1")).to_have_text("Đăng nhập")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "không-phải-mật-khẩu")
        page.click("form.signin button")
        expect(page.get_by_test_id("signin-error")).to_have_text("wrong username or password")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.signin button")
        expect(page).to_have_url(f"{console.url}/fleet?province=L%C3%A0o%20Cai")
        expect(page.get_by_test_id("operator")).to_have_text("Người thử (editor) (editor)")
        expect(page.locator("header nav")).to_contain_text("Cảnh báo")
        page.get_by_test_id("lang-switch").click()
        expect(page).to_have_url(f"{console.url}/fleet?province=L%C3%A0o%20Cai")
        expect(page.locator("header nav")).to_contain_text("Alerts")
        expect(page.get_by_test_id("lang-switch")).to_have_text("Tiếng Việt")
        page.get_by_test_id("lang-switch").click()
        expect(page.locator("header nav")).to_contain_text("Cảnh báo")
        # the header fits a phone: nothing wider than the viewport
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        page.get_by_role("button", name="Đăng xuất").click()
        expect(page).to_have_url(f"{console.url}/signin")
        page.goto(f"{console.url}/fleet")
        expect(page).to_have_url(f"{console.url}/signin?next=%2Ffleet")
        assert errors == []
        context.close()
