"""Orders and packing (issue 13, docs/packing.md): the routes the packing page calls.
Each takes the signed-in person; the work is ``station.orders`` (edge.orders.packing).

* ``GET /api/orders?status=open|packed|cancelled|all&limit=500``: orders, oldest first.
* ``GET /api/orders/picklist``: what to take from stock, stock on hand, orders the stock
  cannot cover, tracking numbers left per carrier.
* ``GET /api/orders/lookup?code=``: the order a scanned slip names (order id, package id
  or tracking number); ``GET /api/orders/{id}``: one order (404 ``order_not_found``).
* ``POST /api/orders/{id}/pack`` ``{"override_reason": null}``: check-weigh with the
  scale's stable reading and pack (201); only a lead sends ``override_reason`` (403).
* ``POST /api/parcels/{id}/void`` ``{"reason"}`` (a lead): the order opens again.
* ``POST /api/parcels/{id}/reprint`` ``{"reason"}`` (optional): a copy of the label.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Strict

from edge.orders.packing import Orders
from edge.printer.printable import text_rule
from edge.station import Station
from edge.web.auth import Lead, Staff

router = APIRouter()

Reason = Annotated[str, Strict(), AfterValidator(text_rule(200))]
REPRINT_REASON = "In lại nhãn vận đơn"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PackRequest(_Body):
    override_reason: Reason | None = None
    """A lead passing a weight outside the tolerance, and why."""


class VoidRequest(_Body):
    reason: Reason


class ReprintRequest(_Body):
    reason: Reason | None = None


def _orders(request: Request) -> Orders:
    station: Station = request.app.state.station
    return station.orders


@router.get("/orders")
def list_orders(
    person: Staff,
    request: Request,
    status: Literal["open", "packed", "cancelled", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    return _orders(request).list(status, limit)


@router.get("/orders/picklist")
def picklist(person: Staff, request: Request) -> dict[str, Any]:
    return _orders(request).picklist()


@router.get("/orders/lookup")
def lookup(
    person: Staff,
    request: Request,
    code: Annotated[str, Query(min_length=1, max_length=100)],
) -> dict[str, Any]:
    return _orders(request).lookup(code)


@router.get("/orders/{order_id}")
def get_order(order_id: str, person: Staff, request: Request) -> dict[str, Any]:
    return _orders(request).get(order_id)


@router.post("/orders/{order_id}/pack", status_code=201)
def pack(
    order_id: str, person: Staff, request: Request, body: PackRequest | None = None
) -> dict[str, Any]:
    reason = body.override_reason if body is not None else None
    return _orders(request).pack(order_id, person, reason)


@router.post("/parcels/{parcel_id}/void")
def void(parcel_id: str, body: VoidRequest, person: Lead, request: Request) -> dict[str, Any]:
    return _orders(request).void(parcel_id, person, body.reason)


@router.post("/parcels/{parcel_id}/reprint", status_code=201)
def reprint(
    parcel_id: str, person: Staff, request: Request, body: ReprintRequest | None = None
) -> dict[str, Any]:
    reason = (body.reason if body is not None else None) or REPRINT_REASON
    return _orders(request).reprint(parcel_id, person, reason)
