"""Sign-in, roles and same-origin checks against a real station over HTTP, the
``edge users`` command, and the sign-in form in a real browser.

The OpenAPI walk covers every route the app declares: a new route that forgets its
``person`` parameter fails here."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from edge.accounts.people import FREE_FAILURES, People, lock_minutes
from edge.cli import main
from rigs.clock import MiddayClock
from rigs.helpers import TEST_PIN, StationServer, person_of_role, settle, station_config
from tests.browser import by_id, needs_chromium, open_page

FOREIGN = "http://evil.example"
OPEN_WRITES = {("post", "/api/login")}  # signing in needs no session, by nature


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    with StationServer(station_config(tmp_path)) as s:
        yield s


def _routes(server: StationServer) -> list[tuple[str, str]]:
    with server.client("technician") as c:
        r = c.get("/api/openapi.json")
    assert r.status_code == 200, r.text
    paths: dict[str, dict[str, Any]] = r.json()["paths"]
    routes = [
        (method, re.sub(r"\{[^}]+\}", "0190a1b2-0000-7000-8000-000000000000", path))
        for path, ops in paths.items()
        for method in ops
    ]
    assert len(routes) >= 20, routes  # the walk sees the whole API, not a part of it
    return routes


def test_every_route_needs_a_session_and_writes_need_the_stations_origin(
    server: StationServer,
) -> None:
    routes = _routes(server)
    writes = [(m, p) for m, p in routes if m not in ("get", "head") and (m, p) not in OPEN_WRITES]
    assert ("post", "/api/lots") in writes and ("post", "/api/scale/tare") in writes
    with server.client(None) as anon, server.client("lead") as lead:
        for method, path in routes:
            if (method, path) in OPEN_WRITES:
                continue
            r = anon.request(method.upper(), path, json={})
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "not_signed_in"
        for method, path in writes:
            r = lead.request(method.upper(), path, json={}, headers={"Origin": FOREIGN})
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "foreign_origin"
            cross = {"Sec-Fetch-Site": "cross-site"}
            r = lead.request(method.upper(), path, json={}, headers=cross)
            assert r.status_code == 403, (method, path, r.status_code)
        # the station's own origin passes the check (and then meets the body's rules)
        own = {"Origin": server.url}
        assert lead.post("/api/scale/zero", headers=own).status_code != 403
        r = anon.post("/api/login", json={"name": "x", "pin": "1234"}, headers={"Origin": FOREIGN})
        assert r.status_code == 403


def test_an_unknown_host_is_refused_dns_rebinding(server: StationServer) -> None:
    with server.client("lead") as c:
        for path in ("/", "/api/state"):
            r = c.get(path, headers={"Host": "attacker.example:8080"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_host"
        assert c.get("/api/state", headers={"Host": "localhost"}).status_code == 200
        assert c.get("/", headers={"Host": "192.168.1.20:8080"}).status_code == 200


def test_docs_only_for_technicians(server: StationServer) -> None:
    with server.client(None) as anon, server.client("staff") as staff:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert anon.get(path).status_code == 404
        assert anon.get("/api/docs").status_code == 401
        assert staff.get("/api/docs").status_code == 403
        assert staff.get("/api/openapi.json").status_code == 403
    with server.client("technician") as tech:
        r = tech.get("/api/docs")
        assert r.status_code == 200 and "/api/openapi.json" in r.text


def _ids(c: Any) -> tuple[str, str]:
    producer = c.post("/api/producers", json={"name": "Lò Thị Hoa"}).json()["id"]
    product = c.post("/api/products", json={"name": "Chuối tiêu"}).json()["id"]
    return producer, product


def test_roles_and_every_write_is_attributed_to_the_signed_in_person(
    server: StationServer,
) -> None:
    with server.client("lead") as lead, server.client("staff") as staff:
        producer, product = _ids(lead)
        with server.client("courier") as courier:
            settle(staff, 2100)
            lot_body = {"producer_id": producer, "product_id": product}
            r = courier.post("/api/lots", json=lot_body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            assert courier.get("/api/producers").status_code == 403  # farmers' phones
            assert courier.get("/api/me").json()["role"] == "courier"
        # a name in the body is not accepted as the author
        r = staff.post("/api/lots", json={**lot_body, "actor": "Giám đốc"})
        assert r.status_code == 422
        r = staff.post("/api/lots", json=lot_body)
        assert r.status_code == 201, r.text
        lot = r.json()
        assert staff.post("/api/products", json={"name": "Cam"}).status_code == 403  # leads'
        staff.post("/api/scale/tare")
    audit = server.station.db.rows("SELECT actor, action, record_id FROM audit_log")
    staff_name, lead_name = person_of_role(server.station.db, "staff"), "Thử lead"
    assert {"actor": staff_name, "action": "lot.recorded", "record_id": lot["id"]} in audit
    assert {"actor": lead_name, "action": "producer.created", "record_id": producer} in audit
    assert any(a["actor"] == staff_name and a["action"] == "scale.tare_set" for a in audit)


def test_session_cookie_is_httponly_strict_and_ends_with_the_shift(tmp_path: Path) -> None:
    clock = MiddayClock("Asia/Ho_Chi_Minh")
    with StationServer(station_config(tmp_path), now=clock) as server:
        name = person_of_role(server.station.db, "staff")
        with server.client(None) as c:
            r = c.post("/api/login", json={"name": name.upper(), "pin": TEST_PIN})
            assert r.status_code == 200, r.text
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert "max-age=43200" in cookie  # web.session_hours = 12
            assert c.get("/api/me").json()["name"] == name
            token = r.cookies["edge_session"]
            stored = server.station.db.rows("SELECT token_hash FROM sessions")
            assert token not in str(stored)  # only its hash is kept
            clock.jump(timedelta(hours=11, minutes=59))
            assert c.get("/api/me").status_code == 200
            clock.jump(timedelta(minutes=2))
            assert c.get("/api/me").status_code == 401
            # signing out ends a session at once
            c.post("/api/login", json={"name": name, "pin": TEST_PIN})
            assert c.post("/api/logout").status_code == 200
            assert c.get("/api/me").status_code == 401


def test_pin_guessing_is_slowed_and_locked(tmp_path: Path) -> None:
    clock = MiddayClock("Asia/Ho_Chi_Minh")
    with StationServer(station_config(tmp_path), now=clock) as server:
        with server.client(None) as c:  # a new station says how to add the first person
            r = c.post("/api/login", json={"name": "Lan", "pin": "1234"})
            assert r.json()["error"]["code"] == "no_people_yet"
            assert "edge users add" in r.json()["error"]["message"]
        name = person_of_role(server.station.db, "lead")
        [row] = server.station.db.rows("SELECT pin_hash FROM people")
        assert row["pin_hash"].startswith("$argon2id$") and TEST_PIN not in row["pin_hash"]
        with server.client(None) as c:
            codes = [
                c.post("/api/login", json={"name": name, "pin": f"{n:04d}"}).json()["error"]["code"]
                for n in range(FREE_FAILURES)
            ]
            assert codes == ["wrong_pin"] * (FREE_FAILURES - 1) + ["locked"]
            r = c.post("/api/login", json={"name": name, "pin": TEST_PIN})  # right, but locked
            assert r.status_code == 423 and "5 phút" in r.json()["error"]["message"]
            clock.jump(timedelta(minutes=lock_minutes(FREE_FAILURES) + 1))
            assert c.post("/api/login", json={"name": name, "pin": TEST_PIN}).status_code == 200
            # an unknown name gets the wrong-PIN answer; ten tries a minute from one
            # address, then 429 whatever the name
            answers = [
                c.post("/api/login", json={"name": f"ai {n}", "pin": "0000"}).status_code
                for n in range(12)
            ]
            assert 401 in answers and answers[-1] == 429
    assert lock_minutes(FREE_FAILURES + 1) == 10 and lock_minutes(50) == 60


def _edge(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``edge users ...`` as the shell runs it (argument parsing, exit code, output), in
    this process: the PIN comes from a pipe, as from ``printf 1234 | edge users add``."""
    toml = tmp_path / "station.toml"
    toml.write_text(f'[storage]\npath = "{tmp_path / "station.db"}"\n')
    out, err = io.StringIO(), io.StringIO()
    argv = ["users", *args, "--config", str(toml)]
    with (
        mock.patch("sys.stdin", io.StringIO(stdin)),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing a choice
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def test_edge_users_command(tmp_path: Path) -> None:
    r = _edge(tmp_path, "add", "Nguyễn Thị Lan", "--role", "lead", stdin="4321\n")
    assert r.returncode == 0 and "added Nguyễn Thị Lan (lead)" in r.stdout, r.stderr
    r = _edge(tmp_path, "add", "nguyễn  thị lan", "--role", "staff", stdin="1111\n")
    assert r.returncode == 1 and "already" in r.stderr
    r = _edge(tmp_path, "add", "Bảo", "--role", "boss", stdin="1111\n")
    assert r.returncode == 2
    r = _edge(tmp_path, "add", "Bảo", "--role", "staff", stdin="12\n")
    assert r.returncode == 1 and "4 to 8 digits" in r.stderr
    from edge.storage.store import Store

    store = Store.open(tmp_path / "station.db", "site-x")
    try:
        people = People(store)
        session = people.sign_in("Nguyễn Thị Lan", "4321")
        assert people.session_person(session.token) is not None
        assert _edge(tmp_path, "reset", "Nguyễn Thị Lan", stdin="9876\n").returncode == 0
        assert people.session_person(session.token) is None  # a new PIN ends sessions
        session = people.sign_in("Nguyễn Thị Lan", "9876")
        assert _edge(tmp_path, "disable", "Nguyễn Thị Lan").returncode == 0
        assert people.session_person(session.token) is None
        r = _edge(tmp_path, "list")
        assert re.search(r"Nguyễn Thị Lan\s+lead\s+disabled", r.stdout), r.stdout
        assert _edge(tmp_path, "enable", "Nguyễn Thị Lan").returncode == 0
        assert people.sign_in("Nguyễn Thị Lan", "9876").person.role == "lead"
        actions = [r["action"] for r in store.rows("SELECT action FROM audit_log")]
        for action in ("person.added", "person.pin_reset", "person.disabled", "person.enabled"):
            assert action in actions
    finally:
        store.close()


@needs_chromium
def test_sign_in_on_the_page(server: StationServer, browser: Any) -> None:
    from playwright.sync_api import expect

    name = person_of_role(server.station.db, "staff")
    page = open_page(browser, server, 800, 480, role=None)
    expect(by_id(page, "signin")).to_be_visible()
    expect(by_id(page, "record-button")).to_be_hidden()
    by_id(page, "signin-name").fill(name)
    by_id(page, "signin-pin").fill("0000")
    by_id(page, "signin-submit").click()
    expect(by_id(page, "signin-error")).to_contain_text("không đúng")
    by_id(page, "signin-pin").fill(TEST_PIN)
    by_id(page, "signin-submit").click()
    expect(by_id(page, "person-name")).to_contain_text(name)
    expect(by_id(page, "record-button")).to_be_visible()
    expect(by_id(page, "signin")).to_be_hidden()
    by_id(page, "signout").click()
    expect(by_id(page, "signin")).to_be_visible()
    expect(by_id(page, "signin-name")).to_have_value(name)  # remembered on this device
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_lead_adds_resets_and_disables_people(server: StationServer) -> None:
    with server.client("lead") as lead, server.client("staff") as staff:
        assert staff.get("/api/people").status_code == 403
        r = lead.post("/api/people", json={"name": "Hà Văn Tú", "role": "courier", "pin": "5555"})
        assert r.status_code == 201, r.text
        tu = r.json()
        r = lead.post("/api/people", json={"name": "Kỹ", "role": "technician", "pin": "5555"})
        assert r.status_code == 403  # technicians are added on the station itself
        listed = lead.get("/api/people").json()
        assert {p["name"] for p in listed} >= {"Hà Văn Tú", "Thử lead", "Thử staff"}
        assert "pin_hash" not in str(listed)
        with server.client(None) as phone:
            login = {"name": "hà văn tú", "pin": "5555"}
            assert phone.post("/api/login", json=login).status_code == 200
            assert lead.post(f"/api/people/{tu['id']}/pin", json={"pin": "7777"}).status_code == 200
            assert phone.get("/api/me").status_code == 401  # the new PIN ended the session
            assert phone.post("/api/login", json={**login, "pin": "7777"}).status_code == 200
            r = lead.post(f"/api/people/{tu['id']}/disabled", json={"disabled": True})
            assert r.status_code == 200 and phone.get("/api/me").status_code == 401
            assert phone.post("/api/login", json={**login, "pin": "7777"}).status_code == 403
        me = lead.get("/api/me").json()
        r = lead.post(f"/api/people/{me['id']}/disabled", json={"disabled": True})
        assert r.status_code == 409
    audit = server.station.db.rows(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'person.%'"
    )
    assert {"actor": "Thử lead", "action": "person.disabled"} in audit


@needs_chromium
def test_a_lead_adds_a_courier_on_the_page(server: StationServer, browser: Any) -> None:
    from playwright.sync_api import expect

    from tests.browser import show_tab

    page = open_page(browser, server, 800, 480, role="lead")
    show_tab(page, "station")
    card = by_id(page, "people-card")
    expect(card).to_contain_text("Người dùng")
    by_id(page, "person-name-input").fill("Hà Văn Tú")
    by_id(page, "person-role").select_option("courier")
    by_id(page, "person-pin").fill("5555")
    by_id(page, "person-add").click()
    expect(by_id(page, "people-note")).to_have_text("Đã thêm Hà Văn Tú.")
    row = by_id(page, "person-row").filter(has_text="Hà Văn Tú")
    expect(row).to_contain_text("giao hàng")
    row.get_by_test_id("person-toggle").click()
    expect(row.get_by_test_id("person-row-state")).to_have_text("đã khóa")
    with server.client(None) as phone:
        r = phone.post("/api/login", json={"name": "Hà Văn Tú", "pin": "5555"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "disabled"
    by_id(page, "lang-toggle").click()
    expect(card).to_contain_text("People")
    assert page.errors == []  # type: ignore[attr-defined]
    staff = open_page(browser, server, 800, 480, role="staff")
    expect(by_id(staff, "person-name")).to_contain_text("Thử staff")
    show_tab(staff, "station")
    expect(by_id(staff, "outbox-pending")).not_to_have_text("–")  # the tab has loaded
    expect(by_id(staff, "people-card")).to_have_count(0)  # leads only
