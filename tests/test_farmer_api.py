"""Farmer search and the duplicate-farmer question over HTTP, against a real station:
GET /api/producers?q=..., GET /api/producers/{id}, POST /api/producers answering 409
possible_duplicate until the staff confirm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rigs.clock import MiddayClock
from rigs.helpers import StationServer, lots_of_day, settle, station_config

FARMERS = [
    ("Nguyễn Thị Hương", "0987 654 321", "Bản Lác"),
    ("Nguyễn Văn Hướng", "0912.000.111", "Mường Khoa"),
    ("Lò Thị Xuân", "+84 977 123 456", "Hương Sơn"),
    ("Đặng Văn Đức", None, "Bản Lác"),
    ("Giàng A Páo", "0212 3875 123", "Sìn Hồ"),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    with StationServer(station_config(tmp_path), now=MiddayClock()) as s:
        yield s


def add(c: httpx.Client, name: str, phone: str | None, village: str | None) -> dict[str, Any]:
    r = c.post("/api/producers", json={"name": name, "phone": phone, "village": village})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def found(c: httpx.Client, q: str, **params: Any) -> list[str]:
    r = c.get("/api/producers", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()]


def test_search_by_unaccented_name_phone_fragment_and_village(server: StationServer) -> None:
    with server.client(role="staff") as c:
        for farmer in FARMERS:
            add(c, *farmer)
        assert found(c, "nguyen thi huong") == ["Nguyễn Thị Hương"]
        assert found(c, "huong") == ["Nguyễn Thị Hương", "Nguyễn Văn Hướng", "Lò Thị Xuân"]
        assert found(c, "HUONG", limit=1) == ["Nguyễn Thị Hương"]
        assert found(c, "dang duc") == ["Đặng Văn Đức"]
        assert found(c, "0987") == ["Nguyễn Thị Hương"]
        assert found(c, "654.321") == ["Nguyễn Thị Hương"]
        assert found(c, "+84 977") == ["Lò Thị Xuân"]
        assert found(c, "0977 123") == ["Lò Thị Xuân"]
        assert found(c, "sin ho") == ["Giàng A Páo"]
        assert sorted(found(c, "ban lac")) == ["Nguyễn Thị Hương", "Đặng Văn Đức"]
        assert found(c, "khong co ai") == []
        one = c.get("/api/producers", params={"q": "0987"}).json()[0]
        assert one["phone"] == "0987 654 321" and one["village"] == "Bản Lác"
        assert one["last_lot_at"] is None
        # without q or limit the list stays what it was: every farmer, by name
        assert len(c.get("/api/producers").json()) == len(FARMERS)
        assert len(found(c, "", limit=3)) == 3
        r = c.get("/api/producers", params={"q": "huong", "limit": 0})
        assert r.status_code == 422 and r.json()["error"]["code"]


def test_recent_farmers_come_first(server: StationServer) -> None:
    with server.client(role="lead") as c:
        ids = {name: add(c, name, phone, village)["id"] for name, phone, village in FARMERS}
        product = c.post("/api/products", json={"name": "Chè Shan tuyết"}).json()["id"]
        for i, name in enumerate(["Lò Thị Xuân", "Nguyễn Văn Hướng"]):
            settle(c, 1000 + i)
            r = c.post("/api/lots", json={"producer_id": ids[name], "product_id": product})
            assert r.status_code == 201, r.text
        # the last lot's farmer, then the one before, then the best match
        assert found(c, "huong") == ["Nguyễn Văn Hướng", "Lò Thị Xuân", "Nguyễn Thị Hương"]
        # an empty box lists the recent farmers, then the others by name
        assert found(c, "", limit=3) == ["Nguyễn Văn Hướng", "Lò Thị Xuân", "Đặng Văn Đức"]
        one = c.get(f"/api/producers/{ids['Lò Thị Xuân']}")
        assert one.status_code == 200 and one.json()["last_lot_at"] is not None
        # a lead moves the last lot to the farmer it was for: that farmer is the recent one
        [last] = [x for x in lots_of_day(c, r.json()) if x["net_g"] == 1001]
        fix = {"producer_id": ids["Nguyễn Thị Hương"], "reason": "nhầm người"}
        assert c.post(f"/api/lots/{last['id']}/correct", json=fix).status_code == 200
        assert found(c, "huong")[0] == "Nguyễn Thị Hương"
        # merging a farmer brings their recency to the survivor
        merge = {"into": ids["Đặng Văn Đức"], "reason": "trùng"}
        assert c.post(f"/api/producers/{ids['Lò Thị Xuân']}/merge", json=merge).status_code == 200
        duc = c.get(f"/api/producers/{ids['Đặng Văn Đức']}").json()
        assert duc["last_lot_at"] == one.json()["last_lot_at"]  # Xuân's lot, now Đức's
        missing = c.get("/api/producers/no-such-farmer")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_duplicate_farmer_is_asked_about_then_created_when_confirmed(
    server: StationServer,
) -> None:
    with server.client(role="staff") as c:
        first = add(c, "Nguyễn Thị Hương", "0987 654 321", "Bản Lác")
        again = {"name": "nguyen  thi HUONG", "village": "ban lac", "phone": "0912 345 678"}
        r = c.post("/api/producers", json=again)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["error"] == {
            "code": "possible_duplicate",
            "message": "Đã có nông dân Nguyễn Thị Hương ở thôn Bản Lác. Vẫn tạo mới?",
            "message_en": "There is already a farmer Nguyễn Thị Hương of Bản Lác. "
            "Create a new one anyway?",
        }
        assert [m["id"] for m in body["matches"]] == [first["id"]]
        assert body["matches"][0]["phone"] == "0987 654 321"
        assert len(c.get("/api/producers").json()) == 1  # nothing was created

        # another village, or none, is another farmer
        assert c.post("/api/producers", json={**again, "village": "Bản Lác Hạ"}).status_code == 201
        assert c.post("/api/producers", json={"name": "Nguyễn Thị Hương"}).status_code == 201
        r = c.post("/api/producers", json={"name": "Nguyễn Thị Hương"})
        assert r.status_code == 409
        assert r.json()["error"]["message"] == (
            "Đã có nông dân Nguyễn Thị Hương (không ghi thôn). Vẫn tạo mới?"
        )

        # the staff say "create it anyway": created, and asked about no more
        r = c.post("/api/producers", json={**again, "confirm_duplicate": True})
        assert r.status_code == 201, r.text
        assert r.json()["id"] != first["id"]
        r = c.post("/api/producers", json=again)
        assert r.status_code == 409
        assert r.json()["error"]["message"].startswith("Đã có 2 nông dân Nguyễn Thị Hương")
        assert len(r.json()["matches"]) == 2
        r = c.post("/api/producers", json={**again, "confirm_duplicate": "yes"})
        assert r.status_code == 422
    assert len(server.station.db.list_producers()) == 4
