"""End to end (issue 15): a price changed in the console, in a real browser, reaches a real
station through a real broker and a real ``edge central ingest`` process (its downlink
sender), shows on the station's own page (a real browser on the station's page), and the
console then shows that point as having applied that catalogue version.

    console page ─> PostgreSQL (down_queue) ─> edge central ingest ─> mosquitto ─> station
    station ─> downack ─> edge central ingest ─> down_progress ─> console page
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from rigs.console_support import ConsoleServer
from rigs.helpers import Broker, StationServer, station_config, wait_for
from rigs.ingest import IngestProcess
from rigs.mqtt_probe import Probe
from tests.browser import needs_chromium, open_page
from tests.central_support import pg_schema

pytestmark = needs_chromium

SITE = "test-site"  # station_config's site id
TEA = "Chè Shan tuyết"


def test_a_price_edited_in_the_console_reaches_the_station_page(
    tmp_path: Path, browser: Browser, broker: Broker
) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        console.db.execute(
            "INSERT INTO points (site, name, province, updated_at) "
            "VALUES (%s, 'Điểm Sìn Hồ', 'Lai Châu', now())",
            (SITE,),
        )
        ingest = IngestProcess(broker.port, url, "central-e2e", "--downlink-resend-s", "2")
        ingest.start()
        try:
            mqtt = {"enabled": True, "port": broker.port, "batch_max_age_s": 0.2}
            cfg = station_config(tmp_path, mqtt=mqtt)
            with StationServer(cfg) as server, server.client("lead") as c:
                r = c.post("/api/products", json={"name": TEA, "unit_price_dong": 85000})
                assert r.status_code == 201, r.text
                station_page = open_page(browser, server)
                option = station_page.locator("[data-testid=product-select] option", has_text=TEA)
                expect(option).to_have_text(f"{TEA} · 85.000 đ")

                # the operator changes the price in the console
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                console.sign_in_page(page, "editor", "/catalogue")
                page.get_by_test_id("cat-name").fill(TEA)
                page.get_by_test_id("cat-unit_price_dong").fill("92.000")
                page.get_by_test_id("cat-save").click()
                expect(page.get_by_test_id("cat-saved")).to_have_text("Đã lưu: v1")
                point = page.locator(f"[data-testid=cat-point][data-site='{SITE}']")
                expect(point.get_by_test_id("cat-point-sent")).to_have_text("1")
                seq = console.db.scalar(
                    "SELECT seq FROM catalogue_sent WHERE site = %s AND version = 1", (SITE,)
                )

                # ingest sends it down, the station applies it and acknowledges
                def acked() -> bool:
                    upto = console.db.scalar(
                        "SELECT acked_upto FROM down_progress WHERE site = %s", (SITE,)
                    )
                    return upto is not None and int(upto) >= int(seq)

                wait_for(acked, 60, "the station to acknowledge the product record")
                (row,) = server.station.db.rows(
                    "SELECT unit_price_dong FROM products WHERE name = ?", (TEA,)
                )
                assert row["unit_price_dong"] == 92000
                station_page.reload()
                expect(option).to_have_text(f"{TEA} · 92.000 đ")
                assert station_page.errors == []  # type: ignore[attr-defined]

                # and the console shows the point as having applied version 1
                page.reload()
                expect(point.get_by_test_id("cat-point-applied")).to_have_text("1")
                expect(point.get_by_test_id("cat-point-state")).to_have_text("đã cập nhật")
                expect(page.get_by_test_id("cat-current")).to_have_text("1 điểm đã cập nhật")
                assert errors == []
        finally:
            assert ingest.stop() == 0, "".join(ingest.lines[-20:])


def test_with_a_broker_the_console_publishes_at_once(
    tmp_path: Path, browser: Browser, broker: Broker
) -> None:
    """``edge central serve --broker``: the edit goes out as ``orders import --broker``
    sends (send_pending), with no ingest running at all."""
    broker_url = f"mqtt://127.0.0.1:{broker.port}"
    with pg_schema() as url, ConsoleServer(url, broker_url=broker_url) as console:
        console.db.execute(
            "INSERT INTO points (site, name, province, updated_at) "
            "VALUES (%s, 'Điểm Sìn Hồ', 'Lai Châu', now())",
            (SITE,),
        )
        probe = Probe(broker.port, None, "e2e-probe")
        probe.connect()
        probe.subscribe(f"edge/{SITE}/downack")
        mqtt = {"enabled": True, "port": broker.port, "batch_max_age_s": 0.2}
        with StationServer(station_config(tmp_path, mqtt=mqtt)) as server:
            # the station acknowledges at connect, once subscribed to its downlink
            probe.wait_messages(1, 30)
            probe.close()
            with console.client("editor") as c:
                r = c.post("/catalogue/product", data={"name": TEA, "unit_price_dong": "64000"})
                assert r.status_code == 303, r.text

            def applied() -> bool:
                rows = server.station.db.rows(
                    "SELECT unit_price_dong FROM products WHERE name = ?", (TEA,)
                )
                return bool(rows) and rows[0]["unit_price_dong"] == 64000

            wait_for(applied, 30, "the station to apply the product the console published")
            station_page = open_page(browser, server)
            option = station_page.locator("[data-testid=product-select] option", has_text=TEA)
            expect(option).to_have_text(f"{TEA} · 64.000 đ")
            assert station_page.errors == []  # type: ignore[attr-defined]
