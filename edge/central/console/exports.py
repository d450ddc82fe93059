"""Exports for the accountants: lots, parcels and handovers (manifests) of a date range,
for a province or a point, as CSV (UTF-8 with a BOM, streamed) or XLSX (openpyxl,
write-only). GET /exports is the form; GET /exports/<what>.<csv|xlsx> the file.

Names are resolved from the points' own records (farmer, product as last edited; a
lot's farmer and product as corrected, a merged farmer as the one it was merged into),
weights in grams and kg, money in đồng, dates and times station-local
(Asia/Ho_Chi_Minh). A voided lot or parcel is in the file, marked. The range is at most
:data:`MAX_DAYS` days and a file at most :data:`MAX_ROWS` rows (more: 400, narrow the
range). The queries run on the indexes schema.py adds (the records of a kind by site
and time; what refers to a lot or a parcel; the farmers' and products' records).
"""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from edge.central.console.auth import Viewer, console_db
from edge.central.console.db import ConsoleDb
from edge.central.console.pages import render, strings
from edge.central.lots import site_view
from edge.central.parcels import fold as fold_parcels

router = APIRouter()

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAYS = 92
MAX_ROWS = 200_000
PAGE = 5_000
WHATS = ("lots", "parcels", "handovers")
FORMATS = ("csv", "xlsx")
NAME_KINDS = "('producer', 'product', 'producer_update', 'product_update', 'producer_merge')"
LOT_REF_KINDS = "('grade', 'lot_void', 'lot_correction')"
PARCEL_REF_KINDS = "('parcel_void', 'parcel_label', 'parcel_handover', 'parcel_return')"
"""As the partial indexes of schema.py say them (literal, so the planner uses them)."""
TIME_KEY = {"lots": ("lot", "recorded_at"), "parcels": ("parcel", "packed_at")}
TIME_KEY["handovers"] = ("manifest", "closed_at")


class ExportRefused(ValueError):
    """The request cannot be exported: the message (a strings key) says why."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Choice:
    what: str
    start: date
    end: date  # inclusive
    sites: list[str]
    place: str  # "all", a province or a site: for the file name

    @property
    def bounds(self) -> tuple[str, str]:
        """The range as UTC ISO texts (as the records carry them), end exclusive."""
        lo = datetime.combine(self.start, time(), LOCAL).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(), LOCAL).astimezone(UTC)
        return _iso(lo), _iso(hi)

    def file_name(self, fmt: str) -> str:
        plain = unicodedata.normalize("NFKD", self.place.replace("đ", "d").replace("Đ", "D"))
        place = "".join(
            ch if ch.isascii() and (ch.isalnum() or ch == "-") else "_"
            for ch in plain
            if not unicodedata.combining(ch)
        )
        return f"{self.what}_{place}_{self.start.isoformat()}_{self.end.isoformat()}.{fmt}"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _local(text: Any) -> tuple[str, str]:
    """A record's UTC ISO time -> (station-local date, time)."""
    if not isinstance(text, str) or not text:
        return "", ""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(LOCAL)
    except ValueError:
        return "", ""
    return t.date().isoformat(), t.strftime("%H:%M:%S")


def _kg(grams: Any) -> float | None:
    return round(int(grams) / 1000, 3) if isinstance(grams, int) else None


