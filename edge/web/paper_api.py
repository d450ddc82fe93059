"""Money and paper (issue 12): the farmer's receipt of a lot, the day's totals and the
printed end-of-day summary. Every print is attributed to the signed-in person.

* ``POST /api/lots/{id}/receipt``: the lot's receipt (PHIẾU THU MUA). The first one needs
  nothing more; asking again needs a ``reason`` and prints a copy marked "BẢN SAO"
  (:meth:`edge.storage.print_queue.PrintQueue.requeue`), with the same price and amount
  as the first (a receipt is a snapshot).
* ``GET /api/totals?day=YYYY-MM-DD``: per farmer and per product, lots, grams and đồng of
  a station-local day (default today).
* ``POST /api/totals/print``: the end-of-day summary (TỔNG KẾT NGÀY) of that day.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Strict

from edge.printer.kinds import parse_label_data
from edge.printer.printable import text_rule
from edge.station import Refused, Station
from edge.storage.paper import day_totals, receipt_lot, summary_rows
from edge.storage.print_queue import PrintQueue
from edge.web.auth import Staff

router = APIRouter()

Reason = Annotated[str, Strict(), AfterValidator(text_rule(200))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ReceiptRequest(_Body):
    reason: Reason | None = None
    """Needed when the lot's receipt was printed already: why another (a copy)."""


class SummaryRequest(_Body):
    day: Annotated[date, Strict(False)] | None = None


def _station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def _printed(st: Station) -> None:
    if st.printer is not None:
        st.printer.wake()


@router.get("/lots/{lot_id}/receipt")
def receipt_preview(lot_id: str, person: Staff, request: Request) -> dict[str, Any]:
    """What the lot's receipt says (price, amount) and whether one was printed."""
    lot = receipt_lot(_station(request).db, lot_id)
    return {**asdict(lot), "amount_dong": lot.amount_dong}


@router.post("/lots/{lot_id}/receipt", status_code=201)
def print_receipt(
    lot_id: str, person: Staff, request: Request, body: ReceiptRequest | None = None
) -> dict[str, Any]:
    st = _station(request)
    lot = receipt_lot(st.db, lot_id)
    if lot.voided:
        raise Refused(
            "lot_voided",
            "Lô này đã bị hủy: không in phiếu thu mua cho lô đã hủy.",
            "This lot was voided: no receipt is printed for a voided lot.",
        )
    if lot.unit_price_dong is None or lot.amount_dong is None:
        raise Refused(
            "no_price",
            f"Sản phẩm “{lot.product_name}” chưa có giá: không in được phiếu thu mua. "
            "Nhờ trưởng điểm đặt giá cho sản phẩm.",
            f"“{lot.product_name}” has no price: no receipt can be printed. "
            "Ask the lead to set the product's price.",
        )
    queue = PrintQueue(st.db)
    if lot.receipt_job_id is not None:  # printed before: a copy, and why
        reason = body.reason if body is not None else None
        if reason is None:
            raise Refused(
                "reason_required",
                "Phiếu của lô này đã in rồi. Chọn lý do in lại (bản sao).",
                "This lot's receipt was printed already. Give a reason to print a copy.",
                422,
            )
        try:
            job_id = queue.requeue(lot.receipt_job_id, person.name, reason)
        except ValueError:
            raise Refused(
                "receipt_printing",
                "Phiếu của lô này đang chờ in. Xem máy in trước khi in lại.",
                "This lot's receipt is still waiting to print. Check the printer first.",
            ) from None
        _printed(st)
        return {
            "job_id": job_id,
            "copy": job_id != lot.receipt_job_id,
            "lot_id": lot.id,
            "day_no": lot.day_no,
            "amount_dong": lot.amount_dong,
        }
    grade = st.photos.grades.lot_grades([lot.id]).get(lot.id, {}).get("grade")
    data = {
        "collection_point": st.cfg.site.name,
        "lot_id": lot.id,
        "day_no": lot.day_no,
        "farmer": lot.producer_name,
        "product": lot.product_name,
        "grade": grade,  # the key: the receipt layout prints "reject" in words
        "net_g": lot.net_g,
        "recorded_at": lot.recorded_at,
        "unit_price_dong": lot.unit_price_dong,
        "staff": person.name,
    }
    parse_label_data("receipt", data)  # a receipt that could not print is never queued
    job_id = queue.enqueue("receipt", data, record_id=lot.id, actor=person.name)
    _printed(st)
    return {
        "job_id": job_id,
        "copy": False,
        "lot_id": lot.id,
        "day_no": lot.day_no,
        "amount_dong": lot.amount_dong,
    }


@router.get("/totals")
def totals(
    person: Staff, request: Request, day: Annotated[date | None, Query()] = None
) -> dict[str, Any]:
    """The day's lots, kg and đồng per farmer and per product (voided lots left out)."""
    st = _station(request)
    return day_totals(st.db, (day or st.today()).isoformat()).json()


@router.post("/totals/print", status_code=201)
def print_totals(
    person: Staff, request: Request, body: SummaryRequest | None = None
) -> dict[str, Any]:
    st = _station(request)
    day = (body.day if body is not None else None) or st.today()
    found = day_totals(st.db, day.isoformat())
    data = {
        "collection_point": st.cfg.site.name,
        "day": day.isoformat(),
        "printed_at": st.now().isoformat(),
        "staff": person.name,
        "products": summary_rows(found.products),
        "farmers": summary_rows(found.farmers),
    }
    parse_label_data("day_summary", data)
    job_id = PrintQueue(st.db).enqueue("day_summary", data, actor=person.name)
    _printed(st)
    return {"job_id": job_id, **found.json()}
