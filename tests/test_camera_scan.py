"""``edge.camera.scan`` and ``edge scan``: generated photos of the station's own printed
labels (tests/label_photos.py) under blur, noise, any rotation, perspective, JPEG quality
40-90, low contrast and uneven light, the QR at 3 to 5 pixels per module, are read and
their signed payloads verified; the Code 128 tracking code of shipping labels is read."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import scan as scan_module
from edge.camera.cli import EXIT_FOUND, EXIT_NONE, EXIT_UNREADABLE
from edge.camera.scan import Code, ScanError, scan, scan_file
from edge.cli import build_parser
from edge.printer.payload import PayloadKind, verify
from rigs.label_photos import FAMILIES, KEY, KINDS, blank_photo, label_data, label_photo

# About no date or time of day: make test runs these in one pass (the real-clock pass skips it).
pytestmark = pytest.mark.calendar_pass_only

REF_FIELD = {"lot": "lot_id", "shipping": "tracking_code", "manifest": "batch_id"}
PAYLOAD_KIND = {"lot": PayloadKind.LOT, "shipping": PayloadKind.SHIPPING}


def qr_codes(codes: list[Code]) -> list[str]:
    return [c.text for c in codes if c.format == "QRCode"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", KINDS)
def test_qr_read_and_verified_in_photos(kind: str, family: str) -> None:
    for seed in (1, 2, 3):
        photo = label_photo(kind, seed, family, px_per_module=(3.0, 5.0))
        assert 3.0 <= photo.conditions.px_per_module <= 5.0
        texts = qr_codes(scan(photo.image))
        assert texts == [photo.printed.qr_text], (family, kind, seed, photo.conditions)
        payload = verify(texts[0], KEY, site="sin-ho")
        assert payload.kind is PAYLOAD_KIND.get(kind, PayloadKind.MANIFEST)
        assert payload.ref == str(label_data(kind, seed)[REF_FIELD[kind]])


def test_qr_read_at_exactly_three_pixels_per_module() -> None:
    for family in FAMILIES:
        photo = label_photo("shipping", 7, family, px_per_module=(3.0, 3.0))
        assert qr_codes(scan(photo.image)) == [photo.printed.qr_text], family


def test_photos_are_deterministic_and_really_degraded() -> None:
    a = label_photo("lot", 4, "rotation")
    b = label_photo("lot", 4, "rotation")
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, label_photo("lot", 5, "rotation").image)
    angles = {round(label_photo("lot", s, "rotation").conditions.rotation_deg) for s in range(6)}
    assert max(angles) - min(angles) > 90  # the rotation family really turns the label
    jpeg = {label_photo("lot", s, "jpeg").conditions.jpeg_quality for s in range(6)}
    assert min(jpeg) >= 40 and max(jpeg) <= 90


@pytest.mark.parametrize("family", FAMILIES)
def test_code128_tracking_code_read_in_shipping_photos(family: str) -> None:
    for seed in (1, 2, 3, 4):
        photo = label_photo("shipping", seed, family, target="code128", px_per_module=(2.5, 3.5))
        codes = scan(photo.image)
        bars = [c.text for c in codes if c.format == "Code128"]
        tracking = label_data("shipping", seed)["tracking_code"]
        assert bars == [tracking], (family, seed, photo.conditions)


def test_corners_lie_on_the_code() -> None:
    photo = label_photo("shipping", 2, "rotation", px_per_module=(8.0, 8.0), width_dots=384)
    h, w = photo.image.shape[:2]
    codes = scan(photo.image)
    assert {c.format for c in codes} == {"QRCode", "Code128"}
    for code in codes:
        assert all(0 <= x < w and 0 <= y < h for x, y in code.corners), code
        (x0, y0), (x1, y1) = code.corners[0], code.corners[2]
        assert abs(x1 - x0) + abs(y1 - y0) > 30  # a real quadrilateral, not a point


def test_opencv_fallback_reads_what_zxing_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "_zxing", lambda image, code128_only=False: [])
    photo = label_photo("lot", 3, "jpeg", px_per_module=(5.0, 5.0))
    codes = scan(photo.image)
    assert [(c.format, c.text, c.decoder) for c in codes] == [
        ("QRCode", photo.printed.qr_text, "opencv")
    ]


def test_gray_and_bgra_frames_are_read() -> None:
    photo = label_photo("manifest", 1, "noise")
    gray = cv2.cvtColor(photo.image, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(photo.image, cv2.COLOR_BGR2BGRA)
    assert qr_codes(scan(gray)) == qr_codes(scan(bgra)) == [photo.printed.qr_text]


def test_photo_without_code_gives_empty_list() -> None:
    assert scan(blank_photo(1)) == []
    assert scan(np.full((480, 640), 200, np.uint8)) == []


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("not an array", "expected an image array"),
        (np.zeros((100, 100), np.float32), "8-bit"),
        (np.zeros((100, 100, 2), np.uint8), "grayscale or BGR"),
        (np.zeros((4, 4), np.uint8), "too small"),
    ],
)
def test_bad_arrays_are_refused(image: object, reason: str) -> None:
    with pytest.raises(ScanError, match=reason):
        scan(image)


def test_files(tmp_path: Path) -> None:
    photo = label_photo("lot", 1, "jpeg")
    jpg = tmp_path / "nhãn lô.jpg"  # a non-ASCII name, as a phone names its pictures
    cv2.imencode(".jpg", photo.image)[1].tofile(jpg)
    assert qr_codes(scan_file(jpg)) == [photo.printed.qr_text]
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    with pytest.raises(ScanError, match=r"notes.txt: not an image file"):
        scan_file(text)
    with pytest.raises(ScanError, match="no such file"):
        scan_file(tmp_path / "missing.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ScanError, match="not an image file"):
        scan_file(empty)
    with pytest.raises(ScanError, match="directory"):
        scan_file(tmp_path)


# -- the command -----------------------------------------------------------------------------
def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Through ``edge``'s own parser."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = label_photo("shipping", 3, "perspective", px_per_module=(8, 8), width_dots=384)
    path = tmp_path / "parcel.png"
    cv2.imwrite(str(path), photo.image)
    code, out, err = run(["scan", str(path), "--json"], capsys)
    assert (code, err) == (EXIT_FOUND, "")
    found = json.loads(out)
    assert sorted((c["format"], c["text"]) for c in found) == [
        ("Code128", photo.printed.code128_text),
        ("QRCode", photo.printed.qr_text),
    ]
    assert all(len(c["corners"]) == 4 and c["decoder"] == "zxing" for c in found)
    code, out, _ = run(["scan", str(path)], capsys)
    assert code == EXIT_FOUND and json.loads(out) == found, "JSON is the default"
    code, out, _ = run(["scan", str(path), "--plain"], capsys)
    assert code == EXIT_FOUND
    assert sorted(out.splitlines()) == [
        f"Code128\t{photo.printed.code128_text}",
        f"QRCode\t{photo.printed.qr_text}",
    ]


def test_cli_nothing_found_and_not_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = tmp_path / "table.png"
    cv2.imwrite(str(blank), blank_photo(2))
    code, out, err = run(["scan", str(blank), "--json"], capsys)
    assert (code, json.loads(out)) == (EXIT_NONE, [])
    assert "no QR or Code 128 code found in" in err
    text = tmp_path / "label.json"
    text.write_text("{}")
    code, out, err = run(["scan", str(text)], capsys)
    assert (code, out) == (EXIT_UNREADABLE, "")
    assert err == f"edge scan: {text}: not an image file (PNG, JPEG, BMP, TIFF or WebP expected)\n"
