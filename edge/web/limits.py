"""The station's caps on request bodies (the mechanism is edge.bodylimit's, shared with
the console): what each request may carry.

A photo upload (``POST /api/lots/{id}/photos``, a handover's ``/scans/photo``) may carry
``camera.max_upload_mb``; a handover's close 300 kB (a signature PNG of 200 kB); any
other request ``web.max_body_kb`` (the API's JSON bodies are a few hundred bytes). A
body declared larger (``Content-Length``) is answered 413 at once, unread, and the app
never sees the request. A body without a length (chunked) or lying about it is counted
as it arrives: the moment it passes the cap the app's reading stops (it gets an
exception), whatever the app would have answered is dropped, and the answer is 413.
Either way the answer is the API's error body, in Vietnamese and English, and the
connection is closed (the rest of the body is never read).

:func:`release_freed_memory` makes the C library give large buffers (upload bodies,
decoded photos) back to the system when they are freed, so a burst of uploads does not
leave the station holding its peak for good.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Scope

from edge.bodylimit import CappedBodies
from edge.camera.photos import UploadLimits, too_large
from edge.config import StationConfig

log = logging.getLogger(__name__)

PHOTO_UPLOAD = re.compile(r"/api/lots/[^/]+/photos|/api/handovers/[^/]+/scans/photo")
SIGNED_CLOSE = re.compile(r"/api/handovers/[^/]+/close")  # a signature PNG of up to 200 kB
SIGNED_CLOSE_BYTES = 300 * 1024  # its base64 in JSON
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 256 * 1024


def release_freed_memory() -> bool:
    """Have glibc's malloc map every block of 256 KiB or more on its own and unmap it when
    it is freed. By default glibc raises that threshold to the largest block freed so far
    (up to 32 MiB): after the first photo, 7 MB bodies and 9 MB decoded frames come from
    the heap, are never returned, and ten uploads at once left the station at its 310 MB
    peak instead of back at 135 MB. ``False`` where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused: freed photo memory may stay held")
    return done


def _kb(size: int) -> str:
    return f"{math.ceil(size / 1024):,}".replace(",", ".")  # Vietnamese thousands


def body_too_large(size: int, cap: int, *, photo: bool, more: bool) -> dict[str, object]:
    """The error body for a body of ``size`` bytes (``more``: at least that many, cut
    off while counting) against ``cap``."""
    if photo:
        if not more:
            err = too_large(size, UploadLimits(max_bytes=cap))
            return {"code": err.code, "message": err.message, "message_en": err.message_en}
        most = cap / (1024 * 1024)
        return {
            "code": "photo_too_large",
            "message": f"Ảnh quá lớn (hơn {most:.0f} MB, tối đa {most:.0f} MB). Chụp lại với "
            "độ phân giải thấp hơn hoặc gửi ảnh nhỏ hơn.",
            "message_en": f"The photo is too large (more than {most:.0f} MB, at most "
            f"{most:.0f} MB). Take it at a lower resolution or send a smaller picture.",
        }
    got = f"hơn {_kb(cap)}" if more else _kb(size)
    got_en = f"more than {math.ceil(cap / 1024)}" if more else str(math.ceil(size / 1024))
    return {
        "code": "body_too_large",
        "message": f"Nội dung yêu cầu quá lớn ({got} KB, tối đa {_kb(cap)} KB). Tải lại trang "
        "rồi thử lại; nếu vẫn lỗi, báo kỹ thuật.",
        "message_en": f"The request body is too large ({got_en} KiB, at most "
        f"{math.ceil(cap / 1024)} KiB). Reload the page and try again.",
    }


class BodyLimit(CappedBodies):
    """``app.add_middleware(BodyLimit, cfg=cfg)``: every HTTP request's body capped."""

    def __init__(self, app: ASGIApp, cfg: StationConfig) -> None:
        super().__init__(app)
        self.json_bytes = cfg.web.max_body_kb * 1024
        self.photo_bytes = cfg.camera.max_upload_mb << 20

    def cap(self, scope: Scope) -> tuple[int, bool]:
        """(the cap in bytes, whether this request is a photo upload)."""
        if scope["method"] == "POST" and PHOTO_UPLOAD.fullmatch(scope["path"]):
            return self.photo_bytes, True
        if scope["method"] == "POST" and SIGNED_CLOSE.fullmatch(scope["path"]):
            return max(self.json_bytes, SIGNED_CLOSE_BYTES), False
        return self.json_bytes, False

    def refusal(self, size: int, cap: int, *, photo: bool, more: bool) -> dict[str, object]:
        return {"error": body_too_large(size, cap, photo=photo, more=more)}


async def read_body(request: Request, declared: int | None, limit: int) -> bytearray:
    """The request's body in one buffer, read once: allocated at the declared length
    and filled in place (no list of chunks joined into a second copy). More than
    ``limit`` bytes is :func:`edge.camera.photos.too_large` (:class:`BodyLimit` has
    usually refused it already)."""
    body = bytearray(declared or 0)
    filled = 0
    async for chunk in request.stream():
        end = filled + len(chunk)
        if end > limit:
            raise too_large(end, UploadLimits(max_bytes=limit))
        if end <= len(body):
            body[filled:end] = chunk
        else:
            del body[filled:]
            body += chunk
        filled = end
    if filled < len(body):
        del body[filled:]
    return body


async def drain(request: Request) -> None:
    """Read the request's body and drop it (capped by :class:`BodyLimit`), so that an
    answer given without it reaches the client instead of a reset connection."""
    async for _chunk in request.stream():
        pass
