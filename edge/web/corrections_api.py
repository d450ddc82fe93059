"""Corrections without deleting history (issue 12), for leads only: void a lot, correct its
farmer or product, edit a farmer or a product, merge two farmers
(:mod:`edge.storage.corrections`). Every change is attributed to the signed-in lead
(``person``), never to a name in the body; a lot already voided answers 409.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from edge.printer.printable import UnitPriceDong
from edge.station import Station
from edge.storage.corrections import Corrections
from edge.web.api import PhoneNumber, RecordId, Text120, Text200, _Body
from edge.web.auth import Lead, Staff

router = APIRouter()


class VoidLot(_Body):
    reason: Text200


class CorrectLot(_Body):
    producer_id: RecordId | None = None
    product_id: RecordId | None = None
    reason: Text200

    @model_validator(mode="after")
    def _something(self) -> CorrectLot:
        if self.producer_id is None and self.product_id is None:
            raise ValueError("give producer_id, product_id or both")
        return self


class EditProducer(_Body):
    """Only the fields given change; null clears phone or village."""

    name: Text120 | None = None
    phone: PhoneNumber | None = None
    village: Text120 | None = None


class EditProduct(_Body):
    """Only the fields given change; null clears the price or the grading rules."""

    name: Text120 | None = None
    unit_price_dong: UnitPriceDong | None = None
    grading: str | None = Field(None, min_length=1, max_length=40)


class Merge(_Body):
    into: RecordId
    reason: Text200


def _station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def _corrections(request: Request) -> Corrections:
    return Corrections(_station(request).db)


def _lot(c: Corrections, lot_id: str) -> dict[str, Any]:
    return asdict(c.lot(lot_id))


@router.post("/lots/{lot_id}/void")
def void_lot(lot_id: str, body: VoidLot, person: Lead, request: Request) -> dict[str, Any]:
    """Void a lot (it stays recorded; a reprint of its label says "ĐÃ HỦY")."""
    c = _corrections(request)
    row = c.void_lot(lot_id, body.reason, person)
    return {"correction_id": row["id"], "lot": _lot(c, lot_id)}


@router.post("/lots/{lot_id}/correct")
def correct_lot(lot_id: str, body: CorrectLot, person: Lead, request: Request) -> dict[str, Any]:
    """Correct a lot's farmer and/or product (the lot as recorded stays in history)."""
    c = _corrections(request)
    row = c.correct_lot(
        lot_id, body.reason, person, producer_id=body.producer_id, product_id=body.product_id
    )
    return {"correction_id": row["id"], "lot": _lot(c, lot_id)}


@router.get("/lots/{lot_id}/corrections")
def lot_corrections(lot_id: str, person: Staff, request: Request) -> dict[str, Any]:
    """The lot as it stands now and its corrections, oldest first."""
    c = _corrections(request)
    return {"lot": _lot(c, lot_id), "corrections": c.history(lot_id)}


def _changes(body: BaseModel) -> dict[str, Any]:
    """The fields the body names; a null name means "keep it" (a name is never cleared)."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    if "name" in changes and changes["name"] is None:
        del changes["name"]
    return changes


@router.post("/producers/{producer_id}")
def edit_producer(
    producer_id: str, body: EditProducer, person: Lead, request: Request
) -> dict[str, Any]:
    changes = _changes(body)
    return _corrections(request).edit_producer(producer_id, changes, person)


@router.post("/products/{product_id}")
def edit_product(
    product_id: str, body: EditProduct, person: Lead, request: Request
) -> dict[str, Any]:
    changes = _changes(body)
    if changes.get("grading") is not None:
        _station(request).photos.check_grading_key(changes["grading"])
    return _corrections(request).edit_product(product_id, changes, person)


@router.post("/producers/{producer_id}/merge")
def merge_producers(
    producer_id: str, body: Merge, person: Lead, request: Request
) -> dict[str, Any]:
    """Merge this farmer into ``into``: its lots count for ``into``; it leaves the picker."""
    return _corrections(request).merge_producers(producer_id, body.into, body.reason, person)
