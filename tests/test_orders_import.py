"""Central order import (issue 13, docs/orders.md): the export readers on each
spreadsheet habit with exact row numbers, XLSX and its bounds, the SKU mapping's
errors, the plan (an order with a bad row refused whole, each bad row listed), and
``edge central orders import`` / ``tracking assign`` / ``catalogue push`` run as the
user runs them, against SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.central.orders import exports
from edge.central.orders.exports import BROKEN_ROW, ExportError, read_export
from edge.central.orders.mapping import MappingError, parse_mapping
from edge.central.orders.plan import normalise_phone, parse_dong, parse_quantity, plan_orders
from edge.central.store import open_store
from edge.cli import main
from edge.sync.envelope import decode_batch
from rigs.helpers import Broker, wait_for
from rigs.orders_export import BAD_KINDS, SITES, make_export, mapping_csv, order_id
from tests.central_support import central_db

# About no date or time of day: make test runs these in one pass (the real-clock pass skips it).
pytestmark = pytest.mark.calendar_pass_only

MAPPING = parse_mapping(mapping_csv())
TIKTOK_HEADER = (
    "Order ID,Order Status,Seller SKU,Product Name,Variation,Quantity,Order Amount,"
    "Tracking ID,Shipping Provider Name,Recipient,Phone #,Province,District,Commune,"
    "Detail Address,Payment Method,Buyer Message"
)


def _row(oid: str = "578000000000000001", **kw: str) -> str:
    values = {
        "status": "Awaiting Shipment",
        "sku": "SHAN-500-A",
        "name": "Chè Shan tuyết 500g",
        "variation": "Hạng A",
        "quantity": "2",
        "amount": '"370.000 ₫"',
        "tracking": "",
        "carrier": "J&T Express",
        "recipient": "Nguyễn Thị Thu Hằng",
        "phone": "0987654321",
        "province": "Hà Nội",
        "district": "Quận Đống Đa",
        "commune": "Phường Láng Hạ",
        "address": '"Số 18, ngõ 25 Láng Hạ"',
        "payment": "Cash on delivery",
        "message": "",
    }
    values.update(kw)
    return ",".join([oid, *values.values()])


def _csv(*rows: str, header: str = TIKTOK_HEADER, bom: bool = True) -> bytes:
    text = "\r\n".join([header, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def _plan(data: bytes) -> Any:
    return plan_orders(read_export(data), MAPPING)


# -- readers --------------------------------------------------------------------------


def test_row_numbers_count_records_not_lines_and_quoting_is_excels() -> None:
    data = _csv(
        _row("578000000000000001", address='"Số 18, ngõ 25\r\nLáng Hạ, ""nhà xanh"""'),
        _row("578000000000000002", address='"Tổ 5\nbản Nậm Ngá\ncạnh trường"'),
        "",
        _row("578000000000000003"),
        ",,,,",
        "",
    )
    export = read_export(data)
    assert export.kind == "tiktok" and export.format == "csv" and export.delimiter == ","
    assert [r.row for r in export.rows] == [2, 3, 5]
    assert export.rows[0].cells["Detail Address"] == 'Số 18, ngõ 25\r\nLáng Hạ, "nhà xanh"'
    assert export.rows[1].cells["Order ID"] == "578000000000000002"
    plan = plan_orders(export, MAPPING)
    assert [o["address"] for o in plan.orders][:2] == [
        'Số 18, ngõ 25 Láng Hạ, "nhà xanh"',
        "Tổ 5 bản Nậm Ngá cạnh trường",
    ]
    assert plan.rejected == []


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_files_are_sniffed_from_the_header(delimiter: str) -> None:
    header = TIKTOK_HEADER.replace(",", delimiter)
    row = _row(address="Số 18, ngõ 25", amount="370.000").replace(",", delimiter)
    row = row.replace(f"Số 18{delimiter} ngõ 25", '"Số 18, ngõ 25"')
    export = read_export(_csv(row, header=header, bom=False))
    assert export.delimiter == delimiter
    plan = plan_orders(export, MAPPING)
    assert plan.rejected == []
    assert plan.orders[0]["address"] == "Số 18, ngõ 25"
    assert plan.orders[0]["cod_dong"] == 370_000


def test_a_row_with_another_field_count_is_reported_with_its_order() -> None:
    good = _row("578000000000000001")
    broken = _row("578000000000000001", sku="SHAN-500-B", address="Số 9, tổ 3")  # unquoted
    pasted = _row("578000000000000002").replace(",", ";")
    plan = _plan(_csv(good, broken, pasted, _row("578000000000000003")))
    assert [(r["row"], r["order_id"]) for r in plan.rejected] == [
        (3, "578000000000000001"),
        (4, "578000000000000002"),
    ]
    assert all(BROKEN_ROW in r["reason"] for r in plan.rejected)
    assert "18 fields where the header has 17" in plan.rejected[0]["reason"]
    assert [o["id"] for o in plan.orders] == ["578000000000000003"]
    assert plan.refused_orders == 2


