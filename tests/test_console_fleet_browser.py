"""The fleet page and a point's page in a real browser, over a seeded fleet of 5,000
points with 30 days of telemetry: on a phone (390 px wide) the page does not scroll
sideways (the table scrolls inside its frame), the filters work from the form, a point's
link opens its page with its name in Vietnamese and its three charts; on a laptop the
point with a critical alert comes first.

The history is one telemetry record a day here (150,000 records, a few seconds to seed)
rather than the stations' hourly default: the page tests look at the layout, and
tests/test_console_fleet.py checks the charts' content (every 6 hours) and the
benchmark times the full hourly history.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from edge.central.console.auth import COOKIE
from edge.central.console.operators import sign_in
from rigs.console_support import PASSWORD, ConsoleServer
from rigs.fleet_seed import NO_ALERT_RULES, is_kind, point_name, province_of, seed_fleet, site_of
from rigs.helpers import wait_for
from tests.browser import by_id, needs_chromium
from tests.central_support import pg_schema

pytestmark = needs_chromium
CONFLICT = '[["epoch_conflict", {"streams": 1}]]'  # as edge.central.alerts stores it


def new_page(browser: Browser, console: ConsoleServer, width: int, path: str) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 844}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    # a session made without the form (its 10 a minute per address are shared by every
    # console this test process runs; the form has its own browser test)
    token = sign_in(console.db, console.operator("viewer"), PASSWORD)
    context.add_cookies([{"name": COOKIE, "value": token, "url": console.url}])
    page.goto(f"{console.url}{path}")
    return page


def fits(page: Any) -> bool:
    """The body does not scroll sideways."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    inner: int = page.evaluate("window.innerWidth")
    return width <= inner


def test_fleet_and_point_pages_on_a_phone_and_a_laptop(browser: Browser, tmp_path: Path) -> None:
    rules = tmp_path / "no-rules.toml"
    rules.write_text(NO_ALERT_RULES, encoding="utf-8")
    with pg_schema() as url:
        seed = seed_fleet(url, 5000, 30, 24)
        assert seed.records > 140_000
        with ConsoleServer(url, alerts_file=rules, alerts_every_s=3600) as console:
            wait_for(lambda: console.app.state.alerts.runs >= 1, 30, "the first alert run")
            alerting = site_of(4001)
            assert not any(is_kind(4001, k) for k in ("offline", "never_heard"))
            console.db.execute(
                "INSERT INTO alerts (site, rule, severity, started_at, detail) "
                "VALUES (%s, 'conflict', 'critical', %s, %s)",
                (alerting, datetime.now(UTC) - timedelta(hours=1), CONFLICT),
            )

            phone = new_page(browser, console, 390, "/fleet")
            expect(by_id(phone, "count-points")).to_contain_text("5.000")
            expect(by_id(phone, "fleet-row")).to_have_count(100)
            assert fits(phone)
            wrap = phone.locator(".table-wrap")
            assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # scrolls inside

            # the filters, from the form: a province and the offline points in it
            province = province_of(7)  # point 7 is offline
            phone.select_option("[data-testid=filter-province]", province)
            phone.select_option("[data-testid=filter-state]", "offline")
            by_id(phone, "filter-apply").click()
            expect(phone).to_have_url(re.compile(r"/fleet\?province=[^&]+&state=offline"))
            wanted = [
                site_of(i)
                for i in range(5000)
                if province_of(i) == province and is_kind(i, "offline")
            ]
            rows = by_id(phone, "fleet-row")
            expect(rows).to_have_count(len(wanted))
            assert rows.evaluate_all("rs => rs.map(r => r.dataset.site)") == wanted
            expect(by_id(phone, "filter-province")).to_have_value(province)
            expect(rows.first.get_by_test_id("state")).to_contain_text("Mất kết nối")
            assert fits(phone)

            # a point's page: its name with diacritics, its place, three charts, no
            # sideways scrolling
            rows.first.get_by_test_id("point-link").click()
            expect(phone).to_have_url(f"{console.url}/points/{site_of(7)}")
            expect(by_id(phone, "point-name")).to_have_text(point_name(7))
            expect(by_id(phone, "point-place")).to_contain_text(province)
            for chart in ("backlog", "link", "faults"):
                svg = phone.locator(f"svg[data-chart={chart}]")
                expect(svg).to_be_visible()
                box = svg.bounding_box()
                assert box is not None and box["width"] <= 390
            assert fits(phone)
            phone.get_by_test_id("lang-switch").click()
            expect(phone.locator("figcaption").first).to_have_text("Backlog per stream")
            assert phone.errors == []

            # a laptop: the point with the critical alert first, marked, its alert named
            laptop = new_page(browser, console, 1280, "/fleet")
            first = by_id(laptop, "fleet-row").first
            expect(first).to_have_attribute("data-site", alerting)
            expect(first).to_have_class("attention")
            expect(first.get_by_test_id("alert")).to_have_attribute("data-severity", "critical")
            expect(by_id(laptop, "count-alerting")).to_contain_text("1")
            assert fits(laptop)
            assert laptop.errors == []
