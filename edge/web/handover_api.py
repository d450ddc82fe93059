"""Courier handover (issue 14, docs/handover.md): the routes the courier page calls. Each
takes the signed-in person; the work is ``station.handover`` (edge.handover.service).

* ``GET /api/handovers/carriers``: carriers with parcels waiting, and their open handover.
* ``POST /api/handovers`` ``{"carrier", "courier_id"?}``: 201 a new handover, 200 the open one.
* ``GET /api/handovers?day=YYYY-MM-DD``, ``GET /api/handovers/{id}``.
* ``POST /api/handovers/{id}/scans`` ``{"code", "source"}``: the verdict and the counts;
  ``/scans/photo`` (an image body) and ``/scans/capture`` (the station's camera): every
  code found.
* ``POST /api/handovers/{id}/undo``, ``/missing`` (a lead), ``/close`` ``{"pin"}`` or
  ``{"signature_png"}``, ``/reprint``; ``POST /api/parcels/{id}/return`` ``{"reason"}``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from edge.camera.intake import Intake, busy
from edge.camera.photos import too_large
from edge.handover.service import Handovers
from edge.printer.printable import text_rule
from edge.station import Station
from edge.web.auth import Courier, Lead, Staff
from edge.web.limits import drain, read_body

router = APIRouter()

Reason = Annotated[str, Strict(), AfterValidator(text_rule(200))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OpenRequest(_Body):
    carrier: Annotated[str, Field(min_length=1, max_length=100)]
    courier_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class ScanRequest(_Body):
    code: Annotated[str, Field(min_length=1, max_length=512)]
    source: Literal["keyboard", "phone", "camera"] = "keyboard"


class ReasonRequest(_Body):
    reason: Reason


class CloseRequest(_Body):
    pin: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    signature_png: Annotated[str, Field(min_length=1, max_length=300_000)] | None = None


def _station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def _handovers(request: Request) -> Handovers:
    return _station(request).handover


@router.get("/handovers/carriers")
def carriers(person: Courier, request: Request) -> list[dict[str, Any]]:
    return _handovers(request).carriers()


@router.get("/handovers")
def of_day(
    person: Courier,
    request: Request,
    day: Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")],
) -> list[dict[str, Any]]:
    return _handovers(request).of_day(day)


@router.post("/handovers", status_code=201)
def open_handover(
    body: OpenRequest, person: Courier, request: Request, response: Response
) -> dict[str, Any]:
    view, new = _handovers(request).open(body.carrier, person, body.courier_id)
    if not new:
        response.status_code = 200
    return view


@router.get("/handovers/{handover_id}")
def get_handover(handover_id: str, person: Courier, request: Request) -> dict[str, Any]:
    return _handovers(request).get(handover_id, person)


@router.post("/handovers/{handover_id}/scans")
def scan(handover_id: str, body: ScanRequest, person: Courier, request: Request) -> dict[str, Any]:
    return _handovers(request).scan(handover_id, body.code, body.source, person)


@router.post("/handovers/{handover_id}/scans/photo")
async def scan_photo(handover_id: str, person: Courier, request: Request) -> dict[str, Any]:
    """A phone's photo (``image/jpeg`` or ``image/png`` body), bounded and decoded in turn
    as lot photos are (edge.web.photo_api)."""
    handovers = _handovers(request)
    intake: Intake = _station(request).photos
    await run_in_threadpool(handovers.get, handover_id, person)  # 404 / 403 before the body
    limit = intake.limits.max_bytes
    header = request.headers.get("content-length", "")
    declared = int(header) if header.isdigit() else None
    if declared is not None and declared > limit:
        raise too_large(declared, intake.limits)
    deadline = time.monotonic() + intake.busy_wait_s
    room = max(1, limit if declared is None else declared)
    if not await intake.buffering.acquire_async(room, intake.busy_wait_s):
        await drain(request)
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
            del body
            intake.buffering.release(held)
            held = 0
            return await run_in_threadpool(
                handovers.scan_frame, handover_id, frame, "phone", person
            )
        finally:
            intake.decoding.release(1)
    finally:
        if held:
            intake.buffering.release(held)


@router.post("/handovers/{handover_id}/scans/capture")
def scan_capture(handover_id: str, person: Courier, request: Request) -> dict[str, Any]:
    """A still from the station's camera, every code in it scanned."""
    handovers = _handovers(request)
    handovers.get(handover_id, person)
    intake = _station(request).photos
    with intake.decode_slot():
        frame = intake.camera.capture()
        return handovers.scan_frame(handover_id, frame, "camera", person)


@router.post("/handovers/{handover_id}/undo")
def undo(handover_id: str, person: Courier, request: Request) -> dict[str, Any]:
    return _handovers(request).undo(handover_id, person)


@router.post("/handovers/{handover_id}/missing")
def confirm_missing(
    handover_id: str, body: ReasonRequest, person: Lead, request: Request
) -> dict[str, Any]:
    return _handovers(request).confirm_missing(handover_id, body.reason, person)


@router.post("/handovers/{handover_id}/close")
def close(
    handover_id: str, body: CloseRequest, person: Courier, request: Request
) -> dict[str, Any]:
    return _handovers(request).close(handover_id, person, body.pin, body.signature_png)


@router.post("/handovers/{handover_id}/reprint", status_code=201)
def reprint(handover_id: str, person: Courier, request: Request) -> dict[str, Any]:
    return _handovers(request).reprint(handover_id, person)


@router.post("/parcels/{parcel_id}/return")
def return_parcel(
    parcel_id: str, body: ReasonRequest, person: Staff, request: Request
) -> dict[str, Any]:
    return _handovers(request).return_parcel(parcel_id, body.reason, person)
