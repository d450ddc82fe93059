"""``create_app(config)`` builds the web app; the station's workers start and
stop in its lifespan and live on ``app.state``, never in module globals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from edge import __version__
from edge.accounts.people import People
from edge.config import StationConfig
from edge.errors import StaffError
from edge.ops import sdnotify
from edge.origin import SameOrigin
from edge.station import Station
from edge.storage.db import StorageError
from edge.storage.photos import PhotoStorageError
from edge.storage.store import NotFound
from edge.web import auth
from edge.web.api import router
from edge.web.corrections_api import router as corrections_router
from edge.web.events import router as events_router
from edge.web.farmer_api import router as farmer_router
from edge.web.handover_api import router as handover_router
from edge.web.health_api import router as health_router
from edge.web.limits import BodyLimit, release_freed_memory
from edge.web.orders_api import router as orders_router
from edge.web.paper_api import router as paper_router
from edge.web.people_api import router as people_router
from edge.web.photo_api import router as photo_router
from edge.web.request_errors import http_error, invalid_request


def error_body(code: str, message: str, message_en: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message, "message_en": message_en}}


class _Revalidated(StaticFiles):
    """The page's files, which a phone must check on every load (a cheap 304 with the
    ETag): after an upgrade, cached old modules must never mix with new ones."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def create_app(cfg: StationConfig, station: Station | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        notifier = sdnotify.Notifier.from_environ()  # under systemd (Type=notify) only
        app.state.systemd = notifier
        st = station or Station(cfg)
        st.start()
        app.state.station = st
        auth.install(app, People(st.db, cfg.web.session_hours), cfg.web.allowed_hosts)
        # WATCHDOG=1 from this loop: a hung loop stops the pings (READY=1: events.Server)
        pings = asyncio.create_task(notifier.watchdog()) if notifier else None
        try:
            yield
        finally:
            if notifier is not None:
                notifier.send("STOPPING=1")
            if pings is not None:
                pings.cancel()
                with suppress(asyncio.CancelledError):
                    await pings
            st.stop()

    app = FastAPI(
        title="Edge station",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # /api/docs and /api/openapi.json, for technicians (edge.web.auth)
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(
        SameOrigin,
        allowed_hosts=cfg.web.allowed_hosts,
        unknown_host=auth.UNKNOWN_HOST,
        foreign_origin=auth.FOREIGN_ORIGIN,
    )
    app.add_middleware(BodyLimit, cfg=cfg)  # outermost: bodies capped before anything reads
    release_freed_memory()  # a burst of photo uploads is given back, not kept (glibc)
    app.include_router(auth.router, prefix="/api")
    app.include_router(router, prefix="/api")
    app.include_router(photo_router, prefix="/api")
    app.include_router(corrections_router, prefix="/api")  # void, correct, edit, merge
    app.include_router(paper_router, prefix="/api")  # receipts, reprints, day totals
    app.include_router(events_router, prefix="/api")
    app.include_router(farmer_router, prefix="/api")
    app.include_router(people_router, prefix="/api")  # who may sign in, for leads
    app.include_router(orders_router, prefix="/api")  # orders, pick list, packing
    app.include_router(handover_router, prefix="/api")  # courier handover (issue 14)
    app.include_router(health_router, prefix="/api")  # edge health: this machine only

    @app.exception_handler(StaffError)
    async def refused(_r: Request, exc: StaffError) -> JSONResponse:
        """Scale refusals, rejected uploads, grading and camera errors alike."""
        return JSONResponse(error_body(exc.code, exc.message, exc.message_en), exc.status)

    @app.exception_handler(NotFound)
    async def not_found(_r: Request, exc: NotFound) -> JSONResponse:
        msg = f"Không tìm thấy: {exc}. Tải lại trang và chọn lại."
        return JSONResponse(error_body("not_found", msg, f"{exc}; reload the page"), 404)

    @app.exception_handler(StorageError)
    async def storage(_r: Request, exc: StorageError) -> JSONResponse:
        msg = (
            "Không lưu được dữ liệu (đĩa đầy hoặc lỗi lưu trữ). Chưa có gì được ghi. Báo kỹ thuật."
        )
        return JSONResponse(error_body("storage_error", msg, str(exc)), 507)

    @app.exception_handler(PhotoStorageError)
    async def photo_not_saved(_r: Request, exc: PhotoStorageError) -> JSONResponse:
        code = "disk_full" if exc.disk_full else "storage_error"
        return JSONResponse(error_body(code, exc.message, exc.message_en), 507)

    @app.exception_handler(RequestValidationError)
    async def invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        """Each field refused, why, in Vietnamese and English (edge.web.request_errors)."""
        return JSONResponse(invalid_request(exc.errors()), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error_shaped(request: Request, exc: StarletteHTTPException) -> Response:
        """Under /api the API's error body (a body that is not UTF-8 is a 400 saying so);
        the page's files keep FastAPI's own."""
        if not request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        code, vi, en = http_error(exc.status_code, request.url.path, str(exc.detail))
        return JSONResponse(error_body(code, vi, en), exc.status_code, headers=exc.headers)

    static = resources.files("edge.web").joinpath("static")
    app.mount("/", _Revalidated(directory=str(static), html=True), name="static")
    return app
