"""The console's catalogue (issue 15, part 5) on real PostgreSQL and in a real browser:
a price edited through the page makes a catalogue version and queues one ``product``
record per point (points ∪ sites) with the record's body; a second edit a second version;
a bad price is refused next to its field with nothing stored or queued; each point's
applied version follows its downlink acks; the SKU mapping is edited, uploaded (the
import's checks) and used by ``edge central orders import`` without ``--mapping``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from edge.central.console.db import ConsoleDb
from edge.central.store import open_store
from rigs.console_support import ConsoleServer
from tests.browser import needs_chromium
from tests.central_support import pg_schema

pytestmark = needs_chromium

POINTS = [("sin-ho-01", "Điểm Sìn Hồ", "Lai Châu"), ("bac-ha-02", "Điểm Bắc Hà", "Lào Cai")]
ONLY_SEEN = "muong-te-03"  # a site central heard from that is not in the points table


def seed(db: ConsoleDb) -> None:
    for site, name, province in POINTS:
        db.execute(
            "INSERT INTO points (site, name, province, updated_at) VALUES (%s, %s, %s, now())",
            (site, name, province),
        )
    db.execute("INSERT INTO sites (site, last_seen) VALUES (%s, now())", (ONLY_SEEN,))


def queued(db: ConsoleDb) -> list[dict[str, Any]]:
    return db.rows("SELECT site, seq, kind, record_id, body FROM down_queue ORDER BY site, seq")


def open_catalogue(browser: Browser, console: ConsoleServer, role: str = "editor") -> Page:
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    console.sign_in_page(page, role, "/catalogue")
    return page


def edit(page: Page, name: str, price: str, grading: str = "", tolerance: str = "") -> None:
    page.get_by_test_id("cat-name").fill(name)
    page.get_by_test_id("cat-unit_price_dong").fill(price)
    page.get_by_test_id("cat-grading").fill(grading)
    page.get_by_test_id("cat-pack_tolerance_g").fill(tolerance)
    page.get_by_test_id("cat-save").click()


def test_price_edits_make_versions_and_queue_one_record_per_point(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        seed(console.db)
        page = open_catalogue(browser, console)
        expect(page.get_by_test_id("cat-latest")).to_have_text("Phiên bản mới nhất: 0")

        edit(page, "Chè Shan tuyết", "85.000", "banana", "30")
        expect(page.get_by_test_id("cat-saved")).to_have_text("Đã lưu: v1")
        row = page.locator("[data-testid=cat-product][data-name='Chè Shan tuyết']")
        expect(row.get_by_test_id("cat-price")).to_have_text("85.000 ₫")
        expect(row.get_by_test_id("cat-version")).to_have_text("1")
        sites = sorted([p[0] for p in POINTS] + [ONLY_SEEN])
        rows = queued(console.db)
        assert [(r["site"], r["seq"], r["kind"]) for r in rows] == [
            (s, 1, "product") for s in sites
        ]
        body = {
            "type": "product",
            "name": "Chè Shan tuyết",
            "unit_price_dong": 85000,
            "grading": "banana",
            "pack_tolerance_g": 30,
        }
        assert all(r["body"] == body and r["record_id"] == "Chè Shan tuyết" for r in rows)
        sent = console.db.rows("SELECT site, version, seq FROM catalogue_sent ORDER BY site")
        assert [(r["site"], r["version"], r["seq"]) for r in sent] == [(s, 1, 1) for s in sites]
        (version,) = console.db.rows("SELECT version, username, change FROM catalogue_versions")
        assert version["username"] == "test-editor"
        assert version["change"]["was"] is None
        assert version["change"]["now"]["unit_price_dong"] == 85000

        # a second edit through the row's edit link: the form comes filled in
        row.get_by_test_id("cat-edit").click()
        expect(page.get_by_test_id("cat-unit_price_dong")).to_have_value("85000")
        expect(page.get_by_test_id("cat-grading")).to_have_value("banana")
        page.get_by_test_id("cat-unit_price_dong").fill("92000")
        page.get_by_test_id("cat-save").click()
        expect(page.get_by_test_id("cat-saved")).to_have_text("Đã lưu: v2")
        expect(row.get_by_test_id("cat-price")).to_have_text("92.000 ₫")
        expect(row.get_by_test_id("cat-version")).to_have_text("2")
        rows = queued(console.db)
        second = [r for r in rows if r["seq"] == 2]
        assert [r["site"] for r in second] == sites
        assert all(r["body"] == {**body, "unit_price_dong": 92000} for r in second)
        versions = console.db.rows("SELECT version, change FROM catalogue_versions ORDER BY 1")
        assert [v["version"] for v in versions] == [1, 2]
        assert versions[1]["change"]["was"]["unit_price_dong"] == 85000
        audit = console.db.rows("SELECT username, action, detail FROM console_audit ORDER BY id")
        assert [(a["action"], a["detail"]["version"]) for a in audit] == [
            ("catalogue.product", 1),
            ("catalogue.product", 2),
        ]
        expect(page.get_by_test_id("cat-history")).to_contain_text("85.000 ₫ → 92.000 ₫")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        assert page.errors == []  # type: ignore[attr-defined]


def test_a_bad_price_is_refused_with_the_reason_and_nothing_queued(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        seed(console.db)
        page = open_catalogue(browser, console)
        for price in ("-5", "12,5 kg", "2000000000"):
            edit(page, "Chè Shan tuyết", price)
            expect(page.get_by_test_id("cat-refused")).to_be_visible()
            expect(page.get_by_test_id("cat-error-unit_price_dong")).to_have_text(
                "Đơn giá là số nguyên đồng từ 0 đến 1.000.000.000."
            )
            expect(page.get_by_test_id("cat-unit_price_dong")).to_have_value(price)
        edit(page, "  --  ", "1000")
        expect(page.get_by_test_id("cat-error-name")).to_be_visible()
        for table in ("down_queue", "catalogue_versions", "catalogue_products", "catalogue_sent"):
            assert console.db.scalar(f"SELECT count(*) FROM {table}") == 0, table
        assert console.db.scalar("SELECT count(*) FROM console_audit") == 0
        # the same refusal without the page, and a viewer may not edit at all
        with console.client("editor") as c:
            r = c.post("/catalogue/product", data={"name": "Chè", "unit_price_dong": "-1"})
            assert r.status_code == 400 and "Đơn giá là số nguyên đồng" in r.text
        with console.client("viewer") as c:
            r = c.post("/catalogue/product", data={"name": "Chè", "unit_price_dong": "1000"})
            assert r.status_code == 403
            assert c.get("/catalogue").status_code == 200
        with console.client(None) as c:
            assert c.post("/catalogue/product", data={"name": "Chè"}).status_code == 401
        assert console.db.scalar("SELECT count(*) FROM down_queue") == 0
        assert page.errors == []  # type: ignore[attr-defined]


def test_the_applied_version_follows_the_points_acks(browser: Browser) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        seed(console.db)
        with console.client("editor") as c:
            for price in ("85000", "90000"):
                r = c.post("/catalogue/product", data={"name": "Chè", "unit_price_dong": price})
                assert r.status_code == 303, r.text
        page = open_catalogue(browser, console, role="viewer")
        expect(page.get_by_test_id("cat-form")).to_have_count(0)  # a viewer only looks

        def point(site: str) -> tuple[str, str, str]:
            row = page.locator(f"[data-testid=cat-point][data-site='{site}']")
            return (
                row.get_by_test_id("cat-point-sent").inner_text(),
                row.get_by_test_id("cat-point-applied").inner_text(),
                row.get_by_test_id("cat-point-state").inner_text(),
            )

        assert point("sin-ho-01") == ("2", "–", "đang chờ")
        expect(page.get_by_test_id("cat-waiting")).to_have_text("3 điểm đang chờ")
        with open_store(url) as store:
            store.note_down_ack("sin-ho-01", 1)
            store.note_down_ack("bac-ha-02", 2)
        page.reload()
        assert point("sin-ho-01") == ("2", "1", "đang chờ")
        assert point("bac-ha-02") == ("2", "2", "đã cập nhật")
        assert point(ONLY_SEEN) == ("2", "–", "đang chờ")
        expect(page.get_by_test_id("cat-current")).to_have_text("1 điểm đã cập nhật")
        expect(page.get_by_test_id("cat-waiting")).to_have_text("2 điểm đang chờ")
        with open_store(url) as store:
            store.note_down_ack("sin-ho-01", 2)
        page.reload()
        assert point("sin-ho-01") == ("2", "2", "đã cập nhật")
        assert page.errors == []  # type: ignore[attr-defined]


MAPPING = (
    "seller_sku,product,grade,pack_net_g,pack_tare_g,site\n"
    "SHAN-500-A,Chè Shan tuyết,A,500,40,sin-ho-01\n"
    "SHAN-1000-B,Chè Shan tuyết,B,1000,60,bac-ha-02\n"
)


def test_the_sku_mapping_is_edited_uploaded_and_used_by_the_import(
    browser: Browser, tmp_path: Path
) -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        page = open_catalogue(browser, console)
        bad = tmp_path / "bad.csv"
        bad.write_text(MAPPING + "SHAN-X,Chè,A,0,40,sin-ho-01\n", encoding="utf-8")
        page.get_by_test_id("sku-file").set_input_files(str(bad))
        page.get_by_test_id("sku-upload").click()
        expect(page.get_by_test_id("sku-upload-errors")).to_contain_text(
            "bad.csv, row 4, column pack_net_g: 0 is not within 1..100000 g"
        )
        assert console.db.scalar("SELECT count(*) FROM sku_mapping") == 0
        good = tmp_path / "mapping.csv"
        good.write_bytes(b"\xef\xbb\xbf" + MAPPING.encode())
        page.get_by_test_id("sku-file").set_input_files(str(good))
        page.get_by_test_id("sku-upload").click()
        expect(page.get_by_test_id("cat-sku")).to_have_count(2)
        # one row through the form: a bad site is refused next to it, then fixed
        page.get_by_test_id("sku-seller_sku").fill("SHAN-250-A")
        page.get_by_test_id("sku-product").fill("Chè Shan tuyết")
        page.get_by_test_id("sku-grade").fill("A")
        page.get_by_test_id("sku-pack_net_g").fill("250")
        page.get_by_test_id("sku-pack_tare_g").fill("25")
        page.get_by_test_id("sku-site").fill("Sìn Hồ")
        page.get_by_test_id("sku-save").click()
        expect(page.get_by_test_id("sku-error-site")).to_contain_text("is not a point's site id")
        page.get_by_test_id("sku-site").fill("sin-ho-01")
        page.get_by_test_id("sku-save").click()
        expect(page.get_by_test_id("cat-sku")).to_have_count(3)
        rows = console.db.rows("SELECT * FROM sku_mapping ORDER BY seller_sku")
        assert [(r["seller_sku"], r["pack_net_g"], r["site"]) for r in rows] == [
            ("SHAN-1000-B", 1000, "bac-ha-02"),
            ("SHAN-250-A", 250, "sin-ho-01"),
            ("SHAN-500-A", 500, "sin-ho-01"),
        ]
        assert page.errors == []  # type: ignore[attr-defined]

        # edge central orders import without --mapping: the console's mapping
        export = tmp_path / "orders.csv"
        export.write_text(ORDERS, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "edge", "central", "orders", "import", str(export),
             "--db", url, "--json", "--default-carrier", "J&T Express"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert (out["accepted"], out["rejected"]) == (2, []), out
        orders = console.db.rows("SELECT id, site FROM orders ORDER BY id")
        assert [(o["id"], o["site"]) for o in orders] == [
            ("SO-1", "sin-ho-01"),
            ("SO-2", "bac-ha-02"),
        ]


ORDERS = (
    "order_id,status,seller_sku,quantity,recipient,phone,province,district,commune,address,"
    "payment,cod_dong\n"
    "SO-1,open,SHAN-500-A,2,Nguyễn Thị Thu Hằng,0987654321,Hà Nội,Quận Đống Đa,"
    "Phường Láng Hạ,Số 18 ngõ 25,cod,370000\n"
    "SO-2,open,SHAN-1000-B,1,Trần Văn Bình,0912345678,Lào Cai,Bắc Hà,Bản Phố,Thôn 3,"
    "prepaid,\n"
)


def test_the_import_without_mapping_refuses_when_none_is_stored(tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(ORDERS, encoding="utf-8")
    with pg_schema() as url:
        for db in (url, f"sqlite:///{tmp_path}/central.db"):
            done = subprocess.run(
                [sys.executable, "-m", "edge", "central", "orders", "import", str(export),
                 "--db", db],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 2, done.stderr
            assert "--mapping" in done.stderr, done.stderr
