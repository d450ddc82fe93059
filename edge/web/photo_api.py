"""Photo and grade routes (issue 6): take or upload a lot's photo, get the proposal,
confirm or override the grade, fetch the stored pictures.

Camera, disk and grading block: every handler runs its work in the thread pool (an
upload handler reads the body on the event loop, with a size cap, then hands over).
An upload waits its turn twice, for room to hold its body and for a decode turn
(edge.camera.intake, "Memory on a 2 GB Pi"); waiting longer than ``camera.busy_wait_s``
is 503 ``photo_busy``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.camera.capture import Fault
from edge.camera.intake import Intake, IntakeError, busy
from edge.camera.photos import too_large
from edge.station import Station
from edge.web.auth import Lead, Staff
from edge.web.limits import drain, read_body

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store"}
IMMUTABLE = {"Cache-Control": "private, max-age=86400, immutable"}  # a photo never changes


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GradeBody(_Body):
    grade: str = Field(min_length=1, max_length=20)


class ProductGrading(_Body):
    grading: str | None = Field(min_length=1, max_length=40)


class CameraCommand(_Body):
    fault: Fault


def _intake(request: Request) -> Intake:
    station: Station = request.app.state.station
    return station.photos


@router.get("/grading")
def grading_keys(person: Staff, request: Request) -> dict[str, Any]:
    """The grading keys a product may name (rules files present on this station)."""
    intake = _intake(request)
    return {"keys": intake.grading_keys(), "default_grades": ["A", "B", "C", "reject"]}


@router.patch("/products/{product_id}")
def set_product_grading(
    product_id: str, body: ProductGrading, person: Lead, request: Request
) -> dict[str, Any]:
    intake = _intake(request)
    if body.grading is not None:
        intake.check_grading_key(body.grading)
    intake.grades.set_product_grading(product_id, body.grading, person.name)
    return next(p for p in intake.grades.list_products() if p["id"] == product_id)


@router.post("/lots/{lot_id}/photos", status_code=201)
async def upload_photo(lot_id: str, person: Staff, request: Request) -> dict[str, Any]:
    """A phone's photo as the raw body (``Content-Type: image/jpeg`` or ``image/png``)."""
    intake = _intake(request)
    await run_in_threadpool(intake.grades.lot_context, lot_id)  # 404 before the upload
    limit = intake.limits.max_bytes
    header = request.headers.get("content-length", "")
    declared = int(header) if header.isdigit() else None
    if declared is not None and declared > limit:
        raise too_large(declared, intake.limits)
    deadline = time.monotonic() + intake.busy_wait_s
    room = max(1, limit if declared is None else declared)  # bytes of the allowance held
    if not await intake.buffering.acquire_async(room, intake.busy_wait_s):
        await drain(request)  # read (and dropped) so that the phone gets the answer
        raise busy()
    held = room
    try:
        body = await read_body(request, declared, limit)
        if not await intake.decoding.acquire_async(1, max(0.0, deadline - time.monotonic())):
            raise busy()
        try:
            frame = await run_in_threadpool(
                intake.decode, body, request.headers.get("content-type")
            )
            del body  # decoded: the upload's bytes go, and so does their allowance
            intake.buffering.release(held)
            held = 0
            return await run_in_threadpool(intake.keep_upload, lot_id, frame)
        finally:
            intake.decoding.release(1)
    finally:
        if held:
            intake.buffering.release(held)


@router.post("/lots/{lot_id}/capture", status_code=201)
def capture_photo(lot_id: str, person: Staff, request: Request) -> dict[str, Any]:
    """A still from the station camera, stored and graded."""
    return _intake(request).capture(lot_id)


@router.get("/lots/{lot_id}/photos")
def lot_photos(lot_id: str, person: Staff, request: Request) -> dict[str, Any]:
    return _intake(request).lot_view(lot_id)


@router.post("/lots/{lot_id}/grade")
def confirm_grade(lot_id: str, body: GradeBody, person: Staff, request: Request) -> dict[str, Any]:
    """Confirm the proposed grade, or override it with another of the product's grades."""
    intake = _intake(request)
    intake.check_may_grade(lot_id, body.grade, lead=person.role == "lead")
    c = intake.confirm(lot_id, body.grade, person.name)
    return {
        "confirmation": {
            "id": c.id,
            "grade": c.grade,
            "proposed_grade": c.proposed_grade,
            "overridden": c.overridden,
            "confirmed_by": c.confirmed_by,
            "confirmed_at": c.confirmed_at,
        },
        **intake.lot_view(lot_id),
    }


def _file(intake: Intake, photo_id: str, thumb: bool) -> FileResponse:
    path = intake.photo_path(photo_id, thumb)
    if not path.is_file():
        raise IntakeError(
            "photo_missing",
            "Không tìm thấy tệp ảnh trên đĩa. Báo kỹ thuật.",
            f"the photo file {path} is missing from the disk",
            404,
        )
    return FileResponse(path, media_type="image/jpeg", headers=IMMUTABLE)


@router.get("/photos/{photo_id}.jpg")
def photo_jpeg(photo_id: str, person: Staff, request: Request) -> FileResponse:
    return _file(_intake(request), photo_id, thumb=False)


@router.get("/photos/{photo_id}/thumb.jpg")
def photo_thumb(photo_id: str, person: Staff, request: Request) -> FileResponse:
    return _file(_intake(request), photo_id, thumb=True)


@router.get("/photos/{photo_id}/annotated.png")
def photo_annotated(photo_id: str, person: Staff, request: Request) -> Response:
    png = _intake(request).annotated_png(photo_id)
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.post("/camera/simulator")
def camera_simulator(body: CameraCommand, person: Staff, request: Request) -> dict[str, Any]:
    """Make the simulated camera misbehave (or behave again)."""
    intake = _intake(request)
    sim = intake.simulated
    if sim is None:
        raise IntakeError(
            "no_simulator",
            "Trạm đang dùng máy ảnh thật (hoặc không có máy ảnh); không có máy ảnh mô phỏng.",
            "This station has no simulated camera to control.",
            404,
        )
    sim.set_fault(body.fault)
    return intake.camera.state.to_json()
