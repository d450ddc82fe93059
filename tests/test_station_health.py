"""``edge health`` on a real station (what an upgrade asks before it keeps a release):
the page answers, the scale state is known, the outbox is writable; JSON and the exit
code, each failure named."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge import __version__
from edge.cli import main
from edge.web import health_api
from rigs.helpers import PortHold, StationServer, station_config, wait_for


def _health(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["health", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    with StationServer(station_config(tmp_path)) as s:
        yield s


def test_a_running_station_is_healthy(
    server: StationServer, capsys: pytest.CaptureFixture[str]
) -> None:
    wait_for(lambda: server.station.scale_state().status == "stable", 10, "the simulated scale")
    code, body, err = _health(capsys, "--url", server.url)
    assert code == 0, (body, err)
    assert body["healthy"] is True and body["problems"] == [] and err == ""
    assert body["page"] == {"answers": True, "status": 200, "error": None}
    station = body["station"]
    assert station["version"] == __version__ and station["site"] == "test-site"
    assert station["scale"] == {"known": True, "status": "stable", "fault": None}
    assert station["outbox"]["writable"] is True
    assert station["outbox"]["disk_free_mb"] > 0


def test_no_station_is_not_healthy(capsys: pytest.CaptureFixture[str]) -> None:
    with PortHold() as closed:  # bound, never listening: refused
        code, body, err = _health(capsys, "--url", f"http://127.0.0.1:{closed.port}")
    assert code == 1
    assert body["healthy"] is False and body["page"]["answers"] is False
    assert body["station"] is None
    (problem,) = body["problems"]
    assert problem.startswith(f"the page does not answer at http://127.0.0.1:{closed.port}/")
    assert "Connection refused" in problem
    assert err == f"not healthy: {problem}\n"


def test_a_locked_database_is_not_writable(
    server: StationServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_api, "LOCK_TIMEOUT_S", 1.0)
    holder = sqlite3.connect(server.cfg.storage.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # someone holds the write lock
        code, body, _ = _health(capsys, "--url", server.url)
        assert code == 1 and body["station"]["outbox"]["writable"] is False
        (problem,) = body["problems"]
        assert problem == (
            f"the database {server.cfg.storage.path} takes no write: database is locked"
        )
        holder.execute("ROLLBACK")
        code, body, _ = _health(capsys, "--url", server.url)
        assert code == 0 and body["station"]["outbox"]["writable"] is True
    finally:
        holder.close()


def test_the_scale_state_must_be_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A serial scale whose port opens but has sent nothing yet: the reader waits for its
    first frame; the state is not known until it comes."""
    master, slave = os.openpty()
    try:
        scale = {
            "type": "serial",
            "port": os.ttyname(slave),
            "protocol": "stgs",
            "stale_after_s": 60,
        }
        with StationServer(station_config(tmp_path, scale=scale)) as s:
            st = s.station
            wait_for(lambda: st.scale_state().fault is not None, 10, "the reader")
            wait_for(lambda: st.scale_state().fault == "scale_waiting", 10, "the port open")
            code, body, err = _health(capsys, "--url", s.url)
            assert code == 1 and body["page"]["answers"] is True
            assert body["station"]["scale"] == {
                "known": False,
                "status": "offline",
                "fault": "scale_waiting",
            }
            (problem,) = body["problems"]
            assert problem.startswith("scale state not known: scale_waiting")
            assert "not healthy: scale state not known" in err
            # the first frame: known
            os.write(master, b"ST,GS,+001.250kg\r\n" * 3)
            wait_for(lambda: st.scale_state().fault is None, 10, "the first frame")
            code, body, _ = _health(capsys, "--url", s.url, "--wait", "10")
            assert code == 0 and body["station"]["scale"]["known"] is True
            assert body["station"]["scale"]["status"] != "offline"
    finally:
        os.close(master)
        os.close(slave)


def test_health_reads_the_address_from_the_configuration(
    server: StationServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "station.toml"
    toml.write_text(f'[web]\nhost = "0.0.0.0"\nport = {server.cfg.web.port}\n', encoding="utf-8")
    code, body, _ = _health(capsys, "--config", str(toml))
    assert code == 0 and body["url"] == f"http://127.0.0.1:{server.cfg.web.port}"
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nprot = 1\n", encoding="utf-8")
    assert main(["health", "--config", str(bad)]) == 2


def test_the_health_route_answers_this_machine_only(server: StationServer) -> None:
    # no session needed from this machine, and not in the API document
    r = httpx.get(server.url + "/api/health", timeout=10)
    assert r.status_code == 200 and r.json()["healthy"] is True
    with server.client("technician") as c:
        assert "/api/health" not in c.get("/api/openapi.json").json()["paths"]
    assert health_api.from_this_machine("127.0.0.1", "127.0.0.1")
    assert health_api.from_this_machine("127.0.0.1", "0.0.0.0")
    assert health_api.from_this_machine("::1", "::")
    assert health_api.from_this_machine("::ffff:127.0.0.1", "::")
    assert health_api.from_this_machine("192.168.50.7", "192.168.50.7")  # its own LAN address
    assert not health_api.from_this_machine("192.168.50.20", "192.168.50.7")
    assert not health_api.from_this_machine("192.168.50.20", "0.0.0.0")
    assert not health_api.from_this_machine("testclient", "testserver")