def choose(db: ConsoleDb, what: str, start: str, end: str, province: str, site: str) -> Choice:
    """The request checked: ExportRefused for an unknown kind, a bad or too long range,
    an unknown place."""
    if what not in WHATS:
        raise ExportRefused("exp.err.what")
    try:
        lo, hi = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ExportRefused("exp.err.dates") from None
    if hi < lo:
        raise ExportRefused("exp.err.order")
    if (hi - lo).days + 1 > MAX_DAYS:
        raise ExportRefused("exp.err.long", days=MAX_DAYS)
    site, province = site.strip(), province.strip()
    if site:
        known = db.scalar(
            "SELECT count(*) FROM (SELECT site FROM points WHERE site = %s "
            "UNION SELECT site FROM sites WHERE site = %s) s",
            (site, site),
        )
        if not known:
            raise ExportRefused("exp.err.site")
        return Choice(what, lo, hi, [site], site)
    if province:
        rows = db.rows("SELECT site FROM points WHERE province = %s ORDER BY site", (province,))
        if not rows:
            raise ExportRefused("exp.err.province")
        return Choice(what, lo, hi, [str(r["site"]) for r in rows], province)
    rows = db.rows("SELECT site FROM points UNION SELECT site FROM sites ORDER BY site")
    return Choice(what, lo, hi, [str(r["site"]) for r in rows], "all")


def count_rows(db: ConsoleDb, choice: Choice) -> int:
    kind, key = TIME_KEY[choice.what]
    lo, hi = choice.bounds
    return int(
        db.scalar(
            f"SELECT count(*) FROM records WHERE kind = '{kind}' AND site = ANY(%s) "
            f"AND body->>'{key}' >= %s AND body->>'{key}' < %s",
            (choice.sites, lo, hi),
        )
    )


# -- rows -------------------------------------------------------------------------------

LOT_COLUMNS = [
    ("site", "Mã điểm / Site"), ("point", "Điểm / Point"), ("province", "Tỉnh / Province"),
    ("date", "Ngày / Date"), ("time", "Giờ / Time"), ("day_no", "Số lô trong ngày / Day no."),
    ("lot_id", "Mã lô / Lot id"), ("farmer", "Nông dân / Farmer"),
    ("phone", "Điện thoại / Phone"), ("village", "Thôn bản / Village"),
    ("product", "Sản phẩm / Product"), ("grade", "Hạng / Grade"), ("net_g", "Tịnh (g)"),
    ("net_kg", "Tịnh (kg)"), ("tare_g", "Bì (g)"), ("unit_price_dong", "Đơn giá (đồng/kg)"),
    ("amount_dong", "Thành tiền (đồng)"), ("voided", "Đã huỷ / Voided"),
    ("void_reason", "Lý do huỷ / Void reason"),
]  # fmt: skip
PARCEL_COLUMNS = [
    ("site", "Mã điểm / Site"), ("point", "Điểm / Point"), ("province", "Tỉnh / Province"),
    ("date", "Ngày đóng / Packed date"), ("time", "Giờ / Time"),
    ("parcel_id", "Mã kiện / Parcel id"), ("order_id", "Mã đơn / Order id"),
    ("tracking", "Mã vận đơn / Tracking"), ("carrier", "Hãng / Carrier"),
    ("goods", "Hàng / Goods"), ("net_g", "Tịnh (g)"), ("net_kg", "Tịnh (kg)"),
    ("gross_g", "Cân được (g)"), ("gross_kg", "Cân được (kg)"),
    ("amount_dong", "Giá trị đơn (đồng)"), ("cod_dong", "Thu hộ COD (đồng)"),
    ("packed_by", "Người đóng / Packed by"), ("state", "Trạng thái / State"),
    ("courier", "Người giao / Courier"), ("handed_over_at", "Bàn giao lúc / Handed over"),
    ("voided", "Đã huỷ / Voided"), ("void_reason", "Lý do huỷ / Void reason"),
]  # fmt: skip
HANDOVER_COLUMNS = [
    ("site", "Mã điểm / Site"), ("point", "Điểm / Point"), ("province", "Tỉnh / Province"),
    ("date", "Ngày / Date"), ("time", "Giờ / Time"), ("manifest_id", "Biên bản / Manifest"),
    ("carrier", "Hãng / Carrier"), ("courier", "Người giao / Courier"),
    ("courier_id", "Mã người giao / Courier id"), ("by", "Người bàn giao / Handed by"),
    ("count", "Số kiện / Parcels"), ("total_g", "Tổng (g)"), ("total_kg", "Tổng (kg)"),
    ("cod_dong", "Thu hộ COD (đồng)"), ("confirmed_with", "Xác nhận / Confirmed with"),
    ("missing", "Thiếu / Missing"),
]  # fmt: skip
COLUMNS = {"lots": LOT_COLUMNS, "parcels": PARCEL_COLUMNS, "handovers": HANDOVER_COLUMNS}


