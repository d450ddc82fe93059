"""GET /api/events: the station's state pushed to the page as server-sent events.

The page used to ask GET /api/state every 500 ms; now it holds one EventSource and the
station tells it. One :class:`EventHub` per app (made by the first stream) does the work
once for every listener:

* the scale reader calls :meth:`EventHub.scale_changed` with every new scale state
  (from its own thread); a change staff can see (status, weight, tare, error, weighing)
  wakes the hub through ``loop.call_soon_threadsafe``: no polling of the scale;
* the hub builds the /api/state body (in a worker thread: it reads SQLite) and hands it
  to every stream. Pushes are at most one per :data:`MIN_GAP_S`: a burst of frames is
  one push of the latest state, and the first change of a burst goes at once;
* the rest of the state (printer, outbox, link, camera: changed by other threads with no
  hook) is looked at every :data:`REFRESH_S` while someone listens, and pushed only when
  it changed;
* each stream keeps only the latest state not yet sent (a slow phone never makes a
  queue grow) and sends a ``heartbeat`` event every :data:`HEARTBEAT_S` when quiet.

At most :data:`STREAM_LIMIT` streams at once; one more is a 503 ``too_many_streams`` (the
page then polls). The streams end when the server stops: :class:`Server` (uvicorn's,
used by ``edge run`` and the tests) ends them before it waits for open connections,
which a stream that never ends would otherwise hold forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from edge.errors import StaffError
from edge.ops import sdnotify
from edge.scale.state import ScaleState
from edge.station import Station
from edge.web.api import state_json
from edge.web.auth import Anyone

log = logging.getLogger(__name__)

router = APIRouter()

STREAM_LIMIT = 20
HEARTBEAT_S = 15.0
REFRESH_S = 1.0
MIN_GAP_S = 0.02
RETRY_MS = 2000
"""How soon a browser reconnects a dropped stream (the SSE ``retry:`` field)."""

_VOLATILE_SCALE = ("frame", "recent_frames")
"""Parts of the scale state that change with every frame but show nowhere on the page:
left out when deciding whether a state is new (still sent with one that is)."""


def scale_key(state: ScaleState) -> tuple[object, ...]:
    """What of a scale state the page shows: a change of any of these is pushed."""
    return (
        state.status,
        state.weight_g,
        state.net,
        state.error,
        state.weighing,
        state.tare_g,
        state.tare_source,
    )


class _Stream:
    """One listener: the latest state it has not been sent yet."""

    def __init__(self) -> None:
        self.pending: str | None = None
        self.wake = asyncio.Event()
        self.ended = False


class EventHub:
    """Made inside the event loop (by the first GET /api/events); see the module."""

    def __init__(self, station: Station, limit: int | None = None) -> None:
        self.station = station
        self.limit = STREAM_LIMIT if limit is None else limit
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._streams: set[_Stream] = set()
        self._closed = False
        self._last_key: tuple[object, ...] | None = None
        self._last_sent: str | None = None  # what the streams were last given, compared
        self._key_lock = threading.Lock()
        reader = station.scale
        self._unwatch = reader.watch(self.scale_changed) if reader is not None else None
        self._task = self._loop.create_task(self._run(), name="event-hub")

    @property
    def streams(self) -> int:
        return len(self._streams)

    # -- any thread -------------------------------------------------------------------

    def scale_changed(self, state: ScaleState) -> None:
        """The reader's watcher: quick, never blocks (see ScaleReader.watch)."""
        key = scale_key(state)
        with self._key_lock:
            if key == self._last_key:
                return
            self._last_key = key
        with contextlib.suppress(RuntimeError):  # a closed loop: the server has stopped
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the event loop ---------------------------------------------------------------

    def open(self) -> _Stream:
        if self._closed:
            raise StaffError(
                "station_stopping",
                "Trạm đang tắt. Chờ một lát rồi tải lại trang.",
                "The station is shutting down. Wait a moment, then reload the page.",
                503,
            )
        if len(self._streams) >= self.limit:
            raise StaffError(
                "too_many_streams",
                f"Đã có {self.limit} máy đang xem trạm. Đóng trang trên máy không dùng; "
                "trang này vẫn cập nhật, chậm hơn.",
                f"{self.limit} devices are already watching the station. Close the page on "
                "devices not in use; this page still updates, more slowly.",
                503,
            )
        stream = _Stream()
        self._streams.add(stream)
        return stream

    def leave(self, stream: _Stream) -> None:
        self._streams.discard(stream)

    def close(self) -> None:
        """End every stream and refuse new ones (the server is stopping)."""
        self._closed = True
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for stream in self._streams:
            stream.ended = True
            stream.wake.set()
        self._wake.set()

    async def snapshot(self) -> str:
        """The /api/state body now, as one line of JSON."""
        body = await to_thread.run_sync(state_json, self.station)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    async def _run(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), REFRESH_S)
            except TimeoutError:
                if not self._streams:
                    continue
            self._wake.clear()
            if self._closed:
                break
            if not self._streams:
                continue
            try:
                await self._publish()
            except Exception:  # a storage error now is no reason to stop pushing later
                log.exception("could not build the state for the page's event streams")
            await asyncio.sleep(MIN_GAP_S)

    async def _publish(self) -> None:
        data = await self.snapshot()
        compared = _comparable(data)
        if compared == self._last_sent:
            return
        self._last_sent = compared
        for stream in self._streams:
            stream.pending = data
            stream.wake.set()

    async def events(self, stream: _Stream) -> AsyncIterator[str]:
        """The text of one stream: ``retry``, the state now, then each new state."""
        try:
            yield f"retry: {RETRY_MS}\n\n"
            yield _event("state", await self.snapshot())
            while not stream.ended:
                try:
                    await asyncio.wait_for(stream.wake.wait(), HEARTBEAT_S)
                except TimeoutError:
                    yield _event("heartbeat", "{}")
                    continue
                stream.wake.clear()
                data, stream.pending = stream.pending, None
                if data is not None and not stream.ended:
                    yield _event("state", data)
        finally:
            self.leave(stream)


