"""The HTTP API against a real station: simulated scale on a pseudo-terminal,
file printer, real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from rigs.clock import MiddayClock
from rigs.helpers import StationServer, lots_of_day, settle, station_config, wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    """A station whose day cannot end during the test (its clock starts at local noon):
    these tests compare exact lists of today's lots."""
    with StationServer(station_config(tmp_path), now=MiddayClock()) as s:
        yield s


def _scale(client: httpx.Client) -> dict[str, Any]:
    scale: dict[str, Any] = client.get("/api/state").json()["scale"]
    return scale


def _ids(client: httpx.Client) -> tuple[str, str]:
    producer = client.post("/api/producers", json={"name": "Giàng Thị Mỷ", "village": "Sìn Hồ"})
    product = client.post(
        "/api/products", json={"name": "Chè Shan tuyết", "unit_price_dong": 85000}
    )
    assert producer.status_code == product.status_code == 201
    return producer.json()["id"], product.json()["id"]


def test_producers_and_products_list_and_create(server: StationServer) -> None:
    with server.client() as c:
        _ids(c)
        assert [p["name"] for p in c.get("/api/producers").json()] == ["Giàng Thị Mỷ"]
        assert c.get("/api/products").json()[0]["unit_price_dong"] == 85000


def test_record_lot_from_stable_weight(server: StationServer) -> None:
    with server.client() as c:
        producer, product = _ids(c)
        settle(c, 2345)
        r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
        assert r.status_code == 201, r.text
        lot = r.json()
        assert lot["net_g"] == 2345 and lot["producer_name"] == "Giàng Thị Mỷ"
        assert [x["id"] for x in lots_of_day(c, lot)] == [lot["id"]]
        # the farmer, the product and the lot wait for central
        assert c.get("/api/state").json()["outbox"]["pending"] == 3
        wait_for(lambda: lots_of_day(c, lot)[0]["print_status"] == "printed", 10, "the label")
        assert (server.cfg.printer.dir / f"{lot['print_job_id']}.png").exists()  # type: ignore[union-attr]


def test_todays_lots_start_again_at_local_midnight(tmp_path: Path) -> None:
    clock = MiddayClock("Asia/Ho_Chi_Minh")
    with StationServer(station_config(tmp_path), now=clock) as server:
        c = server.client()
        producer, product = _ids(c)
        body = {"producer_id": producer, "product_id": product}
        clock.jump(timedelta(hours=11, minutes=59, seconds=50))  # 23:59:50 in Vietnam
        settle(c, 1200)
        evening = c.post("/api/lots", json=body).json()
        assert [x["id"] for x in c.get("/api/lots").json()] == [evening["id"]]
        local = datetime.fromisoformat(evening["recorded_at"].replace("Z", "+00:00"))
        assert local.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).hour == 23

        clock.jump(timedelta(seconds=15))  # past midnight: a new day, an empty list
        assert c.get("/api/lots").status_code == 401  # a new shift: the midday sign-in ended
        c.close()  # (web.session_hours = 12)
        c = server.client()
        assert c.get("/api/lots").json() == []
        settle(c, 0)
        settle(c, 1300)
        morning = c.post("/api/lots", json=body).json()
        assert [x["id"] for x in c.get("/api/lots").json()] == [morning["id"]]
        assert morning["seq"] > evening["seq"]
        # yesterday's lots are still there for whoever asks for that day
        yesterday = c.get("/api/lots", params={"day": evening["day"]}).json()
        assert [x["id"] for x in yesterday] == [evening["id"]] and morning["day"] > evening["day"]
        assert c.get("/api/lots", params={"day": "31/12"}).status_code == 422
        c.close()


def test_one_weighing_gives_one_lot(server: StationServer) -> None:
    with server.client() as c:
        producer, product = _ids(c)
        settle(c, 1800)
        body = {"producer_id": producer, "product_id": product}
        assert c.post("/api/lots", json=body).status_code == 201
        again = c.post("/api/lots", json=body)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "already_recorded"
        assert "Nhấc hàng khỏi cân" in again.json()["error"]["message"]
        settle(c, 0)
        settle(c, 1800)  # produce taken off and the next lot put on: a new weighing
        assert c.post("/api/lots", json=body).status_code == 201
        assert server.station.db.rows("SELECT net_g FROM lots") == [{"net_g": 1800}] * 2


@pytest.mark.parametrize(
    ("command", "code", "words"),
    [
        ({"weight_g": 1500, "unstable": True}, "scale_unstable", "chưa ổn định"),
        ({"weight_g": 0}, "weight_not_positive", "bằng 0 hoặc âm"),
        ({"weight_g": -250}, "weight_not_positive", "bằng 0 hoặc âm"),
        ({"weight_g": 1500, "overload": True}, "scale_overload", "quá tải"),
        ({"weight_g": 1500, "connected": False}, "scale_offline", "không kết nối"),
    ],
)
def test_recording_refused_with_clear_message(
    server: StationServer, command: dict[str, Any], code: str, words: str
) -> None:
    with server.client() as c:
        producer, product = _ids(c)
        before = _scale(c)["weighing"]
        c.post("/api/simulator", json=command)
        expected = {
            "scale_unstable": "unstable",
            "scale_overload": "overload",
            "scale_offline": "offline",
        }.get(code, "stable")
        weight = command["weight_g"] if expected == "stable" else None

        def reached() -> bool:
            scale = _scale(c)
            if weight is not None:  # a new weighing: not the stable 0 g from start-up
                return bool(
                    scale["status"] == "stable"
                    and scale["weight_g"] == weight
                    and scale["weighing"] > before
                )
            return bool(scale["status"] == expected)

        wait_for(reached, 5, f"scale {expected}")
        r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
        assert r.status_code == 409
        err = r.json()["error"]
        assert err["code"] == code and words in err["message"] and err["message_en"]
        assert c.get("/api/lots").json() == []


def test_malformed_requests_are_explained(server: StationServer) -> None:
    with server.client() as c:
        r = c.post("/api/lots", json={"producer": "x"})
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "invalid_request" and "producer_id" in err["message_en"]
        r = c.post(
            "/api/producers", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        settle(c, 800)
        r = c.post("/api/lots", json={"producer_id": "nobody", "product_id": "nothing"})
        assert r.status_code == 404 and "not found" in r.json()["error"]["message_en"]


def test_page_is_served(server: StationServer) -> None:
    with server.client() as c:
        r = c.get("/")
        assert r.status_code == 200 and 'lang="vi"' in r.text


def test_page_modules_are_revalidated_on_every_load(server: StationServer) -> None:
    """After an upgrade a phone must never mix cached old modules with new ones: every
    static file says no-cache, and an unchanged file costs a 304, not the file."""
    with server.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        module = c.get("/main.js")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
        assert module.headers["cache-control"] == "no-cache"
        again = c.get("/main.js", headers={"If-None-Match": module.headers["etag"]})
        assert again.status_code == 304
