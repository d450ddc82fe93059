"""GET /api/events against the real station served by uvicorn: the state now, then each
change of the scale pushed; heartbeats when quiet; at most STREAM_LIMIT streams (503
beyond, the place given back when one closes); and a server stopping with streams open
stops at once, ending them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.web import events
from rigs.helpers import StationServer, station_config, wait_for


def sse(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event name, data) of each event on a text/event-stream response."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, data
            name, data = "message", ""
        elif line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data += line[len("data: ") :]


def next_state(
    stream: Iterator[tuple[str, str]], check: Any, timeout: float = 5.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    for name, data in stream:
        if name == "state":
            body: dict[str, Any] = json.loads(data)
            if check(body):
                return body
        assert time.monotonic() < deadline, "no such state pushed in time"
    raise AssertionError("the stream ended")


def hub_of(server: StationServer) -> events.EventHub:
    app = server.server.config.app
    hub = wait_for(lambda: events.hub_in(app), 5, "the event hub")
    assert hub is not None
    return hub


def test_state_now_then_each_scale_change(tmp_path: Path) -> None:
    with (
        StationServer(station_config(tmp_path)) as server,
        server.client(role="lead") as c,
        c.stream("GET", "/api/events", timeout=10) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = sse(r)
        first = next_state(stream, lambda s: True)
        with server.client(role="lead") as state_client:
            assert first.keys() == state_client.get("/api/state").json().keys()
        for grams in (1500, 2750):
            c.post("/api/simulator", json={"weight_g": grams})
            sent = time.monotonic()
            scale = next_state(
                stream,
                lambda s, g=grams: s["scale"]["status"] == "stable" and s["scale"]["weight_g"] == g,
            )["scale"]
            assert scale["weighing"] >= 1
            assert time.monotonic() - sent < 5
        c.post("/api/simulator", json={"connected": False})
        offline = next_state(stream, lambda s: s["scale"]["status"] == "offline")
        assert offline["scale"]["weight_g"] is None


def test_heartbeat_when_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "HEARTBEAT_S", 0.3)
    monkeypatch.setattr(events, "REFRESH_S", 60.0)  # nothing but the scale wakes the hub
    with StationServer(station_config(tmp_path)) as server, server.client(role="lead") as c:
        c.post("/api/simulator", json={"connected": False})  # a scale that says nothing new
        with c.stream("GET", "/api/events", timeout=10) as r:
            stream = sse(r)
            next_state(stream, lambda s: s["scale"]["status"] == "offline")
            names = []
            for name, _data in stream:
                names.append(name)
                if names.count("heartbeat") == 2:
                    break
            assert "heartbeat" in names


def test_at_most_limit_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "STREAM_LIMIT", 3)
    with StationServer(station_config(tmp_path)) as server:
        clients = [server.client(role="staff") for _ in range(5)]
        try:
            opened = [c.stream("GET", "/api/events", timeout=10) for c in clients[:3]]
            responses = [o.__enter__() for o in opened]
            assert [r.status_code for r in responses] == [200, 200, 200]
            hub = hub_of(server)
            assert hub.streams == 3
            refused = clients[3].get("/api/events", timeout=10)
            assert refused.status_code == 503
            error = refused.json()["error"]
            assert error["code"] == "too_many_streams"
            assert "3" in error["message"] and error["message_en"]
            opened[0].__exit__(None, None, None)  # one page closed: its place is free
            wait_for(lambda: hub.streams == 2, 5, "the closed stream's place")
            with clients[4].stream("GET", "/api/events", timeout=10) as again:
                assert again.status_code == 200
            for o in opened[1:]:
                o.__exit__(None, None, None)
            wait_for(lambda: hub.streams == 0, 5, "every place given back")
        finally:
            for c in clients:
                c.close()


def test_server_stops_at_once_with_streams_open(tmp_path: Path) -> None:
    server = StationServer(station_config(tmp_path))
    with server, server.client(role="lead") as c, c.stream("GET", "/api/events", timeout=10) as r:
        stream = sse(r)
        next_state(stream, lambda s: True)
        with server.client(role="staff") as other, other.stream("GET", "/api/events") as r2:
            assert r2.status_code == 200
            assert hub_of(server).streams == 2
            started = time.monotonic()
            server.server.should_exit = True
            server.thread.join(10)
            took = time.monotonic() - started
            assert not server.thread.is_alive(), "uvicorn is still waiting for the streams"
            assert took < 3, f"stopping took {took:.1f} s"
            list(stream)  # ends: the server closed it properly (no error raised)
            assert r.is_stream_consumed
