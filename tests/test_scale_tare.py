"""Tare and zero through the real station and API: the scale's own commands over a real
pseudo-terminal where the family has them, a software tare where it has not, and clear
refusals otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.scale.protocols import SimState
from edge.scale.reader import ScaleReader
from edge.scale.state import ScaleStatus
from rigs.helpers import StationServer, settle, station_config, wait_for
from tests.test_scale_reader import PtyPeer, is_stable, wait_state


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-scale-if00"


def serial_station(tmp_path: Path, link: Path, **keys: Any) -> StationServer:
    scale = {"type": "serial", "port": str(link), "stale_after_s": 1.0, **keys}
    return StationServer(station_config(tmp_path, scale=scale))


def scale_of(c: httpx.Client) -> dict[str, Any]:
    scale: dict[str, Any] = c.get("/api/state").json()["scale"]
    return scale


def wait_scale(c: httpx.Client, what: str, **expected: Any) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        scale = scale_of(c)
        return scale if all(scale[k] == v for k, v in expected.items()) else None

    found = wait_for(reached, 5, what)
    assert found is not None
    return found


def ids(c: httpx.Client) -> dict[str, str]:
    producer = c.post(
        "/api/producers", json={"name": "Lò Văn Pọm", "confirm_duplicate": True}
    ).json()["id"]
    product = c.post("/api/products", json={"name": "Chè búp tươi"}).json()["id"]
    return {"producer_id": producer, "product_id": product}


def refused(r: httpx.Response, code: str, *words: str) -> dict[str, str]:
    assert r.status_code == 409, r.text
    err: dict[str, str] = r.json()["error"]
    assert err["code"] == code
    for word in words:
        assert word in err["message"] + " | " + err["message_en"]
    return err


def lot_row(server: StationServer, lot_id: str) -> dict[str, Any]:
    [row] = server.station.db.rows(
        "SELECT net_g, tare_g, tare_source FROM lots WHERE id = ?", (lot_id,)
    )
    return row


def payload(server: StationServer, lot_id: str) -> dict[str, Any]:
    [row] = server.station.db.rows("SELECT body FROM outbox WHERE record_id = ?", (lot_id,))
    body: dict[str, Any] = json.loads(row["body"])
    return body


# -- the scale's own tare and zero -------------------------------------------------------


@pytest.fixture
def toledo(tmp_path: Path, link: Path) -> Iterator[tuple[PtyPeer, StationServer]]:
    with (
        PtyPeer(link, "toledo-8217", SimState(800)) as peer,
        serial_station(tmp_path, link, protocol="toledo-8217", poll_rate_hz=20) as server,
    ):
        yield peer, server


def test_native_tare_sends_exactly_the_command(toledo: tuple[PtyPeer, StationServer]) -> None:
    peer, server = toledo
    with server.client() as c:
        scale = wait_scale(c, "800 g stable", status="stable", weight_g=800)
        assert (scale["protocol"], scale["tare_mode"], scale["can_zero"]) == (
            "toledo-8217",
            "scale",
            True,
        )
        assert scale["tare_source"] is None and scale["net"] is False

        r = c.post("/api/scale/tare")
        assert r.status_code == 200, r.text
        assert r.json()["tare_source"] == "scale"
        wait_for(lambda: b"T" in peer.received, 2, "the peer to read T")
        assert bytes(peer.received).replace(b"W", b"") == b"T"  # polls, then exactly T
        scale = wait_scale(c, "net 0 g", status="stable", weight_g=0, net=True)
        assert scale["tare_source"] == "scale"
        assert scale["frame"] == "\\x0200.000N"

        peer.set(weight_g=2500)  # produce into the tared crate: the scale shows net
        wait_scale(c, "net 2500 g", status="stable", weight_g=2500, net=True)
        lot = c.post("/api/lots", json=ids(c))
        assert lot.status_code == 201, lot.text
        assert lot_row(server, lot.json()["id"]) == {
            "net_g": 2500,
            "tare_g": None,  # 8217 frames say "net" but carry no tare value
            "tare_source": "scale",
        }
        assert payload(server, lot.json()["id"])["tare_source"] == "scale"

        err = refused(c.post("/api/scale/tare/clear"), "tare_on_scale", "trên đầu cân")
        assert "indicator" in err["message_en"]

        r = c.post("/api/scale/zero")
        assert r.status_code == 200, r.text
        wait_for(lambda: b"Z" in peer.received, 2, "the peer to read Z")
        assert bytes(peer.received).replace(b"W", b"") == b"TZ"
        wait_scale(c, "gross 0 g", status="stable", weight_g=0, net=False)


def test_native_commands_refused_while_offline(toledo: tuple[PtyPeer, StationServer]) -> None:
    peer, server = toledo
    with server.client() as c:
        wait_scale(c, "800 g stable", status="stable", weight_g=800)
        peer.unplug()
        scale = wait_scale(c, "offline", status="offline")
        assert scale["fault"]["code"] in ("scale_disconnected", "scale_port_missing")
        assert scale["recent_frames"][-1] == "\\x0200.800"  # the last frame, for the report
        refused(c.post("/api/scale/tare"), "scale_offline", "không kết nối")
        refused(c.post("/api/scale/zero"), "scale_offline", "không kết nối")
        assert b"T" not in peer.received and b"Z" not in peer.received


def test_tare_reply_with_a_value_shows_the_tare(link: Path) -> None:
    """MT-SICS answers T with the tare taken ("T S 800.00 g"); its weights carry no
    net flag, so the reply is what tells the station the weight is now net."""
    with PtyPeer(link, "mt-sics", SimState(800, unit="g")) as peer:
        reader = ScaleReader(str(link), protocol="mt-sics", poll_interval_s=0.05)
        reader.start()
        try:
            wait_state(reader, is_stable(800), "800 g")
            reader.send_command(b"T\r\n")
            state = wait_state(reader, lambda s: s.tare_g == 800, "tare 800 g")
            assert (state.net, state.tare_source) == (True, "scale")
            assert b"T\r\n" in peer.received
            peer.set(weight_g=1200)
            state = wait_state(reader, is_stable(1200), "net 1200 g")
            assert (state.net, state.tare_g, state.tare_source) == (True, 800, "scale")
            reader.send_command(b"Z\r\n")
            reader.forget_scale_tare()
            state = wait_state(reader, lambda s: s.weight_g == 0, "zeroed")
            assert (state.net, state.tare_g, state.tare_source) == (False, None, None)
        finally:
            reader.stop()


# -- software tare -------------------------------------------------------------------------


@pytest.fixture
def simulated(tmp_path: Path) -> Iterator[StationServer]:
    with StationServer(station_config(tmp_path)) as server:
        yield server


def test_software_tare_is_subtracted_and_recorded(simulated: StationServer) -> None:
    server = simulated
    with server.client() as c:
        settle(c, 350)  # the empty crate
        scale = scale_of(c)
        assert (scale["tare_mode"], scale["can_zero"], scale["tare_source"]) == (
            "software",
            False,
            None,
        )
        r = c.post("/api/scale/tare")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["tare_source"] == "software"
        assert body["scale"]["tare_g"] == 350 and body["scale"]["weight_g"] == 0
        assert body["scale"]["net"] is True

        c.post("/api/simulator", json={"weight_g": 2850})  # crate + 2.5 kg of tea
        scale = wait_scale(c, "net 2500 g", status="stable", weight_g=2500)
        assert (scale["net"], scale["tare_g"], scale["tare_source"]) == (True, 350, "software")
        lot = c.post("/api/lots", json=ids(c))
        assert lot.status_code == 201, lot.text
        assert lot.json()["net_g"] == 2500
        assert lot_row(server, lot.json()["id"]) == {
            "net_g": 2500,
            "tare_g": 350,
            "tare_source": "software",
        }
        sent = payload(server, lot.json()["id"])
        assert (sent["net_g"], sent["tare_g"], sent["tare_source"]) == (2500, 350, "software")

        # tare again with the full crate on: the new tare is the gross weight
        assert c.post("/api/scale/tare").json()["scale"]["tare_g"] == 2850
        r = c.post("/api/scale/tare/clear")
        assert r.status_code == 200
        assert (r.json()["scale"]["tare_g"], r.json()["scale"]["weight_g"]) == (None, 2850)
        scale = wait_scale(c, "gross 2850 g", status="stable", weight_g=2850, net=False)
        assert scale["tare_source"] is None
        assert c.post("/api/scale/tare/clear").status_code == 200  # nothing to clear: fine

        lot = c.post("/api/lots", json=ids(c))
        settle(c, 0)
        settle(c, 1800)
        lot = c.post("/api/lots", json=ids(c))
        assert lot_row(server, lot.json()["id"]) == {
            "net_g": 1800,
            "tare_g": None,
            "tare_source": None,
        }
        assert "tare_g" not in payload(server, lot.json()["id"])


def tare_audit(server: StationServer) -> list[tuple[str, str, dict[str, Any]]]:
    rows = server.station.db.rows(
        "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'scale.tare%' ORDER BY id"
    )
    return [(r["actor"], r["action"], json.loads(r["detail"])) for r in rows]


def test_software_tare_survives_a_restart(tmp_path: Path) -> None:
    cfg = station_config(tmp_path)
    with StationServer(cfg) as server, server.client() as c:
        settle(c, 350)  # the empty crate
        assert c.post("/api/scale/tare").json()["scale"]["tare_g"] == 350
        assert tare_audit(server) == [
            ("Thử lead", "scale.tare_set", {"tare_g": 350, "previous_g": None})
        ]

    # the station restarts (power cut, update): the same tare is in force at once
    with StationServer(cfg) as server, server.client() as c:
        scale = scale_of(c)
        assert (scale["tare_g"], scale["tare_source"]) == (350, "software")
        c.post("/api/simulator", json={"weight_g": 2850})  # crate + 2.5 kg of tea
        scale = wait_scale(c, "net 2500 g", status="stable", weight_g=2500)
        assert (scale["net"], scale["tare_g"], scale["tare_source"]) == (True, 350, "software")
        lot = c.post("/api/lots", json=ids(c))
        assert lot.status_code == 201, lot.text
        assert lot_row(server, lot.json()["id"]) == {
            "net_g": 2500,
            "tare_g": 350,
            "tare_source": "software",
        }
        assert c.post("/api/scale/tare/clear").json()["scale"]["tare_g"] is None
        assert tare_audit(server)[-1] == ("Thử lead", "scale.tare_cleared", {"tare_g": 350})

    # cleared stays cleared
    with StationServer(cfg) as server, server.client() as c:
        assert (scale_of(c)["tare_g"], scale_of(c)["tare_source"]) == (None, None)
        c.post("/api/simulator", json={"weight_g": 1800})
        wait_scale(c, "gross 1800 g", status="stable", weight_g=1800, net=False)


def test_a_software_tare_the_indicator_took_over_is_not_restored(
    tmp_path: Path, link: Path
) -> None:
    with PtyPeer(link, "stgs", SimState(350), stream_s=0.05) as peer:
        with (
            serial_station(tmp_path, link, protocol="stgs") as server,
            server.client() as c,
        ):
            wait_scale(c, "350 g", status="stable", weight_g=350)
            assert c.post("/api/scale/tare").json()["tare_source"] == "software"
            # then someone presses TARE on the indicator: it reports net weights itself
            peer.set(weight_g=0, net=True, tare_g=350)
            wait_scale(c, "the indicator's tare", tare_source="scale", weight_g=0)
            wait_for(lambda: tare_audit(server)[-1][1] == "scale.tare_cleared", 5, "the drop saved")
            assert tare_audit(server)[-1] == (
                "station",
                "scale.tare_cleared",
                {"tare_g": 350, "reason": "the indicator reports a net weight"},
            )
            cfg = server.cfg
        peer.set(weight_g=350, net=False, tare_g=0)  # the indicator's tare cleared meanwhile
        with StationServer(cfg) as server, server.client() as c:
            scale = wait_scale(c, "gross 350 g", status="stable", weight_g=350)
            assert (scale["net"], scale["tare_g"], scale["tare_source"]) == (False, None, None)


def test_software_tare_refusals(simulated: StationServer) -> None:
    with simulated.client() as c:
        settle(c, 0)
        refused(c.post("/api/scale/tare"), "tare_nothing", "Không có gì trên cân")
        c.post("/api/simulator", json={"weight_g": 500, "unstable": True})
        wait_scale(c, "unstable", status="unstable")
        refused(c.post("/api/scale/tare"), "scale_unstable", "chưa ổn định")
        c.post("/api/simulator", json={"unstable": False, "overload": True})
        wait_scale(c, "overload", status="overload")
        refused(c.post("/api/scale/tare"), "scale_overload", "quá tải")
        c.post("/api/simulator", json={"overload": False, "connected": False})
        wait_scale(c, "offline", status="offline")
        refused(c.post("/api/scale/tare"), "scale_offline", "không kết nối")
        assert scale_of(c)["tare_g"] is None


def test_zero_without_a_command_is_refused(simulated: StationServer) -> None:
    with simulated.client() as c:
        settle(c, 40)
        err = refused(c.post("/api/scale/zero"), "zero_unsupported", "ZERO")
        assert "không hợp lệ cho cân thương mại" in err["message"]
        assert "not legal for trade" in err["message_en"]
        assert scale_of(c)["weight_g"] == 40


def test_software_tare_refused_when_the_scale_already_shows_net(tmp_path: Path, link: Path) -> None:
    net_frames = SimState(500, net=True, tare_g=200)
    with (
        PtyPeer(link, "stgs", net_frames, stream_s=0.05),
        serial_station(tmp_path, link, protocol="stgs") as server,
        server.client() as c,
    ):
        scale = wait_scale(c, "net 500 g", status="stable", weight_g=500)
        assert (scale["net"], scale["tare_source"], scale["tare_mode"]) == (
            True,
            "scale",
            "software",
        )
        refused(c.post("/api/scale/tare"), "tare_on_scale", "Bỏ trừ bì trên đầu cân")


# -- recording refuses the new states ------------------------------------------------------


def test_settling_and_underload_refuse_a_lot(tmp_path: Path, link: Path) -> None:
    slow = tmp_path / "slow.toml"
    slow.write_text(
        'title = "A balance that never settles long enough"\n'
        'protocol = "mt-sics"\ncapacity_g = 6000\ndivision_g = 1\n'
        "[poll]\nrate_hz = 20\n[stability]\nreadings = 2\ntolerance_g = 1\nsettle_s = 10\n",
        encoding="utf-8",
    )
    with (
        PtyPeer(link, "mt-sics", SimState(1500, unit="g")) as peer,
        serial_station(tmp_path, link, profile=str(slow)) as server,
        server.client() as c,
    ):
        body = ids(c)
        wait_scale(c, "settling", status="settling", weight_g=1500)
        err = refused(c.post("/api/lots", json=body), "scale_settling", "sắp ổn định")
        assert "settling" in err["message_en"]
        peer.set(underload=True)
        scale = wait_scale(c, "underload", status="underload")
        assert scale["weight_g"] is None and scale["frame"] == "S -"
        err = refused(c.post("/api/lots", json=body), "scale_underload", "dưới mức 0", "ZERO")
        assert c.get("/api/lots").json() == []
        assert server.station.scale_state().status is ScaleStatus.UNDERLOAD


# -- the station's own simulator speaking a polled family ----------------------------------


def test_simulated_polled_scale_with_native_tare(tmp_path: Path) -> None:
    """``[scale] type = "simulated"`` with ``protocol``: the simulator answers the polls
    and the tare command in that family's format; the reader decodes it with the same
    registry."""
    scale = {
        "type": "simulated",
        "protocol": "toledo-8217",
        "link": str(tmp_path / "scale"),
        "poll_rate_hz": 20,
        "stale_after_s": 1.0,
    }
    with (
        StationServer(station_config(tmp_path, scale=scale)) as server,
        server.client() as c,
    ):
        sim = server.station.simulator
        assert sim is not None
        c.post("/api/simulator", json={"weight_g": 600})
        scale_now = wait_scale(c, "600 g stable", status="stable", weight_g=600)
        assert (scale_now["protocol"], scale_now["tare_mode"]) == ("toledo-8217", "scale")
        assert c.post("/api/scale/tare").status_code == 200
        wait_scale(c, "net 0 g", status="stable", weight_g=0, net=True)
        assert set(sim.commands) == {b"W", b"T"} and sim.commands.count(b"T") == 1
        refused(c.post("/api/lots", json=ids(c)), "weight_not_positive")
