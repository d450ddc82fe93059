"""The shipping label of a packed order (issue 13): carrier, tracking code as Code 128 and
text, recipient, goods lines, weights, cash on delivery, the signed QR and the lots, on
58 and 80 mm rolls and on 100 x 150 mm label stock (800 x 1200 dots), where a typical
parcel fits one label; old label data (one product, one lot id) still prints; bad goods,
lots and order ids are refused naming the field."""

from __future__ import annotations

import copy
import io
import unicodedata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from PIL import Image

from edge.cli import build_parser
from edge.config import parse_config
from edge.printer.escpos_out import preview_png, raster_to_escpos
from edge.printer.kinds import COD_PAID, LabelDataError, short_lot_id
from edge.printer.label import label_blocks, render_label
from edge.printer.layout import LABEL_SCALE, LABEL_STOCK, Layout, fitted
from edge.printer.payload import PayloadKind, PayloadSigner, ensure_site_key, verify
from edge.printer.profiles import load_profile
from rigs.escpos_decode import decode
from tests.test_label_layouts import KEY, SIGNER, TZ, example, ink_bbox

CODE128 = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.Code128)
QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
STOCKS = [384, 576, 800]  # 58 mm roll, 80 mm roll, 100 x 150 mm labels
LABEL_DOTS = 1200  # 150 mm at 203 dpi

LEGACY_LOT_ID = "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11"
LEGACY: dict[str, Any] = {  # the example label data before issue 13: one product, one lot id
    "tracking_code": "VTP2611230427",
    "courier": "Viettel Post",
    "collection_point": "Điểm thu gom Sìn Hồ – Lai Châu",
    "sender_phone": "0214 3870 123",
    "recipient": {
        "name": "Nguyễn Thị Thu Hằng",
        "phone": "0987 654 321",
        "address": "Số 18, ngõ 25 phố Vũ Ngọc Phan, phường Láng Hạ, quận Đống Đa, Hà Nội",
    },
    "product": "Chè Shan tuyết cổ thụ sấy khô",
    "grade": "Loại đặc biệt",
    "net_g": 2500,
    "gross_g": 2780,
    "cod_dong": 1250000,
    "lot_id": LEGACY_LOT_ID,
    "created_at": "2026-11-23T15:05:00+07:00",
    "note": "Hàng dễ vỡ, không xếp hàng nặng lên trên. Gọi trước khi giao.",
}


def typical() -> dict[str, Any]:
    """A typical parcel: 3 goods lines, 4 lots, an address of two lines on 100 mm."""
    data = example("shipping")
    data["tracking_code"] = "GHN2612060183"
    data["courier"] = "Giao Hàng Nhanh"
    data["cod_dong"] = 1_082_000
    return data


def laid_out(data: Any, width: int) -> tuple[Layout, Image.Image]:
    page = fitted(label_blocks("shipping", data, signer=SIGNER, tz=TZ), width)
    return page, page.render()


def lines(page: Layout) -> list[str]:
    return [t.text for t in page.texts]


def words(page: Layout) -> set[str]:
    return {w for t in page.texts for w in t.text.split()}


def assert_inside(page: Layout, img: Image.Image) -> None:
    """Exactly the paper's width, nothing in the side margins, no text cut off."""
    width, margin = page.width, page.margin
    assert margin == {1.0: 8, 1.25: 10, 1.5: 12}[page.scale]
    assert img.mode == "1" and img.width == width
    assert ink_bbox(img.crop((0, 0, margin, img.height))) is None, "ink in the left margin"
    assert ink_bbox(img.crop((width - margin, 0, width, img.height))) is None, "right margin"
    for t in page.texts:
        left, top, right, bottom = map(int, t.font.getbbox(t.text, anchor="ls", mode="1"))
        assert margin <= t.x + left and t.x + right <= width - margin, f"{t.text!r} crosses"
        assert t.baseline + top >= 0 and t.baseline + bottom <= img.height, f"{t.text!r} cut"


def read_qr(img: Image.Image) -> tuple[str, int]:
    """(text, symbol width in dots) of the label's one QR code."""
    (qr,) = zxingcpp.read_barcodes(img, formats=QR)
    corners = [qr.position.top_left, qr.position.top_right]
    corners += [qr.position.bottom_right, qr.position.bottom_left]
    x0, x1 = min(p.x for p in corners), max(p.x for p in corners)
    y0, y1 = min(p.y for p in corners), max(p.y for p in corners)
    box = ink_bbox(img.crop((x0 - 2, y0 - 2, x1 + 3, y1 + 3))) or (0, 0, 0, 0)
    assert box[2] - box[0] == box[3] - box[1], "square symbol"
    return qr.text, box[2] - box[0]


