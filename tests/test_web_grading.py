"""The photo and grade step of the station page, in headless Chromium against the real
app: record a lot, photograph it with the simulated camera, read the proposal and
its short reasons, confirm it, change it, upload a useless photo and a photo of other
produce from a "phone" and see why each is declined, and see an unplugged camera. The
database is checked after. A photo the cooperative's model is not sure of: staff read
why and that a lead decides, and the lead sets the grade."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser, Page, expect

from edge.camera import scenes
from edge.camera.grading.features import FEATURE_NAMES
from rigs.helpers import StationServer, station_config, wait_for
from tests.browser import (
    by_id,
    choose_farmer,
    needs_chromium,
    open_page,
    set_simulated,
    show_tab,
)

FARMER = "Lò Thị Xuân"
PRODUCT = "Chuối tiêu Tân Uyên"
POTATOES = tuple(
    scenes.ItemSpec("brown", 70, 52, (110 + (i % 3) * 80, 70 + (i // 3) * 90), 20 * i)
    for i in range(6)
)

pytestmark = needs_chromium


def record_through_the_page(page: Page, grams: int) -> None:
    set_simulated(page, grams)
    expect(by_id(page, "scale-status")).to_have_attribute("data-status", "stable")
    by_id(page, "record-button").click()
    expect(by_id(page, "message")).to_contain_text("Đã ghi lô số")


def test_photograph_grade_and_confirm_a_lot(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server:
        db = server.station.db
        with server.client() as c:
            c.post("/api/producers", json={"name": FARMER, "village": "Bản Lướt"})
        page = open_page(browser, server, 1024, 600)
        errors: list[str] = page.errors  # type: ignore[attr-defined]
        expect(by_id(page, "camera-status")).to_have_attribute("data-status", "ready")

        # A product graded by the banana rules, chosen in the product form.
        by_id(page, "product-add-toggle").click()
        by_id(page, "product-name").fill(PRODUCT)
        by_id(page, "product-grading").select_option("banana")
        by_id(page, "product-save").click()
        expect(by_id(page, "message")).to_contain_text(f"Đã thêm sản phẩm: {PRODUCT}")
        assert [p["grading"] for p in db.rows("SELECT grading FROM products")] == ["banana"]
        choose_farmer(page, "lo thi xuan", FARMER)

        # Ghi & In opens the photo step for the new lot.
        expect(by_id(page, "photo-card")).to_be_hidden()
        record_through_the_page(page, 2500)
        [lot] = db.rows("SELECT id, seq FROM lots")
        card = by_id(page, "photo-card")
        expect(card).to_be_visible()
        expect(card).to_have_attribute("data-lot-id", lot["id"])
        expect(by_id(page, "photo-lot")).to_contain_text(f"Lô số {lot['seq']}")
        expect(by_id(page, "proposal-grade")).to_have_text("Chưa có đề xuất.")

        # The station camera (simulated): a photo, a proposed grade and the reasons.
        by_id(page, "capture-button").click()
        proposal = by_id(page, "proposal-grade")
        expect(proposal).to_have_text(
            re.compile(r"^Đề xuất: (Hạng [ABC]|Loại bỏ) · độ tin cậy \d{2,3}%$"), timeout=20_000
        )
        grade = proposal.get_attribute("data-grade")
        assert grade in ("A", "B", "C", "reject")
        # At most three reasons, the one that set the grade first, in percentages and
        # centimetres with comma decimals ("đốm thâm 6,7 % (giới hạn 15 %)"), no raw ratios.
        reasons = by_id(page, "reason")
        expect(reasons.first).to_have_attribute("data-deciding", "true")
        shown = reasons.all_inner_texts()
        assert 1 <= len(shown) <= 3, shown
        assert [r.get_attribute("data-deciding") for r in reasons.all()] == [
            "true",
            *["false"] * (len(shown) - 1),
        ]
        for text in shown:
            assert re.search(r"\d\u00a0(%|cm)", text), text  # "15 %" does not break
            assert not re.search(r"\d\.\d", text) and "=" not in text, text
        thumb = by_id(page, "photo-thumb")
        wait_for(lambda: thumb.evaluate("img => img.naturalWidth") == 320, 10, "the thumbnail")
        [photo] = db.rows("SELECT id, source, grading FROM photos")
        assert photo["source"] == "camera"
        stored = json.loads(photo["grading"])
        assert shown == [r["text_vi"] for r in stored["reasons"]]  # the API's short reasons
        assert len(stored["decisions"]) > len(shown)  # every comparison kept for technicians
        assert by_id(page, "photo-result").get_attribute("data-photo-id") == photo["id"]
        buttons = by_id(page, "grade-buttons").locator("button")
        expect(buttons).to_have_text(["A", "B", "C", "Loại bỏ"])
        expect(by_id(page, f"grade-{grade}")).to_have_class(re.compile(r"\bproposed\b"))
        row = by_id(page, "lot-row")
        expect(row.get_by_test_id("lot-grade")).to_have_attribute("data-status", "proposed")

        # Confirm it: the lot's grade, who and when, and a record for central.
        by_id(page, f"grade-{grade}").click()
        label = "Loại bỏ" if grade == "reject" else f"Hạng {grade}"
        expect(by_id(page, "grade-confirmed")).to_have_text(f"Đã xác nhận: {label} (Thử lead).")
        expect(by_id(page, f"grade-{grade}")).to_have_attribute("aria-pressed", "true")
        expect(row.get_by_test_id("lot-grade")).to_have_attribute("data-status", "confirmed")
        expect(row.get_by_test_id("lot-grade")).to_have_text(label)
        [saved] = db.rows("SELECT * FROM lot_grades WHERE lot_id = ?", (lot["id"],))
        assert (saved["grade"], saved["proposed_grade"], saved["confirmed_by"]) == (
            grade,
            grade,
            "Thử lead",
        )
        assert saved["photo_id"] == photo["id"] and saved["confirmed_at"]
        [conf] = db.rows("SELECT grade, overridden, confirmed_by FROM grade_confirmations")
        assert conf == {"grade": grade, "overridden": 0, "confirmed_by": "Thử lead"}

        # Staff disagree: override with another grade.
        other = "B" if grade != "B" else "C"
        by_id(page, f"grade-{other}").click()
        expect(by_id(page, "grade-confirmed")).to_contain_text(f"Đã sửa thành Hạng {other}")
        overrides = db.rows("SELECT grade FROM grade_confirmations WHERE overridden = 1")
        assert overrides == [{"grade": other}]
        assert db.rows(
            "SELECT actor FROM audit_log WHERE action = 'grade.overridden' AND record_id = ?",
            (lot["id"],),
        ) == [{"actor": "Thử lead"}]

        # A phone upload of a useless (dark) picture: declined, with what to do.
        dark = tmp_path / "dark.jpg"
        dark.write_bytes(scenes.jpeg(np.full((960, 1280, 3), 8, np.uint8)))
        by_id(page, "upload-input").set_input_files(str(dark))
        note = by_id(page, "photo-note")
        expect(note).to_have_attribute("data-reason", "underexposed", timeout=20_000)
        expect(note).to_contain_text("Không chấm hạng được ảnh này: Ảnh quá tối.")
        expect(note).to_contain_text("Bật đèn")
        sources = [r["source"] for r in db.rows("SELECT source FROM photos ORDER BY taken_at")]
        assert sources == ["camera", "upload"]
        assert db.rows("SELECT grade FROM lot_grades") == [{"grade": other}]  # unchanged
        expect(proposal).to_have_attribute("data-grade", grade)  # the good photo's proposal

        # A photo of potatoes on this banana lot: refused, kept, not graded, and the page
        # says what it saw and what to do.
        potatoes = tmp_path / "potatoes.jpg"
        potatoes.write_bytes(scenes.jpeg(scenes.make_scene(POTATOES).image))
        by_id(page, "upload-input").set_input_files(str(potatoes))
        expect(note).to_have_attribute("data-reason", "not_the_product", timeout=20_000)
        seen = (
            "Ảnh không giống chuối (thấy củ tròn màu nâu như khoai tây). Kiểm tra lô và chụp lại."
        )
        expect(note).to_have_text(f"Không chấm hạng được ảnh này: {seen}")
        expect(by_id(page, "message")).to_have_attribute("data-kind", "error")
        expect(by_id(page, "message")).to_contain_text(seen)
        sources = [r["source"] for r in db.rows("SELECT source FROM photos ORDER BY taken_at")]
        assert sources == ["camera", "upload", "upload"]
        assert db.rows("SELECT grade, photo_id FROM lot_grades") == [
            {"grade": other, "photo_id": photo["id"]}
        ]
        expect(proposal).to_have_attribute("data-grade", grade)

        # English, then back: the reject button, the reasons and the refusal in English.
        by_id(page, "lang-toggle").click()
        expect(by_id(page, "capture-button")).to_have_text("Take photo")
        expect(by_id(page, "grade-reject")).to_have_text("Reject")
        expect(reasons).to_have_text([r["text_en"] for r in stored["reasons"]])
        expect(note).to_contain_text(
            "This photo cannot be graded: The photo does not look like bananas (saw round "
            "brown tubers, like potatoes)."
        )
        by_id(page, "lang-toggle").click()
        expect(by_id(page, "grade-reject")).to_have_text("Loại bỏ")

        # The camera unplugged: shown in the status and in the photo step; capture refused.
        with server.client() as c:
            c.post("/api/camera/simulator", json={"fault": "unplugged"})
        expect(by_id(page, "camera-status")).to_have_attribute("data-status", "no_device")
        expect(by_id(page, "camera-problem")).to_contain_text("Không thấy máy ảnh")
        by_id(page, "capture-button").click()
        expect(by_id(page, "message")).to_have_attribute("data-kind", "error")
        expect(by_id(page, "message")).to_contain_text("Không thấy máy ảnh")
        assert len(db.rows("SELECT id FROM photos")) == 3

        # Usable with a thumb on a phone: no sideways scrolling, big grade buttons.
        page.set_viewport_size({"width": 360, "height": 740})
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        for testid in ("capture-button", "upload-button", "grade-A", "grade-reject"):
            box = by_id(page, testid).bounding_box()
            assert box is not None and box["height"] >= 48, testid
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360, testid
        page.screenshot(path=str(tmp_path / "photo-step-360.png"), full_page=True)

        # Reopen the step from the lot list; "Xong" closes it.
        by_id(page, "photo-close").click()
        expect(card).to_be_hidden()
        show_tab(page, "lots")  # the lot list is a tab of its own
        row.get_by_test_id("lot-photo-button").click()
        expect(card).to_be_visible()
        expect(by_id(page, "grade-confirmed")).to_contain_text(f"Hạng {other}")
        assert errors == []


def undecided_model(path: Path) -> None:
    """A cooperative's potato model (classes bad, good: its calibration folders) that
    gives every photo 50 % of each: the shipped costs make the station ask the lead."""
    nf = len(FEATURE_NAMES)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = {
        "format": "edge-grading-model",
        "version": 1,  # no temperature, no product check
        "product": "potato",
        "kind": "logreg",
        "classes": ["bad", "good"],
        "feature_names": list(FEATURE_NAMES),
        "means": [0.0] * nf,
        "scales": [1.0] * nf,
        "weights": [[0.0] * nf, [0.0] * nf],
        "bias": [0.0, 0.0],
    }
    path.write_text(json.dumps(model), encoding="utf-8")


def open_lot_photos(page: Page) -> None:
    show_tab(page, "lots")
    by_id(page, "lot-row").get_by_test_id("lot-photo-button").click()
    expect(by_id(page, "photo-card")).to_be_visible()


def test_an_unsure_photo_asks_the_lead_who_sets_the_grade(tmp_path: Path, browser: Browser):
    cfg = station_config(tmp_path, grading={"models_dir": str(tmp_path / "models")})
    undecided_model(tmp_path / "models" / "potato.json")
    unsure = (
        "Không chắc chắn — nhờ trưởng trạm xem: có thể là hạng bad (50\u00a0%) "
        "hoặc hạng good (50\u00a0%)."
    )
    with StationServer(cfg) as server:
        db = server.station.db
        producer = db.add_producer(FARMER)
        product = db.add_product("Khoai tây Bắc Hà", 9000, grading="potato")
        lot = db.record_lot(producer["id"], product["id"], 3000, "ST,GS,+003.000kg")
        photo = tmp_path / "potatoes.jpg"
        small = scenes.make_scene(POTATOES, size=(640, 480), px_per_mm=2.0)
        photo.write_bytes(scenes.jpeg(small.image))

        # Staff photograph the lot: stored, not graded, and no retake asked for.
        staff = open_page(browser, server, 800, 480, role="staff")
        open_lot_photos(staff)
        by_id(staff, "upload-input").set_input_files(str(photo))
        note = by_id(staff, "photo-note")
        expect(note).to_have_attribute("data-reason", "unsure", timeout=20_000)
        expect(note).to_contain_text(unsure)
        assert "chụp lại" not in note.inner_text()
        expect(note).to_be_in_viewport()
        expect(by_id(staff, "message")).to_have_attribute("data-kind", "warn")
        expect(by_id(staff, "unsure-who")).to_have_text(
            "Chỉ trưởng điểm chọn được hạng cho lô này: nhờ trưởng điểm đăng nhập để chọn."
        )
        expect(by_id(staff, "proposal-grade")).to_have_text("Chưa có đề xuất.")
        expect(by_id(staff, "grade-buttons").locator("button")).to_have_text(["bad", "good"])
        expect(by_id(staff, "grade-good")).to_be_disabled()
        assert staff.evaluate("document.documentElement.scrollWidth") <= 800
        [row] = db.rows("SELECT grading FROM photos")
        assert json.loads(row["grading"])["reason"] == "unsure"
        assert db.rows("SELECT * FROM lot_grades") == []
        with server.client("staff") as c:  # the station refuses staff, not just the page
            r = c.post(f"/api/lots/{lot.id}/grade", json={"grade": "good"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "unsure_needs_lead")

        # The lead looks at the produce and sets the grade.
        lead = open_page(browser, server, 800, 480, role="lead")
        open_lot_photos(lead)
        expect(by_id(lead, "photo-note")).to_contain_text(unsure)
        expect(by_id(lead, "unsure-who")).to_have_text(
            "Trưởng điểm xem nông sản rồi chọn hạng bên dưới."
        )
        by_id(lead, "grade-bad").click()
        expect(by_id(lead, "grade-confirmed")).to_have_text("Đã xác nhận: Hạng bad (Thử lead).")
        lead.screenshot(path=str(tmp_path / "unsure-lead-800.png"))
        [saved] = db.rows("SELECT grade, proposed_grade, confirmed_by FROM lot_grades")
        assert saved == {"grade": "bad", "proposed_grade": None, "confirmed_by": "Thử lead"}
        assert staff.errors == [] and lead.errors == []  # type: ignore[attr-defined]