def test_an_unclosed_quote_is_reported_at_its_row() -> None:
    rows = [_row(f"57800000000000000{i}") for i in range(1, 4)]
    rows[1] = rows[1].replace('"Số 18, ngõ 25 Láng Hạ"', '"Số 18, ngõ 25 Láng Hạ')
    plan = _plan(_csv(*rows))
    assert [o["id"] for o in plan.orders] == ["578000000000000001"]
    assert [(r["row"], r["order_id"]) for r in plan.rejected] == [(3, "578000000000000002")]
    assert BROKEN_ROW in plan.rejected[0]["reason"]


def test_text_forcing_trailing_spaces_and_nfd_are_undone() -> None:
    nfd = "Nguye\u0302\u0303n Thi\u0323"
    rows = [
        _row("578000000000000001", phone='"=""0987654321"""', recipient=f"  {nfd}\u00a0 "),
        _row("578000000000000002", phone="'0912345678", quantity=" 3 "),
        _row('="578000000000000003"', phone="(+84) 987 654 321"),
    ]
    plan = _plan(_csv(*rows))
    assert plan.rejected == []
    got = {o["id"]: o for o in plan.orders}
    assert got["578000000000000001"]["phone"] == "0987654321"
    assert got["578000000000000001"]["recipient"] == "Nguyễn Thị"
    assert got["578000000000000002"]["phone"] == "0912345678"
    assert got["578000000000000002"]["lines"][0]["quantity"] == 3
    assert got["578000000000000003"]["phone"] == "0987654321"


def test_tiktoks_row_of_column_descriptions_is_passed_over() -> None:
    gen = make_export(5, descriptions=True)
    export = read_export(gen.data)
    assert export.notes == ["row 2: TikTok's row of column descriptions, passed over"]
    assert export.rows[0].row == 3
    assert {o["id"] for o in plan_orders(export, MAPPING).orders} == set(gen.good)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"Order ID,Quantit\xe9\n1,2\n", "CSV UTF-8"),
        (b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old Excel .xls workbook, or a password-protected"),
        (b"name,price\nx,1\n", "no header row with the columns"),
        (b"Order ID,Order Status,Seller SKU,Quantity\n1,To ship,X,1\n", "lacks the column"),
        (b"PK\x03\x04 not really a zip", "not one"),
    ],
)
def test_files_that_are_not_exports_are_refused_with_what_to_do(data: bytes, says: str) -> None:
    with pytest.raises(ExportError, match=says):
        read_export(data)


def test_row_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "MAX_ROWS", 10)
    with pytest.raises(ExportError, match="more than 10 rows"):
        read_export(make_export(12).data)


def test_xlsx_gives_the_same_orders_and_rows_as_csv() -> None:
    csv_gen = make_export(60, bad=12, fmt="csv")
    xlsx_gen = make_export(60, bad=12, fmt="xlsx")
    assert xlsx_gen.data[:4] == b"PK\x03\x04"
    export = read_export(xlsx_gen.data)
    assert export.format == "xlsx" and export.kind == "tiktok"
    plan = plan_orders(export, MAPPING)
    assert {o["id"]: o["site"] for o in plan.orders} == xlsx_gen.good
    assert [(r["row"], r["order_id"]) for r in plan.rejected] == [
        (b.row, b.order_id) for b in xlsx_gen.bad
    ]
    csv_orders = {o["id"]: o for o in plan_orders(read_export(csv_gen.data), MAPPING).orders}
    for order in plan.orders:  # same content whichever format, where both are good
        if order["id"] in csv_orders:
            assert order == csv_orders[order["id"]]


def _bomb(size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                member.write(chunk)
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_inflates() -> None:
    data = _bomb(exports.MAX_XLSX_UNZIPPED + (1 << 20))
    assert len(data) < 1_000_000
    with pytest.raises(ExportError, match="zip bomb"):
        read_export(data)


# -- values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "phone"),
    [
        ("0987654321", "0987654321"),
        ("+84987654321", "0987654321"),
        ("(+84) 987 654 321", "0987654321"),
        ("098.765.4321", "0987654321"),
        ("84987654321", "0987654321"),
        ("0987-654-321", "0987654321"),
        ("0356 789 012", "0356789012"),
        ("987654321", "0987654321"),  # a number cell that lost its 0
        ("024 3826 1234", "02438261234"),
        ("+84 24 3826 1234", "02438261234"),
    ],
)
def test_vietnamese_phone_formats(typed: str, phone: str) -> None:
    assert normalise_phone(typed) == (phone, None)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "empty"),
        ("0123456789", "not a Vietnamese phone number"),
        ("09876543", "not a Vietnamese phone number"),
        ("098765432100", "not a Vietnamese phone number"),
        ("+1 415 555 0100", "not a Vietnamese phone number"),
        ("(+84)98*****321", "masked"),
        ("gọi Zalo", "not a Vietnamese phone number"),
    ],
)
def test_phones_that_are_not_vietnamese_numbers(typed: str, says: str) -> None:
    phone, why = normalise_phone(typed)
    assert phone is None and why is not None and says in why