# -- the codes on every stock -------------------------------------------------------------
@pytest.mark.parametrize("width", STOCKS)
def test_code128_and_signed_qr_read_back_on_every_stock(width: int) -> None:
    data = typical()
    page, img = laid_out(data, width)
    assert_inside(page, img)
    assert [r.text for r in zxingcpp.read_barcodes(img, formats=CODE128)] == ["GHN2612060183"]
    text, symbol = read_qr(img)
    assert symbol >= 240, "the QR symbol is at least 30 mm wide"
    verified = verify(text, KEY, site="sin-ho")
    assert verified.kind is PayloadKind.SHIPPING and verified.ref == "GHN2612060183"
    assert "GHN2612060183" in lines(page), "the tracking number as text too"


@pytest.mark.parametrize("width", STOCKS)
def test_every_part_of_the_label_is_printed(width: int) -> None:
    data = typical()
    page, _ = laid_out(data, width)
    printed = lines(page)
    assert "Giao Hàng Nhanh" in printed  # the carrier, big, first
    assert page.texts[0].text == "Giao Hàng Nhanh"
    assert page.texts[0].font.size >= max(t.font.size for t in page.texts[1:])
    for text in ("Thu hộ: 1.082.000 đ", "1,450 kg", "1,730 kg", "577203611896543210"):
        assert text in printed, text
    assert "Nguyễn Thị Thu Hằng" in " ".join(printed)
    assert "0987 654 321" in printed
    for good in data["goods"]:  # name (whole words), grade, quantity, net
        assert set(good["name"].split()) <= words(page)
        assert good.get("grade", "–") in printed and str(good["quantity"]) in printed
    assert {"0,500", "0,700", "0,250"} <= set(printed)
    for lot in data["lots"]:
        assert set(lot.split()) <= words(page), lot
    assert set(data["note"].split()) <= words(page)
    assert "23/11/2026 15:05" in printed


def test_a_parcel_paid_already_says_so() -> None:
    page, _ = laid_out(typical() | {"cod_dong": 0}, 800)
    assert COD_PAID == "Đã thanh toán" and COD_PAID in lines(page)
    assert not any(t.startswith("Thu hộ") for t in lines(page))


@pytest.mark.parametrize("width", [576, 800])
def test_the_printed_job_is_the_label(width: int) -> None:
    img = render_label("shipping", typical(), width, signer=SIGNER, tz=TZ)
    decoded = decode(raster_to_escpos(img))
    assert decoded.cuts == 1 and decoded.text == b""
    (printed,) = decoded.images
    assert printed.size == img.size and printed.tobytes() == img.tobytes()
    with Image.open(io.BytesIO(preview_png(img))) as preview:
        assert preview.convert("1").tobytes() == img.tobytes()
    found = zxingcpp.read_barcodes(printed.convert("L"), formats=CODE128)
    assert [r.text for r in found] == ["GHN2612060183"]