def _points(db: ConsoleDb, sites: list[str]) -> dict[str, dict[str, Any]]:
    rows = db.rows("SELECT site, name, province FROM points WHERE site = ANY(%s)", (sites,))
    return {str(r["site"]): r for r in rows}


def _pages(db: ConsoleDb, choice: Choice) -> Iterator[list[dict[str, Any]]]:
    """The range's main records by site and time, a page at a time (keyset on the index
    (site, time, seq))."""
    kind, key = TIME_KEY[choice.what]
    lo, hi = choice.bounds
    after: tuple[str, str, int] = ("", "", -1)
    while True:
        page = db.rows(
            f"SELECT site, seq, body, body->>'{key}' AS at FROM records "
            f"WHERE kind = '{kind}' AND site = ANY(%s) "
            f"AND body->>'{key}' >= %s AND body->>'{key}' < %s "
            f"AND (site, body->>'{key}', seq) > (%s, %s, %s) "
            f"ORDER BY site, body->>'{key}', seq LIMIT %s",
            (choice.sites, lo, hi, *after, PAGE),
        )
        if not page:
            return
        yield page
        after = (str(page[-1]["site"]), str(page[-1]["at"]), int(page[-1]["seq"]))


def _with_seq(row: dict[str, Any]) -> dict[str, Any]:
    return {**row["body"], "seq": int(row["seq"])}


class _Names:
    """Farmers' and products' names (and prices by seq) of the sites met, loaded once."""

    def __init__(self, db: ConsoleDb) -> None:
        self.db = db
        self.records: dict[str, list[dict[str, Any]]] = {}

    def of(self, site: str) -> list[dict[str, Any]]:
        if site not in self.records:
            rows = self.db.rows(
                "SELECT seq, body FROM records WHERE site = %s AND stream = 'records' "
                f"AND kind IN {NAME_KINDS} ORDER BY seq",
                (site,),
            )
            self.records[site] = [_with_seq(r) for r in rows]
        return self.records[site]


def _price_at(names: list[dict[str, Any]], product_id: str, seq: int) -> int | None:
    """The product's unit price as the point had it when the record of ``seq`` was made."""
    price = None
    for rec in names:
        if rec["seq"] > seq:
            break
        kind = rec.get("type")
        named = rec.get("id") if kind == "product" else rec.get("product_id")
        if kind in ("product", "product_update") and named == product_id:
            price = rec.get("unit_price_dong")
    return price if isinstance(price, int) else None


def _refs(db: ConsoleDb, field: str, kinds: str, ids: list[str]) -> list[dict[str, Any]]:
    """The records of ``kinds`` whose ``field`` is one of ``ids``, by site and seq."""
    return db.rows(
        f"SELECT site, seq, body FROM records WHERE body->>'{field}' = ANY(%s) "
        f"AND kind IN {kinds} ORDER BY site, seq",
        (ids,),
    )


