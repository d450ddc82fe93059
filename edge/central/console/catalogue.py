"""The catalogue page (GET /catalogue): products and prices, the SKU mapping, and which
catalogue version each point has applied. Editors change them with the page's forms
(POST); SQL in catalogue_store.py.

A product edit is a new catalogue version queued down to every point as a ``product``
record (docs/mqtt.md); the running ``edge central ingest`` sends it, and with
``--broker`` the console also publishes it at once, as ``edge central orders import
--broker`` does (edge.central.orders.cli._publish), after answering. A form with a bad
value answers the page again (400) with the reason next to the field; nothing is stored.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from edge.central.console import catalogue_store as cs
from edge.central.console.auth import Editor, Viewer, console_db
from edge.central.console.pages import render, strings
from edge.central.console.settings import ConsoleSettings
from edge.central.orders.exports import MAX_FILE_BYTES
from edge.central.orders.mapping import COLUMNS, MappingError, parse_mapping
from edge.central.orders.plan import parse_dong

log = logging.getLogger(__name__)
router = APIRouter()

MAX_NAME = 120
MAX_PRICE_DONG = 1_000_000_000
"""A unit price of at most 1 tỷ đồng: anything above is a typing slip."""
MAX_TOLERANCE_G = 100_000
GRADING = re.compile(r"^[a-z0-9_-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def check_product(form: dict[str, str]) -> tuple[cs.Product | None, dict[str, str]]:
    """The product of a posted form, or the errors by field (Vietnamese / English keys
    are the page's; the reasons are in English and Vietnamese)."""
    errors: dict[str, str] = {}
    name = " ".join(form.get("name", "").split())
    if not name or len(name) > MAX_NAME or _CONTROL.search(name) or not _has_word(name):
        errors["name"] = "cat.err.name"
    price: int | None = None
    text = form.get("unit_price_dong", "").strip()
    if text:
        value, why = parse_dong(text)
        if why or value is None or not 0 <= value <= MAX_PRICE_DONG:
            errors["unit_price_dong"] = "cat.err.price"
        else:
            price = value
    grading = form.get("grading", "").strip() or None
    if grading is not None and not GRADING.match(grading):
        errors["grading"] = "cat.err.grading"
    tolerance: int | None = None
    text = form.get("pack_tolerance_g", "").strip()
    if text:
        if text.isascii() and text.isdigit() and int(text) <= MAX_TOLERANCE_G:
            tolerance = int(text)
        else:
            errors["pack_tolerance_g"] = "cat.err.tolerance"
    if errors:
        return None, errors
    return cs.Product(name, price, grading, tolerance), {}


def check_sku(form: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """One mapping row through :func:`parse_mapping` (the import's own checks): the Sku,
    or the reasons by column."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerow([form.get(c, "").strip() for c in COLUMNS])
    try:
        (sku,) = parse_mapping(out.getvalue().encode()).values()
    except MappingError as exc:
        errors: dict[str, str] = {}
        for p in exc.problems:
            errors[p.column or "seller_sku"] = p.reason
        return None, errors
    return sku, {}


def publish(settings: ConsoleSettings) -> None:
    """What is queued, published at once (as ``orders import --broker``), when the
    console has a broker; a failure is logged (the running ingest sends it later)."""
    from edge.central.orders.cli import _publish
    from edge.central.store import open_store

    args = argparse.Namespace(
        broker=settings.broker_url,
        tls_ca=settings.tls_ca,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
        mqtt_prefix="edge",
        timeout_s=0.0,
    )
    try:
        with open_store(settings.db_url) as store:
            sent = _publish(store, args, "serve (catalogue)")
        log.info("catalogue published: %s", sent)
    except Exception:
        log.exception("publishing the catalogue failed; the running ingest sends it")


def _page(
    request: Request,
    status: int = 200,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    sku_form: dict[str, str] | None = None,
    sku_errors: dict[str, str] | None = None,
    upload_errors: list[str] | None = None,
    saved: str | None = None,
) -> Response:
    db = console_db(request)
    products = cs.products(db)
    edit = request.query_params.get("edit")
    if form is None:
        form = {"name": "", "unit_price_dong": "", "grading": "", "pack_tolerance_g": ""}
        for p in products:
            if edit is not None and p["name"] == edit:
                form = {k: "" if p[k] is None else str(p[k]) for k in form}
    mapping = cs.mapping(db)
    if sku_form is None:
        sku_form = {c: "" for c in COLUMNS}
        sku = request.query_params.get("sku")
        for m in mapping:
            if sku is not None and m["seller_sku"] == sku:
                sku_form = {c: "" if m[c] is None else str(m[c]) for c in COLUMNS}
    return render(
        request,
        "catalogue.html",
        status,
        products=products,
        versions=cs.versions(db),
        latest=cs.latest_version(db),
        points=cs.point_versions(db),
        counts=cs.version_counts(db),
        mapping=mapping,
        mapping_total=cs.mapping_count(db),
        form=form,
        errors=errors or {},
        sku_form=sku_form,
        sku_errors=sku_errors or {},
        upload_errors=upload_errors or [],
        saved=saved if saved is not None else request.query_params.get("saved"),
        columns=COLUMNS,
    )


@router.get("/catalogue", include_in_schema=False)
def catalogue_page(request: Request, _who: Viewer) -> Response:
    return _page(request)


@router.post("/catalogue/product", include_in_schema=False)
def edit_product(
    request: Request,
    who: Editor,
    background: BackgroundTasks,
    name: Annotated[str, Form(max_length=500)] = "",
    unit_price_dong: Annotated[str, Form(max_length=60)] = "",
    grading: Annotated[str, Form(max_length=200)] = "",
    pack_tolerance_g: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    form = {
        "name": name,
        "unit_price_dong": unit_price_dong,
        "grading": grading,
        "pack_tolerance_g": pack_tolerance_g,
    }
    product, errors = check_product(form)
    if product is None:
        return _page(request, 400, form=form, errors=errors)
    edited = cs.edit_product(console_db(request), who.username, product)
    settings: ConsoleSettings = request.app.state.settings
    if settings.broker_url:
        background.add_task(publish, settings)
    return RedirectResponse(f"/catalogue?saved=v{edited.version}", 303, background=background)


@router.post("/catalogue/mapping", include_in_schema=False)
def edit_mapping(
    request: Request,
    who: Editor,
    seller_sku: Annotated[str, Form(max_length=200)] = "",
    product: Annotated[str, Form(max_length=500)] = "",
    grade: Annotated[str, Form(max_length=200)] = "",
    pack_net_g: Annotated[str, Form(max_length=60)] = "",
    pack_tare_g: Annotated[str, Form(max_length=60)] = "",
    site: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form = {
        "seller_sku": seller_sku,
        "product": product,
        "grade": grade,
        "pack_net_g": pack_net_g,
        "pack_tare_g": pack_tare_g,
        "site": site,
    }
    sku, errors = check_sku(form)
    if sku is None:
        return _page(request, 400, sku_form=form, sku_errors=errors)
    cs.save_mapping(console_db(request), who.username, [sku], "form")
    return RedirectResponse("/catalogue?saved=sku#mapping", 303)


@router.post("/catalogue/mapping/upload", include_in_schema=False)
async def upload_mapping(request: Request, who: Editor, file: UploadFile) -> Response:
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return _page(request, 400, upload_errors=[f"more than {MAX_FILE_BYTES:,} bytes"])
    try:
        skus = parse_mapping(data)
    except MappingError as exc:
        name = file.filename or "mapping.csv"
        return _page(request, 400, upload_errors=[p.text(name) for p in exc.problems[:50]])
    cs.save_mapping(console_db(request), who.username, list(skus.values()), "upload")
    return RedirectResponse(f"/catalogue?saved=mapping-{len(skus)}#mapping", 303)


strings(
    {
        "cat.title": ("Danh mục, giá và mã SKU", "Catalogue, prices and SKU mapping"),
        "cat.products": ("Sản phẩm", "Products"),
        "cat.name": ("Tên sản phẩm", "Product name"),
        "cat.price": ("Đơn giá (đồng)", "Unit price (đồng)"),
        "cat.grading": ("Khoá phân loại", "Grading key"),
        "cat.tolerance": ("Dung sai đóng gói (g)", "Pack tolerance (g)"),
        "cat.version": ("Phiên bản", "Version"),
        "cat.updated": ("Sửa lúc / bởi", "Changed at / by"),
        "cat.edit": ("Sửa", "Edit"),
        "cat.none": ("Chưa có sản phẩm nào.", "No product yet."),
        "cat.form": ("Thêm hoặc sửa sản phẩm", "Add or edit a product"),
        "cat.form_note": (
            "Lưu tạo một phiên bản mới và gửi sản phẩm xuống mọi điểm.",
            "Saving makes a new version and sends the product down to every point.",
        ),
        "cat.save": ("Lưu và gửi xuống các điểm", "Save and send to the points"),
        "cat.saved": ("Đã lưu: {what}", "Saved: {what}"),
        "cat.refused": ("Chưa lưu gì: sửa các ô báo lỗi.", "Nothing saved: fix the fields marked."),
        "cat.err.name": (
            "Tên 1–120 ký tự, có chữ hoặc số.",
            "A name of 1–120 characters with a letter or digit.",
        ),
        "cat.err.price": (
            "Đơn giá là số nguyên đồng từ 0 đến 1.000.000.000.",
            "The price is a whole number of đồng from 0 to 1,000,000,000.",
        ),
        "cat.err.grading": (
            "Khoá phân loại: chữ thường, số, _ hoặc - (tối đa 64).",
            "Grading key: lower-case letters, digits, _ or - (at most 64).",
        ),
        "cat.err.tolerance": (
            "Dung sai là số gam nguyên từ 0 đến 100.000.",
            "The tolerance is whole grams from 0 to 100,000.",
        ),
        "cat.points": ("Phiên bản đã áp dụng ở các điểm", "Version applied at the points"),
        "cat.latest": ("Phiên bản mới nhất: {v}", "Latest version: {v}"),
        "cat.current": ("{n} điểm đã cập nhật", "{n} points up to date"),
        "cat.waiting_n": ("{n} điểm đang chờ", "{n} points waiting"),
        "cat.point": ("Điểm", "Point"),
        "cat.province": ("Tỉnh", "Province"),
        "cat.sent": ("Đã gửi", "Sent"),
        "cat.applied": ("Đã áp dụng", "Applied"),
        "cat.acked_at": ("Xác nhận lúc", "Acknowledged at"),
        "cat.waiting": ("đang chờ", "waiting"),
        "cat.up_to_date": ("đã cập nhật", "up to date"),
        "cat.history": ("Lịch sử thay đổi", "Changes"),
        "cat.mapping": ("Bảng mã SKU", "SKU mapping"),
        "cat.mapping_note": (
            "Lệnh edge central orders import không có --mapping dùng bảng này.",
            "edge central orders import without --mapping uses this table.",
        ),
        "cat.mapping_total": ("{n} mã SKU", "{n} SKUs"),
        "cat.sku_form": ("Thêm hoặc sửa một mã SKU", "Add or edit a SKU"),
        "cat.sku_save": ("Lưu mã SKU", "Save the SKU"),
        "cat.upload": ("Tải lên tệp CSV mã SKU", "Upload a SKU mapping CSV"),
        "cat.upload_note": (
            "Cùng định dạng với --mapping; mã trong tệp được thêm hoặc thay, mã khác giữ nguyên.",
            "The --mapping format; the SKUs in the file are added or replaced, others stay.",
        ),
        "cat.upload_button": ("Tải lên", "Upload"),
        "cat.col.seller_sku": ("Mã SKU người bán", "Seller SKU"),
        "cat.col.product": ("Sản phẩm", "Product"),
        "cat.col.grade": ("Hạng", "Grade"),
        "cat.col.pack_net_g": ("Tịnh mỗi gói (g)", "Net per pack (g)"),
        "cat.col.pack_tare_g": ("Bao bì mỗi gói (g)", "Packaging per pack (g)"),
        "cat.col.site": ("Điểm đóng gói", "Packing point"),
        "cat.readonly": (
            "Bạn chỉ được xem; người sửa (editor) mới thay đổi được.",
            "You may only look; an editor changes these.",
        ),
    }
)
