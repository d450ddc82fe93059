"""Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright
(no browser download), with the flags this closed network needs, and page helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rigs.need import need

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

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


def by_id(page: Page, testid: str) -> Locator:
    return page.get_by_test_id(testid)


def set_simulated(page: Page, grams: int) -> None:
    by_id(page, "sim-weight").fill(str(grams))
    by_id(page, "sim-set").click()