@pytest.mark.parametrize(
    ("typed", "dong"),
    [
        ("185000", 185_000),
        ("185.000", 185_000),
        ("185,000", 185_000),
        ("185.000 ₫", 185_000),
        ("1.234.567đ", 1_234_567),
        ("VND 185,000", 185_000),
        ("185000.00", 185_000),
        ("0", 0),
    ],
)
def test_amounts_in_dong(typed: str, dong: int) -> None:
    assert parse_dong(typed) == (dong, None)


@pytest.mark.parametrize("typed", ["185.5", "1,85", "một trăm", "185.00.0", "-5"])
def test_amounts_that_are_not(typed: str) -> None:
    assert parse_dong(typed)[0] is None


@pytest.mark.parametrize(
    ("typed", "value", "says"),
    [
        ("2", 2, None),
        ("2.0", 2, None),
        ("0", None, "not a positive number"),
        ("2.5", None, "not a positive whole number"),
        ("-1", None, "not a positive whole number"),
        ("hai", None, "is not a number"),
        ("", None, "is empty"),
    ],
)
def test_quantities(typed: str, value: int | None, says: str | None) -> None:
    got, why = parse_quantity(typed)
    assert got == value
    assert (why is None) if says is None else (why is not None and says in why)


# -- mapping --------------------------------------------------------------------------


def test_mapping_problems_each_with_row_and_column() -> None:
    text = (
        "\ufeffseller_sku;product;grade;pack_net_g;pack_tare_g;site\n"
        "SHAN-500-A;Chè Shan tuyết;A;500;40;sin-ho-01\n"
        "SHAN-500-A;Chè Shan tuyết;B;500;40;sin-ho-01\n"
        "SAM-100;Sâm Lai Châu;A;0,1;20;muong-te-02\n"
        "MACMAT;Mắc mật;;1000;-5;Muong Te\n"
        ";Gạo;A;5000;120;sin-ho-01;extra\n"
    )
    with pytest.raises(MappingError) as caught:
        parse_mapping(text.encode())
    got = [(p.row, p.column) for p in caught.value.problems]
    assert got == [
        (3, "seller_sku"),
        (4, "pack_net_g"),
        (5, "pack_tare_g"),
        (5, "site"),
        (6, None),
    ]
    texts = [p.text("map.csv") for p in caught.value.problems]
    assert texts[0] == "map.csv, row 3, column seller_sku: SHAN-500-A is already mapped on row 2"
    assert "0,1" in texts[1] and "whole number of grams" in texts[1]
    assert "wrong delimiter" in texts[4]


def test_mapping_header_must_name_every_column() -> None:
    with pytest.raises(MappingError, match="lacks pack_tare_g, site"):
        parse_mapping(b"seller_sku,product,grade,pack_net_g\nA,B,C,1\n")


def test_the_shipped_examples_read() -> None:
    root = Path(__file__).resolve().parent.parent / "examples" / "orders"
    skus = parse_mapping((root / "mapping.csv").read_bytes())
    plan = plan_orders(read_export((root / "tiktok-export.csv").read_bytes()), skus)
    assert len(plan.orders) == 4 and len(plan.skipped) == 1 and plan.refused_orders == 2
    own = plan_orders(read_export((root / "own-orders.csv").read_bytes()), skus)
    assert [(o["id"], o["channel"], o["payment"]) for o in own.orders] == [
        ("ZALO-2026-0041", "csv", "cod"),
        ("FB-88213", "csv", "prepaid"),
    ]


# -- plan -----------------------------------------------------------------------------


def test_an_order_with_one_bad_line_is_refused_whole_and_only_that_line_listed() -> None:
    plan = _plan(
        _csv(
            _row("578000000000000001"),
            _row("578000000000000001", sku="TAOQUA-500", quantity="0"),
            _row("578000000000000001", sku="SHAN-1000-A", quantity="1"),
            _row("578000000000000002", sku="SHAN-500-B"),
        )
    )
    assert [o["id"] for o in plan.orders] == ["578000000000000002"]
    assert plan.rejected == [
        {
            "row": 3,
            "order_id": "578000000000000001",
            "reason": "Quantity 0 is not a positive number",
        }
    ]
    assert plan.refused_orders == 1


