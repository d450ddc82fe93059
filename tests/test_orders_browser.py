"""Packing orders through the station page (issue 13) in a real headless Chromium against
the real app: on the 7-inch 800x480 screen and on a phone, in Vietnamese and English,
a signed-in lead or staff member opens an order (tapped, typed, or its slip scanned by a
keyboard-mode barcode scanner), puts the parcel on the simulated scale and packs: the
tracking number shows at once, a wrong weight is refused with what is wrong, a lead
passes one with a reason, voids a parcel and packs it again.

And the issue's test: 200 orders packed through the page with the scale simulator, every
parcel check-weighed, 5 deliberate wrong weights refused, each shipping label at a TCP
printer listener decoding (Code 128) to its parcel's tracking number, and central's ingest
(over the shipped broker configuration: mutual TLS and the ACL) holding every parcel once.
The scale settles over 0.05 s instead of its profile's 0.3 s there (quick_scale), so the
200 parcels take under a minute."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from playwright.sync_api import Browser, Page, expect

from edge.central.ingest import Ingest, TlsFiles
from edge.central.parcels import PACKED, site_parcels
from edge.central.store import open_store
from rigs.escpos_decode import decode
from rigs.helpers import Broker, Pki, StationServer, settle, station_config, wait_for
from rigs.order_records import order_line, tracking_block
from rigs.printer_listener import PrinterListener
from tests.browser import (
    by_id,
    needs_chromium,
    open_page,
    order_record,
    put_orders,
    scanner_types,
    show_tab,
)

pytestmark = needs_chromium

SITE = "test-site"
CODE128 = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.Code128)
PARCELS = (
    "SELECT p.id, p.order_id, p.tracking, p.gross_g, p.expected_g, p.tolerance_g, "
    "p.override_reason, p.voided_at FROM parcels p ORDER BY p.packed_at, p.rowid"
)


def kg(grams: int, lang: str) -> str:
    """Grams as the page shows them: "1,080 kg" in Vietnamese, "1.080 kg" in English."""
    text = f"{grams // 1000},{grams % 1000:03d} kg"
    return text if lang == "vi" else text.replace(",", ".")


def english(page: Page) -> None:
    by_id(page, "lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def scan(page: Page, code: str) -> None:
    """A keyboard-mode barcode scanner reading a slip: the code typed a few ms a key,
    then Enter, into whatever has the focus."""
    scanner_types(page, code, gap_ms=4)


def in_view(page: Page, testid: str, width: int, height: int) -> None:
    """``testid`` is on screen, whole, uncovered, the page not scrolled."""
    box = by_id(page, testid).bounding_box()
    assert box is not None, f"{testid} not shown"
    assert box["x"] >= 0 and box["y"] >= 0, f"{testid} off screen: {box}"
    assert box["x"] + box["width"] <= width, f"{testid} beyond the right edge: {box}"
    assert box["y"] + box["height"] <= height, f"{testid} below the bottom: {box}"
    assert box["height"] >= 48, f"{testid} is {box['height']} px tall"
    on_top = by_id(page, testid).evaluate(
        """(el) => { const r = el.getBoundingClientRect();
             const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
             return at !== null && (at === el || el.contains(at)); }"""
    )
    assert on_top, f"{testid} is covered or scrolled out of view"
    assert page.evaluate("document.scrollingElement.scrollTop") == 0


def stock_tea(c: Any, kilos: list[int]) -> None:
    """Lots of Chè Shan tuyết weighed in and graded A: the stock packing takes from."""
    farmer = c.post("/api/producers", json={"name": "Giàng A Páo"}).json()["id"]
    tea = c.post("/api/products", json={"name": "Chè Shan tuyết"}).json()["id"]
    for k in kilos:
        settle(c, k * 1000)
        r = c.post("/api/lots", json={"producer_id": farmer, "product_id": tea})
        assert r.status_code == 201, r.text
        g = c.post(f"/api/lots/{r.json()['id']}/grade", json={"grade": "A"})
        assert g.status_code == 200, g.text


FLOWS = [(800, 480, "vi"), (390, 844, "en")]


@pytest.mark.parametrize(
    ("width", "height", "lang"), FLOWS, ids=[f"{w}x{h}-{x}" for w, h, x in FLOWS]
)
def test_a_lead_packs_refuses_overrides_scans_voids_and_repacks(
    tmp_path: Path, browser: Browser, width: int, height: int, lang: str
) -> None:
    first, second = order_record(1), order_record(2, cod_dong=0, payment="prepaid")
    third = order_record(3, carrier="Giao Hàng Nhanh", tracking=None)
    with StationServer(station_config(tmp_path)) as server, server.client("lead") as c:
        stock_tea(c, [2])  # enough for the first two orders, not the third
        put_orders(server, first, second, third, tracking_block("Giao Hàng Nhanh", "GHN", 1, 20))
        page = open_page(browser, server, width, height, role="lead")
        if lang == "en":
            english(page)
        vi = lang == "vi"
        # the tab says it needs a look before it is opened (numbers low, stock short)
        expect(by_id(page, "tab-orders")).to_have_attribute("data-alert", "true")
        show_tab(page, "orders")

        # The pick list: 6 packs of tea to take, 2 kg in stock; the third order is short;
        # 20 numbers left for Giao Hàng Nhanh is low.
        rows = by_id(page, "order-row")
        expect(rows).to_have_count(3)
        expect(by_id(page, "picklist-summary")).to_have_text(
            "Lấy hàng: 6 gói · 3,000 kg" if vi else "To pick: 6 packs · 3.000 kg"
        )
        expect(by_id(page, "orders-short")).to_contain_text("1 đơn" if vi else "1 order")
        expect(by_id(page, "orders-short")).to_have_attribute("role", "alert")
        expect(by_id(page, "tracking-low")).to_contain_text("Giao Hàng Nhanh")
        expect(by_id(page, "tracking-low")).to_contain_text("còn 20" if vi else "20 left")
        expect(rows.nth(2).get_by_test_id("order-row-short")).to_be_visible()
        expect(rows.nth(0).get_by_test_id("order-row-short")).to_have_count(0)
        by_id(page, "picklist-summary").click()  # what to take, and the stock on hand
        pick = by_id(page, "pick-row")
        expect(pick).to_have_count(1)
        expect(pick).to_have_attribute("data-short", "true")
        expect(pick.locator("th")).to_have_text(
            "Chè Shan tuyết · Hạng A" if vi else "Chè Shan tuyết · Grade A"
        )
        expect(pick.get_by_test_id("pick-take")).to_have_text(
            f"6 gói · {kg(3000, lang)}" if vi else f"6 packs · {kg(3000, lang)}"
        )
        expect(pick.get_by_test_id("pick-stock")).to_have_text(kg(2000, lang))
        page.screenshot(path=str(tmp_path / "orders-list.png"))

        # Tap the first order: its card, the pack button in view.
        rows.nth(0).click()
        card = by_id(page, "order-card")
        expect(card).to_be_visible()
        expect(by_id(page, "order-recipient")).to_have_text("Nguyễn Thị Thu Hằng")
        expect(by_id(page, "order-id")).to_have_text(f"#{first['id']}")
        expect(by_id(page, "order-line")).to_have_text(
            "2 × Chè Shan tuyết 500g Hạng A" if vi else "2 × Chè Shan tuyết 500g Grade A"
        )
        expect(by_id(page, "order-expected")).to_have_text(
            f"Cần {kg(1080, lang)} ± 32 g" if vi else f"Expected {kg(1080, lang)} ± 32 g"
        )
        expect(by_id(page, "order-cod")).to_have_text(
            "Thu hộ (COD) 370.000 đ" if vi else "Cash on delivery 370.000 đ"
        )
        expect(by_id(page, "order-address")).to_contain_text("Phường Láng Hạ, Quận Đống Đa, Hà Nội")

        # Too light: refused with what is wrong, large, in the page's language.
        settle(c, 1000)
        pack = by_id(page, "pack-button")
        expect(pack).to_be_enabled()
        in_view(page, "pack-button", width, height)
        expect(by_id(page, "pack-hint")).to_have_attribute("data-verdict", "light")
        pack.click()
        result = by_id(page, "pack-result")
        expect(result).to_have_attribute("data-kind", "error")
        expect(result).to_have_attribute("role", "alert")
        expect(result).to_have_attribute("data-code", "weight_too_light")
        expect(result).to_contain_text("Nhẹ hơn 80 g" if vi else "Too light by 80 g")
        if not vi:
            expect(result).to_contain_text("Nhẹ hơn 80 g")  # the Vietnamese under it
        expect(by_id(page, "pack-override")).to_be_visible()  # a lead may pass it
        page.screenshot(path=str(tmp_path / "order-refused.png"))

        # The right weight: packed, its tracking number at once, the label printing.
        settle(c, 1075)
        expect(by_id(page, "pack-hint")).to_have_attribute("data-verdict", "ok")
        pack.click()
        expect(result).to_have_attribute("data-kind", "ok")
        expect(by_id(page, "pack-tracking")).to_have_text(first["tracking"])
        expect(by_id(page, "pack-gross")).to_contain_text(kg(1075, lang))
        expect(by_id(page, "pack-print")).to_have_text(
            re.compile("Đang in nhãn|Đã in nhãn" if vi else "Printing label|Label printed")
        )
        expect(by_id(page, "pack-print")).to_have_text(
            "Đã in nhãn" if vi else "Label printed", timeout=15_000
        )
        expect(by_id(page, "pack-override")).to_be_hidden()
        expect(pack).to_be_hidden()
        page.screenshot(path=str(tmp_path / "order-packed.png"))

        # The next order: too heavy; the lead packs it anyway with a reason.
        by_id(page, "order-next").click()
        expect(by_id(page, "order-id")).to_have_text(f"#{second['id']}")
        expect(by_id(page, "order-cod")).to_have_text("Đã thanh toán" if vi else "Paid")
        settle(c, 1200)
        pack.click()
        expect(result).to_have_attribute("data-code", "weight_too_heavy")
        expect(result).to_contain_text("Nặng hơn 120 g" if vi else "Too heavy by 120 g")
        by_id(page, "pack-override").click()
        by_id(page, "reason-confirm").click()  # no reason: asked for one
        expect(by_id(page, "reason-problem")).to_be_visible()
        by_id(page, "reason-input").fill("Hộp to hơn, đã kiểm đủ hàng")
        by_id(page, "reason-confirm").click()
        expect(by_id(page, "pack-tracking")).to_have_text(second["tracking"])
        expect(by_id(page, "parcel-void")).to_be_visible()

        # Back to the list; the third order's slip is scanned from anywhere on the page.
        by_id(page, "order-back").click()
        expect(rows).to_have_count(1)
        page.locator("body").click(position={"x": 5, "y": height - 5})
        scan(page, third["id"])
        expect(by_id(page, "order-id")).to_have_text(f"#{third['id']}")
        expect(by_id(page, "order-short")).to_be_visible()  # the stock cannot cover it
        settle(c, 1090)
        pack.click()
        expect(by_id(page, "pack-tracking")).to_have_text("GHN00000001")

        # Wrong goods: the lead voids the parcel, the order opens again, packed again.
        by_id(page, "parcel-void").click()
        by_id(page, "reason-input").fill("Đóng nhầm hàng")
        by_id(page, "reason-confirm").click()
        expect(result).to_contain_text(
            "Đã hủy kiện GHN00000001" if vi else "Parcel GHN00000001 voided"
        )
        expect(by_id(page, "order-status")).to_have_text("Chờ đóng gói" if vi else "To pack")
        expect(pack).to_be_visible()
        settle(c, 1070)
        pack.click()
        expect(by_id(page, "pack-tracking")).to_have_text("GHN00000002")  # never issued twice
        expect(by_id(page, "pack-print")).to_have_text(
            "Đã in nhãn" if vi else "Label printed", timeout=15_000
        )
        by_id(page, "parcel-reprint").click()
        expect(result).to_contain_text(
            "Đã gửi bản sao nhãn GHN00000002" if vi else "A copy of label GHN00000002"
        )

        # An unknown slip: said, nothing opened; typing slowly in the page is no scan.
        by_id(page, "order-back").click()
        scan(page, "NOSUCHCODE1")
        expect(by_id(page, "orders-notice")).to_be_visible()
        expect(by_id(page, "orders-notice")).to_have_attribute("role", "alert")
        expect(card).to_be_hidden()
        by_id(page, "orders-filter-packed").click()
        expect(rows).to_have_count(3)
        page.locator("body").click(position={"x": 5, "y": height - 5})
        page.keyboard.type(first["id"], delay=120)
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        expect(card).to_be_hidden()
        # the search box opens an order by its tracking number
        by_id(page, "orders-search").fill(second["tracking"])
        by_id(page, "orders-search").press("Enter")
        expect(by_id(page, "order-id")).to_have_text(f"#{second['id']}")
        expect(by_id(page, "order-status")).to_have_text("Đã đóng gói" if vi else "Packed")

        parcels = server.station.db.rows(PARCELS)
        assert [
            (p["order_id"], p["tracking"], p["gross_g"], p["voided_at"] is None) for p in parcels
        ] == [
            (first["id"], first["tracking"], 1075, True),
            (second["id"], second["tracking"], 1200, True),
            (third["id"], "GHN00000001", 1090, False),
            (third["id"], "GHN00000002", 1070, True),
        ]
        assert [p["override_reason"] for p in parcels] == [
            None, "Hộp to hơn, đã kiểm đủ hàng", None, None,
        ]  # fmt: skip
        assert page.errors == []  # type: ignore[attr-defined]


def test_staff_are_refused_without_the_lead_buttons(tmp_path: Path, browser: Browser) -> None:
    order, later = order_record(7), order_record(8)
    with StationServer(station_config(tmp_path)) as server, server.client("lead") as c:
        put_orders(server, order, later)
        page = open_page(browser, server, 800, 480, role="staff")
        english(page)
        show_tab(page, "orders")
        by_id(page, "order-row").first.click()
        settle(c, 1300)
        by_id(page, "pack-button").click()
        result = by_id(page, "pack-result")
        expect(result).to_contain_text("Too heavy by 220 g")
        expect(by_id(page, "pack-override")).to_be_hidden()  # only a lead passes a weight
        settle(c, 1080)
        by_id(page, "pack-button").click()
        expect(by_id(page, "pack-tracking")).to_have_text(order["tracking"])
        expect(by_id(page, "parcel-reprint")).to_be_visible()
        expect(by_id(page, "parcel-void")).to_be_hidden()  # only a lead voids
        # The next order is cancelled by the marketplace while open on the page: the
        # station refuses to pack it, and the card says so.
        with page.expect_response(lambda r: r.url.endswith(f"/api/orders/{later['id']}")):
            by_id(page, "order-next").click()  # opened, then fetched again: now stale
        expect(by_id(page, "order-id")).to_have_text(f"#{later['id']}")
        put_orders(server, {**later, "version": 2, "status": "cancelled"})
        settle(c, 1080)
        by_id(page, "pack-button").click()
        expect(result).to_have_attribute("data-code", "order_cancelled")
        expect(by_id(page, "order-status")).to_have_text("Cancelled")
        expect(by_id(page, "order-short")).to_have_text("The order was cancelled: do not pack it.")
        expect(by_id(page, "pack-button")).to_be_hidden()
        # the weighing column still records lots as before
        expect(by_id(page, "record-button")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]


# ---------------------------------------------------------------- 200 orders

ORDERS = 200
STOCK = [30] * 10  # kg of tea weighed in, graded A: enough for every order
WRONG = {17: 700, 58: 1500, 99: 900, 140: 1250, 181: 1010}  # order number: grams weighed
BLOCK_CARRIER = "Giao Hàng Nhanh"


def expected_g(record: dict[str, Any]) -> int:
    return sum(x["quantity"] * (x["pack_net_g"] + x["pack_tare_g"]) for x in record["lines"])


def two_lines(n: int) -> dict[str, Any]:
    """Every fourth order: 1 pack of 500 g and 1 of 1 kg (1,000 g + 60 g of packaging)."""
    big = order_line(
        sku="SHAN-1000-A",
        name="Chè Shan tuyết 1kg",
        variation=None,
        quantity=1,
        pack_net_g=1000,
        pack_tare_g=60,
    )
    line = order_line(variation=None, quantity=1)
    return {"lines": [line, big]}


def the_orders() -> list[dict[str, Any]]:
    found = []
    for n in range(ORDERS):
        changes: dict[str, Any] = {}
        if n % 4 == 3:
            changes.update(two_lines(n))
        if n % 5 == 4:
            changes.update(carrier=BLOCK_CARRIER, tracking=None)
        found.append(order_record(n, **changes))
    return found


LAST_SEQ = "SELECT max(seq) AS seq FROM outbox WHERE stream = 'records'"


def labelled(station: Any) -> int:
    rows = station.rows("SELECT count(*) AS n FROM outbox WHERE kind = 'parcel_label'")
    return int(rows[0]["n"])


def quick_scale(tmp: Path) -> Path:
    """The shipped "ST,GS" profile settling over 0.05 s instead of 0.3 s: the same
    stability rule, 200 parcels weighed without waiting a minute for the scale alone."""
    shipped = Path(__file__).parent.parent / "edge" / "defaults" / "scales" / "stgs.toml"
    text = shipped.read_text(encoding="utf-8")
    assert "settle_s = 0.3" in text
    quick = tmp / "quick-stgs.toml"
    quick.write_text(text.replace("settle_s = 0.3", "settle_s = 0.05"), encoding="utf-8")
    return quick


@pytest.mark.real_clock_only
def test_packing_200_orders_through_the_page(
    tmp_path: Path, browser: Browser, tls_broker: Broker, tls_pki: Pki
) -> None:
    """Over the shipped broker configuration (mutual TLS, the ACL) to a real ingest."""
    records = the_orders()
    by_id_ = {r["id"]: r for r in records}
    mqtt = {"enabled": True, "host": "localhost", "port": tls_broker.port,
            "tls": tls_pki.client(SITE).as_config(), "batch_max_age_s": 0.2}  # fmt: skip
    ca = tls_pki.client("central:ingest-1")
    tls = TlsFiles(ca.ca_file, ca.cert_file, ca.key_file)
    scale = {"type": "simulated", "link": str(tmp_path / "scale"), "interval_s": 0.01,
             "stale_after_s": 1.0, "profile": str(quick_scale(tmp_path))}  # fmt: skip
    with (
        PrinterListener() as printer,
        open_store(f"sqlite:///{tmp_path}/central.db") as central,
    ):
        ingest = Ingest(central, f"mqtts://127.0.0.1:{tls_broker.port}", tls=tls)
        ingest.start()
        try:
            wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions")
            printer_cfg = {"type": "network", "host": "127.0.0.1", "port": printer.port}
            cfg = station_config(tmp_path, printer=printer_cfg, scale=scale, mqtt=mqtt)
            with StationServer(cfg) as server, server.client("lead") as c:
                stock_tea(c, STOCK)
                put_orders(server, *records, tracking_block(BLOCK_CARRIER, "GHN", 1, 100))
                page = open_page(browser, server, 800, 480, role="staff")
                show_tab(page, "orders")
                expect(by_id(page, "order-row")).to_have_count(ORDERS)
                expect(by_id(page, "orders-short")).to_be_hidden()  # 300 kg of tea covers all

                started = time.monotonic()
                refused = packed = 0
                by_id(page, "order-row").first.click()
                shown_id = by_id(page, "order-id")
                pack = by_id(page, "pack-button")
                result = by_id(page, "pack-result")
                tracking = by_id(page, "pack-tracking")
                for n in range(ORDERS):
                    if n % 10 == 5:  # now and then the next slip scanned, not "next order"
                        scan(page, records[n]["tracking"] or records[n]["id"])
                    elif n > 0:
                        by_id(page, "order-next").click()
                    expect(shown_id).to_have_text(f"#{records[n]['id']}")
                    want = expected_g(records[n])
                    if n in WRONG:
                        settle(c, WRONG[n])
                        pack.click()
                        expect(result).to_have_attribute("data-kind", "error")
                        code = "weight_too_light" if WRONG[n] < want else "weight_too_heavy"
                        expect(result).to_have_attribute("data-code", code)
                        expect(result).to_contain_text(f"cần {kg(want, 'vi')} ±")
                        refused += 1
                    settle(c, want + (n % 7) - 3)  # within the tolerance
                    pack.click()
                    if records[n]["tracking"]:
                        expect(tracking).to_have_text(records[n]["tracking"])
                    else:
                        expect(tracking).to_have_text(re.compile(r"GHN\d{8}"))
                    packed += 1
                took = time.monotonic() - started
                assert (refused, packed) == (len(WRONG), ORDERS)

                parcels = server.station.db.rows(PARCELS)
                jobs = printer.wait_for_jobs(len(STOCK) + ORDERS, timeout=60)
                station = server.station.db
                # each label printed adds its own record: wait for the last of them too
                wait_for(lambda: labelled(station) == ORDERS, 30, "every label's record")
                last = station.rows(LAST_SEQ)[0]["seq"]
                wait_for(lambda: central.contiguous(SITE, "records") == last, 60, "central")
                assert page.errors == []  # type: ignore[attr-defined]
        finally:
            ingest.stop()
        at_central = central.records_of(SITE, "records", ["parcel"])
        view = site_parcels(central, SITE)

    # every order packed once, each parcel check-weighed within its tolerance
    assert sorted(p["order_id"] for p in parcels) == sorted(by_id_)
    for p in parcels:
        assert p["voided_at"] is None and p["override_reason"] is None
        assert p["expected_g"] == expected_g(by_id_[p["order_id"]])
        assert abs(p["gross_g"] - p["expected_g"]) <= p["tolerance_g"]
        record = by_id_[p["order_id"]]
        if record["tracking"]:
            assert p["tracking"] == record["tracking"]
    codes = [p["tracking"] for p in parcels]
    assert len(set(codes)) == ORDERS
    assert sorted(c for c in codes if c.startswith("GHN")) == [f"GHN{i:08d}" for i in range(1, 41)]

    # each label at the printer reads (Code 128) as its parcel's tracking number; the
    # lots' labels, printed first, carry no barcode but their QR
    assert len(jobs) == len(STOCK) + ORDERS
    read = []
    for job in jobs:
        decoded = decode(job)
        assert decoded.cuts == 1
        (image,) = decoded.images
        found = zxingcpp.read_barcodes(image.convert("L"), formats=CODE128)
        read.append([r.text for r in found])
    assert read[: len(STOCK)] == [[]] * len(STOCK)
    assert sorted(x for texts in read for x in texts) == sorted(codes)
    assert all(len(texts) == 1 for texts in read[len(STOCK) :])

    # central holds every parcel once, packed, each order's current one, its label printed
    assert sorted(r["id"] for r in at_central) == sorted(p["id"] for p in parcels)
    assert sorted(r["tracking"] for r in at_central) == sorted(codes)
    assert list(view.parcels) == [p["id"] for p in parcels]
    assert view.packed_twice() == {} and view.unknown == []
    currents = view.currents()
    assert sorted(currents) == sorted(by_id_)
    for p in parcels:
        there = currents[p["order_id"]]
        assert (there.id, there.tracking, there.gross_g, there.state) == (
            p["id"], p["tracking"], p["gross_g"], PACKED,
        )  # fmt: skip
        assert (there.labels, there.copies) == (1, 0)
    print(f"200 orders packed through the page in {took:.1f} s")
