"""``create_app(config)`` builds the web app; the station's workers start and
stop in its lifespan and live on ``app.state``, never in module globals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from edge.config import StationConfig
from edge.errors import StaffError
from edge.station import Station
from edge.storage.db import StorageError
from edge.storage.photos import PhotoStorageError
from edge.storage.store import NotFound
from edge.web.api import router
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
        st = station or Station(cfg)
        st.start()
        app.state.station = st
        try:
            yield
        finally:
            st.stop()

    app = FastAPI(title="Edge station", version=__version__, lifespan=lifespan)
    app.include_router(router, prefix="/api")
    app.include_router(photo_router, prefix="/api")

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
