"""Who is asking: sign-in, sessions, the roles a route admits, and same-origin checks.

Route handlers name the person they need as a parameter::

    def void_lot(lot_id: str, person: Lead, request: Request) -> ...

``Staff`` admits staff, leads and technicians (the weighing page), ``Lead`` leads only
(corrections, overrides, settings), ``Technician`` technicians only (/api/docs),
``Courier`` couriers and leads (the handover pages), ``Anyone`` any signed-in person.
Without a live session a route answers 401, with the wrong role 403. Every write is
attributed to ``person.name`` / ``person.id``, never to a name in the request body.
tests/test_auth.py walks the OpenAPI routes so a new route cannot forget its person.

:class:`edge.origin.SameOrigin` (ASGI middleware, before anything is parsed) refuses a request whose
``Host`` is not this station (DNS rebinding) and a state-changing request from another
origin (cross-site writes): 400 and 403 with the usual error body. The session cookie is
HttpOnly and SameSite=Strict besides.

Writes are limited per session (a token bucket: :data:`WRITE_BURST` at once, then
:data:`WRITES_PER_S` a second; 429 beyond), sign-in attempts per client address
(:data:`SIGN_INS_PER_MIN`), on top of the per-person lockout of edge.accounts.people.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, Strict

from edge.accounts.people import AccountError, People, Person
from edge.attempts import Attempts
from edge.origin import SAFE_METHODS

__all__ = ["Anyone", "Courier", "Lead", "Person", "Staff", "Technician", "router"]

COOKIE = "edge_session"
ROLES = ("staff", "lead", "courier", "technician")
WRITE_BURST = 60
WRITES_PER_S = 10.0
SIGN_INS_PER_MIN = 10

router = APIRouter()


def _refusal(code: str, vi: str, en: str, status: int) -> AccountError:
    return AccountError(code, vi, en, status)


def people(request: Request) -> People:
    found: People = request.app.state.people
    return found


# -- per-session write budget ---------------------------------------------------------


class _Buckets:
    """Token buckets by key, forgotten when full again (bounded by live sessions)."""

    def __init__(
        self, burst: int, per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst, self.per_s, self.clock = burst, per_s, clock
        self._level: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if a write may go now, else the seconds to wait."""
        with self._lock:
            now = self.clock()
            level, at = self._level.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - at) * self.per_s)
            if level < 1:
                self._level[key] = (level, now)
                return (1 - level) / self.per_s
            self._level[key] = (level - 1, now)
            if len(self._level) > 10_000:  # drop the full ones
                self._level = {k: v for k, v in self._level.items() if v[0] < self.burst - 1}
            return 0.0


def signed_in(*roles: str) -> Callable[[Request], Person]:
    allowed = ", ".join(roles)

    def person(request: Request) -> Person:
        token = request.cookies.get(COOKIE, "")
        found = people(request).session_person(token) if 0 < len(token) <= 100 else None
        if found is None:
            raise _refusal(
                "not_signed_in",
                "Chưa đăng nhập hoặc phiên đã hết hạn. Đăng nhập bằng tên và mã PIN.",
                "Not signed in, or the session has ended. Sign in with your name and PIN.",
                401,
            )
        if found.role not in roles:
            raise _refusal(
                "forbidden",
                f"Việc này cần quyền: {allowed}. Bạn đang đăng nhập với quyền {found.role}.",
                f"This needs the role {allowed}; you are signed in as {found.role}.",
                403,
            )
        if request.method not in SAFE_METHODS:
            wait = request.app.state.write_buckets.take(token)
            if wait:
                raise _refusal(
                    "too_many_requests",
                    "Thao tác quá nhanh. Chờ một chút rồi thử lại.",
                    f"Too many requests from this session; retry in {wait:.1f} s.",
                    429,
                )
        request.state.person = found
        return found

    return person


Anyone = Annotated[Person, Depends(signed_in(*ROLES))]
Staff = Annotated[Person, Depends(signed_in("staff", "lead", "technician"))]
Lead = Annotated[Person, Depends(signed_in("lead"))]
Technician = Annotated[Person, Depends(signed_in("technician"))]
Courier = Annotated[Person, Depends(signed_in("courier", "lead"))]


# -- Host and Origin ------------------------------------------------------------------


def _error(code: str, vi: str, en: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": vi, "message_en": en}}


UNKNOWN_HOST = _error(
    "unknown_host",
    "Địa chỉ trạm không đúng. Mở trang bằng địa chỉ IP của trạm.",
    "Unknown Host: open the station by its IP address or add the name to web.allowed_hosts.",
)
FOREIGN_ORIGIN = _error(
    "foreign_origin",
    "Yêu cầu đến từ trang khác, không phải trang của trạm: đã từ chối.",
    "Refused: the request comes from another site, not the station's page.",
)


# -- sign-in routes -------------------------------------------------------------------


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, Strict(), Field(min_length=1, max_length=60)]
    pin: Annotated[str, Strict(), Field(min_length=1, max_length=20)]


def person_json(p: Person) -> dict[str, str]:
    return {"id": p.id, "name": p.name, "role": p.role}


@router.post("/login")
def login(body: SignIn, request: Request, response: Response) -> dict[str, Any]:
    """Sign in with a name and PIN: the session cookie (HttpOnly, SameSite=Strict)."""
    client = request.client.host if request.client else "?"
    wait = request.app.state.sign_in_attempts.wait(client)
    if wait:
        raise _refusal(
            "too_many_attempts",
            f"Thử đăng nhập quá nhiều lần. Chờ {int(wait) + 1} giây rồi thử lại.",
            f"Too many sign-in attempts from this device; wait {int(wait) + 1} s.",
            429,
        )
    session = people(request).sign_in(body.name, body.pin)
    max_age = round(people(request).session_hours * 3600)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return {"person": person_json(session.person), "expires_at": session.expires_at.isoformat()}


@router.post("/logout")
def logout(person: Anyone, request: Request, response: Response) -> dict[str, str]:
    people(request).sign_out(request.cookies.get(COOKIE, ""))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return {"signed_out": person.name}


@router.get("/me")
def me(person: Anyone) -> dict[str, str]:
    return person_json(person)


@router.get("/openapi.json", include_in_schema=False)
def openapi(person: Technician, request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/docs", include_in_schema=False)
def docs(person: Technician) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Edge station API")


def install(app: Any, people_: People, allowed_hosts: list[str]) -> None:
    """The state the dependencies above read, on ``app.state``."""
    app.state.people = people_
    app.state.write_buckets = _Buckets(WRITE_BURST, WRITES_PER_S)
    app.state.sign_in_attempts = Attempts(SIGN_INS_PER_MIN)
