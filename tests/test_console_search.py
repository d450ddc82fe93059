"""The trace search over real PostgreSQL, with records stored through central's real store
in shuffled batches (a correction stored before the lot it corrects, a handover before
its parcel): a parcel's whole chain from its tracking number, its signed QR payload and
a lot id; a forged payload refused; farmers with diacritics; a corrected lot shows the
corrected farmer; a merged farmer counts for the one kept; what is not understood is
said."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.central.console.auth import COOKIE
from edge.central.console.operators import sign_in
from edge.central.store import open_store
from edge.printer.payload import PayloadKind, ensure_site_key, sign
from edge.sync.envelope import Batch
from edge.sync.validate import validate_batch
from rigs.console_support import PASSWORD, ConsoleServer
from rigs.trace_seed import Shape, ident, seed, site_key, tracking
from tests.central_support import PG_URL, pg_schema

SITE = "sin-ho"
BOOT = "5d1c0b7e-8f4a-4c11-9d5e-0a4b2c3d4e5f"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


class Stream:
    """One point's records stream as a station writes it: seqs 1, 2, 3... in commit
    order, each record with the fields every record carries."""

    def __init__(self, site: str, start: datetime) -> None:
        self.site = site
        self.at = start
        self.records: list[dict[str, Any]] = []

    def add(self, kind: str, when: datetime | None = None, **fields: Any) -> str:
        """Appends a record (``when``: its recorded_at, else 3 minutes after the last)."""
        self.at = when or self.at + timedelta(minutes=3)
        rid = fields.pop("id", None) or new_id()
        self.records.append(
            {
                "type": kind,
                "seq": len(self.records) + 1,
                "id": rid,
                "recorded_at": iso(self.at),
                "boot_id": BOOT,
                "uptime_s": 1000.0 + len(self.records),
                "clock_synced": True,
                **fields,
            }
        )
        return rid

    def batches(self, size: int) -> list[Batch]:
        """The stream cut in batches of ``size`` records, each checked as central's
        ingest checks it."""
        out = []
        for start in range(0, len(self.records), size):
            chunk = tuple(self.records[start : start + size])
            first, last = chunk[0]["seq"], chunk[-1]["seq"]
            b = Batch(self.site, "records", f"records:{first}-{last}:1", first, last, chunk)
            validate_batch(b)
            out.append(b)
        return out


def store(url: str, *streams: Stream, first: tuple[int, ...] = (), seed_no: int = 7) -> None:
    """Every stream stored through central's store batch by batch, shuffled (the batches
    holding a seq of ``first`` go first): central receives them out of order."""
    batches = [b for s in streams for b in s.batches(3)]
    random.Random(seed_no).shuffle(batches)
    batches.sort(key=lambda b: not any(b.first <= seq <= b.last for seq in first))
    central = open_store(url)
    try:
        for b in batches:
            central.store_batch(b)
    finally:
        central.close()


@dataclass
class Chain:
    stream: Stream
    lots: dict[str, str]
    tracking: str
    parcel: str
    voided_tracking: str
    manifests: list[str]
    correction_seq: int


def chain(site: str = SITE, start: datetime | None = None) -> Chain:
    """A point's farmers, lots, grades, corrections, a parcel packed from three lots,
    handed over, returned and handed over again, and a voided parcel."""
    s = Stream(site, start or datetime.now(UTC) - timedelta(hours=6))
    mỷ = s.add("producer", name="Giàng Thị Mỷ", phone="0987654321", village="Bản Lác")
    hướng = s.add("producer", name="Nguyễn Văn Hướng", phone=None, village="Mường Khoa")
    xuân = s.add("producer", name="Lò Thị Xuân", phone=None, village="Sìn Hồ")
    twin = s.add("producer", name="Lò T. Xuân (trùng)", phone=None, village=None)
    chè = s.add("product", name="Chè Shan tuyết", unit_price_dong=85000, grading=None)
    sâm = s.add("product", name="Sâm Lai Châu", unit_price_dong=None, grading=None)
    lot = {
        "l1": s.add("lot", producer_id=mỷ, product_id=chè, net_g=1200, day_no=1),
        "l2": s.add("lot", producer_id=hướng, product_id=chè, net_g=800, day_no=2),
        "l3": s.add("lot", producer_id=twin, product_id=sâm, net_g=500, day_no=3),
        "l4": s.add("lot", producer_id=mỷ, product_id=chè, net_g=700, day_no=4),
        "l5": s.add("lot", producer_id=mỷ, product_id=chè, net_g=300, day_no=5),
    }
    s.add("grade", lot_id=lot["l1"], grade="A", proposed_grade="B", confidence=0.7,
          method="rules", photo_id=None, overridden=True, confirmed_by="Lò Văn Páo")  # fmt: skip
    s.add("grade", lot_id=lot["l2"], grade="B", proposed_grade="B", confidence=0.9,
          method="model", photo_id=None, overridden=False, confirmed_by="Lò Văn Páo")  # fmt: skip
    s.add("grade", lot_id=lot["l5"], grade="A", proposed_grade=None, confidence=None,
          method=None, photo_id=None, overridden=False, confirmed_by="Lò Văn Páo")  # fmt: skip
    s.add("lot_correction", lot_id=lot["l5"], producer_id=hướng, product_id=None,
          was_producer_id=mỷ, was_product_id=None, reason="nhầm người", by="Trưởng điểm",
          by_id="lead-1")  # fmt: skip
    correction_seq = len(s.records)
    s.add("lot_void", lot_id=lot["l4"], reason="cân nhầm", by="Trưởng điểm", by_id="lead-1")
    s.add("producer_merge", merged_id=twin, survivor_id=xuân, reason="trùng", by="Trưởng điểm",
          by_id="lead-1")  # fmt: skip
    s.add("producer_update", producer_id=mỷ, name="Giàng Thị Mỷ", phone="0987654321",
          village="Bản Lác Trên", by="Trưởng điểm", by_id="lead-1")  # fmt: skip
    code = "JTVN00100001"
    parcel = s.add(
        "parcel", order_id="578123456789000001", tracking=code, carrier="J&T Express",
        net_g=2000, gross_g=2080, expected_g=2080, tolerance_g=60, override=None,
        by="Lò Thị Lan", by_id="staff-1", packed_at=iso(s.at),
        lots=[{"lot_id": lot["l1"], "net_g": 1000}, {"lot_id": lot["l2"], "net_g": 700},
              {"lot_id": lot["l5"], "net_g": 300}],
        lines=[{"product": "Chè Shan tuyết", "grade": "A", "quantity": 4}],
    )  # fmt: skip
    s.add("parcel_label", parcel_id=parcel, job_id=new_id(), copy=False, printed_at=iso(s.at))
    manifests: list[str] = []
    for courier in ("Vàng A Sủng", "Sùng Seo Dình"):
        m = s.add("manifest", carrier="J&T Express", courier=courier, courier_id=None,
                  by="Lò Thị Lan", by_id="staff-1", closed_at=iso(s.at), count=1,
                  total_g=2080, cod_dong=370000, confirmed_with="pin", missing=0)  # fmt: skip
        s.add("parcel_handover", parcel_id=parcel, manifest_id=m, tracking=code,
              carrier="J&T Express", courier=courier, at=iso(s.at))  # fmt: skip
        if not manifests:
            s.add("parcel_return", parcel_id=parcel, manifest_id=m, reason="khách không nhận",
                  by="Lò Thị Lan", by_id="staff-1", at=iso(s.at))  # fmt: skip
        manifests.append(m)
    voided_code = "JTVN00100002"
    other = s.add(
        "parcel", order_id="578123456789000002", tracking=voided_code, carrier="J&T Express",
        net_g=500, gross_g=540, expected_g=540, tolerance_g=30, override=None,
        by="Lò Thị Lan", by_id="staff-1", packed_at=iso(s.at),
        lots=[{"lot_id": lot["l3"], "net_g": 500}],
        lines=[{"product": "Sâm Lai Châu", "grade": None, "quantity": 1}],
    )  # fmt: skip
    s.add("parcel_void", parcel_id=other, reason="đóng lại", by="Trưởng điểm", by_id="lead-1",
          at=iso(s.at))  # fmt: skip
    return Chain(s, lot, code, parcel, voided_code, manifests, correction_seq)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "site-keys"
    ensure_site_key(folder / f"{SITE}.key")
    return folder


@pytest.fixture
def traced(keys: Path) -> Iterator[tuple[ConsoleServer, Chain]]:
    with pg_schema() as url:
        c = chain()
        lot_seq = next(r["seq"] for r in c.stream.records if r["id"] == c.lots["l5"])
        # the correction (and the handovers) stored before the lot and parcel they name
        n = len(c.stream.records)
        store(url, c.stream, first=(c.correction_seq, n - 2, n - 4))
        central = open_store(url)
        assert central.record(SITE, "records", lot_seq) is not None
        central.close()
        with ConsoleServer(url, site_keys_dir=keys) as console:
            console.db.execute(
                "INSERT INTO points VALUES (%s, %s, %s, %s, now())",
                (SITE, "Điểm Sìn Hồ", "Lai Châu", "Sìn Hồ"),
            )
            yield console, c


def session(console: ConsoleServer, role: str = "viewer") -> str:
    """A session token made without POST /signin (whose limit of 10 a minute per address
    is shared by every console the test process runs; the form has its own tests)."""
    return sign_in(console.db, console.operator(role), PASSWORD)


def viewer(console: ConsoleServer) -> httpx.Client:
    """A signed-in viewer's client, sending the console's Origin as its pages do."""
    return httpx.Client(
        base_url=console.url,
        headers={"Origin": console.url},
        cookies={COOKIE: session(console)},
        timeout=30,
    )


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def assert_whole_chain(html: str, c: Chain) -> None:
    text = text_of(html)
    assert 'data-testid="parcel"' in html
    assert c.tracking in text and "578123456789000001" in text
    assert "Đã bàn giao cho bưu tá" in text  # handed over again after the return
    for name in ("Giàng Thị Mỷ", "Nguyễn Văn Hướng", "Bản Lác Trên", "Mường Khoa"):
        assert name in text, name
    assert "Chè Shan tuyết" in text
    assert "1,2 kg" in text and "Lấy vào kiện: 1,0 kg" in text
    # l5 was recorded for Mỷ and corrected to Hướng: shown for Hướng, the correction said
    row = html.split(f'data-lot="{c.lots["l5"]}"')[1].split("</tr>")[0]
    assert "Nguyễn Văn Hướng" in row and "đã sửa, trước là Giàng Thị Mỷ" in text_of(row)
    # grades: l1 confirmed A over the proposed B, by whom and how
    row1 = text_of(html.split(f'data-lot="{c.lots["l1"]}"')[1].split("</tr>")[0])
    assert "Hạng A" in row1 and "đề xuất B" in row1 and "cách rules" in row1
    assert "Lò Văn Páo" in row1 and "đã sửa hạng đề xuất" in row1
    # the history: packed, label, handed over (Vàng A Sủng), returned, handed over again
    whats = re.findall(r'data-what="(\w+)"', html)
    assert whats == ["packed", "label", "handed_over", "returned", "handed_over"]
    assert "Vàng A Sủng" in text and "Sùng Seo Dình" in text and "khách không nhận" in text
    assert c.manifests[1][:8] in text
    assert "Điểm Sìn Hồ" in text
    for lot_id in (c.lots["l1"], c.lots["l2"], c.lots["l5"]):
        assert f'data-lot="{lot_id}"' in html
    assert c.lots["l3"] not in html  # not in this parcel
    for rec in c.stream.records:  # names, never bare farmer or product ids
        if rec["type"] in ("producer", "product"):
            assert f">{rec['id']}<" not in html


def test_tracking_number_finds_the_whole_chain(traced: tuple[ConsoleServer, Chain]) -> None:
    console, c = traced
    with viewer(console) as http:
        r = http.get("/search", params={"q": f"  {c.tracking.lower()} "})
        assert r.status_code == 200
        assert_whole_chain(r.text, c)
        assert 'data-testid="search-signature"' not in r.text  # typed, not scanned
        # a voided parcel is found and said voided, with why
        r = http.get("/search", params={"q": c.voided_tracking})
        assert "Đã huỷ" in r.text and "đóng lại" in r.text
        # the merged farmer's lot counts for the one kept (Lò Thị Xuân, Sìn Hồ)
        assert "Lò Thị Xuân" in r.text and "(trùng)" not in r.text
        # by parcel id as well
        r = http.get("/search", params={"q": c.parcel})
        assert_whole_chain(r.text, c)


def test_signed_qr_payload_finds_the_chain_and_a_forged_one_is_refused(
    traced: tuple[ConsoleServer, Chain], keys: Path
) -> None:
    console, c = traced
    key = (keys / f"{SITE}.key").read_bytes()
    payload = sign(SITE, PayloadKind.SHIPPING, c.tracking, key)
    with viewer(console) as http:
        r = http.get("/search", params={"q": payload})
        assert 'data-signature="valid"' in r.text and "Chữ ký đúng" in r.text
        assert_whole_chain(r.text, c)
        # one character of the signature changed: refused, no chain
        forged = payload[:-1] + ("A" if payload[-1] != "A" else "B")
        r = http.get("/search", params={"q": forged})
        assert 'data-signature="forged"' in r.text and "Chữ ký sai" in r.text
        assert 'data-testid="parcel"' not in r.text and "Giàng Thị Mỷ" not in r.text
        # signed with another key: forged too
        other = sign(SITE, PayloadKind.SHIPPING, c.tracking, bytes(range(32)))
        assert 'data-signature="forged"' in http.get("/search", params={"q": other}).text
        # a lot tag: the lot, its farmer, grade and the parcel it went into
        lot_payload = sign(SITE, PayloadKind.LOT, c.lots["l1"], key)
        r = http.get("/search", params={"q": lot_payload})
        assert 'data-signature="valid"' in r.text and 'data-testid="lot"' in r.text
        assert "Giàng Thị Mỷ" in r.text and c.tracking in r.text
        # a manifest: its courier and parcels
        r = http.get("/search", params={"q": sign(SITE, PayloadKind.MANIFEST, c.manifests[0], key)})
        assert 'data-testid="manifest-courier">Vàng A Sủng' in r.text
        assert c.tracking in r.text
        # a point the console has no key for: shown, said not checked
        unknown = sign("muong-te", PayloadKind.SHIPPING, c.tracking, bytes(range(32)))
        r = http.get("/search", params={"q": unknown})
        assert 'data-signature="unchecked"' in r.text and "Chưa kiểm chữ ký" in r.text
        assert 'data-testid="parcel"' not in r.text  # that point has no such parcel
        assert 'data-testid="search-none"' in r.text


def test_a_lot_id_finds_its_farmer_grades_and_parcels(traced: tuple[ConsoleServer, Chain]) -> None:
    console, c = traced
    with viewer(console) as http:
        r = http.get("/search", params={"q": c.lots["l5"].upper()})
        text = text_of(r.text)
        assert 'data-testid="lot"' in r.text
        assert "Nguyễn Văn Hướng" in text and "đã sửa, trước là Giàng Thị Mỷ" in text
        assert "Hạng A" in text
        assert r.text.count('data-testid="lot-parcel"') == 1 and c.tracking in text
        r = http.get("/search", params={"q": c.lots["l4"]})
        assert 'data-testid="lot-voided"' in r.text and "cân nhầm" in r.text
        assert "Lô này chưa được đóng vào kiện nào" in r.text
        r = http.get("/search", params={"q": c.lots["l3"]})
        assert "Lò Thị Xuân" in r.text and "Sâm Lai Châu" in r.text


def test_what_is_not_understood_is_said(traced: tuple[ConsoleServer, Chain]) -> None:
    console, c = traced
    with viewer(console) as http:
        cases = {
            "x" * 121: "too long",
            "JT<script>": "is not taken",
            "E1:SIN-HO:X:ABC:DEF": "malformed",
            "E2:SIN-HO:S:JT1234:AAAAAAAAAAAAAAAA": "unknown version",
            "a b": "neither a lot",
        }
        for q, said in cases.items():
            r = http.get("/search", params={"q": q})
            assert r.status_code == 200
            assert 'data-testid="search-problem"' in r.text and said in r.text, q
            assert "JT<script>" not in r.text  # echoed escaped, never as markup
        r = http.get("/search", params={"q": "JTVN99999999"})
        assert 'data-testid="search-none"' in r.text and "JTVN99999999" in r.text
        grade_id = next(x["id"] for x in c.stream.records if x["type"] == "grade")
        r = http.get("/search", params={"q": grade_id})
        assert "«grade»" in r.text
        assert http.get("/search").status_code == 200
    with console.client(None) as anon:
        assert anon.get("/search", params={"q": c.tracking}).status_code == 401


def test_the_benchmark_seed_is_searchable() -> None:
    """rigs.trace_seed's records, small: a tracking number's chain, a QR payload signed
    with the seeded key, a lot's parcels, a corrected and a voided lot."""
    import psycopg

    schema = f"trace_seed_{uuid.uuid4().hex[:10]}"
    shape = Shape(lots=2000, sites=2, days=30)
    url = seed(PG_URL, schema, shape, reuse=False)
    try:
        j, b = 1, 10  # block 10: handed over, on manifest 0
        site = f"tr-{j:05d}"
        with ConsoleServer(url) as console, viewer(console) as http:
            r = http.get("/search", params={"q": tracking(j, b)})
            assert_parcel = text_of(r.text)
            assert "Đã bàn giao cho bưu tá" in assert_parcel and "Vàng A Sủng" in assert_parcel
            assert r.text.count('data-testid="lot-row"') == 2
            assert "Giàng Thị" in assert_parcel or "Nguyễn Văn" in assert_parcel
            lot_id = ident("lot", j, b * 10)
            payload = sign(site, PayloadKind.LOT, lot_id, site_key(site))
            r = http.get("/search", params={"q": payload})
            assert 'data-signature="unchecked"' in r.text and tracking(j, b) in r.text
            r = http.get("/search", params={"q": ident("lot", j, 17 * 10 + 5)})
            assert 'data-testid="lot-corrected"' in r.text
            r = http.get("/search", params={"q": ident("lot", j, 13 * 10 + 9)})
            assert 'data-testid="lot-voided"' in r.text
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_records_still_on_their_way_and_the_gap_filled_later() -> None:
    """A point's batch holding a lot and a manifest reaches central last: meanwhile the
    parcel shows that lot as not at central yet, the lot id finds the parcel that packed
    it, the manifest id the parcels handed over on it; once the gap is filled the chain
    is whole."""
    c = chain()
    late = {c.lots["l2"], c.manifests[0]}
    held = [b for b in c.stream.batches(1) if b.records[0]["id"] in late]
    with pg_schema() as url, open_store(url) as central:
        for b in c.stream.batches(1)[::-1]:  # newest first, the two late ones left out
            if b not in held:
                central.store_batch(b)
        with ConsoleServer(url) as console, viewer(console) as http:
            console.db.execute(
                "INSERT INTO points VALUES (%s, 'Điểm Sìn Hồ', 'Lai Châu', null, now())", (SITE,)
            )
            r = http.get("/search", params={"q": c.tracking})
            row = r.text.split(f'data-lot="{c.lots["l2"]}"')[1].split("</tr>")[0]
            assert "Bản ghi của lô này chưa về trung tâm" in row
            assert "Giàng Thị Mỷ" in r.text  # the lots that came are whole
            r = http.get("/search", params={"q": c.lots["l2"]})
            assert 'data-testid="lot"' in r.text and c.tracking in r.text
            assert "Bản ghi của lô này chưa về trung tâm" in r.text
            r = http.get("/search", params={"q": c.manifests[0]})
            assert "Bản ghi biên bản chưa về trung tâm" in r.text
            assert 'data-testid="manifest-parcel"' in r.text and c.tracking in r.text

            for b in held:
                central.store_batch(b)
            r = http.get("/search", params={"q": c.tracking})
            assert_whole_chain(r.text, c)
            assert "chưa về trung tâm" not in r.text
            r = http.get("/search", params={"q": c.manifests[0]})
            assert 'data-testid="manifest-courier">Vàng A Sủng' in r.text