def test_an_order_with_several_bad_lines_lists_each() -> None:
    plan = _plan(
        _csv(
            _row("578000000000000001", sku="NOPE"),
            _row("578000000000000001", sku="SHAN-500-B", address='""'),
            _row("578000000000000001", sku="SAM-100"),
        )
    )
    assert [r["row"] for r in plan.rejected] == [2, 3, 4]
    reasons = [r["reason"] for r in plan.rejected]
    assert "unknown SKU 'NOPE'" in reasons[0]
    assert "Detail Address is empty" in reasons[1]
    assert (
        "packed at point muong-te-02" in reasons[2] and "one order goes to one point" in reasons[2]
    )


def test_rows_of_one_order_must_agree_on_the_amount() -> None:
    plan = _plan(
        _csv(
            _row("578000000000000001", amount="370.000"),
            _row("578000000000000001", sku="SHAN-500-B", amount="370000"),
            _row("578000000000000001", sku="TAOQUA-500", amount="380.000"),
        )
    )
    assert [r["row"] for r in plan.rejected] == [4]
    assert "Order Amount 380000 differs from row 2's 370000" in plan.rejected[0]["reason"]


def test_statuses_payment_and_cod() -> None:
    plan = _plan(
        _csv(
            _row("578000000000000001", status="Awaiting Collection", payment="COD"),
            _row("578000000000000002", status="To ship", payment="Bank transfer"),
            _row("578000000000000003", status="Cancelled", address="", phone="", recipient=""),
            _row("578000000000000004", status="Delivered"),
            _row("578000000000000005", status="Unpaid"),
            _row("578000000000000006", status="Chờ giao hàng", payment="Thanh toán khi nhận hàng"),
            _row("578000000000000007", status="Lost in space"),
        )
    )
    got = {o["id"][-1]: (o["status"], o["payment"], o["cod_dong"]) for o in plan.orders}
    assert got == {
        "1": ("open", "cod", 370_000),
        "2": ("open", "prepaid", 0),
        "3": ("cancelled", "cod", 370_000),
        "6": ("open", "cod", 370_000),
    }
    assert [(s["row"], s["reason"]) for s in plan.skipped] == [
        (5, "status Delivered: not sent to a point"),
        (6, "status Unpaid: not sent to a point"),
    ]
    assert [(r["row"], r["order_id"][-1]) for r in plan.rejected] == [(8, "7")]
    assert "'Lost in space' is not one this import knows" in plan.rejected[0]["reason"]


def test_the_order_record_has_the_contracts_shape() -> None:
    plan = _plan(_csv(_row("578000000000000001", message="Giao giờ hành chính")))
    (order,) = plan.orders
    assert order == {
        "type": "order",
        "id": "578000000000000001",
        "status": "open",
        "channel": "tiktok",
        "carrier": "J&T Express",
        "tracking": None,
        "recipient": "Nguyễn Thị Thu Hằng",
        "phone": "0987654321",
        "province": "Hà Nội",
        "district": "Quận Đống Đa",
        "commune": "Phường Láng Hạ",
        "address": "Số 18, ngõ 25 Láng Hạ",
        "payment": "cod",
        "cod_dong": 370_000,
        "amount_dong": 370_000,
        "buyer_message": "Giao giờ hành chính",
        "seller_note": None,
        "package_id": None,
        "lines": [
            {
                "sku": "SHAN-500-A",
                "name": "Chè Shan tuyết 500g",
                "variation": "Hạng A",
                "product": "Chè Shan tuyết",
                "grade": "A",
                "quantity": 2,
                "pack_net_g": 500,
                "pack_tare_g": 40,
            }
        ],
        "site": "sin-ho-01",
    }


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_generated_export_with_bad_rows_of_every_kind(fmt: str) -> None:
    gen = make_export(700, bad=30, fmt=fmt, skipped=12)
    plan = _plan(gen.data)
    assert {o["id"]: o["site"] for o in plan.orders} == gen.good
    assert {s["order_id"] for s in plan.skipped} == gen.skipped
    assert [(r["row"], r["order_id"]) for r in plan.rejected] == [
        (b.row, b.order_id) for b in gen.bad
    ]
    for r, b in zip(plan.rejected, gen.bad, strict=True):
        assert b.reason_has in r["reason"], (b.kind, r)
    kinds = {b.kind for b in gen.bad}
    every = {k for k, _ in BAD_KINDS} - (
        set() if fmt == "csv" else {"broken_quoting", "wrong_delimiter"}
    )
    assert kinds == every
    assert plan.refused_orders == 30


# -- the commands, as the user runs them ------------------------------------------------


