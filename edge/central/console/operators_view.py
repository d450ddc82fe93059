"""The operators page (GET /operators, admins only): who may sign in, with which role;
an admin adds an operator or disables one (ending their sessions). Nothing is deleted:
a disabled account stays, with its name on the changes it made. Every change is in
``console_audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from psycopg.types.json import Jsonb

from edge.central.console.auth import Admin, console_db
from edge.central.console.db import ConsoleDb
from edge.central.console.operators import ROLES, OperatorError, add_operator, list_operators
from edge.central.console.operators import set_disabled as disable_operator
from edge.central.console.pages import render, strings
from edge.ids import utc_now

router = APIRouter()

strings(
    {
        "nav.operators": ("Người vận hành", "Operators"),
        "ops.title": ("Người vận hành bảng điều khiển", "Console operators"),
        "ops.username": ("Tên đăng nhập", "Username"),
        "ops.name": ("Họ tên", "Name"),
        "ops.role": ("Vai trò", "Role"),
        "ops.state": ("Trạng thái", "State"),
        "ops.created": ("Tạo lúc", "Created"),
        "ops.active": ("đang dùng", "active"),
        "ops.disabled": ("đã khoá", "disabled"),
        "ops.disable": ("Khoá", "Disable"),
        "ops.add": ("Thêm người vận hành", "Add an operator"),
        "ops.password": ("Mật khẩu (10 ký tự trở lên)", "Password (10 characters or more)"),
        "ops.save": ("Thêm", "Add"),
        "ops.added": ("Đã thêm {username}.", "{username} added."),
        "ops.disabled_msg": (
            "Đã khoá {username}: các phiên đăng nhập của họ đã kết thúc.",
            "{username} disabled: their sessions ended.",
        ),
        "ops.self": ("Không tự khoá chính mình được.", "You cannot disable yourself."),
        "role.viewer": ("xem", "viewer"),
        "role.editor": ("sửa danh mục", "editor"),
        "role.admin": ("quản trị", "admin"),
    }
)


def _audit(db: ConsoleDb, username: str, action: str, detail: dict[str, str]) -> None:
    db.execute(
        "INSERT INTO console_audit (at, username, action, detail) VALUES (%s, %s, %s, %s)",
        (utc_now(), username, action, Jsonb(detail)),
    )


def _page(request: Request, status_code: int = 200, **context: object) -> Response:
    values: dict[str, object] = {"error": None, "message": None, "form": {}}
    values.update(context)
    return render(
        request,
        "operators.html",
        status_code,
        operators=list_operators(console_db(request)),
        roles=ROLES,
        **values,
    )


@router.get("/operators")
def operators_page(request: Request, _who: Admin, done: str = "", user: str = "") -> Response:
    message = None
    if done in ("added", "disabled") and user:
        message = ("ops.added" if done == "added" else "ops.disabled_msg", user[:40])
    return _page(request, message=message)


@router.post("/operators")
def add(
    request: Request,
    who: Admin,
    username: Annotated[str, Form(max_length=40)],
    name: Annotated[str, Form(max_length=80)],
    role: Annotated[str, Form(max_length=20)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    db = console_db(request)
    username = username.strip().lower()
    try:
        add_operator(db, username, name, role, password)
    except OperatorError as exc:
        form = {"username": username, "name": name, "role": role}
        return _page(request, 400, error=str(exc), form=form)
    _audit(db, who.username, "operator.add", {"username": username, "role": role})
    return RedirectResponse(f"/operators?done=added&user={username}", 303)


@router.post("/operators/{username}/disable")
def disable(request: Request, who: Admin, username: str) -> Response:
    if username == who.username:
        return _page(request, 400, error_key="ops.self")
    db = console_db(request)
    try:
        disable_operator(db, username, True)
    except OperatorError as exc:
        return _page(request, 404, error=str(exc))
    _audit(db, who.username, "operator.disable", {"username": username})
    return RedirectResponse(f"/operators?done=disabled&user={username}", 303)
