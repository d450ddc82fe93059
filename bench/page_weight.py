"""Page benchmark: how soon the staff page shows a weight once the scale settles.

``bench_page_weight()`` runs the real station (uvicorn, the reader thread, SQLite) on a
real pseudo-terminal with a "ST,GS" scale whose stability window wants three stable
frames, and the real page in headless Chromium (Debian's, as the tests use), signed in,
at 800x480, with its event stream up (GET /api/events: the weight is pushed, not polled).

Each round writes an unstable frame and two stable ones of a new weight (the page then
shows it "settling") and waits for the page to show that; then it writes the third
stable frame, the one that completes the window, noting ``time.time()`` just before.
In the page a MutationObserver on the weight element sees it become that weight and
"stable", and the next ``requestAnimationFrame`` (the frame that paints it) notes
``performance.timeOrigin + performance.now()``: both are this machine's wall clock in
milliseconds since the epoch, so the two are compared directly.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.station import bench_server, median_p95_ms
from edge.scale.protocols import SimState, get_protocol
from edge.web import events
from rigs.helpers import wait_for
from tests.browser import CHROMIUM, CHROMIUM_ARGS, open_page

ROUNDS = 50
TARGET_MS = 150

WATCH = """() => {
  const el = document.querySelector('[data-testid="weight"]');
  const b = { target: null, done: null, pending: false };
  window.__bench = b;
  new MutationObserver(() => {
    if (b.target === null || b.done !== null || b.pending) return;
    if (el.dataset.status !== "stable" || el.textContent !== b.target) return;
    b.pending = true;
    requestAnimationFrame(() => {
      b.done = performance.timeOrigin + performance.now();
      b.pending = false;
    });
  }).observe(el, { attributes: true, childList: true, subtree: true, characterData: true });
}"""

SHOWN = """([text, status]) => {
  const el = document.querySelector('[data-testid="weight"]');
  return el.textContent === text && el.dataset.status === status;
}"""


def _kg(grams: int) -> str:
    return f"{grams // 1000},{grams % 1000:03d} kg"


def bench_page_weight() -> None:
    from playwright.sync_api import sync_playwright

    encode = get_protocol("stgs").encode
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        printer = {"type": "file", "dir": str(Path(tmp_dir) / "prints")}
        with (
            bench_server(Path(tmp_dir), printer, readings=3) as (server, write),
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = open_page(browser, server, 800, 480, role="staff")
                app = server.server.config.app
                hub = wait_for(lambda: events.hub_in(app), 15, "the page's event stream")
                assert hub is not None
                wait_for(lambda: hub.streams >= 1, 15, "the page's event stream")
                page.evaluate(WATCH)
                for i in range(ROUNDS):
                    grams = 1000 + 10 * i
                    page.evaluate(
                        "(t) => { window.__bench.target = t; window.__bench.done = null; }",
                        _kg(grams),
                    )
                    write(encode(SimState(grams, stable=False)))
                    write(encode(SimState(grams)) * 2)
                    page.wait_for_function(SHOWN, arg=[_kg(grams), "settling"], timeout=5000)
                    written = time.time()
                    write(encode(SimState(grams)))
                    painted = page.wait_for_function(
                        "() => window.__bench.done", timeout=5000, polling=5
                    ).json_value()
                    samples.append(float(painted) / 1000 - written)
                assert hub.streams >= 1, "the event stream dropped: the figure would be polling's"
            finally:
                browser.close()
    median, p95 = median_p95_ms(samples)
    print(
        f"scale_stable_to_page_ms_p95: {p95:.1f}  (settled frame written to the scale port to "
        f"the weight painted in headless Chromium, {ROUNDS} rounds; target <= {TARGET_MS}; "
        f"median {median:.1f} ms)"
    )