def lot_rows(db: ConsoleDb, choice: Choice) -> Iterator[dict[str, Any]]:
    points = _points(db, choice.sites)
    names = _Names(db)
    for page in _pages(db, choice):
        ids = [str(r["body"]["id"]) for r in page]
        refs = _refs(db, "lot_id", LOT_REF_KINDS, ids)
        for site in dict.fromkeys(str(r["site"]) for r in page):
            lots = [_with_seq(r) for r in page if r["site"] == site]
            mine = [_with_seq(r) for r in refs if r["site"] == site]
            named = names.of(site)
            view = site_view(sorted([*named, *lots, *mine], key=lambda r: r["seq"]))
            grades: dict[str, str] = {}
            for rec in mine:
                if rec.get("type") == "grade" and isinstance(rec.get("grade"), str):
                    grades[str(rec["lot_id"])] = rec["grade"]
            point = points.get(site, {})
            for rec in lots:
                lot = view.lots[rec["id"]]
                producer = view.producers.get(lot.producer_id)
                product = view.products.get(lot.product_id)
                price = _price_at(named, lot.product_id, lot.seq)
                day, clock = _local(lot.recorded_at)
                yield {
                    "site": site,
                    "point": point.get("name", ""),
                    "province": point.get("province", ""),
                    "date": day,
                    "time": clock,
                    "day_no": rec.get("day_no"),
                    "lot_id": lot.id,
                    "farmer": producer.name if producer else lot.producer_id,
                    "phone": producer.phone if producer else None,
                    "village": producer.village if producer else None,
                    "product": product.name if product else lot.product_id,
                    "grade": grades.get(lot.id),
                    "net_g": lot.net_g,
                    "net_kg": _kg(lot.net_g),
                    "tare_g": rec.get("tare_g"),
                    "unit_price_dong": price,
                    "amount_dong": None if price is None else round(price * lot.net_g / 1000),
                    "voided": "x" if lot.voided else "",
                    "void_reason": lot.void_reason,
                }


def parcel_rows(db: ConsoleDb, choice: Choice) -> Iterator[dict[str, Any]]:
    points = _points(db, choice.sites)
    for page in _pages(db, choice):
        ids = [str(r["body"]["id"]) for r in page]
        refs = _refs(db, "parcel_id", PARCEL_REF_KINDS, ids)
        order_ids = list({str(r["body"].get("order_id")) for r in page})
        orders = {
            str(o["id"]): o["body"]
            for o in db.rows("SELECT id, body FROM orders WHERE id = ANY(%s)", (order_ids,))
        }
        for site in dict.fromkeys(str(r["site"]) for r in page):
            mine = [r for r in [*page, *refs] if r["site"] == site]
            view = fold_parcels(_with_seq(r) for r in sorted(mine, key=lambda r: int(r["seq"])))
            point = points.get(site, {})
            for row in page:
                if row["site"] != site:
                    continue
                parcel = view.parcels[str(row["body"]["id"])]
                order = orders.get(parcel.order_id, {})
                day, clock = _local(parcel.packed_at)
                goods = "; ".join(
                    f"{x.get('product')} {x.get('grade') or ''} ×{x.get('quantity')}".replace(
                        "  ", " "
                    )
                    for x in parcel.lines
                )
                yield {
                    "site": site,
                    "point": point.get("name", ""),
                    "province": point.get("province", ""),
                    "date": day,
                    "time": clock,
                    "parcel_id": parcel.id,
                    "order_id": parcel.order_id,
                    "tracking": parcel.tracking,
                    "carrier": parcel.carrier,
                    "goods": goods,
                    "net_g": parcel.net_g,
                    "net_kg": _kg(parcel.net_g),
                    "gross_g": parcel.gross_g,
                    "gross_kg": _kg(parcel.gross_g),
                    "amount_dong": order.get("amount_dong"),
                    "cod_dong": order.get("cod_dong"),
                    "packed_by": parcel.by,
                    "state": parcel.state,
                    "courier": parcel.courier,
                    "handed_over_at": " ".join(_local(parcel.handed_over_at)).strip() or None,
                    "voided": "x" if parcel.state == "voided" else "",
                    "void_reason": parcel.void_reason,
                }


