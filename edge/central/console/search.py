"""GET /search?q=: one box for a lot id, a tracking number, a parcel or manifest id or a
scanned QR payload; the chain parcel -> lots -> farmers -> grades -> handover and returns
(edge.central.console.trace does the finding)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from edge.central.console.auth import Viewer
from edge.central.console.db import ConsoleDb
from edge.central.console.pages import render, strings
from edge.central.console.trace import FORGED, MAX_QUERY, Found, classify, search

router = APIRouter()
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def local_time(value: str | None) -> str:
    """An ISO time as the points read it (Asia/Ho_Chi_Minh), to the minute."""
    if not value:
        return "–"
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if at.tzinfo is None:
        return value
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def point_names(db: ConsoleDb, found: Found) -> dict[str, str]:
    sites = {c.site for c in found.parcels}
    if found.lot is not None:
        sites.add(found.lot.site)
    if found.manifest is not None:
        sites.add(found.manifest.site)
    if not sites:
        return {}
    rows = db.rows("SELECT site, name FROM points WHERE site = ANY(%s)", (sorted(sites),))
    return {r["site"]: r["name"] for r in rows}


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    _who: Viewer,
    q: Annotated[str, Query(max_length=1000)] = "",
) -> HTMLResponse:
    settings = request.app.state.settings
    db: ConsoleDb = request.app.state.db
    query = classify(q, settings.site_keys_dir)
    found = Found()
    if query.kind in ("qr", "uuid", "tracking") and query.signature != FORGED:
        found = search(db, query)
    photos = any(g.photo_id for c in found.parcels for lot in c.lots for g in lot.grades) or (
        found.lot is not None and any(g.photo_id for g in found.lot.grades)
    )
    return render(
        request,
        "search.html",
        q=query.text,
        query=query,
        found=found,
        points=point_names(db, found),
        photos=photos,
        when=local_time,
        max_query=MAX_QUERY,
    )


def _strings() -> dict[str, tuple[str, str]]:
    s: dict[str, Any] = {
        "search.title": ("Tra cứu nguồn gốc", "Trace search"),
        "search.box": (
            "Mã lô, mã vận đơn, mã kiện, mã biên bản, hoặc quét mã QR",
            "Lot id, tracking number, parcel id, manifest id, or scan a QR code",
        ),
        "search.button": ("Tìm", "Search"),
        "search.not_understood": ("Không hiểu nội dung tìm kiếm", "Not understood"),
        "search.none": ("Không tìm thấy gì cho", "Nothing found for"),
        "search.other": (
            "Mã này là một bản ghi loại «{kind}», không phải lô, kiện hay biên bản.",
            "This id is a «{kind}» record, not a lot, parcel or manifest.",
        ),
        "search.sig.valid": ("Chữ ký đúng", "Signature valid"),
        "search.sig.forged": (
            "Chữ ký sai: mã giả hoặc đã bị sửa. Không hiển thị chuỗi nguồn gốc.",
            "Signature wrong: forged or altered. No chain is shown.",
        ),
        "search.sig.unchecked": (
            "Chưa kiểm chữ ký (không có khoá của điểm này)",
            "Signature not checked (no key for this point)",
        ),
        "search.qr_of": ("Mã QR của điểm", "QR code of point"),
        "search.parcel": ("Kiện hàng", "Parcel"),
        "search.order": ("Đơn hàng", "Order"),
        "search.carrier": ("Hãng vận chuyển", "Carrier"),
        "search.tracking": ("Mã vận đơn", "Tracking number"),
        "search.net": ("Khối lượng hàng", "Net weight"),
        "search.gross": ("Cân cả bì", "Gross weight"),
        "search.packed_by": ("Người đóng gói", "Packed by"),
        "search.packed_at": ("Đóng gói lúc", "Packed at"),
        "search.point": ("Điểm", "Point"),
        "search.state": ("Trạng thái", "State"),
        "search.state.packed": ("Đã đóng gói, ở điểm", "Packed, at the point"),
        "search.state.handed_over": ("Đã bàn giao cho bưu tá", "Handed over"),
        "search.state.returned": ("Bị hoàn về điểm", "Returned to the point"),
        "search.state.voided": ("Đã huỷ", "Voided"),
        "search.history": ("Diễn biến", "History"),
        "search.ev.packed": ("Đóng gói", "Packed"),
        "search.ev.label": ("In nhãn", "Label printed"),
        "search.ev.copy": ("In lại nhãn", "Label copy printed"),
        "search.ev.handed_over": ("Bàn giao", "Handed over"),
        "search.ev.returned": ("Hoàn về", "Returned"),
        "search.ev.voided": ("Huỷ kiện", "Voided"),
        "search.courier": ("Bưu tá", "Courier"),
        "search.manifest": ("Biên bản bàn giao", "Manifest"),
        "search.reason": ("Lý do", "Reason"),
        "search.lots": ("Các lô trong kiện", "Lots in the parcel"),
        "search.lot": ("Lô", "Lot"),
        "search.farmer": ("Nông dân", "Farmer"),
        "search.village": ("Bản", "Village"),
        "search.product": ("Sản phẩm", "Product"),
        "search.lot_net": ("Khối lượng lô", "Lot weight"),
        "search.packed_g": ("Lấy vào kiện", "Packed from it"),
        "search.recorded_at": ("Cân lúc", "Weighed at"),
        "search.day_no": ("Số lô trong ngày", "Lot of the day"),
        "search.grades": ("Phân loại", "Grades"),
        "search.grade": ("Hạng", "Grade"),
        "search.proposed": ("đề xuất", "proposed"),
        "search.method": ("cách", "method"),
        "search.confirmed_by": ("xác nhận bởi", "confirmed by"),
        "search.overridden": ("đã sửa hạng đề xuất", "proposal overridden"),
        "search.no_grade": ("Chưa phân loại", "Not graded"),
        "search.voided": ("Lô đã huỷ", "Lot voided"),
        "search.corrected": ("đã sửa, trước là", "corrected, was"),
        "search.lot_missing": (
            "Bản ghi của lô này chưa về trung tâm",
            "This lot's record has not reached central yet",
        ),
        "search.name_missing": (
            "tên chưa về trung tâm",
            "name not at central yet",
        ),
        "search.lot_parcels": ("Các kiện đóng từ lô này", "Parcels packed from this lot"),
        "search.no_parcels": ("Lô này chưa được đóng vào kiện nào", "No parcel packed from it yet"),
        "search.manifest_missing": (
            "Bản ghi biên bản chưa về trung tâm; các kiện đã bàn giao:",
            "The manifest record has not reached central yet; parcels handed over so far:",
        ),
        "search.closed_at": ("Chốt lúc", "Closed at"),
        "search.closed_by": ("Người chốt", "Closed by"),
        "search.count": ("Số kiện", "Parcels"),
        "search.total": ("Tổng khối lượng", "Total weight"),
        "search.cod": ("Tiền thu hộ", "COD"),
        "search.missing": ("Thiếu", "Missing"),
        "search.confirmed_with": ("Xác nhận bằng", "Confirmed with"),
        "search.photos": (
            "Ảnh thu nhỏ: luồng bulk chưa mang ảnh về trung tâm, nên chưa có ảnh để xem.",
            "Thumbnails: the bulk stream does not carry photos to central yet: none to show.",
        ),
    }
    return s


strings(_strings())