# -- 100 x 150 mm labels ------------------------------------------------------------------
def test_a_typical_parcel_fits_one_100x150_label() -> None:
    assert LABEL_STOCK == {800: LABEL_DOTS}
    page, img = laid_out(typical(), 800)
    assert page.scale == LABEL_SCALE, "at the label stock's own sizes, not shrunk"
    assert img.height <= LABEL_DOTS, f"{img.height} dots: longer than 150 mm"
    address = [t for t in page.texts if t.text.startswith("Địa chỉ:")]
    assert address, "the address starts with its label"
    # the QR code and the traceability text share the width (the weights, lots, order)
    (qr_x, qr_top, qr) = next((x, y, im) for x, y, im in page.images if im.width == im.height)
    beside = [t for t in page.texts if qr_top <= t.baseline <= qr_top + qr.height]
    assert {"Từ lô:", "KL tịnh:", "Mã đơn:"} <= {t.text for t in beside}
    assert all(t.x >= qr_x + qr.width for t in beside)
    # on 80 mm rolls the same label is one continuous strip, the QR code alone across
    roll, _ = laid_out(typical(), 576)
    assert not [t for t in roll.texts if t.x > roll.width // 2 and t.text == "Từ lô:"]


def test_what_does_not_fit_at_label_sizes_is_shrunk_then_continues() -> None:
    data = typical()
    data["goods"] = [
        {"name": f"Chè Shan tuyết cổ thụ sấy khô túi {i} – hộp quà", "quantity": i, "net_g": 500}
        for i in range(1, 8)
    ]
    page, img = laid_out(data, 800)
    assert img.height <= LABEL_DOTS and page.scale == 1.0, "shrunk to the 58 mm sizes to fit"
    assert_inside(page, img)
    data["goods"] = (data["goods"] * 3)[:20]  # 20 lines, 30 lots, a long note: too long still
    data["lots"] = [f"{d:02d}/12 #{n}" for d in range(1, 7) for n in range(1, 6)]
    data["note"] = "Gọi trước khi giao, giao giờ hành chính, không giao thứ Bảy. " * 4
    page, img = laid_out(data, 800)
    assert page.scale == 1.0 and img.height > LABEL_DOTS, "printed on, onto the next label"
    assert_inside(page, img)
    first = img.crop((0, 0, 800, LABEL_DOTS))  # the courier's part is on the first label
    assert [r.text for r in zxingcpp.read_barcodes(first, formats=CODE128)] == ["GHN2612060183"]
    recipient = next(t for t in page.texts if t.text.startswith("Người nhận:"))
    assert recipient.baseline < LABEL_DOTS
    assert read_qr(img)[0].startswith("E1:SIN-HO:S:GHN2612060183:")


# -- text ---------------------------------------------------------------------------------
ADDRESS = (
    "Thôn Nậm Cười, xã Pa Khóa, huyện Sìn Hồ, tỉnh Lai Châu (gần trường tiểu học, "
    "rẽ phải sau cầu treo, nhà thứ ba có cây đào trước cổng, hỏi bà Lường Thị Ngọc Huyền)"
)


@pytest.mark.parametrize("width", STOCKS)
def test_a_long_vietnamese_address_wraps_by_whole_words(width: int) -> None:
    data = typical()
    nfd = unicodedata.normalize("NFD", ADDRESS)  # as some phones type it: NFC on the label
    data["recipient"] = data["recipient"] | {"address": nfd}
    page, img = laid_out(data, width)
    assert_inside(page, img)
    at = next(i for i, t in enumerate(page.texts) if t.text.startswith("Địa chỉ:"))
    until = next(i for i, t in enumerate(page.texts) if t.text == "Hàng")  # the goods table
    address = [t.text for t in page.texts[at + 1 : until]]
    assert len(address) >= 2, "wrapped onto more lines"
    assert " ".join(address) == ADDRESS, "every word whole, every tone mark in place"
    assert all(unicodedata.is_normalized("NFC", line) for line in address)


@pytest.mark.parametrize("width", STOCKS)
def test_old_label_data_still_prints(width: int) -> None:
    page, img = laid_out(copy.deepcopy(LEGACY), width)
    assert_inside(page, img)
    printed = lines(page)
    assert "Thu hộ: 1.250.000 đ" in printed and "2,500 kg" in printed
    assert short_lot_id(LEGACY_LOT_ID) in printed
    assert {"Chè", "Shan", "tuyết", "Loại", "đặc", "biệt"} <= words(page)
    assert [r.text for r in zxingcpp.read_barcodes(img, formats=CODE128)] == ["VTP2611230427"]
    assert verify(read_qr(img)[0], KEY, site="sin-ho").ref == "VTP2611230427"


GOOD = {"name": "Mật ong rừng 350 g", "quantity": 1, "net_g": 350}
BAD_DATA = [
    ({"goods": []}, "goods: a parcel lists 1 to 20 goods lines, got 0"),
    ({"goods": [GOOD] * 21}, "goods: a parcel lists 1 to 20 goods lines, got 21"),
    ({"goods": [GOOD | {"quantity": 0}]}, "goods[0].quantity: Input should be greater than"),
    ({"goods": [GOOD | {"quantity": -2}]}, "goods[0].quantity: Input should be greater than"),
    ({"goods": [GOOD | {"quantity": "2"}]}, "goods[0].quantity: Input should be a valid int"),
    ({"goods": [GOOD | {"quantity": 1.5}]}, "goods[0].quantity: Input should be a valid int"),
    ({"goods": [GOOD | {"net_g": 0}]}, "goods[0].net_g: Input should be greater than 0"),
    ({"goods": [GOOD | {"name": " "}]}, "goods[0].name: must not be empty"),
    ({"goods": [GOOD | {"qty": 1}]}, "goods[0].qty: unknown key (known keys here: name, grade"),
    ({"goods": [GOOD, GOOD | {"grad": "A"}]}, "goods[1].grad: unknown key (did you mean 'grade'"),
    ({"lots": ["06/12 #3"] * 31}, "lots: List should have at most 30 items"),
    ({"lots": ["Lô của bà Lường Thị Ngọc Huyền"]}, "lots[0]: at most 24 characters"),
    ({"lots": [""]}, "lots[0]: must not be empty"),
    ({"order_id": "#5772"}, "order_id: '#5772' is not an order id"),
    ({"order_id": "5772/1"}, "order_id: '5772/1' is not an order id"),
    ({"order_id": "5" * 65}, f"order_id: '{'5' * 65}' is not an order id: 1 to 64"),
    ({"order_id": ""}, "order_id: '' is not an order id"),
    ({"lot_id": "lot-42"}, "lot_id: "),
]


@pytest.mark.parametrize(("change", "message"), BAD_DATA)
def test_bad_goods_lots_and_order_ids_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(LabelDataError) as refused:
        render_label("shipping", typical() | change, 800, signer=SIGNER, tz=TZ)
    assert f"shipping label: {message}" in str(refused.value)


def test_a_parcel_says_what_is_inside() -> None:
    data = {k: v for k, v in typical().items() if k != "goods"}
    with pytest.raises(LabelDataError, match="contents are missing: give 'goods'"):
        render_label("shipping", data, 800, signer=SIGNER, tz=TZ)
    both = typical() | {"product": "Quà Tết Sìn Hồ + 2 mặt hàng", "lot_id": LEGACY_LOT_ID}
    page, _ = laid_out(both, 800)  # the goods lines say what the summary says
    assert "Quà" not in words(page) and "Hàng" in lines(page)
    assert short_lot_id(LEGACY_LOT_ID) in lines(page)


# -- the stock: profiles, configuration, commands ------------------------------------------
@pytest.mark.parametrize("kind", ["lot", "receipt", "manifest", "day_summary"])
def test_the_other_kinds_print_on_100mm_labels(kind: str) -> None:
    page = fitted(label_blocks(kind, example(kind), signer=SIGNER, tz=TZ), 800)
    assert_inside(page, page.render())


def test_the_100mm_label_profile_sets_the_width(tmp_path: Path) -> None:
    profile = load_profile("generic-100mm-label")
    assert (profile.paper_mm, profile.paper_dots) == (100, 800)
    printer = parse_config({"printer": {"uri": "tcp://h", "profile": "generic-100mm-label"}})
    assert printer.printer.paper_dots == 800
    bad = tmp_path / "bad-100.toml"
    bad.write_text('title = "x"\npaper_mm = 100\npaper_dots = 576\n', encoding="utf-8")
    with pytest.raises(ValueError, match="100 mm paper is 800 dots wide"):
        load_profile(str(bad))


def test_preview_on_100mm_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "site.key"
    ensure_site_key(key_file)
    out = tmp_path / "label.png"
    data = Path(__file__).resolve().parent.parent / "examples" / "labels" / "shipping.json"
    argv = ["label", "preview", "--kind", "shipping", "--data", str(data), "--out", str(out)]
    argv += ["--width", "100", "--key-file", str(key_file), "--site", "sin-ho"]
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    stdout, err = capsys.readouterr()
    assert err == ""
    with Image.open(out) as png:
        assert png.width == 800 and png.height <= LABEL_DOTS
        assert f"800 x {png.height} dots" in stdout
        found = zxingcpp.read_barcodes(png.convert("L"), formats=CODE128)
        signer = PayloadSigner("sin-ho", key_file.read_bytes())
        expected = render_label(
            "shipping", data.read_bytes(), 800, signer=signer, tz=ZoneInfo("Asia/Ho_Chi_Minh")
        )
        assert png.convert("1").tobytes() == expected.tobytes()
    assert [r.text for r in found] == ["VTP2611230427"]
