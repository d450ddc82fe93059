"""Corrections without deleting history (issue 12): voiding and correcting lots, editing
and merging farmers, editing products. Storage on a real SQLite file, the API on a real
station served by uvicorn, labels decoded from the ESC/POS the file printer wrote."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from edge.central.lots import site_view
from edge.errors import StaffError
from edge.printer.layout import BigValue, Block, Field, layout
from edge.storage.corrections import CorrectionRefused, Corrections
from edge.storage.store import Store
from edge.sync.envelope import Batch, decode_batch, encode_batch
from edge.sync.validate import record_problem, validate_batch
from rigs.clock import MiddayClock
from rigs.escpos_decode import decode
from rigs.helpers import StationServer, lots_of_day, settle, station_config, wait_for


@dataclass(frozen=True)
class Who:
    id: str
    name: str


LEAD = Who("0190f0aa-0000-7000-8000-00000000000a", "Lò Thị Lan")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", "sin-ho-01")
    yield s
    s.close()


def _lot(store: Store, producer: str, product: str, grams: int = 1500) -> str:
    return store.record_lot(producer, product, grams, "ST,GS,+0001.500kg").id


def _records(store: Store) -> list[dict[str, Any]]:
    rows = store.rows("SELECT seq, kind, body FROM outbox WHERE stream = 'records' ORDER BY seq")
    return [{"type": r["kind"], "seq": r["seq"], **json.loads(r["body"])} for r in rows]


def _audit(store: Store, action: str) -> list[dict[str, Any]]:
    return store.rows(
        "SELECT actor, record_id, detail FROM audit_log WHERE action = ? ORDER BY id", (action,)
    )


# -- storage ------------------------------------------------------------------------------


def test_correct_then_void_keeps_the_lot_as_recorded_and_sends_each_in_order(
    store: Store,
) -> None:
    a = store.add_producer("Giàng Thị Mỷ", village="Sìn Hồ")["id"]
    b = store.add_producer("Lò Văn Páo", village="Nậm Tăm")["id"]
    tea = store.add_product("Chè Shan tuyết", 85_000)["id"]
    cardamom = store.add_product("Thảo quả", 120_000)["id"]
    lot = _lot(store, a, tea)
    c = Corrections(store)

    fixed = c.correct_lot(lot, "ghi nhầm người bán", LEAD, producer_id=b, product_id=cardamom)
    state = c.lot(lot)
    assert (state.producer_name, state.product_name) == ("Lò Văn Páo", "Thảo quả")
    assert (state.recorded_producer_id, state.recorded_product_id) == (a, tea)
    assert state.corrected and not state.voided

    voided = c.void_lot(lot, "cân nhầm bao rỗng", LEAD)
    state = c.lot(lot)
    assert state.voided and state.void_reason == "cân nhầm bao rỗng"
    assert state.voided_by == LEAD.name

    # the lot row is as it was recorded; both corrections are rows of their own
    [row] = store.rows("SELECT producer_id, product_id, net_g FROM lots WHERE id = ?", (lot,))
    assert row == {"producer_id": a, "product_id": tea, "net_g": 1500}
    assert [h["kind"] for h in c.history(lot)] == ["correct", "void"]
    assert [h["id"] for h in c.history(lot)] == [fixed["id"], voided["id"]]

    records = _records(store)
    assert [r["type"] for r in records] == [
        "producer", "producer", "product", "product", "lot", "lot_correction", "lot_void",
    ]  # fmt: skip
    correction, void = records[5], records[6]
    assert correction["id"] == fixed["id"] and correction["lot_id"] == lot
    assert (correction["producer_id"], correction["product_id"]) == (b, cardamom)
    assert (correction["was_producer_id"], correction["was_product_id"]) == (a, tea)
    assert correction["by"] == LEAD.name and correction["by_id"] == LEAD.id
    assert void["id"] == voided["id"] and void["lot_id"] == lot
    assert void["reason"] == "cân nhầm bao rỗng" and void["by"] == LEAD.name
    for record in records:
        assert record_problem(record) is None, record

    corrected = _audit(store, "lot.corrected")
    gone = _audit(store, "lot.voided")
    assert [(x["actor"], x["record_id"]) for x in corrected + gone] == [
        (LEAD.name, lot),
        (LEAD.name, lot),
    ]
    assert json.loads(gone[0]["detail"])["actor_id"] == LEAD.id


def test_a_voided_lot_is_neither_voided_again_nor_corrected(store: Store) -> None:
    a = store.add_producer("Giàng Thị Mỷ")["id"]
    b = store.add_producer("Sùng A Dơ")["id"]
    tea = store.add_product("Chè")["id"]
    lot = _lot(store, a, tea)
    c = Corrections(store)
    c.void_lot(lot, "sai", LEAD)
    before = len(_records(store))
    attempts: list[Callable[[], object]] = [
        lambda: c.void_lot(lot, "lần nữa", LEAD),
        lambda: c.correct_lot(lot, "đổi", LEAD, producer_id=b),
    ]
    for attempt in attempts:
        with pytest.raises(CorrectionRefused) as refused:
            attempt()
        assert (refused.value.code, refused.value.status) == ("lot_voided", 409)
        assert "đã bị hủy" in refused.value.message
    assert len(_records(store)) == before, "nothing sent for a refusal"
    # not even behind the module's back
    with pytest.raises(sqlite3.IntegrityError), store.write() as db:
        db.execute("DELETE FROM corrections WHERE lot_id = ?", [lot])
    assert len(c.history(lot)) == 1


def test_a_correction_needs_a_reason_and_a_change(store: Store) -> None:
    a = store.add_producer("Giàng Thị Mỷ")["id"]
    tea = store.add_product("Chè")["id"]
    lot = _lot(store, a, tea)
    c = Corrections(store)
    with pytest.raises(CorrectionRefused) as blank:
        c.void_lot(lot, "   ", LEAD)
    assert blank.value.code == "reason_required"
    with pytest.raises(CorrectionRefused) as same:
        c.correct_lot(lot, "như cũ", LEAD, producer_id=a, product_id=tea)
    assert same.value.code == "nothing_to_correct"
    assert c.history(lot) == []


def test_merge_moves_lots_to_the_survivor_and_hides_the_merged_farmer(store: Store) -> None:
    keep = store.add_producer("Nguyễn Thị Hương", village="Bản Hon")["id"]
    dup = store.add_producer("Nguyen Thi Huong", village="Ban Hon")["id"]
    third = store.add_producer("Nguyễn T. Hương")["id"]
    tea = store.add_product("Chè")["id"]
    lots = [_lot(store, dup, tea), _lot(store, third, tea), _lot(store, keep, tea)]
    c = Corrections(store)

    merged = c.merge_producers(third, dup, "cùng một người", LEAD)
    assert merged["lots_moved"] == 1
    merged = c.merge_producers(dup, keep, "trùng tên không dấu", LEAD)
    assert merged["lots_moved"] == 2  # its own lot and the one merged into it before
    assert [c.lot(x).producer_id for x in lots] == [keep, keep, keep]
    assert [p["id"] for p in store.list_producers()] == [keep]
    # history stays: both farmers, their lots as recorded
    assert len(store.rows("SELECT id FROM producers")) == 3
    assert [c.lot(x).recorded_producer_id for x in lots] == [dup, third, keep]

    with pytest.raises(CorrectionRefused) as again:
        c.merge_producers(dup, keep, "lần nữa", LEAD)
    assert again.value.code == "producer_merged"
    with pytest.raises(CorrectionRefused) as to_merged:
        c.correct_lot(lots[2], "đổi", LEAD, producer_id=dup)
    assert (
        to_merged.value.code == "producer_merged" and "Nguyễn Thị Hương" in to_merged.value.message
    )

    # a page still showing the merged farmer cannot record a lot for them
    lots_before = len(store.rows("SELECT id FROM lots"))
    with pytest.raises(StaffError) as gone:
        _lot(store, dup, tea)
    assert gone.value.code == "producer_merged" and "Nguyễn Thị Hương" in gone.value.message
    assert len(store.rows("SELECT id FROM lots")) == lots_before

    records = _records(store)
    assert [r["type"] for r in records[-2:]] == ["producer_merge", "producer_merge"]
    assert (records[-1]["merged_id"], records[-1]["survivor_id"]) == (dup, keep)
    assert [a["actor"] for a in _audit(store, "producer.merged")] == [LEAD.name, LEAD.name]


def test_edits_keep_what_was_there_and_go_to_central(store: Store) -> None:
    farmer = store.add_producer("Giang Thi My", phone="0987654321")["id"]
    tea = store.add_product("Che", 80_000)["id"]
    c = Corrections(store)
    after = c.edit_producer(farmer, {"name": "Giàng Thị Mỷ", "village": "Sìn Hồ"}, LEAD)
    assert (after["name"], after["phone"], after["village"]) == (
        "Giàng Thị Mỷ", "0987654321", "Sìn Hồ",
    )  # fmt: skip
    c.edit_product(tea, {"name": "Chè Shan tuyết", "unit_price_dong": 85_000}, LEAD)
    unchanged = len(_records(store))
    c.edit_producer(farmer, {"name": "Giàng Thị Mỷ"}, LEAD)  # no change: nothing written
    assert len(_records(store)) == unchanged

    [edit] = c.producer_edits(farmer)
    assert (edit["was_name"], edit["was_village"], edit["name"]) == (
        "Giang Thi My", None, "Giàng Thị Mỷ",
    )  # fmt: skip
    assert edit["actor_name"] == LEAD.name
    [pedit] = c.product_edits(tea)
    assert (pedit["was_unit_price_dong"], pedit["unit_price_dong"]) == (80_000, 85_000)
    update, pupdate = _records(store)[-2:]
    assert update["type"] == "producer_update" and update["producer_id"] == farmer
    assert (update["name"], update["village"], update["by"]) == (
        "Giàng Thị Mỷ",
        "Sìn Hồ",
        LEAD.name,
    )
    assert pupdate["type"] == "product_update" and pupdate["unit_price_dong"] == 85_000
    assert [a["actor"] for a in _audit(store, "producer.edited")] == [LEAD.name]


def test_the_records_cross_the_wire_and_central_folds_them_as_the_station_sees_them(
    store: Store,
) -> None:
    a = store.add_producer("Giàng Thị Mỷ")["id"]
    b = store.add_producer("Lò Văn Páo")["id"]
    tea = store.add_product("Chè")["id"]
    cardamom = store.add_product("Thảo quả")["id"]
    first, second, third = (_lot(store, a, tea), _lot(store, b, tea), _lot(store, a, tea))
    c = Corrections(store)
    c.correct_lot(first, "nhầm sản phẩm", LEAD, product_id=cardamom)
    c.void_lot(second, "cân hai lần", LEAD)
    c.merge_producers(a, b, "trùng", LEAD)
    c.edit_producer(b, {"name": "Lò Văn Pào"}, LEAD)

    records = tuple(_records(store))
    batch = Batch("sin-ho-01", "records", "records:1-1:1", 1, len(records), records, epoch="")
    got = decode_batch(encode_batch(batch))
    validate_batch(got)
    assert got.records == records

    view = site_view(got.records)
    for lot_id in (first, second, third):
        here = c.lot(lot_id)
        there = view.lots[lot_id]
        assert (there.producer_id, there.product_id, there.voided) == (
            here.producer_id, here.product_id, here.voided,
        )  # fmt: skip
    assert view.lots[first].product_id == cardamom and view.lots[first].producer_id == b
    assert view.lots[second].voided and view.lots[second].void_reason == "cân hai lần"
    assert view.producers[a].merged_into == b and view.producers[b].name == "Lò Văn Pào"


# -- API ----------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    with StationServer(station_config(tmp_path), now=MiddayClock()) as s:
        yield s


def _setup(c: httpx.Client) -> dict[str, str]:
    ids = {}
    for key, path, body in (
        ("a", "/api/producers", {"name": "Giàng Thị Mỷ", "village": "Sìn Hồ"}),
        ("b", "/api/producers", {"name": "Lò Văn Páo", "village": "Nậm Tăm"}),
        ("tea", "/api/products", {"name": "Chè Shan tuyết", "unit_price_dong": 85_000}),
        ("cardamom", "/api/products", {"name": "Thảo quả", "unit_price_dong": 120_000}),
    ):
        r = c.post(path, json=body)
        assert r.status_code == 201, r.text
        ids[key] = r.json()["id"]
    return ids


def _record(c: httpx.Client, producer: str, product: str, grams: int) -> dict[str, Any]:
    settle(c, grams)
    r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
    assert r.status_code == 201, r.text
    lot: dict[str, Any] = r.json()
    return lot


def _routes(ids: dict[str, str], lot: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/api/lots/{lot}/void", {"reason": "cân nhầm"}),
        (f"/api/lots/{lot}/correct", {"producer_id": ids["b"], "reason": "nhầm người"}),
        (f"/api/producers/{ids['a']}", {"phone": "0912345678"}),
        (f"/api/products/{ids['tea']}", {"unit_price_dong": 90_000}),
        (f"/api/producers/{ids['a']}/merge", {"into": ids["b"], "reason": "trùng"}),
    ]


def test_only_a_lead_corrects_and_the_lead_is_the_actor(server: StationServer) -> None:
    with server.client(role="lead") as lead, server.client(role="staff") as staff:
        ids = _setup(lead)
        lot = _record(lead, ids["a"], ids["tea"], 2100)
        for path, body in _routes(ids, lot["id"]):
            r = staff.post(path, json=body)
            assert r.status_code == 403, (path, r.text)
        assert lots_of_day(lead, lot)[0]["voided"] in (0, False)

        r = lead.post(
            f"/api/lots/{lot['id']}/correct",
            json={"product_id": ids["cardamom"], "reason": "nhầm sản phẩm"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["lot"]["product_name"] == "Thảo quả"
        forged = lead.post(
            f"/api/lots/{lot['id']}/void", json={"reason": "sai", "actor": "Người khác"}
        )
        assert forged.status_code == 422  # who asks comes from the session, never the body
        r = lead.post(f"/api/lots/{lot['id']}/void", json={"reason": "cân nhầm bao"})
        assert r.status_code == 200, r.text
        assert r.json()["lot"]["voided"] is True

        again = lead.post(f"/api/lots/{lot['id']}/void", json={"reason": "lần nữa"})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "lot_voided"
        fix = lead.post(
            f"/api/lots/{lot['id']}/correct", json={"producer_id": ids["b"], "reason": "đổi"}
        )
        assert fix.status_code == 409 and fix.json()["error"]["message_en"]

        [row] = lots_of_day(lead, lot)
        assert row["voided"] and row["corrected"] and row["void_reason"] == "cân nhầm bao"
        assert (row["product_name"], row["product_id"]) == ("Thảo quả", ids["cardamom"])
        history = lead.get(f"/api/lots/{lot['id']}/corrections").json()["corrections"]
        me = lead.get("/api/me")
        assert me.status_code == 200, me.text
        assert [h["actor_name"] for h in history] == [me.json()["name"]] * 2
        assert [h["actor_id"] for h in history] == [me.json()["id"]] * 2


def test_edit_and_merge_farmers_and_products_over_http(server: StationServer) -> None:
    with server.client(role="lead") as lead:
        ids = _setup(lead)
        lot = _record(lead, ids["a"], ids["tea"], 1800)
        r = lead.post(
            f"/api/producers/{ids['a']}", json={"name": "Giàng Thị Mỷ (A)", "phone": None}
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Giàng Thị Mỷ (A)"
        bad = lead.post(f"/api/producers/{ids['a']}", json={"name": ""})
        assert bad.status_code == 422
        r = lead.post(f"/api/products/{ids['tea']}", json={"unit_price_dong": 90_000})
        assert r.status_code == 200 and r.json()["unit_price_dong"] == 90_000
        assert lead.post(f"/api/products/{ids['tea']}", json={"grading": "nope"}).status_code == 422

        r = lead.post(
            f"/api/producers/{ids['a']}/merge", json={"into": ids["b"], "reason": "trùng"}
        )
        assert r.status_code == 200, r.text
        assert [p["id"] for p in lead.get("/api/producers").json()] == [ids["b"]]
        [row] = lots_of_day(lead, lot)
        assert row["id"] == lot["id"] and row["producer_name"] == "Lò Văn Páo"
        same = lead.post(f"/api/producers/{ids['b']}/merge", json={"into": ids["b"], "reason": "x"})
        assert same.status_code == 422
        again = lead.post(
            f"/api/producers/{ids['a']}/merge", json={"into": ids["b"], "reason": "x"}
        )
        assert again.status_code == 409


# -- labels -------------------------------------------------------------------------------


def _ink_rows(img: Image.Image) -> np.ndarray:
    """The image as booleans (True = printed dot), cut to its rows with ink."""
    dots = np.asarray(img.convert("L")) < 128
    rows = np.flatnonzero(dots.any(axis=1))
    return dots[rows[0] : rows[-1] + 1]


def printed_with(label: Image.Image, *blocks: Block) -> bool:
    """Whether ``label`` holds ``blocks`` exactly as they render at its width, anywhere
    down the paper (each block is laid out from its own top, so a strip matches)."""
    page = layout(blocks, label.width, bottom=0)
    want = _ink_rows(page.render())
    have = np.asarray(label.convert("L")) < 128
    h = want.shape[0]
    return any(np.array_equal(have[y : y + h], want) for y in range(have.shape[0] - h + 1))


def _prints(tmp_path: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in (tmp_path / "prints").glob("*.bin")}


def _label(tmp_path: Path, job_id: str) -> Image.Image:
    data = wait_for(lambda: _prints(tmp_path).get(job_id), 10, f"job {job_id} printed")
    assert data is not None
    [image] = decode(data).images
    return image


def test_a_voided_lots_reprint_says_da_huy_and_a_corrected_ones_the_new_farmer(
    tmp_path: Path,
) -> None:
    stamp = BigValue("ĐÃ HỦY")
    with (
        StationServer(station_config(tmp_path), now=MiddayClock()) as server,
        server.client(role="lead") as c,
    ):
        ids = _setup(c)
        gone = _record(c, ids["a"], ids["tea"], 2500)
        fixed = _record(c, ids["a"], ids["tea"], 3100)
        first = _label(tmp_path, gone["print_job_id"])
        assert not printed_with(first, stamp)
        receipt = c.post(f"/api/lots/{gone['id']}/receipt")
        assert receipt.status_code in (200, 201), receipt.text
        receipt_job = receipt.json()["job_id"]
        assert not printed_with(_label(tmp_path, receipt_job), stamp)
        assert printed_with(first, Field("Nông dân:", "Giàng Thị Mỷ"))
        _label(tmp_path, fixed["print_job_id"])

        assert c.post(f"/api/lots/{gone['id']}/void", json={"reason": "sai"}).status_code == 200
        r = c.post(
            f"/api/lots/{fixed['id']}/correct", json={"producer_id": ids["b"], "reason": "nhầm"}
        )
        assert r.status_code == 200, r.text
        copies = {}
        for lot in (gone, fixed):
            r = c.post(f"/api/print-jobs/{lot['print_job_id']}/reprint", json={"reason": "rách"})
            assert r.status_code == 200, r.text
            copies[lot["id"]] = _label(tmp_path, r.json()["id"])
        r = c.post(f"/api/print-jobs/{receipt_job}/reprint", json={"reason": "mất phiếu"})
        assert r.status_code == 200, r.text
        receipt_copy = _label(tmp_path, r.json()["id"])

    voided = copies[gone["id"]]
    assert printed_with(voided, stamp), "the reprint of a voided lot says ĐÃ HỦY"
    assert printed_with(receipt_copy, stamp), "so does a copy of its receipt"
    corrected = copies[fixed["id"]]
    assert not printed_with(corrected, stamp)
    assert printed_with(corrected, Field("Nông dân:", "Lò Văn Páo"))
    assert not printed_with(corrected, Field("Nông dân:", "Giàng Thị Mỷ"))
