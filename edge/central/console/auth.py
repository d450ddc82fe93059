"""Who is asking the console: operator sign-in, the role a route needs, same-origin checks.

Route handlers name the operator they need as a parameter::

    def fleet(request: Request, who: Viewer) -> HTMLResponse: ...

``Viewer`` admits every signed-in operator, ``Editor`` editors and admins, ``Admin``
admins. Without a live session a page answers 303 to /signin (an API or file 401), with
the wrong role 403. :class:`edge.origin.SameOrigin` (middleware) refuses a ``Host`` that is not this
console (DNS rebinding) and a state-changing request from another origin. The session
cookie is HttpOnly and SameSite=Strict (and Secure behind https).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from edge.attempts import Attempts
from edge.central.console.db import ConsoleDb
from edge.central.console.operators import Operator, OperatorError, session_operator, sign_in
from edge.central.console.operators import sign_out as end_session
from edge.central.console.pages import LANGS, render

COOKIE = "console_session"
SIGN_INS_PER_MIN = 10


class NotSignedIn(Exception):
    pass


class Forbidden(Exception):
    pass


def console_db(request: Request) -> ConsoleDb:
    db: ConsoleDb = request.app.state.db
    return db


def signed_in(role: str) -> Callable[[Request], Operator]:
    def dependency(request: Request) -> Operator:
        operator = session_operator(console_db(request), request.cookies.get(COOKIE, ""))
        if operator is None:
            raise NotSignedIn
        request.state.operator = operator
        if not operator.may(role):
            raise Forbidden
        return operator

    return dependency


Viewer = Annotated[Operator, Depends(signed_in("viewer"))]
Editor = Annotated[Operator, Depends(signed_in("editor"))]
Admin = Annotated[Operator, Depends(signed_in("admin"))]


def _wants_page(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def not_signed_in(request: Request, _exc: Exception) -> Response:
    if _wants_page(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)
    return JSONResponse({"error": "not signed in: sign in at /signin (an operator account)"}, 401)


def forbidden(request: Request, _exc: Exception) -> Response:
    if _wants_page(request):
        return render(request, "message.html", 403, title_key="error.title", key="forbidden")
    return JSONResponse({"error": "your role may not do this"}, 403)


UNKNOWN_HOST = {
    "error": "unknown Host: open the console by its address or add the name to --allow-host"
}
FOREIGN_ORIGIN = {"error": "refused: the request comes from another site, not the console's page"}


router = APIRouter()


def new_attempts() -> Attempts:
    """Each app keeps its own count (create_app puts one on ``app.state.signin_attempts``)."""
    return Attempts(SIGN_INS_PER_MIN)


def _safe_next(target: str) -> str:
    """Only a path of this console (never //elsewhere or a scheme)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/signin", include_in_schema=False)
def signin_page(request: Request, next: str = "/") -> Response:
    return render(request, "signin.html", next=_safe_next(next), error=None)


@router.post("/signin", include_in_schema=False)
def signin(
    request: Request,
    username: Annotated[str, Form(max_length=40)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    client = request.client.host if request.client else "?"
    target = _safe_next(next)
    attempts: Attempts = request.app.state.signin_attempts
    if attempts.wait(client) > 0:
        error = "too many sign-in attempts from this address: wait a minute"
        return render(request, "signin.html", 429, next=target, error=error)
    try:
        token = sign_in(console_db(request), username.strip().lower(), password)
    except OperatorError as exc:
        return render(request, "signin.html", 401, next=target, error=str(exc))
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=bool(request.app.state.secure_cookie),
        max_age=12 * 3600,
    )
    return response


@router.post("/signout", include_in_schema=False)
def signout(request: Request, _who: Viewer) -> Response:
    end_session(console_db(request), request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/signin", 303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/lang/{code}", include_in_schema=False)
def set_lang(code: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), 303)
    if code in LANGS:
        response.set_cookie("lang", code, samesite="strict", max_age=365 * 86400)
    return response