def handover_rows(db: ConsoleDb, choice: Choice) -> Iterator[dict[str, Any]]:
    points = _points(db, choice.sites)
    for page in _pages(db, choice):
        for row in page:
            rec, site = row["body"], str(row["site"])
            point = points.get(site, {})
            day, clock = _local(rec.get("closed_at"))
            missing = rec.get("missing")
            yield {
                "site": site,
                "point": point.get("name", ""),
                "province": point.get("province", ""),
                "date": day,
                "time": clock,
                "manifest_id": rec.get("id"),
                "carrier": rec.get("carrier"),
                "courier": rec.get("courier"),
                "courier_id": rec.get("courier_id"),
                "by": rec.get("by"),
                "count": rec.get("count"),
                "total_g": rec.get("total_g"),
                "total_kg": _kg(rec.get("total_g")),
                "cod_dong": rec.get("cod_dong"),
                "confirmed_with": rec.get("confirmed_with"),
                "missing": len(missing) if isinstance(missing, list) else missing,
            }


ROWS = {"lots": lot_rows, "parcels": parcel_rows, "handovers": handover_rows}


# -- files ------------------------------------------------------------------------------


def csv_chunks(choice: Choice, rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """UTF-8 with a BOM (Excel then reads Vietnamese right), a chunk per ~1,000 rows."""
    columns = COLUMNS[choice.what]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _, label in columns])
    first = True
    for n, row in enumerate(rows, start=1):
        writer.writerow(["" if row[k] is None else row[k] for k, _ in columns])
        if n % 1000 == 0:
            yield (b"\xef\xbb\xbf" if first else b"") + out.getvalue().encode()
            first = False
            out.seek(0)
            out.truncate()
    yield (b"\xef\xbb\xbf" if first else b"") + out.getvalue().encode()


