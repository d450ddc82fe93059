"""``edge label preview`` and ``edge label verify``: a previewed label's QR code, read back
with zxing-cpp, is accepted; any altered, forged or foreign payload is refused with its
reason and a non-zero exit."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from PIL import Image

from edge.cli import build_parser
from edge.printer.kinds import KINDS
from edge.printer.label import render_label
from edge.printer.label_cli import KIND_NAMES
from edge.printer.payload import PayloadKind, PayloadSigner, ensure_site_key, sign

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "labels"
LOT_ID = "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Through ``edge``'s own parser."""
    args = build_parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def qr_text(png: Path) -> str:
    with Image.open(png) as img:
        (found,) = zxingcpp.read_barcodes(
            img, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    return found.text


def test_the_command_offers_every_kind() -> None:
    assert tuple(KINDS) == KIND_NAMES


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "sin-ho.key"
    ensure_site_key(path)
    return path


@pytest.mark.parametrize(("kind", "mm"), [(k, mm) for k in KINDS for mm in ("58", "80")])
def test_preview_writes_exactly_the_rendered_label(
    kind: str, mm: str, tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{kind}.png"
    data = EXAMPLES / f"{kind}.json"
    argv = ["label", "preview", "--kind", kind, "--data", str(data), "--out", str(out)]
    code, stdout, err = run(
        [*argv, "--width", mm, "--key-file", str(key_file), "--site", "sin-ho"], capsys
    )
    assert (code, err) == (0, "")
    width = {"58": 384, "80": 576}[mm]
    signer = PayloadSigner("sin-ho", key_file.read_bytes())
    expected = render_label(
        kind, data.read_bytes(), width, signer=signer, tz=ZoneInfo("Asia/Ho_Chi_Minh")
    )
    with Image.open(out) as png:
        assert png.size == expected.size and png.convert("1").tobytes() == expected.tobytes()
    assert f"{width} x {expected.height} dots" in stdout


def test_preview_creates_the_site_key_once_and_its_qr_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the default key file is var/site.key, like var/station.db
    argv = ["label", "preview", "--kind", "shipping", "--data", str(EXAMPLES / "shipping.json")]
    code, _, err = run([*argv, "--out", "a.png"], capsys)
    assert code == 0 and "created the site key var/site.key" in err
    key = Path("var/site.key")
    assert len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    code, _, err = run([*argv, "--out", "b.png"], capsys)
    assert (code, err) == (0, "") and key.read_bytes() == first

    payload = qr_text(Path("a.png"))
    assert payload.startswith("E1:DEMO-SITE:S:VTP2611230427:")  # the embedded default site
    code, out, err = run(["label", "verify", payload], capsys)
    assert (code, err) == (0, "")
    assert out == "genuine: shipping label tracking code VTP2611230427, issued by site demo-site\n"


def test_verify_refuses_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "station.toml"
    config.write_text('[site]\nid = "sin-ho"\nname = "Điểm thu gom Sìn Hồ"\n', encoding="utf-8")
    key = ensure_site_key(Path("var/site.key"))
    good = sign("sin-ho", PayloadKind.LOT, LOT_ID, key)
    cfg = ["--config", str(config)]

    code, out, _ = run(["label", "verify", good, *cfg], capsys)
    assert code == 0 and out == f"genuine: lot {LOT_ID}, issued by site sin-ho\n"
    assert run(["label", "verify", f"  {good}\n", *cfg], capsys)[0] == 0  # scanner whitespace

    one_changed = good[:20] + ("A" if good[20] != "A" else "B") + good[21:]
    foreign = sign("tam-duong", PayloadKind.LOT, LOT_ID, os.urandom(32))
    cases = [
        ([one_changed, *cfg], 1, "refused: altered or forged: signature does not match"),
        ([good.replace("SIN-HO", "TAM-DUONG"), *cfg], 1, "another site: tam-duong"),
        ([foreign, *cfg], 1, "refused: issued for another site: tam-duong, this station is sin-ho"),
        ([foreign, "--key-file", "var/site.key"], 1, "refused: altered or forged"),
        ([good, "--key-file", str(tmp_path / "wrong.key")], 2, "wrong.key does not exist"),
        (["E2:SIN-HO:L:X:Y", *cfg], 1, "refused: unknown version E2"),
        (["not a label", *cfg], 1, "refused: malformed"),
    ]
    wrong = tmp_path / "other.key"
    ensure_site_key(wrong)
    cases.append(([good, "--key-file", str(wrong)], 1, "refused: altered or forged"))
    for argv, expected_code, reason in cases:
        code, out, err = run(["label", "verify", *argv], capsys)
        assert (code, out) == (expected_code, ""), argv
        assert reason in err, (argv, err)
    assert not (tmp_path / "wrong.key").exists(), "verification never creates a key"


def test_preview_reports_bad_data_and_configuration(
    tmp_path: Path,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "lot.json"
    bad.write_text(
        (EXAMPLES / "lot.json").read_text(encoding="utf-8").replace('"net_g"', '"net_kg"'),
        encoding="utf-8",
    )
    base = ["label", "preview", "--kind", "lot", "--out", str(tmp_path / "x.png")]
    code, _, err = run([*base, "--data", str(bad), "--key-file", str(key_file)], capsys)
    assert code == 1
    assert f"{bad}: lot label: net_kg: unknown key (did you mean 'net_g'?" in err
    assert f"{bad}: lot label: net_g: required, missing" in err
    assert not (tmp_path / "x.png").exists()

    code, _, err = run([*base, "--data", str(tmp_path / "none.json")], capsys)
    assert code == 1 and "none.json: cannot read" in err
    assert not (tmp_path / "var").exists(), "no key is made for a label that cannot render"

    broken = tmp_path / "broken.toml"
    broken.write_text("[site]\nid = 'Sìn Hồ'\n", encoding="utf-8")
    code, _, err = run(
        [*base, "--data", str(EXAMPLES / "lot.json"), "--config", str(broken)], capsys
    )
    assert code == 2 and "configuration error" in err and "site.id" in err


def test_verify_refuses_a_non_ascii_payload_without_a_traceback(tmp_path: Path) -> None:
    """A genuine payload with one letter swapped for a look-alike outside ASCII (the Kelvin
    sign, which lower-cases to "k"): exit 1, "refused" and the reason, as a real command."""
    config = tmp_path / "station.toml"
    config.write_text('[site]\nid = "sin-kho"\n', encoding="utf-8")
    key = ensure_site_key(tmp_path / "var" / "site.key")
    genuine = sign("sin-kho", PayloadKind.LOT, LOT_ID, key)
    lookalike = genuine.replace("SIN-KHO", "SIN-\u212aHO")
    for argv in (["--config", str(config)], ["--key-file", "var/site.key"]):
        proc = subprocess.run(
            [sys.executable, "-m", "edge", "label", "verify", lookalike, *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
        assert proc.stderr == (
            "refused: malformed: character U+212A (KELVIN SIGN) at position 8 is not ASCII "
            "(a label payload holds only A-Z, 0-9, '.', '-' and ':')\n"
        )


def test_edge_label_verify_as_a_command(tmp_path: Path) -> None:
    key = ensure_site_key(tmp_path / "var" / "site.key")
    good = sign("demo-site", PayloadKind.MANIFEST, LOT_ID, key)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    results = {}
    for payload in (good, bad):
        proc = subprocess.run(
            [sys.executable, "-m", "edge", "label", "verify", payload],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        results[payload] = proc
    assert results[good].returncode == 0 and "genuine: courier manifest" in results[good].stdout
    assert results[bad].returncode == 1
    assert "altered or forged: signature does not match" in results[bad].stderr
