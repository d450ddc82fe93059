"""The operations console served for tests: the real app by uvicorn in a thread, on a
fresh PostgreSQL schema, with operators made and signed in on request."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import uvicorn

from edge.central.console.app import create_app
from edge.central.console.db import ConsoleDb
from edge.central.console.operators import add_operator
from edge.central.console.schema import ensure_schema
from edge.central.console.settings import ConsoleSettings
from rigs.helpers import bound_socket, wait_for

PASSWORD = "mật-khẩu-thử-10"


class ConsoleServer:
    """``with ConsoleServer(db_url) as console:`` serves the console on a free port;
    ``console.db`` is a pool on the same database for seeding and checking."""

    def __init__(self, db_url: str, **settings: Any) -> None:
        self.settings = ConsoleSettings(db_url=db_url, **settings)
        self.db = ConsoleDb(db_url).open()
        ensure_schema(self.db)
        self.app = create_app(self.settings)
        sock = bound_socket(0)
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._made: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def operator(self, role: str) -> str:
        """The username of an operator of ``role`` (made on first use, :data:`PASSWORD`)."""
        username = f"test-{role}"
        if username not in self._made:
            add_operator(self.db, username, f"Người thử ({role})", role, PASSWORD)
            self._made.add(username)
        return username

    def client(self, role: str | None = "viewer", **kwargs: Any) -> httpx.Client:
        """An HTTP client signed in as an operator of ``role`` (None: not signed in). It
        sends the console's own Origin, as its pages do."""
        cookies = {}
        if role is not None:
            r = httpx.post(
                f"{self.url}/signin",
                data={"username": self.operator(role), "password": PASSWORD},
                headers={"Origin": self.url},
            )
            assert r.status_code == 303, r.text
            cookies = dict(r.cookies)
        return httpx.Client(
            base_url=self.url, headers={"Origin": self.url}, cookies=cookies, timeout=30, **kwargs
        )

    def sign_in_page(self, page: Any, role: str = "viewer", target: str = "/fleet") -> None:
        """Signs a Playwright ``page`` in through the sign-in form, landing on ``target``."""
        page.goto(f"{self.url}{target}")
        page.fill("input[name=username]", self.operator(role))
        page.fill("input[name=password]", PASSWORD)
        page.click("form.signin button")
        page.wait_for_url(f"{self.url}{target}*")

    def __enter__(self) -> ConsoleServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 15, "the console to start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self._sock.close()
        self.db.close()


def console_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route of the console, through included routers."""
    from starlette.routing import Route

    found: list[tuple[str, str]] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, Route):
                found.extend((m, route.path) for m in sorted(route.methods or {"GET"}))
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes)

    walk(app.routes)
    return found
