"""Farmer search with a season's farmers: 5,000 Vietnamese names (generated here from
common surnames, middle and given names and villages of the north-west) on a real
station served by uvicorn, asked over HTTP the way the page asks
(``GET /api/producers?q=...&limit=8``) with what staff type: names without diacritics,
villages, phone fragments. The time is to the last byte of the answer."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.ids import iso, new_id
from edge.storage.search_key import fold, phone_digits
from rigs.helpers import StationServer, station_config

FARMERS = 5000
LOTS = 20000
QUERIES = 400
WARMUP = 30
TARGET_MS = 50.0

# (name, weight): about four in ten Vietnamese are Nguyễn; the Hmong and Thái names of
# the north-west's villages are here too.
SURNAMES = [
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Vũ", 4),
    ("Đặng", 3),
    ("Bùi", 3),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 2),
    ("Lý", 2),
    ("Giàng", 3),
    ("Vàng", 3),
    ("Lò", 3),
    ("Sùng", 2),
    ("Thào", 2),
    ("Lầu", 1),
    ("Tòng", 1),
    ("Quàng", 1),
    ("Cà", 1),
    ("Điêu", 1),
    ("Mùa", 1),
    ("Hờ", 1),
]
MIDDLE_F = ["Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Minh"]
MIDDLE_M = ["Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "A", "Seo"]
GIVEN_F = [
    "Hương",
    "Lan",
    "Mai",
    "Hoa",
    "Hằng",
    "Thảo",
    "Dung",
    "Xuân",
    "Nga",
    "Huyền",
    "Trang",
    "Phương",
    "Hạnh",
    "Liên",
    "Nhung",
    "Yến",
    "Mỷ",
    "Dợ",
    "Chua",
    "Sinh",
    "Ỏn",
    "Ánh",
]
GIVEN_M = [
    "Hùng",
    "Dũng",
    "Tuấn",
    "Hướng",
    "Đức",
    "Minh",
    "Sơn",
    "Thắng",
    "Hải",
    "Long",
    "Páo",
    "Dơ",
    "Chứ",
    "Sếnh",
    "Khánh",
    "Tú",
    "Lâm",
    "Quý",
    "Thành",
    "Đông",
    "Pó",
    "Chinh",
]
VILLAGES = [
    "Bản Lác",
    "Bản Hon",
    "Bản Lướt",
    "Nậm Tăm",
    "Nậm Cha",
    "Sìn Hồ",
    "Pa Tần",
    "Phìn Hồ",
    "Mường Khoa",
    "Hương Sơn",
    "Tà Phìn",
    "Noong Hẻo",
    "Chăn Nưa",
    "Pú Đao",
    "Làng Mô",
    "Thôn Đông",
    "Thôn Trung",
    "Thôn Đoài",
    "Bản Mạ",
    "Nậm Mạ",
    "Xà Dề Phìn",
    "Ma Quai",
    "Phăng Sô Lin",
    "Lùng Thàng",
    "Tả Ngảo",
    "Căn Co",
    "Nậm Hăn",
    "Hồng Thu",
    "Pu Sam Cáp",
    "Đường Đoàn Kết",
]
PREFIXES = ["086", "096", "097", "098", "032", "033", "034", "035", "091", "094", "088"]


Farmer = tuple[str, str | None, str]
"""(name, phone, village)"""


def _phone(rng: random.Random) -> str | None:
    """A mobile number in one of the ways staff write one, or none (a fifth)."""
    if rng.random() < 0.2:
        return None
    prefix, rest = rng.choice(PREFIXES), f"{rng.randrange(10**7):07d}"
    digits = prefix + rest
    style = rng.randrange(4)
    if style == 0:
        return digits
    if style == 1:
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    if style == 2:
        return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"
    return f"+84 {digits[1:4]} {digits[4:7]} {digits[7:]}"


def farmers(rng: random.Random, n: int = FARMERS) -> list[Farmer]:
    """(name, phone, village) of ``n`` made-up farmers."""
    names, weights = zip(*SURNAMES, strict=True)
    out: list[Farmer] = []
    for _ in range(n):
        surname = rng.choices(names, weights)[0]
        if rng.random() < 0.5:
            name = f"{surname} {rng.choice(MIDDLE_F)} {rng.choice(GIVEN_F)}"
        else:
            name = f"{surname} {rng.choice(MIDDLE_M)} {rng.choice(GIVEN_M)}"
        out.append((name, _phone(rng), rng.choice(VILLAGES)))
    return out


def queries(rng: random.Random, people: list[Farmer], n: int) -> list[str]:
    """What staff type to find one of ``people``: without diacritics, often part of it."""
    out: list[str] = []
    while len(out) < n:
        name, phone, village = rng.choice(people)
        words = fold(name).split()
        kind = rng.randrange(8)
        if kind == 0:
            q = words[-1]  # the given name: "huong"
        elif kind == 1:
            q = f"{words[0]} {words[-1]}"  # "nguyen huong"
        elif kind == 2:
            q = " ".join(words)  # "nguyen thi huong"
        elif kind == 3:
            q = words[-1][:3]  # typing in progress: "huo"
        elif kind == 4:
            q = f"{words[-1]} {fold(village).split()[-1]}"  # "huong lac"
        elif kind == 5:
            q = fold(village)  # "ban lac"
        elif phone is None:
            continue
        elif kind == 6:
            q = phone_digits(phone)[-4:]  # the end of the number: "4321"
        else:
            q = phone_digits(phone)[:4]  # its start: "0987"
        out.append(q)
    return out


def _load(server: StationServer, people: list[Farmer], rng: random.Random) -> None:
    """The farmers (search keys by the station's own triggers) and a season of lots over
    them, in one transaction: the figure is the search, not 5,000 fsyncs."""
    store = server.station.db
    product = store.add_product("Chè Shan tuyết")["id"]
    start = datetime.now(UTC) - timedelta(days=90)
    with store.write() as db:
        seq = db.execute("SELECT COALESCE(MAX(last_seq), 0) FROM site_sequence").fetchone()[0]
        ids = []
        for name, phone, village in people:
            seq += 1
            pid = new_id()
            ids.append(pid)
            db.execute(
                "INSERT INTO producers(id, seq, site_id, name, phone, village, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [pid, seq, store.site_id, name, phone, village, iso(start)],
            )
        for i in range(LOTS):
            seq += 1
            at = iso(start + timedelta(seconds=i * 90 * 86400 // LOTS))
            db.execute(
                "INSERT INTO lots(id, seq, site_id, producer_id, product_id, net_g, "
                "scale_frame, recorded_at, boot_id, uptime_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    new_id(),
                    seq,
                    store.site_id,
                    rng.choice(ids),
                    product,
                    1000,
                    "bench",
                    at,
                    "b",
                    0.0,
                ],
            )
        db.execute("UPDATE site_sequence SET last_seq = ?", [seq])


def bench_farmer_search() -> None:
    rng = random.Random(12)
    people = farmers(rng)
    asked = queries(rng, people, WARMUP + QUERIES)
    samples: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        StationServer(station_config(Path(tmp))) as server,
    ):
        _load(server, people, rng)
        with server.client(role="staff") as client:
            for i, q in enumerate(asked):
                t0 = time.perf_counter()
                r = client.get("/api/producers", params={"q": q, "limit": 8})
                body = r.content  # read to the last byte
                elapsed = time.perf_counter() - t0
                if r.status_code != 200 or not r.json():
                    raise RuntimeError(f"bench: {q!r} found nobody: {r.status_code} {body[:200]!r}")
                if i >= WARMUP:
                    samples.append(elapsed)
    ordered = sorted(samples)
    median = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    print(
        f"farmer_search_ms_p95: {p95:.1f}  ({FARMERS} farmers, Vietnamese names, queries "
        f"without diacritics; target <= {TARGET_MS:.0f}; median {median:.1f} ms)"
    )


if __name__ == "__main__":
    bench_farmer_search()
