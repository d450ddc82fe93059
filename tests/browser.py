"""Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright
(no browser download), with the flags this closed network needs, and page helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

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

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def by_id(page: Page, testid: str) -> Locator:
    return page.get_by_test_id(testid)


def set_simulated(page: Page, grams: int) -> None:
    by_id(page, "sim-weight").fill(str(grams))
    by_id(page, "sim-set").click()
