"""Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright
(no browser download), with the flags this closed network needs, and page helpers."""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rigs import order_records
from rigs.need import need

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

    from rigs.helpers import StationServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

needs_chromium = pytest.mark.usefixtures("browser")
"""For a module of page tests: each uses the ``browser`` fixture, which applies the rule."""


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium; without Chromium or Playwright the test is skipped, or fails
    under CI=true (rigs.need)."""
    if not CHROMIUM.exists():
        need(f"Debian's chromium is not installed at {CHROMIUM} (make system-deps installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        need(f"playwright is not installed ({exc}); `make test` installs the dev extras")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


_SESSIONS: weakref.WeakKeyDictionary[Page, Any] = weakref.WeakKeyDictionary()


def scanner_types(page: Page, code: str, gap_ms: float) -> None:
    """A barcode scanner in keyboard mode: ``code``, then Enter, typed into whatever has
    the focus, a key every ``gap_ms``.

    Each key carries the time the scanner typed it, as the kernel stamps a USB key on
    arrival (Chromium's DevTools ``Input.dispatchKeyEvent`` takes that ``timestamp`` and
    the page reads it as ``event.timeStamp``): a test process held up by a loaded machine
    delivers the keys late, as a busy browser would take them from the OS's queue, but
    not with gaps that no scanner makes."""
    if page not in _SESSIONS:
        _SESSIONS[page] = page.context.new_cdp_session(page)
    cdp = _SESSIONS[page]
    start = time.time()
    for k, key in enumerate([*code, "Enter"]):
        due = start + k * gap_ms / 1000
        if (wait := due - time.time()) > 0:
            time.sleep(wait)
        typed = (
            {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}
            if key == "Enter"
            else {"key": key, "text": key}
        )
        cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "timestamp": due, **typed})
        cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "timestamp": due, **typed})


def by_id(page: Page, testid: str) -> Locator:
    return page.get_by_test_id(testid)


def wait_ready(page: Page) -> None:
    """Wait until the page has wired its controls (main.js and handover.js mark the body
    ``data-ready`` once signed in and wired): a click before that would do nothing, as a
    tap would not on a slow station, so a test clicking then would race the page."""
    from playwright.sync_api import expect

    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def show_tab(page: Page, tab: str) -> None:
    """Bring a secondary panel forward: ``lots``, ``orders`` (orders and packing),
    ``photo``, ``totals`` or ``station`` (the station's state, held labels and the
    practice scale)."""
    from playwright.sync_api import expect

    wait_ready(page)
    by_id(page, f"tab-{tab}").click()
    expect(by_id(page, f"panel-{tab}")).to_be_visible()


def choose_farmer(page: Page, search: str, name: str) -> None:
    """Choose a farmer with the page's farmer search: open it, type ``search`` (the way
    staff type: "giang my", "0987"), tap the row of ``name``."""
    from playwright.sync_api import expect

    by_id(page, "producer-select").click()
    by_id(page, "producer-search").fill(search)
    expect(by_id(page, "producer-results-heading")).to_have_text(re.compile("Kết quả|Results"))
    by_id(page, "producer-option").filter(has_text=name).first.click()
    expect(by_id(page, "producer-chosen-name")).to_have_text(name)


def set_simulated(page: Page, grams: int) -> None:
    """Put ``grams`` on the practice scale (in the station tab, brought forward)."""
    if not by_id(page, "sim-weight").is_visible():
        show_tab(page, "station")
    by_id(page, "sim-weight").fill(str(grams))
    by_id(page, "sim-set").click()


def open_page(
    browser: Browser,
    server: StationServer,
    width: int = 1024,
    height: int = 600,
    role: str | None = "lead",
    locale: str = "vi-VN",
) -> Page:
    """The station's page at ``width`` x ``height``, signed in as a person of ``role``
    (None: not signed in: the page asks for a name and PIN),
    with page errors collected on ``page.errors`` (a list of str)."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    if role is not None:
        with server.client(role) as c:
            token = c.cookies["edge_session"]
        context.add_cookies([{"name": "edge_session", "value": token, "url": server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(server.url)
    if role is not None:
        wait_ready(page)
    return page


def order_record(n: int, **changes: Any) -> dict[str, Any]:
    """The contract's order (rigs.order_records) numbered ``n``, a second apart so the list
    keeps that order, with its own tracking number unless ``tracking`` is given, and
    ``changes``: 2 packs of 500 g tea in 40 g of packaging each, 1,080 g expected
    (± 32 g, the default 3 %)."""
    return (
        order_records.order_record(
            n,
            tracking=f"JT{1000000000 + n}",
            address="Số 18, ngõ 25 phố Vũ Ngọc Phan",
            created_at=f"2026-12-06T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            lines=[order_records.order_line(variation=None)],
        )
        | changes
    )


def put_orders(server: StationServer, *records: dict[str, Any]) -> None:
    """Orders (and tracking-number blocks) reach the station as central's downlink puts
    them: each applied by its handler in one write transaction."""
    from edge.orders.apply import HANDLERS

    with server.station.db.write() as db:
        for record in records:
            HANDLERS[record["type"]](db, record)


def pack_quickly(server: StationServer, records: list[dict[str, Any]], role: str = "staff") -> None:
    """Pack the orders of ``records`` (put at the station already) as
    ``POST /api/orders/{id}/pack`` does (edge.orders.packing.Orders.pack: the check-weigh,
    the parcel's one transaction, its label queued, its record for central), each weighed
    at exactly its expected weight by a stand-in for the scale's one stable reading, so
    hundreds of parcels take seconds instead of a scale settling for each."""
    from contextlib import contextmanager
    from dataclasses import dataclass

    from edge.orders.packing import Orders
    from rigs.helpers import person_of_role

    @dataclass(frozen=True)
    class Reading:
        weight_g: int | None
        frame: str | None

    @dataclass(frozen=True)
    class Packer:
        id: str
        name: str
        role: str

    station = server.station
    name = person_of_role(station.db, role)
    (row,) = station.db.rows("SELECT id FROM people WHERE name = ?", (name,))
    packer = Packer(row["id"], name, role)
    weights: list[int] = []

    @contextmanager
    def weighing(_what: str) -> Iterator[Reading]:
        grams = weights[-1]
        yield Reading(grams, f"ST,GS,+{grams / 1000:07.3f}kg")

    live = station.orders
    orders = Orders(station.db, live.site_name, weighing, live.printed)
    for record in records:
        weights.append(
            sum(x["quantity"] * (x["pack_net_g"] + x["pack_tare_g"]) for x in record["lines"])
        )
        orders.pack(record["id"], packer)
