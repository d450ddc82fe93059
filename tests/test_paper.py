"""Money and paper (issue 12): the daily lot number (storage, central record, API, label),
receipt amounts, receipts and copies printed through the real station (ESC/POS decoded),
reprints attributed to the signed-in person, and the day's totals and printed summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cbor2
import httpx
import pytest
import zstandard
from PIL import Image

from edge.printer.kinds import format_dong
from edge.printer.label import COPY_MARK, label_blocks
from edge.printer.layout import layout
from edge.printer.payload import PayloadSigner, load_site_key
from edge.storage.outbox import Outbox
from edge.storage.paper import lot_amount, summarise
from edge.storage.store import Store
from edge.sync.envelope import decode_batch, encode_batch
from edge.sync.records import LOTS, RecordCodecError, day_column, day_numbers
from edge.sync.validate import record_problem
from rigs.clock import MiddayClock
from rigs.escpos_decode import decode
from rigs.helpers import StationServer, settle, station_config, wait_for

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FARMER = "Nguyễn Thị Hương"
PRODUCT = "Chè Shan tuyết"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


# -- storage: the daily number ---------------------------------------------------------


def test_day_no_counts_lots_only_and_starts_again_at_local_midnight(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 23, 16, 59, 0, tzinfo=UTC))  # 23:59 in Vietnam
    store = Store.open(tmp_path / "s.db", "site", now=clock, tz=VN)
    try:
        producer = store.add_producer("Lò Văn Sáng")["id"]
        product = store.add_product("Sâm Lai Châu", 2_000_000)["id"]
        first = store.record_lot(producer, product, 1000, "f")
        store.add_producer("Giàng Thị Mỷ")  # a farmer added: no lot number used
        second = store.record_lot(producer, product, 1100, "f")
        clock.at += timedelta(seconds=90)  # 00:00:30 local: a new day, though UTC is not
        third = store.record_lot(producer, product, 1200, "f")
        assert (first.day_no, second.day_no, third.day_no) == (1, 2, 1)
        assert third.seq > second.seq > first.seq
        assert store.get_lot(third.id).day_no == 1
        days = store.rows("SELECT day, day_no FROM lots ORDER BY seq")
        assert days == [
            {"day": "2026-11-23", "day_no": 1},
            {"day": "2026-11-23", "day_no": 2},
            {"day": "2026-11-24", "day_no": 1},
        ]
        bodies = [
            json.loads(r["body"])
            for r in store.rows("SELECT body FROM outbox WHERE kind = 'lot' ORDER BY seq")
        ]
        assert [b["day_no"] for b in bodies] == [1, 2, 1]  # central receives the same number
        assert all(record_problem({**b, "type": "lot", "seq": 9}) is None for b in bodies)
        # on the wire the lots still go as columns, day_no their 12th, and come back whole
        with store.write() as db:  # and one lot from before day numbers, in the same batch
            db.execute("UPDATE outbox SET body = json_remove(body, '$.day_no') WHERE seq = 3")
        batch = Outbox(store).next_batch("records", 100, 0)
        assert batch is not None
        body = cbor2.loads(zstandard.ZstdDecompressor().decompress(encode_batch(batch)))
        segments = [seg for seg in body["records"][1:] if seg[0] == LOTS]
        # a farmer's record falls between lot 1 and lot 2: two lot segments, the first
        # (a lot without a number) without the column
        assert [(seg[1], len(seg)) for seg in segments] == [(1, 15), (2, 16)]
        first, packed = segments[1][15]  # day_no: the first, then steps past "the next one"
        assert first == 2 and isinstance(packed, bytes)
        decoded = decode_batch(encode_batch(batch))
        assert decoded == batch
        assert [r.get("day_no") for r in decoded.records if r["type"] == "lot"] == [None, 2, 1]
        # the price the product had is kept with the lot
        assert store.rows("SELECT unit_price_dong FROM lots LIMIT 1") == [
            {"unit_price_dong": 2_000_000}
        ]
    finally:
        store.close()


def test_a_days_run_of_lot_numbers_costs_one_byte_on_the_wire() -> None:
    run = list(range(1401, 1501))  # a busy day's lots 1401..1500 in one batch
    [column] = day_column(run)
    assert column == [1401, b"\0"]  # every step is "the next one": zero bits each
    assert day_numbers([*([None] * 15), column], 100) == run
    midnight = [1499, 1500, 1, 2]
    [column] = day_column(midnight)
    assert day_numbers([*([None] * 15), column], 4) == midnight
    assert day_column([None, 3]) == [[None, 3]]  # a lot from before day numbers: a plain list
    assert day_column([None, None]) == []
    assert day_numbers([*([None] * 15), [None, 3]], 2) == [None, 3]
    with pytest.raises(RecordCodecError):
        day_numbers([*([None] * 15), [-1, b"\0"]], 1)


def test_lots_from_before_the_migration_are_numbered_at_start(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    store = Store.open(tmp_path / "s.db", "site", now=clock, tz=VN)
    producer = store.add_producer("Lò Văn Sáng")["id"]
    product = store.add_product("Sâm Lai Châu")["id"]
    for hours in (0, 1, 20, 21):  # 10:00, 11:00 on the 23rd; 06:00, 07:00 on the 24th
        clock.at = datetime(2026, 11, 23, 3, 0, tzinfo=UTC) + timedelta(hours=hours)
        store.record_lot(producer, product, 500, "f")
    with store.write() as db:  # as lots recorded before migration 0015 are
        db.execute("UPDATE lots SET day = NULL, day_no = NULL")
    assert store.number_lot_days() == 4
    assert store.number_lot_days() == 0  # once
    rows = store.rows("SELECT day, day_no FROM lots ORDER BY seq")
    assert [(r["day"], r["day_no"]) for r in rows] == [
        ("2026-11-23", 1),
        ("2026-11-23", 2),
        ("2026-11-24", 1),
        ("2026-11-24", 2),
    ]
    clock.at = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert store.record_lot(producer, product, 700, "f").day_no == 3
    store.close()


def test_day_no_in_a_lot_record_is_checked_by_central() -> None:
    lot = {
        "type": "lot",
        "seq": 3,
        "id": "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11",
        "producer_id": "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a12",
        "product_id": "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a13",
        "net_g": 1200,
        "recorded_at": "2026-11-23T03:00:00.000Z",
        "boot_id": "b",
        "uptime_s": 12.5,
        "clock_synced": True,
    }
    assert record_problem(lot) is None  # older lots have none
    assert record_problem({**lot, "day_no": 7}) is None
    assert record_problem({**lot, "day_no": 7, "tare_g": 5, "tare_source": "scale"}) is None
    assert "day_no" in (record_problem({**lot, "day_no": 0}) or "")
    assert "day_no" in (record_problem({**lot, "day_no": "7"}) or "")


# -- money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("net_g", "price", "amount"),
    [
        (12345, 120_000, 1_481_400),  # exact
        (1, 500, 1),  # 0.5 đ: half up
        (1, 499, 0),  # 0.499 đ: down
        (2345, 85_000, 199_325),
        (333, 1_001, 333),  # 333.333 đ
        (1500, 1_999, 2_999),  # 2998.5 đ: half up
        (800, None, None),  # no price, no amount
    ],
)
def test_receipt_amount_is_rounded_half_up_to_the_dong(
    net_g: int, price: int | None, amount: int | None
) -> None:
    assert lot_amount(net_g, price) == amount


def test_day_totals_add_each_lots_rounded_amount() -> None:
    rows = [
        {"producer_id": "a", "producer_name": "Bé", "product_id": "x", "product_name": "Chè"},
        {"producer_id": "a", "producer_name": "Bé", "product_id": "y", "product_name": "Sâm"},
        {"producer_id": "b", "producer_name": "An", "product_id": "x", "product_name": "Chè"},
    ]
    lots: list[dict[str, Any]] = [
        {**rows[0], "net_g": 1, "unit_price_dong": 500},
        {**rows[1], "net_g": 900, "unit_price_dong": None},
        {**rows[2], "net_g": 1, "unit_price_dong": 500},
    ]
    t = summarise("2026-11-23", lots).json()
    assert (t["lots"], t["net_g"], t["amount_dong"], t["unpriced_lots"]) == (3, 902, 2, 1)
    assert [(f["name"], f["lots"], f["amount_dong"]) for f in t["farmers"]] == [
        ("An", 1, 1),
        ("Bé", 2, 1),
    ]
    assert [(p["name"], p["net_g"], p["unpriced_lots"]) for p in t["products"]] == [
        ("Chè", 2, 0),
        ("Sâm", 900, 1),
    ]


# -- through the station ------------------------------------------------------------------


def _printed(server: StationServer, job_id: str) -> Image.Image:
    """The one raster image of a job the station's file printer received (ESC/POS)."""
    directory: Path = server.cfg.printer.dir  # type: ignore[union-attr]
    path = directory / f"{job_id}.bin"
    wait_for(path.exists, 15, "the job printed")
    decoded = decode(path.read_bytes())
    assert decoded.cuts == 1
    (image,) = decoded.images
    return image


