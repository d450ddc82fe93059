"""The console's shell: nobody gets in without an operator account, a wrong password is
refused (and five lock the account), roles limit what changes, cross-site writes are
refused, and every route but sign-in and the static files needs a signed-in operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.routing import Mount

from edge.central.console.operators import OperatorError, add_operator
from rigs.console_support import PASSWORD, ConsoleServer, console_routes
from tests.central_support import pg_schema

OPEN = {"/signin", "/lang/{code}"}


@pytest.fixture
def console() -> Iterator[ConsoleServer]:
    with pg_schema() as url, ConsoleServer(url) as server:
        yield server


def test_anonymous_is_sent_to_sign_in_and_refused_everywhere(console: ConsoleServer) -> None:
    with console.client(role=None) as anon:
        page = anon.get("/fleet", headers={"Accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == "/signin?next=%2Ffleet"
        routes = console_routes(console.app)
        assert {p for _m, p in routes} >= {"/signin", "/signout", "/", "/fleet"}
        checked = 0
        for method, route in routes:
            if route in OPEN or route == "/" or method == "HEAD":
                continue
            path = route.replace("{", "").replace("}", "")
            r = anon.request(method, path)
            assert r.status_code in (401, 303), (method, route, r.status_code)
            checked += 1
        assert checked >= 2
        mounts = [r.path for r in console.app.routes if isinstance(r, Mount)]
        assert mounts == ["/static"]
        assert anon.get("/static/console.css").status_code == 200


def test_sign_in_wrong_password_lockout_and_sign_out(console: ConsoleServer) -> None:
    username = console.operator("viewer")
    with console.client(role=None) as c:
        r = c.post("/signin", data={"username": username, "password": "sai-mật-khẩu-1"})
        assert r.status_code == 401
        assert "wrong username or password" in r.text
        r = c.post("/signin", data={"username": username, "password": PASSWORD, "next": "/x"})
        assert (r.status_code, r.headers["location"]) == (303, "/x")
        r = c.post("/signin", data={"username": username, "password": PASSWORD, "next": "//evil"})
        assert r.headers["location"] == "/"  # never another site
        assert c.post("/signout").status_code == 303
        assert c.get("/fleet").status_code == 401
    add_operator(console.db, "khoa", "Khoa", "viewer", "mật-khẩu-đúng-1")
    with console.client(role=None) as c:
        for _ in range(5):
            wrong = c.post("/signin", data={"username": "khoa", "password": "sai-sai-sai-1"})
            assert wrong.status_code == 401
        r = c.post("/signin", data={"username": "khoa", "password": "mật-khẩu-đúng-1"})
        assert r.status_code == 401 and "locked until" in r.text


def test_a_new_operator_is_checked() -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        with pytest.raises(OperatorError, match="password"):
            add_operator(console.db, "lan", "Lan", "viewer", "ngắn")
        with pytest.raises(OperatorError, match="role"):
            add_operator(console.db, "lan", "Lan", "owner", "đủ-dài-rồi-1")
        add_operator(console.db, "lan", "Lan", "viewer", "đủ-dài-rồi-1")
        with pytest.raises(OperatorError, match="taken"):
            add_operator(console.db, "lan", "Lan 2", "viewer", "đủ-dài-rồi-1")


def test_foreign_origin_and_unknown_host_are_refused(console: ConsoleServer) -> None:
    with console.client(role="viewer") as c:
        r = c.post("/signout", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "another site" in r.text
        r = c.get("/fleet", headers={"Host": "rebound.example"})
        assert r.status_code == 400 and "unknown Host" in r.text


def test_sign_in_attempts_are_limited_per_address(console: ConsoleServer) -> None:
    with console.client(role=None) as c:
        for n in range(10):
            r = c.post("/signin", data={"username": f"ai-{n}", "password": "đoán-thử-mật-khẩu"})
            assert r.status_code == 401
        r = c.post("/signin", data={"username": console.operator("viewer"), "password": PASSWORD})
        assert r.status_code == 429 and "wait a minute" in r.text


def test_bodies_are_capped_before_they_are_parsed(console: ConsoleServer) -> None:
    with console.client(role="editor") as c:
        r = c.post("/signin", content=b"u" * (64 * 1024 + 1),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert r.status_code == 413 and "too large (65,537 bytes, at most 65,536)" in r.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(20):
                yield b"x" * 4096

        r = c.post("/catalogue/product", content=chunks(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert r.status_code == 413 and "more than 65,536 bytes" in r.text
        assert console.db.scalar("SELECT count(*) FROM catalogue_versions") == 0