def _comparable(data: str) -> str:
    body: dict[str, Any] = json.loads(data)
    scale = body.get("scale")
    if isinstance(scale, dict):
        for key in _VOLATILE_SCALE:
            scale.pop(key, None)
    return json.dumps(body, sort_keys=True)


def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


def hub_of(app: FastAPI, station: Station) -> EventHub:
    """The app's hub, made on first use (inside the event loop)."""
    hub: EventHub | None = getattr(app.state, "events", None)
    if hub is None:
        hub = EventHub(station)
        app.state.events = hub
    return hub


def hub_in(app: object) -> EventHub | None:
    """The app's hub, None before its first stream."""
    hub = getattr(getattr(app, "state", None), "events", None)
    return hub if isinstance(hub, EventHub) else None


def end_streams(app: object) -> None:
    """End the app's event streams (when it has any): the server is stopping."""
    hub = hub_in(app)
    if hub is not None:
        hub.close()


@router.get("/events", response_class=StreamingResponse)
async def events(person: Anyone, request: Request) -> StreamingResponse:
    """Server-sent events: ``state`` (the GET /api/state body) now and on every change,
    ``heartbeat`` every 15 s when nothing changed. 503 ``too_many_streams`` beyond 20."""
    station: Station = request.app.state.station
    hub = hub_of(request.app, station)
    stream = hub.open()
    return _EventResponse(
        hub.events(stream),
        on_end=lambda: hub.leave(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _EventResponse(StreamingResponse):
    """A stream that gives its place back however it ends (even cut off before its first
    byte, when the generator never ran and so never reached its ``finally``)."""

    def __init__(
        self, content: AsyncIterator[str], *, on_end: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()


class Server(uvicorn.Server):
    """uvicorn's server, ending the event streams first when it stops: uvicorn waits for
    every open response to finish, and an event stream never finishes by itself."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # listening: systemd may count the station as up (Type=notify)
            sdnotify.ready(self.config.app, f"serving on port {self.config.port}")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams(self.config.app)
        await super().shutdown(sockets)