def _expected(
    server: StationServer, kind: str, data: dict[str, Any], width: int
) -> tuple[Image.Image, list[str]]:
    """The label as the layout draws it, and the lines of text it places."""
    signer = PayloadSigner(server.cfg.site.id, load_site_key(server.cfg.site.key_file))
    page = layout(label_blocks(kind, data, signer=signer, tz=VN), width)
    return page.render(), [t.text for t in page.texts]


def _job(server: StationServer, job_id: str) -> dict[str, Any]:
    (row,) = server.station.db.rows("SELECT * FROM print_jobs WHERE id = ?", (job_id,))
    return row


def _lot(c: httpx.Client, producer: str, product: str, grams: int) -> dict[str, Any]:
    settle(c, grams)
    r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
    assert r.status_code == 201, r.text
    lot: dict[str, Any] = r.json()
    return lot


def test_receipts_copies_reprints_and_totals_through_the_api(tmp_path: Path) -> None:
    with (
        StationServer(station_config(tmp_path), now=MiddayClock()) as server,
        server.client(role="lead") as lead,
        server.client(role="staff") as c,
    ):
        me = c.get("/api/me").json()["name"]  # a staff member prints, reprints and totals
        producer = c.post("/api/producers", json={"name": FARMER, "village": "Sìn Hồ"}).json()
        product = lead.post("/api/products", json={"name": PRODUCT, "unit_price_dong": 85_000})
        unpriced = lead.post("/api/products", json={"name": "Sâm Lai Châu"}).json()["id"]
        other = c.post("/api/producers", json={"name": "Lò Văn Sáng"}).json()["id"]
        first = _lot(c, producer["id"], product.json()["id"], 2345)
        second = _lot(c, other, product.json()["id"], 1500)
        third = _lot(c, other, unpriced, 800)
        # staff see 1, 2, 3 although farmers and products took site sequence numbers
        assert [x["day_no"] for x in (first, second, third)] == [1, 2, 3]
        assert sorted(x["day_no"] for x in c.get("/api/lots").json()) == [1, 2, 3]

        # the lot label prints the daily number
        label = _printed(server, first["print_job_id"])
        want, texts = _expected(server, "lot", _label_data(server, first), label.width)
        assert any(t.endswith("· #1") for t in texts)
        assert label.tobytes() == want.tobytes()

        # the receipt: the farmer's name with diacritics, 2,345 kg x 85.000 đ = 199.325 đ
        assert c.get(f"/api/lots/{first['id']}/receipt").json()["amount_dong"] == 199_325
        r = c.post(f"/api/lots/{first['id']}/receipt")
        assert r.status_code == 201, r.text
        assert (r.json()["copy"], r.json()["amount_dong"]) == (False, 199_325)
        receipt_job = r.json()["job_id"]
        data = json.loads(_job(server, receipt_job)["data"])
        assert data["staff"] == me and data["farmer"] == FARMER
        image = _printed(server, receipt_job)
        want, texts = _expected(server, "receipt", data, image.width)
        assert image.tobytes() == want.tobytes()
        assert FARMER in " ".join(texts) and format_dong(199_325) in texts
        assert COPY_MARK not in texts

        # again: only with a reason, and then a copy marked BẢN SAO
        again = c.post(f"/api/lots/{first['id']}/receipt")
        assert again.status_code == 422 and again.json()["error"]["code"] == "reason_required"
        wait_for(lambda: _job(server, receipt_job)["status"] == "printed", 10, "receipt printed")
        copy = c.post(f"/api/lots/{first['id']}/receipt", json={"reason": "Nhãn bị ướt"})
        assert copy.status_code == 201 and copy.json()["copy"] is True
        copy_job = copy.json()["job_id"]
        assert _job(server, copy_job)["copy_of"] == receipt_job
        image = _printed(server, copy_job)
        want, texts = _expected(server, "receipt", {**data, "is_copy": True}, image.width)
        assert image.tobytes() == want.tobytes() and texts[0] == COPY_MARK
        assert FARMER in " ".join(texts)

        # an unpriced lot has no receipt
        refused = c.post(f"/api/lots/{third['id']}/receipt")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_price"
        assert "Sâm Lai Châu" in refused.json()["error"]["message"]

        # any printed label again, with a reason: a copy, attributed to who is signed in
        wait_for(lambda: _job(server, second["print_job_id"])["status"] == "printed", 10, "lbl")
        r = c.post(
            f"/api/print-jobs/{second['print_job_id']}/reprint",
            json={"reason": "Nhãn bị rách", "actor": "Somebody Else"},
        )
        assert r.status_code == 422  # no name in the body any more
        r = c.post(f"/api/print-jobs/{second['print_job_id']}/reprint", json={"reason": "rách"})
        assert r.status_code == 200, r.text
        assert r.json()["copy"] is True and r.json()["copy_of"] == second["print_job_id"]
        image = _printed(server, r.json()["id"])
        want, texts = _expected(
            server, "lot", {**_label_data(server, second), "is_copy": True}, image.width
        )
        assert texts[0] == COPY_MARK and image.tobytes() == want.tobytes()
        audit = server.station.db.rows(
            "SELECT actor, detail FROM audit_log WHERE action = 'print.copied' ORDER BY id"
        )
        assert [(a["actor"], json.loads(a["detail"])["reason"]) for a in audit] == [
            (me, "Nhãn bị ướt"),
            (me, "rách"),
        ]

        # the day's totals: per farmer and per product, lots, grams, đồng
        totals = c.get("/api/totals").json()
        assert (totals["lots"], totals["net_g"], totals["unpriced_lots"]) == (3, 4645, 1)
        assert totals["amount_dong"] == 199_325 + 127_500
        by_farmer = {
            f["name"]: (f["lots"], f["net_g"], f["amount_dong"]) for f in totals["farmers"]
        }
        assert by_farmer == {FARMER: (1, 2345, 199_325), "Lò Văn Sáng": (2, 2300, 127_500)}
        by_product = {p["name"]: (p["lots"], p["amount_dong"]) for p in totals["products"]}
        assert by_product == {PRODUCT: (2, 326_825), "Sâm Lai Châu": (1, 0)}
        other_day = c.get("/api/totals", params={"day": "2020-01-01"}).json()
        assert other_day["lots"] == 0 and other_day["farmers"] == []
        assert c.get("/api/totals", params={"day": "hôm qua"}).status_code == 422

        # the printed end-of-day summary
        r = c.post("/api/totals/print", json={})
        assert r.status_code == 201, r.text
        data = json.loads(_job(server, r.json()["job_id"])["data"])
        image = _printed(server, r.json()["job_id"])
        want, texts = _expected(server, "day_summary", data, image.width)
        assert image.tobytes() == want.tobytes()
        assert texts[0] == "TỔNG KẾT NGÀY" and FARMER in " ".join(texts)
        assert format_dong(326_825) in texts


def _label_data(server: StationServer, lot: dict[str, Any]) -> dict[str, Any]:
    return {
        "collection_point": server.cfg.site.name,
        "lot_id": lot["id"],
        "day_no": lot["day_no"],
        "farmer": lot["producer_name"],
        "product": lot["product_name"],
        "net_g": lot["net_g"],
        "recorded_at": lot["recorded_at"],
    }
