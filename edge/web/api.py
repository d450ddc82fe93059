"""HTTP API routes. Handlers are plain functions (run in a thread pool):
the station's storage and devices are blocking code.

Bodies are strict (a number is not a string, ``true`` is not 1) and what a label prints
follows the labels' own rule (edge.printer.printable): a name with a zero-width space, a
control character or a character the label font cannot draw, a blank name or a price out
of range is a 422 naming the field (edge.web.request_errors), never a record whose label
can never print, and never a 500.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from edge.faults import job_fault, scale_fault
from edge.printer.printable import UnitPriceDong, phone_number, text_rule
from edge.station import Refused, Station
from edge.storage.print_queue import PrintQueue
from edge.web import farmer_api
from edge.web.auth import Lead, Staff

router = APIRouter()

Text120 = Annotated[str, Strict(), AfterValidator(text_rule(120))]
"""A name or a village: printed on labels, so the labels' rule."""
Text200 = Annotated[str, Strict(), AfterValidator(text_rule(200))]
PhoneNumber = Annotated[str, Strict(), AfterValidator(phone_number)]
RecordId = Annotated[str, Strict(), Field(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewProducer(_Body):
    name: Text120
    phone: PhoneNumber | None = None
    village: Text120 | None = None
    confirm_duplicate: bool = False  # created even if a farmer of this name and village exists


class NewProduct(_Body):
    name: Text120
    unit_price_dong: UnitPriceDong | None = None
    grading: str | None = Field(None, min_length=1, max_length=40)


class NewLot(_Body):
    producer_id: RecordId
    product_id: RecordId


class SimulatorCommand(_Body):
    weight_g: int | None = Field(None, ge=-1_000_000, le=10_000_000)
    unstable: bool | None = None
    overload: bool | None = None
    connected: bool | None = None


class Reprint(_Body):
    reason: Text200  # who asks is the signed-in person (audit log), never a body field


def _station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def scale_json(st: Station) -> dict[str, Any]:
    """The scale part of GET /api/state (also the answer of the tare/zero endpoints)."""
    scale = st.scale_state()
    return {
        "status": scale.status.value,
        "weight_g": scale.weight_g,
        "net": scale.net,
        "stable": scale.status.value == "stable",
        "fault": fault.as_json() if (fault := scale_fault(scale.fault)) else None,
        "simulated": st.simulator is not None,
        "protocol": scale.protocol,
        "tare_g": scale.tare_g,
        "tare_source": scale.tare_source,
        "tare_mode": st.tare_mode(),
        "can_zero": st.can_zero(),
        "weighing": scale.weighing,
        "frame": scale.frame,
        "recent_frames": list(scale.recent_frames),
    }


@router.get("/state")
def state(person: Staff, request: Request) -> dict[str, Any]:
    return state_json(_station(request))


def state_json(st: Station) -> dict[str, Any]:
    """The body of GET /api/state (also what GET /api/events pushes)."""
    printer = st.printer
    return {
        "site": {"id": st.cfg.site.id, "name": st.cfg.site.name, "timezone": st.cfg.site.timezone},
        "scale": scale_json(st),
        "printer": {
            **(printer.state_json() if printer else {"status": "unknown", "fault": None}),
            "jobs": PrintQueue(st.db).counts(),
        },
        "outbox": st.outbox_status(),
        "link": st.link_status().value,
        "link_plaintext": st.cfg.mqtt.plaintext_off_host,  # no TLS, off this machine
        "camera": st.photos.state_json(),
    }


@router.post("/scale/tare")
def tare(person: Staff, request: Request) -> dict[str, Any]:
    """Tare: the scale's own command where it has one, else a software tare."""
    st = _station(request)
    source = st.tare(actor=person.name)
    return {"done": "tare", "tare_source": source, "scale": scale_json(st)}


@router.post("/scale/tare/clear")
def clear_tare(person: Staff, request: Request) -> dict[str, Any]:
    st = _station(request)
    st.clear_tare(actor=person.name)
    return {"done": "tare_cleared", "scale": scale_json(st)}


@router.post("/scale/zero")
def zero(person: Staff, request: Request) -> dict[str, Any]:
    st = _station(request)
    st.zero()
    return {"done": "zero", "scale": scale_json(st)}


@router.get("/producers")
def list_producers(
    person: Staff,
    request: Request,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> list[dict[str, Any]]:
    """Every farmer by name; with ``q`` and/or ``limit`` a search (edge.web.farmer_api)."""
    if q is not None or limit is not None:
        return farmer_api.search(request, q, limit)
    return _station(request).db.list_producers()


@router.post("/producers", status_code=201, response_model=None)
def create_producer(
    body: NewProducer, person: Staff, request: Request
) -> dict[str, Any] | JSONResponse:
    """409 ``possible_duplicate`` (with the ``matches``) when a farmer of this name and
    village exists, unless ``confirm_duplicate``."""
    if not body.confirm_duplicate:
        asked = farmer_api.duplicate_question(_station(request).db, body.name, body.village)
        if asked is not None:
            return asked
    return _station(request).db.add_producer(body.name, body.phone, body.village, actor=person.name)


@router.get("/products")
def list_products(person: Staff, request: Request) -> list[dict[str, Any]]:
    return _station(request).photos.grades.list_products()


@router.post("/products", status_code=201)
def create_product(body: NewProduct, person: Lead, request: Request) -> dict[str, Any]:
    """A product; ``grading`` names its grade rules (422 listing the valid keys)."""
    intake = _station(request).photos
    if body.grading is not None:
        intake.check_grading_key(body.grading)
    return intake.grades.add_product(
        body.name, body.unit_price_dong, body.grading, actor=person.name
    )


@router.post("/lots", status_code=201)
def record_lot(body: NewLot, person: Staff, request: Request) -> dict[str, Any]:
    lot = _station(request).record_lot(body.producer_id, body.product_id, actor=person.name)
    return lot.__dict__


@router.get("/lots")
def lots_of_day(
    person: Staff, request: Request, day: Annotated[date | None, Query()] = None
) -> list[dict[str, Any]]:
    """The lots of a station-local day (today unless ``day`` names one), newest first,
    with print and sync status, and their proposed and confirmed grade."""
    st = _station(request)
    lots = st.db.lots_of_day((day or st.today()).isoformat())
    grades = st.photos.grades.lot_grades([lot["id"] for lot in lots])
    for lot in lots:
        g = grades.get(lot["id"]) or {}
        lot["grade"] = g.get("grade")
        lot["proposed_grade"] = g.get("proposed_grade")
        lot["grade_confidence"] = g.get("confidence")
    return lots


@router.get("/print-jobs")
def print_jobs(person: Staff, request: Request) -> list[dict[str, Any]]:
    """The print jobs, newest first; ``fault`` says why one is held, waits or failed (the
    raw ``last_error`` stays in the database and the log)."""
    return [_job_json(job) for job in PrintQueue(_station(request).db).jobs()]


def _job_json(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k != "last_error"}
    fault = job_fault(job["status"], job.get("printer_status"))
    out["fault"] = fault.as_json() if fault else None
    return out


@router.post("/print-jobs/{job_id}/reprint")
def reprint(job_id: str, body: Reprint, person: Staff, request: Request) -> dict[str, Any]:
    """Print a label again: a held or failed job as it is; a printed one as a new job,
    a copy marked "BẢN SAO" (``id`` is then the copy's, ``copy_of`` the original's)."""
    st = _station(request)
    try:
        printing = PrintQueue(st.db).requeue(job_id, person.name, body.reason)
    except ValueError as exc:
        raise Refused("not_reprintable", f"Không in lại được: {exc}", str(exc)) from None
    if st.printer is not None:
        st.printer.wake()
    copy_of = job_id if printing != job_id else None
    return {"id": printing, "status": "queued", "copy": copy_of is not None, "copy_of": copy_of}


@router.post("/simulator")
def simulator(body: SimulatorCommand, person: Staff, request: Request) -> dict[str, Any]:
    sim = _station(request).simulator
    if sim is None:
        raise Refused(
            "no_simulator",
            "Trạm đang dùng cân thật; không có cân mô phỏng.",
            "This station uses a real scale; there is no simulator to control.",
            404,
        )
    if body.weight_g is not None:
        sim.set_weight(body.weight_g)
    if body.unstable is not None:
        sim.set_unstable(body.unstable)
    if body.overload is not None:
        sim.set_overload(body.overload)
    if body.connected is not None:
        if body.connected:
            sim.replug()
        else:
            sim.unplug()
    return {"weight_g": sim.weight_g, "stable": sim.stable}
