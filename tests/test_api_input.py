"""Odd input on every write route of the API, against a real station over HTTP: each is
a 4xx naming the field with the reason in Vietnamese and English, never a 500, and never
a farmer or product whose label could never print (the labels' own rule,
edge.printer.printable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigs.helpers import StationServer, settle, station_config, wait_for


class Station:
    """One station for the module, with a farmer, a product, a lot and its print job."""

    def __init__(self, server: StationServer) -> None:
        self.server = server
        self.client = server.client(timeout=30)
        c = self.client
        self.producer = c.post("/api/producers", json={"name": "Vàng A Dơ"}).json()["id"]
        self.product = c.post("/api/products", json={"name": "Chè", "unit_price_dong": 85000})
        self.product = self.product.json()["id"]
        settle(c, 1500)
        lot = c.post("/api/lots", json={"producer_id": self.producer, "product_id": self.product})
        assert lot.status_code == 201, lot.text
        self.lot, self.job = lot.json()["id"], lot.json()["print_job_id"]

    def path(self, template: str) -> str:
        return template.format(job=self.job, product=self.product, lot=self.lot)

    def counts(self) -> tuple[int, int, int]:
        c = self.client
        lots = self.server.station.db.rows("SELECT count(*) AS n FROM lots")[0]["n"]
        return len(c.get("/api/producers").json()), len(c.get("/api/products").json()), lots


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    with StationServer(station_config(tmp_path_factory.mktemp("station"))) as server:
        s = Station(server)
        yield s
        s.client.close()


def send(station: Station, method: str, path: str, body: Any) -> httpx.Response:
    """``body`` as JSON with every non-ASCII character escaped (a lone surrogate too)."""
    content = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    return station.client.request(method, station.path(path), content=content, headers=headers)


BAD = [
    # farmers: name and village are printed on every lot label
    ("POST", "/api/producers", {"name": "Giàng\u200bThị"}, "name", "U+200B (ZERO WIDTH SPACE)"),
    ("POST", "/api/producers", {"name": "\x00"}, "name", "control or invisible character U+0000"),
    ("POST", "/api/producers", {"name": "Mỷ\x00"}, "name", "U+0000 at position 3"),
    ("POST", "/api/producers", {"name": "Giàng\ud800"}, "name", "U+D800"),
    ("POST", "/api/producers", {"name": "   "}, "name", "must not be empty"),
    ("POST", "/api/producers", {"name": ""}, "name", "must not be empty"),
    ("POST", "/api/producers", {"name": "张伟"}, "name", "the label font cannot print U+5F20"),
    # (a body over web.max_body_kb is a 413 before it is parsed: tests/test_request_limits.py)
    ("POST", "/api/producers", {"name": "x" * 10_000}, "name", "at most 120 characters"),
    ("POST", "/api/producers", {"name": 5}, "name", "Input should be a valid string"),
    ("POST", "/api/producers", {"name": None}, "name", "Input should be a valid string"),
    ("POST", "/api/producers", {"name": ["Mỷ"]}, "name", "Input should be a valid string"),
    ("POST", "/api/producers", {}, "name", "Field required"),
    ("POST", "/api/producers", {"name": "A", "village": "Bản\u202eHon"}, "village", "U+202E"),
    ("POST", "/api/producers", {"name": "A", "village": " "}, "village", "must not be empty"),
    ("POST", "/api/producers", {"name": "A", "phone": "12"}, "phone", "not a phone number"),
    ("POST", "/api/producers", {"name": "A", "phone": 912345678}, "phone", "valid string"),
    ("POST", "/api/producers", {"name": "A", "nick": "Dơ"}, "nick", "Extra inputs"),
    ("POST", "/api/producers", [1, 2], "body", "valid dictionary"),
    ("POST", "/api/producers", "Mỷ", "body", "valid dictionary"),
    # products: integer đồng a kilo, more than 0, at most 1 tỷ
    ("POST", "/api/products", {"name": "Chè", "unit_price_dong": -1}, "unit_price_dong", "0"),
    ("POST", "/api/products", {"name": "Chè", "unit_price_dong": 0}, "unit_price_dong", "than 0"),
    (
        "POST",
        "/api/products",
        {"name": "Chè", "unit_price_dong": 10**15},
        "unit_price_dong",
        "less than or equal to 1000000000",
    ),
    ("POST", "/api/products", {"name": "Chè", "unit_price_dong": 10**30}, "unit_price_dong", "1"),
    ("POST", "/api/products", {"name": "Chè", "unit_price_dong": 1.5}, "unit_price_dong", "int"),
    (
        "POST",
        "/api/products",
        {"name": "Chè", "unit_price_dong": "85000"},
        "unit_price_dong",
        "int",
    ),
    ("POST", "/api/products", {"name": "Chè", "unit_price_dong": True}, "unit_price_dong", "int"),
    ("POST", "/api/products", {"name": "Chè\x07"}, "name", "U+0007"),
    ("POST", "/api/products", {"name": "\t\n"}, "name", "must not be empty"),
    ("POST", "/api/products", {"name": "Chè", "grading": 5}, "grading", "valid string"),
    # lots, reprints, grades, the simulators
    ("POST", "/api/lots", {}, "producer_id", "Field required"),
    ("POST", "/api/lots", {"producer_id": 5, "product_id": "x"}, "producer_id", "valid string"),
    ("POST", "/api/lots", {"producer_id": "x" * 10_000, "product_id": "x"}, "producer_id", "64"),
    ("POST", "/api/print-jobs/{job}/reprint", {"reason": "\x00"}, "reason", "U+0000"),
    ("POST", "/api/print-jobs/{job}/reprint", {"reason": "  "}, "reason", "must not be empty"),
    ("POST", "/api/print-jobs/{job}/reprint", {"reason": "x", "actor": "Lan"}, "actor", "Extra"),
    ("POST", "/api/print-jobs/{job}/reprint", {"reason": "x" * 201}, "reason", "at most 200"),
    ("PATCH", "/api/products/{product}", {"grading": 5}, "grading", "valid string"),
    ("PATCH", "/api/products/{product}", {}, "grading", "Field required"),
    ("POST", "/api/lots/{lot}/grade", {"grade": "A", "by": "Lan"}, "by", "Extra inputs"),
    ("POST", "/api/simulator", {"weight_g": 10**30}, "weight_g", "less than or equal"),
    ("POST", "/api/simulator", {"unstable": "yes"}, "unstable", "valid boolean"),
    ("POST", "/api/camera/simulator", {"fault": "fire"}, "fault", "Input should be"),
]


@pytest.mark.parametrize(("method", "path", "body", "field", "words"), BAD)
def test_odd_input_is_a_422_naming_the_field_in_both_languages(
    station: Station, method: str, path: str, body: Any, field: str, words: str
) -> None:
    before = station.counts()
    r = send(station, method, path, body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_request"
    assert err["message"].startswith("Yêu cầu không hợp lệ: ") and field in err["message"]
    assert err["message_en"].startswith(f"invalid request: {field}: ")
    assert words in err["message_en"]
    [entry] = [f for f in err["fields"] if f["field"] == field]
    assert words in entry["message_en"] and entry["message"] in err["message"]
    assert entry["message"] != entry["message_en"], "the Vietnamese reason is Vietnamese"
    assert station.counts() == before, "nothing recorded"


def test_vietnamese_reasons_say_what_to_do(station: Station) -> None:
    r = send(station, "POST", "/api/producers", {"name": "Giàng\u200bThị"})
    assert "Tên (name): có ký tự điều khiển hoặc ký tự ẩn U+200B" in r.json()["error"]["message"]
    assert "gõ lại bằng bàn phím" in r.json()["error"]["message"]
    r = send(station, "POST", "/api/products", {"name": "Chè", "unit_price_dong": 10**15})
    assert (
        "Giá (đồng/kg) (unit_price_dong): không được lớn hơn 1.000.000.000"
        in (r.json()["error"]["message"])
    )
    r = send(station, "POST", "/api/producers", {"name": "   "})
    assert "Tên (name): không được để trống" in r.json()["error"]["message"]


def test_text_is_stored_as_its_label_prints_it_and_the_label_prints(station: Station) -> None:
    c = station.client
    farmer = c.post(
        "/api/producers",
        json={"name": "  Gia\u0300ng   Thị\nMỷ ", "village": "Bản  Hon", "phone": "0912 345 678"},
    )
    assert farmer.status_code == 201, farmer.text
    assert (farmer.json()["name"], farmer.json()["village"]) == ("Giàng Thị Mỷ", "Bản Hon")
    product = c.post("/api/products", json={"name": "Sâm – loại 1", "unit_price_dong": 10**9})
    assert product.status_code == 201, product.text
    settle(c, 2100)
    lot = c.post(
        "/api/lots", json={"producer_id": farmer.json()["id"], "product_id": product.json()["id"]}
    )
    assert lot.status_code == 201, lot.text
    lot_id = lot.json()["id"]

    def printed() -> bool:
        [row] = [x for x in c.get("/api/print-jobs").json() if x["record_id"] == lot_id]
        assert row["status"] != "failed", row
        return bool(row["status"] == "printed")

    wait_for(printed, 15, "the lot's label")


def test_a_body_that_is_not_utf8_and_an_unknown_address(station: Station) -> None:
    c = station.client
    headers = {"content-type": "application/json"}
    r = c.post("/api/producers", content=b'{"name": "M\xfd"}', headers=headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unreadable_body"
    assert "UTF-8" in r.json()["error"]["message"] and "UTF-8" in r.json()["error"]["message_en"]
    r = c.post("/api/producers", content=b'{"name": ', headers=headers)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "body"
    assert "không phải JSON hợp lệ" in r.json()["error"]["message"]
    r = c.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "/api/nothing-here" in r.json()["error"]["message"]
    assert c.get("/nothing-here.js").status_code == 404  # the page's files: as before


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**40), max_value=10**40)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=300)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    )


ROUTES = [
    ("POST", "/api/producers", ("name", "phone", "village")),
    ("POST", "/api/products", ("name", "unit_price_dong", "grading")),
    ("POST", "/api/lots", ("producer_id", "product_id")),
    ("POST", "/api/print-jobs/{job}/reprint", ("reason",)),
    ("PATCH", "/api/products/{product}", ("grading",)),
    ("POST", "/api/lots/{lot}/grade", ("grade",)),
]


@pytest.mark.parametrize(("method", "path", "keys"), ROUTES)
def test_no_input_makes_a_500(
    station: Station, method: str, path: str, keys: tuple[str, ...]
) -> None:
    """Whatever JSON arrives: an answer below 500, and an error in the API's shape."""

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=st.fixed_dictionaries({}, optional={k: _json_values() for k in keys}))
    def check(body: dict[str, Any]) -> None:
        r = send(station, method, path, body)
        assert r.status_code < 500, (body, r.text)
        if r.status_code >= 400:
            err = r.json()["error"]
            assert err["code"] and err["message"] and err["message_en"]

    check()
