"""Photos and grades at intake: after a lot is recorded, staff photograph the produce
(station camera or a phone upload); the station stores the photo, grades it with the
lot's product rules (or the cooperative's calibrated model) and proposes a grade that
staff confirm or override.

:class:`Intake` is the glue: camera (:mod:`.capture`), encoding (:mod:`.photos`),
files and rows (:mod:`edge.storage.photos`), grades (:mod:`edge.storage.grades`) and
grading (:func:`edge.camera.grading.grade.grade_photo`). Its methods block (camera,
disk, CPU); the web handlers call them from worker threads, never on the event loop.

Memory on a 2 GB Pi: at most ``camera.decode_concurrency`` photos are decoded and graded
at once (:attr:`Intake.decoding`), and at most ``camera.upload_buffer_mb`` of upload
bodies are held at once (:attr:`Intake.buffering`, taken by the upload route before it
reads a body); whoever waits longer than ``camera.busy_wait_s`` is answered :func:`busy`.

A photo the calibrated model is not sure of (``unsure``: no grade costs less than
asking) is stored like a declined one, without a proposal, and is not the photo's
fault: staff are not asked to retake it. A lead looks at the produce and chooses the
grade; until one does (or a later photo is graded), only a lead may set the lot's
grade (:meth:`Intake.lead_decides`, :func:`lead_needed`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.camera.capture import Camera, Frame, SimulatedCamera, open_camera
from edge.camera.grading.annotate import annotate
from edge.camera.grading.grade import GradingError, grade_photo, load_grading_model
from edge.camera.grading.measure import measure_tray
from edge.camera.grading.quality import Declined, Reason
from edge.camera.grading.rules import PRODUCT_NAME, RulesError, load_rules, products
from edge.camera.limiter import Limiter
from edge.camera.photos import (
    UploadLimits,
    decode_stored,
    decode_upload,
    encode_photo,
    encode_png,
    fit_within,
)
from edge.config import CameraConfig, GradingConfig
from edge.errors import StaffError
from edge.gradenames import grade_label
from edge.storage.grades import Confirmation, Grades
from edge.storage.photos import PhotoStore, RetentionReport, photo_json
from edge.storage.store import Store

log = logging.getLogger(__name__)

DEFAULT_GRADES = ("A", "B", "C", "reject")  # products without rules are graded by hand
# What the simulated camera puts on the tray for a product (scenes.KIND_BGR keys).
SIMULATED_ITEMS = {"banana": "yellow", "potato": "brown", "lime": "green"}


class IntakeError(StaffError):
    """A request about photos or grades the station refuses: ``code``, Vietnamese
    ``message``, English ``message_en`` and the HTTP ``status``."""


def unknown_grading(key: str, known: list[str], rules_dir: Path) -> IntakeError:
    listed = ", ".join(known) if known else "(không có / none)"
    return IntakeError(
        "unknown_grading",
        f"Không có quy tắc phân loại “{key}”. Chọn một trong: {listed}.",
        f"grading: no rules named {key!r} in {rules_dir}; valid keys: {listed}",
        422,
    )


def lead_needed() -> IntakeError:
    """The answer to staff setting the grade of a lot the station was not sure of."""
    return IntakeError(
        "unsure_needs_lead",
        "Trạm không chắc chắn về hạng của lô này: trưởng điểm xem nông sản và chọn hạng. "
        "Nhờ trưởng điểm đăng nhập để chọn.",
        "The station is not sure of this lot's grade: a lead looks at the produce and "
        "chooses it. Ask the lead to sign in and choose.",
        403,
    )


def busy() -> IntakeError:
    """The answer to an upload or capture that waited ``camera.busy_wait_s`` for its turn."""
    return IntakeError(
        "photo_busy",
        "Trạm đang bận xử lý ảnh, thử lại sau ít giây.",
        "The station is busy with other photos; try again in a few seconds.",
        503,
    )


class Intake:
    def __init__(
        self,
        store: Store,
        camera_cfg: CameraConfig,
        grading_cfg: GradingConfig,
        *,
        camera: Camera | None = None,
        limits: UploadLimits | None = None,
    ) -> None:
        self.camera_cfg = camera_cfg
        self.grading_cfg = grading_cfg
        self.camera = camera or open_camera(camera_cfg)
        self.limits = limits or UploadLimits()
        self.photos = PhotoStore(store, camera_cfg.photos_dir, camera_cfg.max_photos_mb << 20)
        self.grades = Grades(store)
        self._grading = threading.Semaphore(1)  # one grading at a time: memory on a Pi
        self._retention = threading.Lock()
        self.decoding = Limiter(camera_cfg.decode_concurrency)  # photos decoded/graded at once
        self.buffering = Limiter(camera_cfg.upload_buffer_mb << 20)  # upload bytes held at once
        self.busy_wait_s = camera_cfg.busy_wait_s

    @contextmanager
    def decode_slot(self) -> Iterator[None]:
        """One of the ``decode_concurrency`` turns, for this thread; :func:`busy` after
        ``busy_wait_s`` of waiting."""
        if not self.decoding.acquire(1, self.busy_wait_s):
            raise busy()
        try:
            yield
        finally:
            self.decoding.release(1)

    def start(self) -> None:
        self.photos.clean_up()
        self.enforce_retention()

    def stop(self) -> None:
        self.camera.close()

    @property
    def simulated(self) -> SimulatedCamera | None:
        return self.camera if isinstance(self.camera, SimulatedCamera) else None

    def enforce_retention(self) -> RetentionReport:
        with self._retention:
            return self.photos.enforce_retention()

    def state_json(self) -> dict[str, Any]:
        total, unconfirmed = self.photos.usage()
        limit = self.photos.limit_bytes
        return {
            **self.camera.state.to_json(),
            "photos": {
                "total_bytes": total,
                "limit_bytes": limit,
                "unconfirmed_bytes": unconfirmed,
                "over_limit": total > limit,
            },
        }

    # -- grading keys ---------------------------------------------------------------------

    def grading_keys(self) -> list[str]:
        return products(self.grading_cfg.rules_dir)

    def check_grading_key(self, key: str) -> None:
        known = self.grading_keys()
        if key not in known or not PRODUCT_NAME.match(key):
            raise unknown_grading(key, known, self.grading_cfg.rules_dir)
        try:
            load_rules(self.grading_cfg.rules_dir, key)
        except RulesError as exc:
            raise IntakeError(
                "bad_rules",
                f"Tệp quy tắc “{key}” bị lỗi; báo kỹ thuật. ({exc})",
                f"the rules file for {key!r} is invalid: {exc}",
                422,
            ) from None

    def grades_for(self, key: str | None) -> tuple[str, ...]:
        """The product's grades, best first: a calibrated model's classes (the cooperative's
        own folder names) when one is installed, else its rules' list (A, B, C, reject)."""
        if key is None:
            return DEFAULT_GRADES
        model = self.grading_cfg.models_dir / f"{key}.json"
        if model.is_file():
            try:
                return load_grading_model(model, key).classes
            except GradingError as exc:
                log.warning("model %s: %s; using the rules' grades", model, exc)
        try:
            return load_rules(self.grading_cfg.rules_dir, key).grades
        except RulesError as exc:
            log.warning("grades of %s: %s; using %s", key, exc, DEFAULT_GRADES)
            return DEFAULT_GRADES

    # -- photos ---------------------------------------------------------------------------

    def upload(
        self, lot_id: str, data: bytes | bytearray, content_type: str | None
    ) -> dict[str, Any]:
        """A phone's JPEG or PNG for the lot: checked, stored, graded (in a decode turn)."""
        self.grades.lot_context(lot_id)  # 404 before anything is decoded or written
        with self.decode_slot():
            return self.keep_upload(lot_id, self.decode(data, content_type))

    def decode(self, data: bytes | bytearray, content_type: str | None) -> Frame:
        """An upload as the frame that is stored: decoded (already reduced when it is
        much larger) and fitted to the camera's size. The caller holds a decode turn."""
        cam = self.camera_cfg
        frame = decode_upload(data, content_type, self.limits, fit=(cam.width, cam.height))
        return fit_within(frame, cam.width, cam.height)

    def keep_upload(self, lot_id: str, frame: Frame) -> dict[str, Any]:
        """A decoded upload stored and graded. The caller holds a decode turn."""
        return self._keep(lot_id, "upload", frame)

    def capture(self, lot_id: str) -> dict[str, Any]:
        """A still from the station camera for the lot: stored, graded."""
        ctx = self.grades.lot_context(lot_id)
        if self.simulated is not None:  # practice mode: a tray of the lot's produce
            self.simulated.subject = SIMULATED_ITEMS.get(ctx["grading"] or "")
        with self.decode_slot():
            return self._keep(lot_id, "camera", self.camera.capture())

    def _keep(self, lot_id: str, source: str, frame: Frame) -> dict[str, Any]:
        encoded = encode_photo(frame, self.camera_cfg.jpeg_quality, self.camera_cfg.thumb_px)
        row = self.photos.add(lot_id, source, encoded)
        self.enforce_retention()
        # Grade the photo as stored (the JPEG), so a regrade later gives the same answer.
        result = self._grade_frame(lot_id, decode_stored(encoded.jpeg))
        self.photos.set_grading(row["id"], result)
        if result["status"] == "graded":
            self.grades.propose(
                lot_id, result["grade"], result["confidence"], result["method"], row["id"]
            )
        elif result.get("reason") == Reason.NOT_THE_PRODUCT.value:
            # Other produce than the lot's: kept (with why) but refused, never graded; the
            # lot or the tray is wrong, which staff must look at before anything else.
            raise IntakeError("not_the_product", result["message"], result["message_en"], 422)
        return self.lot_view(lot_id, photo_id=row["id"])

    def _grade_frame(self, lot_id: str, frame: Frame) -> dict[str, Any]:
        ctx = self.grades.lot_context(lot_id)
        key = ctx["grading"]
        if key is None:
            return {
                "status": "no_rules",
                "message": f"Sản phẩm “{ctx['product_name']}” chưa có quy tắc phân loại: "
                "chọn hạng bằng tay.",
                "message_en": f"Product {ctx['product_name']!r} has no grading rules: "
                "choose the grade by hand.",
            }
        model = self.grading_cfg.models_dir / f"{key}.json"
        try:
            with self._grading:
                out = grade_photo(
                    frame,
                    key,
                    rules_dir=self.grading_cfg.rules_dir,
                    model_path=model if model.is_file() else None,
                    weight_g=int(ctx["net_g"]),
                    marker_mm=self.camera_cfg.marker_mm,
                )
        except Exception as exc:  # the photo is kept whatever grading does; staff grade by hand
            if isinstance(exc, GradingError):
                log.error("grading lot %s (%s): %s", lot_id, key, exc)
            else:
                log.exception("grading lot %s (%s) failed", lot_id, key)
            return {
                "status": "error",
                "message": "Không chấm được hạng tự động (lỗi quy tắc, mô hình hoặc phần mềm; "
                "báo kỹ thuật). Ảnh đã được lưu. Chọn hạng bằng tay.",
                "message_en": f"automatic grading failed ({type(exc).__name__}: {exc}); the "
                "photo is saved; choose the grade by hand",
            }
        if isinstance(out, Declined):
            return {
                "status": "declined",
                "reason": out.reason.value,
                "message": out.message,
                "message_en": out.message_en,
                "detail": {k: round(float(v), 4) for k, v in out.detail.items()},
            }
        return {"status": "graded", **out.to_json()}

    # -- grades ---------------------------------------------------------------------------

    def confirm(self, lot_id: str, grade: str, by: str) -> Confirmation:
        ctx = self.grades.lot_context(lot_id)
        allowed = self.grades_for(ctx["grading"])
        if grade not in allowed:
            listed = ", ".join(allowed)
            raise IntakeError(
                "unknown_grade",
                f"Hạng “{grade}” không có cho sản phẩm này. Chọn một trong: {listed}.",
                f"grade: {grade!r} is not a grade of this product; choose one of: {listed}",
                422,
            )
        return self.grades.confirm(lot_id, grade, by.strip())

    def lead_decides(self, lot_id: str) -> bool:
        """True when the lot's latest photo whose produce was judged (graded, or unsure)
        was unsure: a lead chooses the grade (photos declined for exposure, blur or
        other produce say nothing of the grade and do not count)."""
        for row in reversed(self.photos.for_lot(lot_id)):
            result = json.loads(row["grading"]) if row.get("grading") else {}
            if result.get("status") == "graded":
                return False
            if result.get("reason") == Reason.UNSURE.value:
                return True
        return False

    def check_may_grade(self, lot_id: str, grade: str, lead: bool) -> None:
        """Who may set a lot's grade: anyone confirms the station's proposal; a lead
        overrides it (403 ``override_needs_lead`` for anyone else), and a lead chooses
        the grade of a lot the station was not sure of (:func:`lead_needed`)."""
        if lead:
            return
        proposed = (self.grades.lot_grade(lot_id) or {}).get("proposed_grade")
        if proposed is not None and grade != proposed:
            raise IntakeError(
                "override_needs_lead",
                "Đổi hạng khác với hạng trạm đề xuất cần trưởng điểm xác nhận. "
                "Nhờ trưởng điểm đăng nhập để sửa, hoặc xác nhận hạng đề xuất.",
                f"Overriding the proposed grade ({proposed}) needs a lead; ask the lead, or "
                "confirm the proposal.",
                403,
            )
        if self.lead_decides(lot_id):
            raise lead_needed()

    def lot_view(self, lot_id: str, photo_id: str | None = None) -> dict[str, Any]:
        """The lot's photos, proposal and confirmed grade, as the page shows them;
        ``photo`` is ``photo_id``'s (the one just taken), else the latest."""
        ctx = self.grades.lot_context(lot_id)
        photos = [photo_json(r) for r in self.photos.for_lot(lot_id)]
        chosen = next((p for p in photos if p["id"] == photo_id), photos[-1] if photos else None)
        return {
            "lot_id": lot_id,
            "seq": ctx["seq"],
            "product_name": ctx["product_name"],
            "grading": ctx["grading"],
            "grades": list(self.grades_for(ctx["grading"])),
            "photo": chosen,
            "photos": photos,
            "grade": self.grades.lot_grade(lot_id),
            "lead_decides": self.lead_decides(lot_id),
        }

    def photo_path(self, photo_id: str, thumb: bool) -> Path:
        row = self.photos.get(photo_id)
        if thumb:
            return self.photos.thumb_path(row)
        path = self.photos.full_path(row)
        if path is None:
            raise IntakeError(
                "photo_released",
                "Ảnh gốc đã được xóa để giải phóng chỗ (lô đã xác nhận hạng); chỉ còn ảnh nhỏ.",
                "The full photo was deleted by the retention policy (its lot's grade was "
                "confirmed); only the thumbnail remains.",
                410,
            )
        return path

    def annotated_png(self, photo_id: str) -> bytes:
        """The photo with item outlines, sizes, defects and the marker drawn, and its
        grade (or why it was declined) in a caption band, as PNG."""
        row = self.photos.get(photo_id)
        with self.decode_slot():
            frame = decode_stored(self.photo_path(photo_id, thumb=False).read_bytes())
            with self._grading:
                measurement = measure_tray(frame, self.camera_cfg.marker_mm)
            return encode_png(annotate(frame, measurement, caption(row)))


def caption(row: dict[str, Any]) -> str | None:
    """What the annotated photo says under it: the grade proposed from this photo, or
    why it was not graded (Vietnamese: it is shown to the farmer)."""
    result = json.loads(row["grading"]) if row.get("grading") else {}
    if result.get("status") == "graded":
        grade = grade_label(str(result["grade"]))
        pct = round(100 * float(result["confidence"]))
        return f"Đề xuất: {grade} · độ tin cậy {pct}%"
    message = result.get("message")
    return str(message) if message else None
