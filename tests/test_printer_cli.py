"""``edge printer status|selftest`` and ``edge label print`` against a real TCP listener,
run in-process through the argument parser the ``edge`` command uses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import zxingcpp

from edge.printer.codepage import encode_cp1258, encode_tcvn3
from edge.printer.label_cli import add_label_commands
from edge.printer.payload import load_site_key, verify
from edge.printer.printer_cli import add_label_print, add_printer_commands
from edge.printer.status import Paper
from edge.printer.textjob import SAMPLE
from rigs.escpos_decode import decode
from rigs.helpers import PortHold
from rigs.printer_listener import PrinterListener

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "labels"
ANSWER_S = "10"
"""--status-timeout where the fake printer answers: at once, but a reply late on a
loaded machine must not read as "no answer" (unknown)."""


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="edge")
    sub = parser.add_subparsers(dest="command", required=True)
    add_printer_commands(sub)
    add_label_print(add_label_commands(sub))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


@pytest.mark.parametrize(
    ("paper", "cover", "code", "condition"),
    [
        (Paper.OK, False, 0, "ready"),
        (Paper.NEAR_END, False, 0, "ready"),
        (Paper.OUT, False, 1, "paper_out"),
        (Paper.OK, True, 1, "cover_open"),
    ],
)
def test_status_answers_with_json_and_exit_code(
    paper: Paper, cover: bool, code: int, condition: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with PrinterListener() as printer:
        printer.set_state(paper=paper, cover_open=cover)
        uri = f"tcp://127.0.0.1:{printer.port}"
        assert run("printer", "status", uri, "--status-timeout", ANSWER_S) == code
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["reachable"] is True and report["condition"] == condition
    assert report["paper"] == paper.value
    assert condition in err
    assert printer.jobs == [], "asking the status prints nothing"


def test_status_of_a_silent_printer_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    with PrinterListener(answer_status=False) as printer:
        uri = f"tcp://127.0.0.1:{printer.port}"
        assert run("printer", "status", uri, "--status-timeout", "0.2") == 3
    report = json.loads(capsys.readouterr().out)
    assert report["condition"] == "unknown" and report["paper"] == "unknown"
    assert report["replies"] == {"1": None}


def test_status_of_an_unreachable_printer_or_a_bad_uri(capsys: pytest.CaptureFixture[str]) -> None:
    with PortHold() as closed:  # bound, never listening: refused, and nobody else's
        assert run("printer", "status", f"tcp://127.0.0.1:{closed.port}?timeout=1") == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["reachable"] is False and "connection refused" in err
    assert run("printer", "status", "tcp://127.0.0.1:70000") == 2
    assert "port: '70000' is not a port number" in capsys.readouterr().err
    assert run("printer", "status", "tcp://h", "--profile", "nope") == 2
    assert "no such printer profile" in capsys.readouterr().err


def test_selftest_page_has_raster_and_both_native_encodings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with PrinterListener() as printer:
        uri = f"tcp://127.0.0.1:{printer.port}"
        assert run("printer", "selftest", uri, "--profile", "epson-tm-t20ii") == 0
        (job,) = printer.wait_for_jobs(1)
    assert "sent" in capsys.readouterr().out
    decoded = decode(job)
    (image,) = decoded.images
    assert image.width == 576 and image.height > 100
    assert image.getpixel((0, 0)) == 0 and image.getpixel((575, 0)) == 0, "full-width frame"
    for line in SAMPLE:  # text bytes without the page switches the decoder drops
        tcvn3 = (
            encode_tcvn3(line, 30, 31).data.replace(b"\x1bt\x1e", b"").replace(b"\x1bt\x1f", b"")
        )
        assert tcvn3 in decoded.text
        assert encode_cp1258(line, 52).data[3:] in decoded.text
    assert b"TCVN-3 (ESC t 30/31):" in decoded.text and b"CP1258 (ESC t 52):" in decoded.text
    assert decoded.cuts == 1  # the TM-T20II has a cutter


def test_selftest_with_paper_out_is_not_sent(capsys: pytest.CaptureFixture[str]) -> None:
    with PrinterListener() as printer:
        printer.set_state(paper=Paper.OUT)
        uri = f"tcp://127.0.0.1:{printer.port}"
        assert run("printer", "selftest", uri, "--status-timeout", ANSWER_S) == 1
        assert printer.jobs == []
    assert "hết giấy" in capsys.readouterr().err


def test_selftest_without_codepages_and_cutter_says_so(tmp_path: Path) -> None:
    with PrinterListener() as printer:
        uri = f"tcp://127.0.0.1:{printer.port}"
        assert run("printer", "selftest", uri, "--profile", "xprinter-xp58") == 0
        (job,) = printer.wait_for_jobs(1)
    decoded = decode(job)
    assert b"TCVN-3: no code page in this profile" in decoded.text
    assert b"CP1258 (ESC t 27):" in decoded.text
    assert decoded.cuts == 0 and decoded.images[0].width == 384


def test_selftest_cut_off_mid_page(capsys: pytest.CaptureFixture[str]) -> None:
    with PrinterListener(cut_after=500) as printer:
        assert run("printer", "selftest", f"tcp://127.0.0.1:{printer.port}") == 4
    assert "may be partly printed" in capsys.readouterr().err


@pytest.mark.skipif(not (EXAMPLES / "lot.json").exists(), reason="label examples not there yet")
def test_label_print_lot_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "site.key"
    with PrinterListener() as printer:
        code = run(
            "label",
            "print",
            "--kind",
            "lot",
            "--data",
            str(EXAMPLES / "lot.json"),
            "--printer",
            f"tcp://127.0.0.1:{printer.port}",
            "--key-file",
            str(key_file),
            "--site",
            "test-site",
            "--width",
            "80",
        )
        assert code == 0, capsys.readouterr().err
        (job,) = printer.wait_for_jobs(1)
    (image,) = decode(job).images
    assert image.width == 576
    (qr,) = [c.text for c in zxingcpp.read_barcodes(image.convert("L"))]
    lot_id = json.loads((EXAMPLES / "lot.json").read_text(encoding="utf-8"))["lot_id"]
    verified = verify(qr, load_site_key(key_file), site="test-site")
    assert (verified.ref, verified.site) == (lot_id, "test-site")


def test_label_print_bad_data_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "lot.json"
    data.write_text(json.dumps({"lot_id": "not-a-uuid"}), encoding="utf-8")
    with PrinterListener() as printer:
        uri = f"tcp://127.0.0.1:{printer.port}"
        key = str(tmp_path / "k")
        assert run("label", "print", "--kind", "lot", "--data", str(data), "--printer", uri,
                   "--key-file", key) == 1  # fmt: skip
        assert printer.jobs == [] and printer.connections == 0
    err = capsys.readouterr().err
    assert f"{data}: lot label: lot_id" in err
