"""2,500 orders down to a point over the poor mobile link.

The link is the benchmarks' (bench/sync_drain.py): rigs/shaper.py between the
station and the broker, each direction 300 ms of latency, 256 kbit/s and 1 % of
segments a retransmission time-out (1 s) late. Central: the shipped mutual-TLS
mosquitto and ``edge central ingest`` (SQLite) with its downlink sender; the
station: its link worker (shipped ``[mqtt]`` defaults) in a process of its own,
applying the orders with the station's own handlers (edge.orders.apply).

``orders_downlink_2500_s``: seconds from the moment central's store queues the
2,500 orders of a livestream (``import_orders``, one transaction; the orders of a
TikTok Shop export from rigs/orders_export.py, read and planned by
edge.central.orders, all for the one point here) to the moment
central has the point's acknowledgement of the last one (each order applied and
committed at the point).
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.sync_common import SITE, CentralRig, station_config
from bench.sync_drain import LINK, MOBILE
from edge.central.orders.exports import read_export
from edge.central.orders.mapping import parse_mapping
from edge.central.orders.plan import plan_orders
from edge.central.store import open_store
from edge.storage.store import Store
from rigs.downlink_support import DownlinkLinkProcess
from rigs.helpers import Pki, wait_for
from rigs.order_records import import_record
from rigs.orders_export import make_export, mapping_csv
from rigs.shaper import Shaper

ORDERS = 2_500
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Lò", "Giàng"]
GIVEN = ["Thị Thu Hằng", "Văn Páo", "Minh Tuấn", "Thị Mai", "Quốc Huy", "Seo Mỷ", "Ngọc Anh"]
PLACES = [
    ("Hà Nội", "Quận Đống Đa", "Phường Láng Hạ"),
    ("Hà Nội", "Quận Cầu Giấy", "Phường Dịch Vọng"),
    ("TP. Hồ Chí Minh", "Quận 3", "Phường Võ Thị Sáu"),
    ("Đà Nẵng", "Quận Hải Châu", "Phường Thạch Thang"),
    ("Lai Châu", "Huyện Sìn Hồ", "Xã Nậm Cuổi"),
]
GOODS = [
    ("SHAN-500-A", "Chè Shan tuyết 500g", "Hạng A", "Chè Shan tuyết", "A", 500, 40, 185_000),
    ("SHAN-200-B", "Chè Shan tuyết 200g", "Hạng B", "Chè Shan tuyết", "B", 200, 25, 65_000),
    ("SAM-100", "Sâm Lai Châu 100g", None, "Sâm Lai Châu", None, 100, 30, 2_500_000),
    ("MAC-1KG", "Mắc ca sấy 1kg", None, "Mắc ca", None, 1000, 60, 320_000),
]


def livestream_orders(n: int, seed: int = 13) -> list[dict[str, Any]]:
    """``n`` orders as the import hands them to the store, 1 to 3 lines each (for tests:
    no export to read)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        province, district, commune = rng.choice(PLACES)
        lines = []
        amount = 0
        for good in rng.sample(GOODS, rng.randint(1, 3)):
            sku, name, variation, product, grade, net, tare, price = good
            quantity = rng.randint(1, 4)
            amount += quantity * int(price or 0)
            lines.append(
                {"sku": sku, "name": name, "variation": variation, "product": product,
                 "grade": grade, "quantity": quantity, "pack_net_g": net,
                 "pack_tare_g": tare}
            )  # fmt: skip
        cod = rng.random() < 0.7
        out.append(
            import_record(
                i,
                SITE,
                id=f"5781{i:014d}",
                carrier=rng.choice(["J&T Express", "GHN", "Viettel Post"]),
                recipient=f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}",
                phone=f"09{rng.randint(0, 99_999_999):08d}",
                province=province,
                district=district,
                commune=commune,
                address=f"Số {rng.randint(1, 300)}, ngõ {rng.randint(1, 120)}, {commune}",
                payment="cod" if cod else "prepaid",
                cod_dong=amount if cod else 0,
                amount_dong=amount,
                buyer_message="Giao giờ hành chính giúp em" if rng.random() < 0.2 else None,
                lines=lines,
            )
        )
    return out


def exported_orders(n: int) -> list[dict[str, Any]]:
    """``n`` orders of a TikTok Shop export (rigs/orders_export.py) as the import hands
    them to the store (edge.central.orders), all for the benchmark's point."""
    gen = make_export(n, fmt="csv", seed=29)
    plan = plan_orders(read_export(gen.data), parse_mapping(mapping_csv()))
    if len(plan.orders) != n:
        raise SystemExit(f"orders_downlink: {len(plan.orders)} orders planned, {n} expected")
    return [{**o, "site": SITE} for o in plan.orders]


def bench_orders_downlink() -> None:
    orders = exported_orders(ORDERS)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pki = Pki(tmp / "pki")
        with CentralRig(tmp / "central", pki, "127.0.0.1") as rig:
            db = tmp / "station.db"
            Store.open(db, SITE).close()
            shaper = Shaper(rig.broker.port, shape=MOBILE, seed=13)
            shaper.start()
            station = DownlinkLinkProcess(
                station_config(db, pki, "127.0.0.1", shaper.port), tmp, handlers="station"
            )
            central = open_store(f"sqlite:///{tmp}/central/central.db")
            try:
                station.start()
                wait_for(lambda: "connected to broker" in station.log.read_text(), 30, "link up")
                t0 = time.perf_counter()
                central.import_orders(orders)
                wait_for(lambda: acked(central) >= ORDERS, 300, "all acknowledged")
                seconds = time.perf_counter() - t0
                stats = shaper.stats()
            except AssertionError as exc:
                tail = station.log.read_text()[-3000:]
                raise RuntimeError(f"{exc}{rig.diagnostics()}\nstation log:\n{tail}") from None
            finally:
                station.stop()
                shaper.close()
                central.close()
            refused, orders_held = station_counts(db)
    lost = stats.lost_up + stats.lost_down
    print(
        f"orders_downlink_2500_s {seconds:.2f} s  (target <= 30; {ORDERS} orders queued at "
        f"central until the point acknowledged the last: ingest's sender, shipped TLS "
        f"mosquitto, {LINK} ({lost} were), the station's order handlers; "
        f"{stats.bytes_down / 1024:.0f} KiB down, {stats.bytes_up / 1024:.0f} KiB up; "
        f"{orders_held} orders at the point, {refused} refused)",
        flush=True,
    )


def acked(central: Any) -> int:
    return max((int(p["acked_upto"]) for p in central.down_progress()), default=0)


def station_counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        refused = conn.execute("SELECT count(*) FROM downlink_refused").fetchone()[0]
        held = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        return int(refused), int(held)
    finally:
        conn.close()


if __name__ == "__main__":
    bench_orders_downlink()
