"""The console app: the shell (database, schema, sign-in, same-origin, languages, static
files) and each area's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from edge.bodylimit import CappedBodies
from edge.central.alerts import AlertEvaluator, load_rules
from edge.central.console import (
    alerts_view,
    auth,
    business,
    catalogue,
    exports,
    fleet,
    metrics_view,
    operators_view,
    search,
)
from edge.central.console.db import ConsoleDb
from edge.central.console.schema import ensure_schema
from edge.central.console.settings import ConsoleSettings
from edge.central.orders.exports import MAX_FILE_BYTES
from edge.origin import SameOrigin

MAX_FORM_BYTES = 64 * 1024
"""A console form (sign-in, a product, a mapping row) is a few hundred bytes."""
UPLOAD = "/catalogue/mapping/upload"


class ConsoleBodyLimit(CappedBodies):
    """Every request's body capped before it is parsed: a mapping upload at the mapping
    file's own limit (and room for the form around it), anything else at 64 KiB."""

    def cap(self, scope: Scope) -> tuple[int, bool]:
        if scope["method"] == "POST" and scope["path"] == UPLOAD:
            return MAX_FILE_BYTES + MAX_FORM_BYTES, False
        return MAX_FORM_BYTES, False

    def refusal(self, size: int, cap: int, *, photo: bool, more: bool) -> dict[str, object]:
        got = f"more than {cap:,}" if more else f"{size:,}"
        return {"error": f"the request body is too large ({got} bytes, at most {cap:,})"}


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console over ``settings.db_url``; the pool opens (and the schema is made) when
    the app starts."""
    db = ConsoleDb(settings.db_url)
    rules = load_rules(settings.alerts_file)  # a bad rules file: said before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.open()
        ensure_schema(db)
        evaluator = AlertEvaluator(db, rules, settings.alerts_every_s)
        app.state.alerts = evaluator.start()
        try:
            yield
        finally:
            evaluator.stop()
            db.close()

    app = FastAPI(
        title="edge central console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.alert_rules = rules
    app.state.secure_cookie = settings.secure_cookie
    app.state.signin_attempts = auth.new_attempts()
    app.add_middleware(
        SameOrigin,
        allowed_hosts=settings.allowed_hosts,
        unknown_host=auth.UNKNOWN_HOST,
        foreign_origin=auth.FOREIGN_ORIGIN,
    )
    app.add_middleware(ConsoleBodyLimit)  # outermost: bodies capped before anything reads
    app.add_exception_handler(auth.NotSignedIn, auth.not_signed_in)
    app.add_exception_handler(auth.Forbidden, auth.forbidden)
    static = files("edge.central.console") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/fleet", 303)

    for module in (
        auth,
        fleet,
        alerts_view,
        search,
        business,
        catalogue,
        exports,
        metrics_view,
        operators_view,
    ):
        app.include_router(module.router)
    return app
