"""A refused request body, told to staff: which field, and why, in Vietnamese and English.

:func:`invalid_request` turns FastAPI's validation errors into the API's error body
(``{"error": {"code": "invalid_request", "message", "message_en", "fields": [...]}}``),
one entry per field: its key (``name``, ``unit_price_dong``...), and the reason in both
languages. The labels' text rule gives its own reasons in both languages
(edge.printer.printable.PrintableError); pydantic's usual errors (missing, wrong type,
too long, out of range...) are put in Vietnamese here. :func:`http_error` does the same
for the bare HTTP errors under ``/api`` (a body that is not UTF-8, an unknown path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edge.printer.printable import PrintableError

FIELD_NAMES_VI = {
    "name": "Tên",
    "phone": "Số điện thoại",
    "village": "Thôn / bản",
    "unit_price_dong": "Giá (đồng/kg)",
    "grading": "Phân hạng tự động",
    "producer_id": "Nông dân",
    "product_id": "Sản phẩm",
    "reason": "Lý do",
    "actor": "Người thao tác",
    "by": "Người xác nhận",
    "grade": "Hạng",
    "weight_g": "Khối lượng (g)",
    "unstable": "Cân dao động (mô phỏng)",
    "overload": "Cân quá tải (mô phỏng)",
    "connected": "Cáp cân (mô phỏng)",
    "fault": "Lỗi máy ảnh mô phỏng",
    "body": "Nội dung yêu cầu",
}


def _number(value: Any) -> str:
    """An int the Vietnamese way (1.000.000.000); anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace(",", ".")
    return str(value)


def _reason_vi(err: Mapping[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    simple = {
        "missing": "bắt buộc, đang thiếu",
        "extra_forbidden": "trường này không có (kiểm tra lại tên trường)",
        "string_type": "phải là chữ (một chuỗi JSON)",
        "string_unicode": "có ký tự không hợp lệ (không phải Unicode)",
        "int_type": "phải là số nguyên",
        "int_parsing": "phải là số nguyên",
        "int_from_float": "phải là số nguyên (không có phần lẻ)",
        "bool_type": "phải là true hoặc false",
        "bool_parsing": "phải là true hoặc false",
        "model_type": "nội dung phải là một đối tượng JSON {...}",
        "model_attributes_type": "nội dung phải là một đối tượng JSON {...}",
        "dict_type": "nội dung phải là một đối tượng JSON {...}",
        "json_invalid": "không phải JSON hợp lệ",
        "string_pattern_mismatch": "không đúng dạng",
    }
    if kind in simple:
        return simple[kind]
    if kind == "string_too_short":
        return "không được để trống"
    if kind == "string_too_long":
        return f"dài quá: tối đa {_number(ctx.get('max_length'))} ký tự"
    bounds = {
        "greater_than": "phải lớn hơn {}",
        "greater_than_equal": "phải từ {} trở lên",
        "less_than": "phải nhỏ hơn {}",
        "less_than_equal": "không được lớn hơn {}",
    }
    if kind in bounds:
        value = next(iter(ctx.values()), "")
        return bounds[kind].format(_number(value))
    if kind in ("literal_error", "enum"):
        return f"phải là một trong: {str(ctx.get('expected', '')).replace(' or ', ' hoặc ')}"
    return "không hợp lệ"


def _reason_en(err: Mapping[str, Any]) -> str:
    if err["type"] == "json_invalid":
        return f"not valid JSON: {(err.get('ctx') or {}).get('error', err['msg'])}"
    return str(err["msg"]).removeprefix("Value error, ")


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """``[{"field", "message" (Vietnamese), "message_en"}]`` for pydantic's errors."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        if err["type"] == "json_invalid":
            loc = []  # FastAPI puts the character position here
        field = ".".join(loc) or "body"
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, PrintableError):
            vi, en = cause.vi, cause.en
        else:
            vi, en = _reason_vi(err), _reason_en(err)
        out.append({"field": field, "message": vi, "message_en": en})
    return out


def _label_vi(field: str) -> str:
    name = FIELD_NAMES_VI.get(field.rsplit(".", 1)[-1])
    return f"{name} ({field})" if name else field


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The 422 body for a request whose body does not validate."""
    fields = field_errors(errors)
    vi = "; ".join(f"{_label_vi(f['field'])}: {f['message']}" for f in fields)
    en = "; ".join(f"{f['field']}: {f['message_en']}" for f in fields)
    return {
        "error": {
            "code": "invalid_request",
            "message": f"Yêu cầu không hợp lệ: {vi}.",
            "message_en": f"invalid request: {en}",
            "fields": fields,
        }
    }


def http_error(status: int, path: str, detail: str) -> tuple[str, str, str]:
    """(code, Vietnamese, English) for a bare HTTP error under /api."""
    if status == 400:
        return (
            "unreadable_body",
            "Không đọc được nội dung yêu cầu: cần JSON viết bằng mã UTF-8.",
            f"the request body could not be read ({detail}): send JSON in UTF-8",
        )
    if status == 404:
        return (
            "not_found",
            f"Không có địa chỉ {path} trên trạm. Tải lại trang.",
            f"no such address: {path}; reload the page",
        )
    if status == 405:
        return (
            "method_not_allowed",
            f"Địa chỉ {path} không nhận cách gửi này.",
            f"{path} does not take this method",
        )
    return ("http_error", f"Yêu cầu không thực hiện được ({status}: {detail}).", detail)