def _edge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command as the user runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def _edge_here(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """The same command's refusals, run in this process (exit code, stderr): argument
    checks need no second of interpreter start each."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _import(path: Path, mapping: Path, db: str) -> dict[str, Any]:
    done = _edge("central", "orders", "import", path, "--mapping", mapping, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.mark.parametrize(("kind", "fmt"), [("sqlite", "csv"), ("postgresql", "xlsx")])
def test_import_2500_orders_with_50_bad_rows_then_again_then_cancellations(
    kind: str, fmt: str, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.csv"
    mapping.write_bytes(mapping_csv())
    gen = make_export(2500, bad=50, fmt=fmt, skipped=20)
    export = tmp_path / f"orders.{fmt}"
    export.write_bytes(gen.data)
    with central_db(kind, tmp_path) as db:
        first = _import(export, mapping, db)
        assert list(first)[:4] == ["accepted", "updated", "cancelled", "rejected"]
        assert (first["accepted"], first["updated"], first["cancelled"]) == (len(gen.good), 0, 0)
        assert len(gen.good) == 2450
        assert [(r["row"], r["order_id"]) for r in first["rejected"]] == [
            (b.row, b.order_id) for b in gen.bad
        ]
        assert first["refused"] == 50 and len(first["skipped"]) == 20
        with open_store(db) as store:
            stored = {o["id"]: o for o in store.orders_of()}
            assert {i: o["site"] for i, o in stored.items()} == gen.good
            assert {o["status"] for o in stored.values()} == {"open"}
            assert {p["site"]: p["queued_upto"] for p in store.down_progress()} == {
                s: sum(1 for v in gen.good.values() if v == s) for s in SITES
            }

        again = _import(export, mapping, db)
        assert (again["accepted"], again["updated"], again["cancelled"]) == (0, 0, 0)
        assert again["unchanged"] == 2450 and len(again["rejected"]) == 50

        cancel = [3, 17, 400, 1999, 2498]
        later_gen = make_export(2500, bad=50, fmt=fmt, skipped=20, cancelled=cancel)
        later = tmp_path / f"later.{fmt}"
        later.write_bytes(later_gen.data)
        result = _import(later, mapping, db)
        was_good = [i for i in cancel if order_id(i) in gen.good]
        assert (result["accepted"], result["updated"]) == (len(cancel) - len(was_good), 0)
        assert result["cancelled"] == len(was_good)
        with open_store(db) as store:
            status = {o["id"]: o["status"] for o in store.orders_of()}
        assert {order_id(i) for i in cancel if status.get(order_id(i)) == "cancelled"} == {
            order_id(i) for i in cancel
        }
        assert sum(1 for s in status.values() if s == "open") == 2450 - len(was_good)


def test_the_readable_summary_lists_each_bad_row(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "examples" / "orders"
    db = f"sqlite:///{tmp_path}/central.db"
    done = _edge(
        "central", "orders", "import", root / "tiktok-export.csv",
        "--mapping", root / "mapping.csv", "--db", db,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "7 orders read" in out
    assert "  accepted         3" in out and "  cancelled        1" in out
    assert "  skipped          1  not for a point (Delivered 1)" in out
    assert "row      8  order 578310245861940412: Quantity 'hai' is not a number" in out
    assert "row      9  order 578310245861940555: Detail Address is empty" in out
    assert "unknown SKU 'SHAN-250-X'" in out


def test_unusable_inputs_exit_2_saying_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("seller_sku,product,grade,pack_net_g,pack_tare_g,site\nA,Chè,A,500g,40,x\n")
    export = tmp_path / "orders.csv"
    export.write_bytes(make_export(3).data)
    db = f"sqlite:///{tmp_path}/central.db"
    bad_map = _edge("central", "orders", "import", export, "--mapping", mapping, "--db", db)
    assert bad_map.returncode == 2
    assert f"{mapping}, row 2, column pack_net_g: '500g' is not a whole number" in bad_map.stderr
    assert not (tmp_path / "central.db").exists()

    mapping.write_bytes(mapping_csv())
    command = ("central", "orders", "import")
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(exports.MAX_FILE_BYTES + 1)
    code, err = _edge_here(capsys, *command, big, "--mapping", mapping, "--db", db)
    assert code == 2 and "more than 52,428,800" in err

    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(_bomb(exports.MAX_XLSX_UNZIPPED + (1 << 20)))
    code, err = _edge_here(capsys, *command, bomb, "--mapping", mapping, "--db", db)
    assert code == 2 and "zip bomb" in err

    no_db = "postgresql://nobody@127.0.0.1:1/none"
    code, err = _edge_here(capsys, *command, export, "--mapping", mapping, "--db", no_db)
    assert code == 2 and "cannot be opened" in err
    code, err = _edge_here(
        capsys, *command, tmp_path / "nope.csv", "--mapping", mapping, "--db", db
    )
    assert code == 2 and "cannot read the order export" in err
    code, err = _edge_here(
        capsys, *command, export, "--mapping", mapping, "--db", db, "--broker", "mqtt://10.1.2.3"
    )
    assert code == 2 and "plain MQTT to another machine" in err
    assert not (tmp_path / "central.db").exists()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_tracking_blocks_and_catalogue_are_queued_for_the_points(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text(
        "name,unit_price_dong,grading,pack_tolerance_g,sites\n"
        "Chè Shan tuyết,185.000,,30,*\n"
        "Mắc mật,95000,banana,40,muong-te-02\n"
    )
    with central_db(kind, tmp_path) as db:
        assign = (
            "central", "tracking", "assign", "--db", db, "--carrier", "J&T Express",
            "--prefix", "JTVN", "--digits", "8",
        )  # fmt: skip
        done = _edge(*assign, "--site", "sin-ho-01", "--first", "100000", "--count", "1000")
        assert done.returncode == 0, done.stderr
        assert "JTVN00100000..JTVN00100999 (1,000 numbers, J&T Express) queued for sin-ho-01" in (
            done.stdout
        )
        code, err = _edge_here(
            capsys, *assign, "--site", "muong-te-02", "--first", "100999", "--count", "10"
        )
        assert code == 2 and "JTVN00100000..JTVN00100999 were given to sin-ho-01 already" in err
        code, err = _edge_here(
            capsys, *assign, "--site", "muong-te-02", "--first", "99999999", "--count", "2"
        )
        assert code == 2 and "more than --digits 8 digits" in err
        code, err = _edge_here(
            capsys, *assign, "--site", "Mường Tè", "--first", "1", "--count", "2"
        )
        assert code == 2 and "is not a site id" in err
        code, err = _edge_here(
            capsys, *assign, "--site", "muong-te-02", "--first", "101000", "--count", "500"
        )
        assert code == 0, err

        pushed = _edge("central", "catalogue", "push", catalogue, "--db", db, "--json")
        assert pushed.returncode == 0, pushed.stderr
        assert json.loads(pushed.stdout)["queued"] == {"sin-ho-01": 1, "muong-te-02": 2}
        with open_store(db) as store:
            down = {s: store.down_records(s, 0, 100) for s in SITES}
        blocks = {s: [(r["first"], r["last"]) for r in down[s] if r["type"] == "tracking_block"]
                  for s in SITES}  # fmt: skip
        assert blocks == {"sin-ho-01": [(100000, 100999)], "muong-te-02": [(101000, 101499)]}
        products = [
            {k: r[k] for k in ("name", "unit_price_dong", "grading", "pack_tolerance_g")}
            for r in down["muong-te-02"]
            if r["type"] == "product"
        ]
        assert products == [
            {"name": "Chè Shan tuyết", "unit_price_dong": 185000, "grading": None,
             "pack_tolerance_g": 30},
            {"name": "Mắc mật", "unit_price_dong": 95000, "grading": "banana",
             "pack_tolerance_g": 40},
        ]  # fmt: skip

        catalogue.write_text(
            "name,unit_price_dong,grading,pack_tolerance_g,sites\n"
            "Chè,một trăm,,30,*\n"
            ",95000,Banana,-4,\n"
        )
        code, err = _edge_here(capsys, "central", "catalogue", "push", catalogue, "--db", db)
        assert code == 2
        for where in (
            "row 2, column unit_price_dong",
            "row 3, column name",
            "row 3, column grading",
            "row 3, column pack_tolerance_g",
            "row 3, column sites",
        ):
            assert where in err


def test_import_with_broker_publishes_each_points_orders(tmp_path: Path, broker: Broker) -> None:
    got: dict[str, list[bytes]] = {}
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.setdefault(msg.topic, []).append(bytes(msg.payload))

    point = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="points", protocol=mqtt.MQTTv5
    )
    point.on_message = on_message
    subscribed = threading.Event()
    point.on_subscribe = lambda *_a: subscribed.set()
    point.connect("127.0.0.1", broker.port)
    point.loop_start()
    try:
        point.subscribe("edge/+/down", qos=1)
        assert subscribed.wait(5)
        mapping = tmp_path / "mapping.csv"
        mapping.write_bytes(mapping_csv())
        gen = make_export(80, bad=6)
        export = tmp_path / "orders.csv"
        export.write_bytes(gen.data)
        done = _edge(
            "central", "orders", "import", export, "--mapping", mapping,
            "--db", f"sqlite:///{tmp_path}/central.db", "--json",
            "--broker", f"mqtt://127.0.0.1:{broker.port}", "--timeout-s", "0",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["accepted"] == len(gen.good) == 74
        assert out["published"]["published"] == 74 and out["published"]["pending"] == 74

        def arrived() -> dict[str, set[str]]:
            with lock:
                payloads = {topic: list(p) for topic, p in got.items()}
            return {
                topic.split("/")[1]: {
                    r["id"] for p in ps for r in decode_batch(p).records if r["type"] == "order"
                }
                for topic, ps in payloads.items()
            }

        want = {s: {i for i, site in gen.good.items() if site == s} for s in SITES}
        wait_for(lambda: arrived() == want, 10, "every point's orders on its downlink topic")
    finally:
        point.disconnect()
        point.loop_stop()


def test_excels_unicode_text_and_number_cells() -> None:
    """Excel's "Unicode text" (UTF-16, tabs); an XLSX whose Order ID column was left as
    numbers (too long for Excel: refused, with what to do) and whose phone cell lost
    its leading 0; a mapping row with no grade (a product sold ungraded)."""
    utf16 = _csv(_row(), header=TIKTOK_HEADER, bom=False).decode().replace(",", "\t")
    utf16 = utf16.replace('"370.000 ₫"', "370.000 ₫").replace('"Số 18\t ngõ', '"Số 18, ngõ')
    export = read_export(b"\xff\xfe" + utf16.encode("utf-16-le"))
    assert export.delimiter == "\t"
    (order,) = plan_orders(export, MAPPING).orders
    assert (order["id"], order["address"]) == ("578000000000000001", "Số 18, ngõ 25 Láng Hạ")

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(TIKTOK_HEADER.split(","))
    base = _row().replace('"370.000 ₫"', "370000").replace('"Số 18, ngõ 25 Láng Hạ"', "Số 18")
    values: list[Any] = base.split(",")
    values[0], values[10] = 578310245861937152, 987654321
    sheet.append(values)
    values = list(values)
    values[0], values[2] = 12345, "GAO-0"
    sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    skus = parse_mapping(
        b"seller_sku,product,grade,pack_net_g,pack_tare_g,site\nGAO-0,G,,5000,120,x-1\n"
    )
    assert skus["GAO-0"].grade is None
    plan = plan_orders(read_export(out.getvalue()), {**MAPPING, **skus})
    assert [(r["row"], r["order_id"]) for r in plan.rejected] == [(2, "5.783102458619372e+17")]
    assert "format it as text" in plan.rejected[0]["reason"]
    (order,) = plan.orders
    assert (order["id"], order["phone"], order["lines"][0]["grade"]) == (
        "12345",
        "0987654321",
        None,
    )


def test_an_open_order_needs_a_carrier_or_a_tracking_number() -> None:
    data = _csv(
        _row("578000000000000001", carrier=""),
        _row("578000000000000002", carrier="", tracking="JT0834512267"),
        _row("578000000000000003", carrier="", status="Cancelled"),
    )
    plan = _plan(data)
    assert [o["id"] for o in plan.orders] == ["578000000000000002", "578000000000000003"]
    assert [(r["row"], r["order_id"]) for r in plan.rejected] == [(2, "578000000000000001")]
    assert "Shipping Provider Name and Tracking ID are both empty" in plan.rejected[0]["reason"]
    defaulted = plan_orders(read_export(data), MAPPING, default_carrier="Viettel Post")
    assert [o["carrier"] for o in defaulted.orders] == ["Viettel Post"] * 3


def test_the_own_csv_and_its_refusals() -> None:
    header = (
        "order_id,status,seller_sku,quantity,recipient,phone,province,district,commune,"
        "address,payment,cod_dong,amount_dong,carrier"
    )
    place = "Lai Châu,Thành phố Lai Châu,Phường Đông Phong,Số 12 Trần Phú"
    rows = [
        f"ZALO-1,open,SHAN-500-A,2,Đặng Văn Sính,0388 123 456,{place},cod,370.000,,Viettel Post",
        f"ZALO-1,open,TAOQUA-500,1,Đặng Văn Sính,0388123456,{place},cod,370000,,Viettel Post",
        f"FB-2,open,SAM-100,1,Giàng A Chứ,+84865432109,{place},prepaid,,890000,Viettel Post",
        f"FB-3,shipped,SAM-100,1,Giàng A Chứ,+84865432109,{place},prepaid,,,Viettel Post",
        f"FB-4,open,SAM-100,1,Giàng A Chứ,+84865432109,{place},bank,,,Viettel Post",
        f"FB-5,open,SAM-100,1,Giàng A Chứ,+84865432109,{place},cod,0,,Viettel Post",
        f"FB-6,open,SAM-100,1,Giàng A Chứ,+84865432109,{place},prepaid,50000,,Viettel Post",
        f"FB-7,cancelled,SAM-100,1,,,{place},cod,,,",
    ]
    export = read_export(_csv(*rows, header=header, bom=False))
    assert export.kind == "csv"
    plan = plan_orders(export, MAPPING)
    got = {o["id"]: (o["channel"], o["status"], o["payment"], o["cod_dong"], o["amount_dong"])
           for o in plan.orders}  # fmt: skip
    assert got == {
        "ZALO-1": ("csv", "open", "cod", 370_000, 370_000),
        "FB-2": ("csv", "open", "prepaid", 0, 890_000),
        "FB-7": ("csv", "cancelled", "cod", 0, 0),
    }
    reasons = {r["order_id"]: r["reason"] for r in plan.rejected}
    assert list(reasons) == ["FB-3", "FB-4", "FB-5", "FB-6"]
    assert "status 'shipped' is not one this import knows (open, cancelled)" in reasons["FB-3"]
    assert "payment 'bank' is not cod or prepaid" in reasons["FB-4"]
    assert "cod_dong is empty or 0 for a cash-on-delivery order" in reasons["FB-5"]
    assert "cod_dong is 50000 for a prepaid order" in reasons["FB-6"]


def _workbook(
    sheet: str, shared: str | None = None, sheet_path: str = "xl/worksheets/o.xml"
) -> bytes:
    """An XLSX put together by hand, the way other generators write them: prefixed
    namespaces, the sheet where the workbook's relationships say, rich text."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    rels = [f'<Relationship Id="rId7" Type="{rel}/worksheet" Target="/{sheet_path}"/>']
    if shared is not None:
        rels.append(f'<Relationship Id="rId9" Type="{rel}/sharedStrings" Target="strings.xml"/>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(
            "xl/workbook.xml",
            f'<x:workbook xmlns:x="{main}" xmlns:r="{rel}"><x:sheets>'
            '<x:sheet name="Orders" sheetId="3" r:id="rId7"/></x:sheets></x:workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(rels)
            + "</Relationships>",
        )
        z.writestr(
            sheet_path,
            f'<x:worksheet xmlns:x="{main}"><x:sheetData>{sheet}</x:sheetData></x:worksheet>',
        )
        if shared is not None:
            z.writestr("xl/strings.xml", f'<sst xmlns="{main}">{shared}</sst>')
    return out.getvalue()


def test_xlsx_as_other_generators_write_it() -> None:
    header = TIKTOK_HEADER.split(",")
    values = _row().replace('"370.000 ₫"', "370.000 ₫").replace('"Số 18, ngõ 25 Láng Hạ"', "S")
    cells = values.split(",")

    def inline(text: str) -> str:
        text = escape(text)
        return f'<x:c t="inlineStr"><x:is><x:t xml:space="preserve">{text}</x:t></x:is></x:c>'

    shared = (
        "<si><t>Order ID</t></si>"
        "<si><r><t>Nguyễn Thị </t></r><r><rPr><b/></rPr><t>Thu Hằng</t></r>"
        "<rPh sb='0' eb='1'><t>グエン</t></rPh></si>"
    )
    first = '<x:c r="A1" t="s"><x:v>0</x:v></x:c>' + "".join(inline(h) for h in header[1:])
    row = [inline(c) for c in cells]
    row[9] = '<x:c t="s"><x:v>1</x:v></x:c>'  # Recipient, rich text with a reading guide
    row[5] = '<x:c t="str"><x:f>2*1</x:f><x:v>2</x:v></x:c>'  # Quantity, a formula's result
    row[10] = "<x:c><x:v>987654321</x:v></x:c>"  # Phone #, a number cell
    sheet = f'<x:row r="1">{first}</x:row><x:row>{"".join(row)}</x:row>'
    sheet += '<x:row r="5"><x:c r="A5" t="b"><x:v>1</x:v></x:c></x:row>'
    export = read_export(_workbook(sheet, shared))
    assert [r.row for r in export.rows] == [2, 5]
    plan = plan_orders(export, MAPPING)
    (order,) = plan.orders
    assert order["recipient"] == "Nguyễn Thị Thu Hằng"
    assert order["phone"] == "0987654321" and order["lines"][0]["quantity"] == 2
    assert (plan.rejected[0]["row"], plan.rejected[0]["order_id"]) == (5, "TRUE")


@pytest.mark.parametrize(
    ("sheet", "says"),
    [
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><x:row/>', "not well-formed|document type"),
        ("<x:row><x:c t='s'><x:v>4</x:v></x:c></x:row>", "shared string '4'"),
        ("<x:row><x:c>", "not well-formed"),
    ],
)
def test_broken_workbooks_are_refused(sheet: str, says: str) -> None:
    with pytest.raises(ExportError, match=says):
        read_export(_workbook(sheet, ""))


def test_a_doctype_in_any_part_is_refused() -> None:
    bomb = _workbook("<x:row/>")
    data = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bomb)) as src, zipfile.ZipFile(data, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "xl/workbook.xml":
                body = b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY e "x">]>' + body
            dst.writestr(item, body)
    with pytest.raises(ExportError, match="document type"):
        read_export(data.getvalue())
