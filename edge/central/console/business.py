"""GET /business: kg received per product, grade and point per station-local day
(Asia/Ho_Chi_Minh) over a chosen range, with totals; orders open, packed and handed over
per point. Filters: province (the points table) and point.

Lots are read through the index on (site, recorded_at) of lot records, each lot's grade,
void and product correction through the index of what names a lot (schema.py): a range
of days costs the lots in it, never a point's whole stream. A voided lot counts for
nothing (how many and how much is said); a lot's product is the latest correction's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from edge.central.console.auth import Viewer
from edge.central.console.db import ConsoleDb
from edge.central.console.pages import render, strings

router = APIRouter()
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAYS = 92
DEFAULT_DAYS = 7
MAX_ROWS = 1000
"""Rows of the per-point table (and the orders table) shown; past it: narrow the filter."""
UNGRADED = ""

LOTS_BY_DAY = """
SELECT l.site,
       ((l.body->>'recorded_at')::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day,
       coalesce(x.product_id, l.body->>'product_id') AS product_id,
       coalesce(x.grade, '') AS grade,
       coalesce(x.voided, false) AS voided,
       count(*) AS lots,
       sum((l.body->>'net_g')::bigint) AS net_g
FROM records l
LEFT JOIN LATERAL (
    SELECT bool_or(r.kind = 'lot_void') AS voided,
           (array_agg(r.body->>'grade' ORDER BY r.seq DESC)
                FILTER (WHERE r.kind = 'grade'))[1] AS grade,
           (array_agg(r.body->>'product_id' ORDER BY r.seq DESC)
                FILTER (WHERE r.kind = 'lot_correction' AND r.body->>'product_id' IS NOT NULL))[1]
                AS product_id
    FROM (SELECT site, seq, kind, body FROM records
          WHERE (body->>'lot_id') = l.record_id
            AND kind IN ('grade', 'lot_void', 'lot_correction')
          OFFSET 0) r
    WHERE r.site = l.site
) x ON true
WHERE l.kind = 'lot' AND l.site = ANY(%(sites)s)
  AND (l.body->>'recorded_at') >= %(lo_text)s AND (l.body->>'recorded_at') < %(hi_text)s
  AND (l.body->>'recorded_at')::timestamptz >= %(lo)s
  AND (l.body->>'recorded_at')::timestamptz < %(hi)s
GROUP BY 1, 2, 3, 4, 5
"""

PRODUCT_NAMES = """
SELECT * FROM (
    SELECT site, seq, kind, record_id, body->>'product_id' AS product_id,
           body->>'name' AS name
    FROM records WHERE record_id = ANY(%(ids)s) AND kind = 'product'
    UNION ALL
    SELECT site, seq, kind, record_id, body->>'product_id', body->>'name'
    FROM records WHERE (body->>'product_id') = ANY(%(ids)s) AND kind = 'product_update'
    OFFSET 0
) found WHERE site = ANY(%(sites)s)
"""

ORDERS = """
SELECT o.site,
       count(*) FILTER (WHERE p.state IS NULL AND o.status <> 'cancelled') AS open,
       count(*) FILTER (WHERE p.state IN ('packed', 'returned')) AS packed,
       count(*) FILTER (WHERE p.state = 'handed_over') AS handed_over,
       count(*) FILTER (WHERE p.state IS NULL AND o.status = 'cancelled') AS cancelled
FROM orders o
LEFT JOIN LATERAL (
    SELECT s.state
    FROM (SELECT site, seq, record_id FROM records
          WHERE (body->>'order_id') = o.id AND kind = 'parcel' OFFSET 0) pr
    CROSS JOIN LATERAL (
        SELECT coalesce((
            SELECT CASE x.kind WHEN 'parcel_void' THEN 'voided'
                               WHEN 'parcel_handover' THEN 'handed_over'
                               ELSE 'returned' END
            FROM (SELECT site, seq, kind FROM records
                  WHERE (body->>'parcel_id') = pr.record_id
                    AND kind IN ('parcel_void', 'parcel_label', 'parcel_handover',
                                 'parcel_return')
                  OFFSET 0) x
            WHERE x.kind <> 'parcel_label' AND x.site = pr.site
            ORDER BY x.seq DESC LIMIT 1), 'packed') AS state
    ) s
    WHERE pr.site = o.site AND s.state <> 'voided'
    ORDER BY pr.seq DESC LIMIT 1
) p ON true
WHERE o.site = ANY(%(sites)s) AND o.imported_at >= %(lo)s AND o.imported_at < %(hi)s
GROUP BY o.site
"""


@dataclass(frozen=True)
class DayRange:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """The range as instants: local midnight of ``start`` to that after ``end``."""
        lo = datetime.combine(self.start, time(), LOCAL)
        hi = datetime.combine(self.end + timedelta(days=1), time(), LOCAL)
        return lo, hi


def today_local(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(LOCAL).date()


def parse_range(start: str, end: str, today: date) -> tuple[DayRange, str | None]:
    """The range asked for (``YYYY-MM-DD``, either may be empty), or the default (the last
    :data:`DEFAULT_DAYS` days up to ``today``) with why the request was not taken."""
    default = DayRange(today - timedelta(days=DEFAULT_DAYS - 1), today)
    try:
        hi = date.fromisoformat(end) if end else today
        lo = date.fromisoformat(start) if start else hi - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        return default, "business.bad_date"
    if hi < lo:
        return default, "business.reversed"
    if (hi - lo).days + 1 > MAX_DAYS:
        return default, "business.too_long"
    return DayRange(lo, hi), None


def _text_bound(at: datetime) -> str:
    """An instant as the start of an ISO text in UTC: lot times compare as text in the
    index (a margin of a day each side covers times written with an offset)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Business:
    range: DayRange
    sites: list[str]
    by_day: list[dict[str, Any]] = field(default_factory=list)  # day, product, grade
    by_point: list[dict[str, Any]] = field(default_factory=list)  # + site
    by_point_cut: bool = False
    totals: list[dict[str, Any]] = field(default_factory=list)  # product, grade
    total_g: int = 0
    total_lots: int = 0
    voided_lots: int = 0
    voided_g: int = 0
    orders: list[dict[str, Any]] = field(default_factory=list)
    orders_total: dict[str, int] = field(default_factory=dict)


def product_names(db: ConsoleDb, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(site, product id) -> the product's name now (its latest edit by seq)."""
    if not pairs:
        return {}
    ids = sorted({p for _s, p in pairs})
    sites = sorted({s for s, _p in pairs})
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for row in db.rows(PRODUCT_NAMES, {"ids": ids, "sites": sites}):
        pid = row["record_id"] if row["kind"] == "product" else row["product_id"]
        key = (row["site"], pid)
        if key in pairs and row["name"] and (key not in latest or latest[key][0] < row["seq"]):
            latest[key] = (int(row["seq"]), row["name"])
    return {key: name for key, (_seq, name) in latest.items()}


def fold_lots(rows: list[dict[str, Any]], names: dict[tuple[str, str], str]) -> Business:
    """The day/product/grade/point sums of the query's rows (pure)."""
    out = Business(DayRange(date.min, date.min), [])
    by_day: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_point: dict[tuple[date, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        lots, grams = int(row["lots"]), int(row["net_g"] or 0)
        if row["voided"]:
            out.voided_lots += lots
            out.voided_g += grams
            continue
        product = names.get((row["site"], row["product_id"]), row["product_id"] or "?")
        grade = row["grade"] or UNGRADED
        for acc in (
            by_day[(row["day"], product, grade)],
            by_point[(row["day"], row["site"], product, grade)],
            totals[(product, grade)],
        ):
            acc[0] += grams
            acc[1] += lots
        out.total_g += grams
        out.total_lots += lots
    out.by_day = [
        {"day": d, "product": p, "grade": g, "net_g": v[0], "lots": v[1]}
        for (d, p, g), v in sorted(
            by_day.items(), key=lambda kv: (-kv[0][0].toordinal(), kv[0][1:])
        )
    ]
    out.by_point = [
        {"day": d, "site": s, "product": p, "grade": g, "net_g": v[0], "lots": v[1]}
        for (d, s, p, g), v in sorted(
            by_point.items(), key=lambda kv: (-kv[0][0].toordinal(), kv[0][1:])
        )
    ]
    out.totals = [
        {"product": p, "grade": g, "net_g": v[0], "lots": v[1]}
        for (p, g), v in sorted(totals.items())
    ]
    return out


def chosen_sites(db: ConsoleDb, province: str, site: str) -> list[str]:
    if site:
        return [site]
    if province:
        return [
            r["site"] for r in db.rows("SELECT site FROM points WHERE province = %s", (province,))
        ]
    rows = db.rows(
        "SELECT site FROM progress WHERE stream = 'records' UNION SELECT site FROM points"
    )
    return sorted(r["site"] for r in rows)


def load_business(db: ConsoleDb, days: DayRange, sites: list[str]) -> Business:
    lo, hi = days.bounds()
    params = {
        "sites": sites,
        "lo": lo,
        "hi": hi,
        "lo_text": _text_bound(lo - timedelta(days=1)),
        "hi_text": _text_bound(hi + timedelta(days=1)),
    }
    rows = db.rows(LOTS_BY_DAY, params) if sites else []
    names = product_names(db, {(r["site"], r["product_id"]) for r in rows if r["product_id"]})
    out = fold_lots(rows, names)
    out.range, out.sites = days, sites
    if len(out.by_point) > MAX_ROWS:
        out.by_point, out.by_point_cut = out.by_point[:MAX_ROWS], True
    orders = db.rows(ORDERS, params) if sites else []
    orders.sort(key=lambda r: (-int(r["open"]), -int(r["packed"]), r["site"]))
    out.orders = orders[:MAX_ROWS]
    out.orders_total = {
        k: sum(int(r[k]) for r in orders) for k in ("open", "packed", "handed_over", "cancelled")
    }
    return out


@router.get("/business", response_class=HTMLResponse)
def business_page(
    request: Request,
    _who: Viewer,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    province: Annotated[str, Query(max_length=200)] = "",
    site: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    db: ConsoleDb = request.app.state.db
    days, problem = parse_range(start.strip(), end.strip(), today_local())
    province, site = province.strip(), site.strip().lower()
    provinces = [r["province"] for r in db.rows("SELECT DISTINCT province FROM points ORDER BY 1")]
    where, params = ("WHERE province = %s", (province,)) if province else ("", ())
    points = db.rows(f"SELECT site, name FROM points {where} ORDER BY name LIMIT 2000", params)
    sites = chosen_sites(db, province, site)
    try:
        data = load_business(db, days, sites)
    except psycopg.errors.QueryCanceled:  # the statement time limit: too many lots at once
        data, problem = Business(days, sites), "business.too_much"
    names = {p["site"]: p["name"] for p in points}
    missing = sorted({r["site"] for r in data.orders} | {r["site"] for r in data.by_point})
    missing = [s for s in missing if s not in names]
    if missing:
        rows = db.rows("SELECT site, name FROM points WHERE site = ANY(%s)", (missing,))
        names.update({r["site"]: r["name"] for r in rows})
    return render(
        request,
        "business.html",
        data=data,
        problem=problem,
        max_days=MAX_DAYS,
        max_rows=MAX_ROWS,
        province=province,
        site=site,
        provinces=provinces,
        points=points,
        names=names,
    )


strings(
    {
        "business.title": ("Kinh doanh", "Business"),
        "business.start": ("Từ ngày", "From"),
        "business.end": ("Đến ngày", "To"),
        "business.province": ("Tỉnh", "Province"),
        "business.all_provinces": ("Mọi tỉnh", "All provinces"),
        "business.point": ("Điểm (mã)", "Point (id)"),
        "business.show": ("Xem", "Show"),
        "business.bad_date": (
            "Ngày không đúng dạng (NNNN-TT-NN): đang hiện 7 ngày gần nhất.",
            "A date is not YYYY-MM-DD: showing the last 7 days.",
        ),
        "business.reversed": (
            "Ngày bắt đầu sau ngày kết thúc: đang hiện 7 ngày gần nhất.",
            "The start is after the end: showing the last 7 days.",
        ),
        "business.too_long": (
            "Khoảng ngày dài quá {days} ngày: chọn khoảng ngắn hơn. Đang hiện 7 ngày gần nhất.",
            "The range is longer than {days} days: choose a shorter one. Showing the last 7 days.",
        ),
        "business.too_much": (
            "Quá nhiều lô để cộng trong một lần: chọn một tỉnh, một điểm hoặc ít ngày hơn.",
            "Too many lots to sum at once: choose a province, a point or fewer days.",
        ),
        "business.range": (
            "{start} đến {end} ({days} ngày, theo giờ Việt Nam), {points} điểm",
            "{start} to {end} ({days} days, Vietnam time), {points} points",
        ),
        "business.received": ("Hàng nhận theo ngày", "Received per day"),
        "business.day": ("Ngày", "Day"),
        "business.product": ("Sản phẩm", "Product"),
        "business.grade": ("Hạng", "Grade"),
        "business.ungraded": ("chưa phân loại", "not graded"),
        "business.kg": ("Khối lượng", "Weight"),
        "business.lots": ("Số lô", "Lots"),
        "business.n_lots": ("{n} lô", "{n} lots"),
        "business.point_col": ("Điểm", "Point"),
        "business.by_point": ("Theo điểm và ngày", "Per point and day"),
        "business.cut": (
            "Chỉ hiện {rows} dòng đầu: chọn một tỉnh hoặc một điểm để xem hết.",
            "Only the first {rows} rows: choose a province or a point to see them all.",
        ),
        "business.totals": ("Tổng theo sản phẩm và hạng", "Totals per product and grade"),
        "business.total": ("Tổng cộng", "Total"),
        "business.none": ("Không có lô nào trong khoảng này.", "No lots in this range."),
        "business.voided": (
            "Không tính {lots} lô đã huỷ ({kg}). Sản phẩm theo lần sửa mới nhất của lô.",
            "{lots} voided lots ({kg}) are not counted. Products as last corrected.",
        ),
        "business.orders": ("Đơn hàng theo điểm", "Orders per point"),
        "business.orders_note": (
            "Đơn nhập về trung tâm trong khoảng ngày này, với trạng thái hiện nay.",
            "Orders imported at central in this range, in their state now.",
        ),
        "business.open": ("Chưa đóng gói", "Open"),
        "business.packed": ("Đã đóng gói", "Packed"),
        "business.handed_over": ("Đã bàn giao", "Handed over"),
        "business.cancelled": ("Đã huỷ", "Cancelled"),
        "business.no_orders": ("Không có đơn nào trong khoảng này.", "No orders in this range."),
    }
)