def xlsx_file(choice: Choice, rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """The workbook (write-only: rows are not kept in memory), written to a temporary
    file and sent in chunks."""
    from openpyxl import Workbook

    columns = COLUMNS[choice.what]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(choice.what)
    ws.append([label for _, label in columns])
    for row in rows:
        ws.append([row[k] for k, _ in columns])
    with tempfile.TemporaryFile() as tmp:
        wb.save(tmp)
        tmp.seek(0)
        while chunk := tmp.read(256 * 1024):
            yield chunk


# -- routes -----------------------------------------------------------------------------


def _default_range() -> tuple[str, str]:
    today = datetime.now(LOCAL).date()
    return (today - timedelta(days=6)).isoformat(), today.isoformat()


def _page(request: Request, status: int = 200, **form: Any) -> Response:
    db = console_db(request)
    start, end = _default_range()
    values = {"what": "lots", "start": start, "end": end, "province": "", "site": "", "fmt": "csv"}
    values.update({k: v for k, v in form.items() if k in values and v is not None})
    provinces = [
        str(r["province"])
        for r in db.rows("SELECT DISTINCT province FROM points ORDER BY province")
    ]
    return render(
        request,
        "exports.html",
        status,
        values=values,
        error=form.get("error"),
        provinces=provinces,
        whats=WHATS,
        formats=FORMATS,
        max_days=MAX_DAYS,
        max_rows=MAX_ROWS,
    )


@router.get("/exports", include_in_schema=False)
def exports_page(request: Request, _who: Viewer) -> Response:
    return _page(request)


@router.get("/exports/file", include_in_schema=False)
def export_form(
    request: Request,
    _who: Viewer,
    what: Annotated[str, Query(max_length=20)] = "lots",
    start: Annotated[str, Query(max_length=20)] = "",
    end: Annotated[str, Query(max_length=20)] = "",
    province: Annotated[str, Query(max_length=120)] = "",
    site: Annotated[str, Query(max_length=64)] = "",
    fmt: Annotated[str, Query(max_length=8)] = "csv",
) -> Response:
    """The form's target: checked, then sent on to the file (or the form with the reason)."""
    form = {"what": what, "start": start, "end": end, "province": province, "site": site}
    try:
        if fmt not in FORMATS:
            raise ExportRefused("exp.err.what")
        choice = choose(console_db(request), what, start, end, province, site)
        _check_size(console_db(request), choice)
    except ExportRefused as exc:
        return _page(request, 400, fmt=fmt, error=(exc.key, exc.values), **form)
    query = request.url.query
    return RedirectResponse(f"/exports/{choice.what}.{fmt}?{query}", 303)


def _check_size(db: ConsoleDb, choice: Choice) -> None:
    n = count_rows(db, choice)
    if n > MAX_ROWS:
        raise ExportRefused("exp.err.rows", n=f"{n:,}", max=f"{MAX_ROWS:,}")


@router.get("/exports/{what}.{fmt}", include_in_schema=False)
def export_file(
    request: Request,
    _who: Viewer,
    what: str,
    fmt: str,
    start: Annotated[str, Query(max_length=20)] = "",
    end: Annotated[str, Query(max_length=20)] = "",
    province: Annotated[str, Query(max_length=120)] = "",
    site: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    db = console_db(request)
    if not start and not end:
        start, end = _default_range()
    try:
        if fmt not in FORMATS:
            raise ExportRefused("exp.err.what")
        choice = choose(db, what, start, end, province, site)
        _check_size(db, choice)
    except ExportRefused as exc:
        from edge.central.console.pages import lang_of, translate

        return Response(
            translate(lang_of(request), exc.key, **exc.values) + "\n",
            400,
            media_type="text/plain; charset=utf-8",
        )
    rows = ROWS[choice.what](db, choice)
    name = choice.file_name(fmt)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return StreamingResponse(
            csv_chunks(choice, rows), media_type="text/csv; charset=utf-8", headers=headers
        )
    return StreamingResponse(
        xlsx_file(choice, rows),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


strings(
    {
        "exp.title": ("Xuất dữ liệu cho kế toán", "Exports for the accountants"),
        "exp.what": ("Dữ liệu", "What"),
        "exp.what.lots": ("Lô hàng thu mua", "Lots received"),
        "exp.what.parcels": ("Kiện hàng đã đóng", "Parcels packed"),
        "exp.what.handovers": ("Biên bản bàn giao", "Handovers (manifests)"),
        "exp.start": ("Từ ngày", "From"),
        "exp.end": ("Đến ngày", "To"),
        "exp.province": ("Tỉnh", "Province"),
        "exp.all": ("Tất cả", "All"),
        "exp.site": ("Hoặc mã điểm", "Or a point (site id)"),
        "exp.fmt": ("Định dạng", "Format"),
        "exp.go": ("Tải về", "Download"),
        "exp.note": (
            "Ngày theo giờ Việt Nam; tối đa {days} ngày và {rows} dòng một tệp. "
            "Lô và kiện đã huỷ vẫn có trong tệp, được đánh dấu.",
            "Dates in Vietnam time; at most {days} days and {rows} rows a file. "
            "Voided lots and parcels are in the file, marked.",
        ),
        "exp.err.what": (
            "Chọn lô, kiện hoặc biên bản; CSV hoặc XLSX.",
            "Choose lots, parcels or handovers; CSV or XLSX.",
        ),
        "exp.err.dates": ("Ngày phải dạng YYYY-MM-DD.", "Dates are YYYY-MM-DD."),
        "exp.err.order": ("Ngày bắt đầu sau ngày kết thúc.", "The start is after the end."),
        "exp.err.long": (
            "Khoảng ngày dài quá {days} ngày: chia nhỏ ra.",
            "The range is longer than {days} days: split it.",
        ),
        "exp.err.site": ("Không có điểm này.", "No such point."),
        "exp.err.province": ("Tỉnh này chưa có điểm nào.", "No point in this province."),
        "exp.err.rows": (
            "{n} dòng, nhiều hơn {max}: thu hẹp khoảng ngày hoặc chọn tỉnh, điểm.",
            "{n} rows, more than {max}: narrow the range or choose a province or point.",
        ),
    }
)
