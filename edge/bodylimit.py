"""Request bodies capped before anything parses them: the ASGI mechanism the station's
page (edge.web.limits) and central's console share; each says its caps and its answer.

A body declared larger (``Content-Length``) than the request's cap is answered 413 at
once, unread, and the app never sees the request. A body without a length (chunked) or
lying about it is counted as it arrives: the moment it passes the cap the app's reading
stops (it gets an exception), whatever the app would have answered is dropped, and the
answer is 413. The connection is closed (the rest of the body is never read).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised into the app's ``receive`` when a body passes its cap."""


class CappedBodies:
    """Subclasses say :meth:`cap` (bytes, and whether the request is a photo upload) and
    :meth:`refusal` (the 413's JSON body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def cap(self, scope: Scope) -> tuple[int, bool]:
        raise NotImplementedError

    def refusal(self, size: int, cap: int, *, photo: bool, more: bool) -> dict[str, object]:
        """The 413's body for ``size`` bytes (``more``: at least that many, cut off while
        counting) against ``cap``."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap, photo = self.cap(scope)
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            error = self.refusal(declared, cap, photo=photo, more=False)
            await _refuse(scope, receive, send, error)
            return

        received = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    over = True
                    raise BodyTooLarge(f"request body over {cap} bytes")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to a body cut off: replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:
            error = self.refusal(received, cap, photo=photo, more=True)
            await _refuse(scope, receive, send, error)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, error: dict[str, object]) -> None:
    response = JSONResponse(error, 413, headers={"Connection": "close"})
    await response(scope, receive, send)
