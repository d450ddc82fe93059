"""The /alerts page in headless Chromium against a real console over PostgreSQL: open
alerts first (critical first) with the point's name, province, rule in words, since
when and the detail, then those ended in the last 7 days with started and ended times
(older ones not shown), in Vietnamese and English, the filters by province and rule,
the point's link, and a phone's width."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from edge.central.alerts import Firing
from edge.central.console.auth import COOKIE
from edge.central.console.operators import sign_in
from rigs.console_support import PASSWORD, ConsoleServer
from rigs.helpers import wait_for
from tests.browser import by_id, needs_chromium
from tests.central_support import pg_schema

pytestmark = needs_chromium

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def local(at: datetime) -> str:
    return at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def add_alert(
    console: ConsoleServer,
    site: str,
    rule: str,
    severity: str,
    firing: Firing,
    started: datetime,
    ended: datetime | None = None,
) -> None:
    console.db.execute(
        "INSERT INTO alerts (site, rule, severity, started_at, ended_at, detail, value) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (site, rule, severity, started, ended, firing.detail_json(), firing.value),
    )


def new_page(browser: Browser, console: ConsoleServer, width: int, height: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    # a session made without the sign-in form, whose limit of 10 a minute per address
    # is shared by every console the test process runs (the form has its own tests)
    token = sign_in(console.db, console.operator("viewer"), PASSWORD)
    context.add_cookies([{"name": COOKIE, "value": token, "url": console.url}])
    page.goto(f"{console.url}/alerts")
    return page


def open_row(page: Page, site: str, rule: str) -> Any:
    return page.locator(f'[data-testid=alert-open][data-site="{site}"][data-rule="{rule}"]')


def test_the_alerts_page_shows_open_and_ended_alerts_in_both_languages(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url, alerts_every_s=3600) as console:
        wait_for(lambda: console.app.state.alerts.runs >= 1, 20, "the first evaluation")
        now = datetime.now(UTC).replace(microsecond=0)
        console.db.execute(
            "INSERT INTO points (site, name, province, updated_at) VALUES "
            "('sin-ho-01', 'Điểm thu mua Sìn Hồ', 'Lai Châu', now()), "
            "('muong-la-03', 'Điểm Mường La', 'Sơn La', now())"
        )
        disk = Firing(
            "warning",
            (("disk_free", {"free_mb": 300, "total_mb": 30000, "percent": 1.0}),),
            300.0,
        )
        silent = Firing("critical", (("silent", {"hours": 8.0, "backlog": 1250}),), 8.0)
        paper = Firing("warning", (("paper_out", {}),))
        conflict = Firing("critical", (("foreign_epoch", {}),), 0.0)
        disk_since = now - timedelta(hours=2, minutes=15)
        silent_since = now - timedelta(hours=8)
        paper_since = now - timedelta(days=3)
        paper_end = paper_since + timedelta(minutes=40)
        add_alert(console, "sin-ho-01", "disk_low", "warning", disk, disk_since)
        add_alert(console, "muong-la-03", "silent", "critical", silent, silent_since)
        add_alert(console, "sin-ho-01", "paper_out", "warning", paper, paper_since, paper_end)
        old = now - timedelta(days=10)
        add_alert(console, "sin-ho-01", "conflict", "critical", conflict, old, old)

        page = new_page(browser, console, 1024, 700)
        expect(page.locator("h1")).to_have_text("Cảnh báo")
        rows = by_id(page, "alert-open")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-rule", "silent")  # critical first
        expect(by_id(page, "alerts-open-count")).to_have_text("(2)")
        row = open_row(page, "sin-ho-01", "disk_low")
        expect(row.get_by_test_id("alert-severity")).to_have_text("Cảnh báo")
        expect(row.get_by_test_id("alert-rule")).to_have_text("Sắp hết dung lượng đĩa")
        expect(row.get_by_test_id("alert-started")).to_have_text(local(disk_since))
        expect(row).to_contain_text("2 giờ 15 phút")
        expect(row).to_contain_text("Lai Châu")
        expect(row.get_by_test_id("alert-detail")).to_have_text(
            "Còn trống 300 MB / 30.000 MB (1,0 %)"
        )
        link = row.get_by_test_id("alert-point")
        expect(link).to_have_text("Điểm thu mua Sìn Hồ")
        expect(link).to_have_attribute("href", "/points/sin-ho-01")
        critical = open_row(page, "muong-la-03", "silent")
        expect(critical.get_by_test_id("alert-severity")).to_have_text("Nghiêm trọng")
        expect(critical.get_by_test_id("alert-detail")).to_have_text(
            "Không liên lạc 8,0 giờ, còn 1.250 bản ghi chờ gửi"
        )
        ended = by_id(page, "alert-ended")
        expect(ended).to_have_count(1)  # the conflict ended 10 days ago is not shown
        expect(ended).to_have_attribute("data-rule", "paper_out")
        expect(ended.get_by_test_id("alert-started")).to_have_text(local(paper_since))
        expect(ended.get_by_test_id("alert-ended-at")).to_have_text(local(paper_end))
        expect(ended).to_contain_text("Máy in hết giấy")
        expect(ended).to_contain_text("Kéo dài: 40 phút")

        by_id(page, "lang-switch").click()
        expect(page.locator("h1")).to_have_text("Alerts")
        row = open_row(page, "sin-ho-01", "disk_low")
        expect(row.get_by_test_id("alert-rule")).to_have_text("Disk low")
        expect(row.get_by_test_id("alert-detail")).to_have_text("300 MB free of 30,000 MB (1.0 %)")
        expect(row).to_contain_text("2 h 15 min")
        expect(row.get_by_test_id("alert-started")).to_have_text(local(disk_since))
        expect(ended.get_by_test_id("alert-ended-at")).to_have_text(local(paper_end))
        expect(ended).to_contain_text("Printer out of paper")
        expect(page.get_by_text("Ended (last 7 days)")).to_be_visible()

        by_id(page, "alerts-province").select_option("Sơn La")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-site", "muong-la-03")
        expect(by_id(page, "alerts-none-ended")).to_have_text("No ended alert.")
        by_id(page, "alerts-province").select_option("")
        by_id(page, "alerts-rule").select_option("paper_out")
        page.get_by_role("button", name="Filter").click()
        expect(by_id(page, "alerts-none-open")).to_have_text("No open alert.")
        expect(ended).to_have_count(1)
        assert page.errors == []

        phone = new_page(browser, console, 390, 844)
        expect(by_id(phone, "alert-open")).to_have_count(2)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        assert phone.errors == []
