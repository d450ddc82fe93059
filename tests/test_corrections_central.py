"""Corrections and merges reach a real central ingest in order (issue 12): a station
served by uvicorn with its link to a real mosquitto, ``edge.central.ingest.Ingest`` on a
real SQLite file and on the machine's PostgreSQL, and central's view of the lots as
corrected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.central.ingest import Ingest
from edge.central.store import open_store
from edge.storage.corrections import Corrections
from rigs.clock import MiddayClock
from rigs.helpers import Broker, StationServer, settle, station_config, wait_for
from tests.central_support import pg_schema

SITE = "test-site"


@contextmanager
def _central_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/central.db"
    else:
        with pg_schema() as url:
            yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_corrections_and_merges_arrive_at_central_in_order(
    kind: str, tmp_path: Path, broker: Broker
) -> None:
    mqtt = {"enabled": True, "port": broker.port, "batch_max_age_s": 0.2}
    with _central_url(kind, tmp_path) as url, open_store(url) as central:
        ingest = Ingest(central, f"mqtt://127.0.0.1:{broker.port}")
        ingest.start()
        try:
            wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions")
            cfg = station_config(tmp_path, mqtt=mqtt)
            with StationServer(cfg, now=MiddayClock()) as server, server.client("lead") as c:

                def post(path: str, body: dict[str, object], status: int = 200) -> str:
                    r = c.post(path, json=body)
                    assert r.status_code == status, r.text
                    return str(r.json().get("id", ""))

                a = post("/api/producers", {"name": "Giàng Thị Mỷ"}, 201)
                b = post("/api/producers", {"name": "Giàng T. Mỷ"}, 201)
                tea = post("/api/products", {"name": "Chè", "unit_price_dong": 80_000}, 201)
                herb = post("/api/products", {"name": "Thảo quả"}, 201)
                lots = []
                for grams, farmer in ((1200, a), (2300, b), (3400, b)):
                    settle(c, grams)
                    lots.append(post("/api/lots", {"producer_id": farmer, "product_id": tea}, 201))
                post(f"/api/lots/{lots[0]}/correct", {"product_id": herb, "reason": "nhầm"})
                post(f"/api/lots/{lots[1]}/void", {"reason": "cân hai lần"})
                post(f"/api/producers/{b}/merge", {"into": a, "reason": "trùng tên"})
                post(f"/api/producers/{a}", {"village": "Sìn Hồ"})
                post(f"/api/products/{tea}", {"unit_price_dong": 85_000})

                station = server.station.db
                sent = station.rows(
                    "SELECT seq, kind, record_id, body FROM outbox "
                    "WHERE stream = 'records' ORDER BY seq"
                )
                last = sent[-1]["seq"]
                wait_for(lambda: central.contiguous(SITE, "records") == last, 20, "central")
                here = {x: Corrections(station).lot(x) for x in lots}

            kinds = [r["kind"] for r in sent]
            assert kinds[-5:] == [
                "lot_correction", "lot_void", "producer_merge", "producer_update",
                "product_update",
            ]  # fmt: skip
            assert central.seqs(SITE, "records") == list(range(1, last + 1))
            for row in sent:  # each stored once, in the station's commit order, as committed
                stored = central.record(SITE, "records", row["seq"])
                assert stored == {"type": row["kind"], "seq": row["seq"], **json.loads(row["body"])}

            view = central.site_view(SITE)
            for lot_id, lot in here.items():
                there = view.lots[lot_id]
                assert (there.producer_id, there.product_id, there.voided) == (
                    lot.producer_id, lot.product_id, lot.voided,
                )  # fmt: skip
            assert view.lots[lots[0]].product_id == herb
            assert view.lots[lots[1]].voided and view.lots[lots[1]].void_reason == "cân hai lần"
            assert [view.lots[x].producer_id for x in lots] == [a, a, a]
            assert view.lots[lots[2]].recorded_producer_id == b
            assert view.producers[b].merged_into == a and view.producers[a].village == "Sìn Hồ"
            assert view.products[tea].unit_price_dong == 85_000
            assert ingest.counters.snapshot()["rejected"] == 0
        finally:
            ingest.stop()
