"""Printer URIs: every scheme parsed into its connection, malformed ones refused with the
wrong part named and an example; the transport each scheme gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.config import ConfigError, UriPrinterConfig, parse_config
from edge.printer.devices import (
    CupsTransport,
    DeviceFileTransport,
    SerialTransport,
    UsbTransport,
)
from edge.printer.profiles import PACKAGE_PROFILES, PrinterProfileError, load_profile
from edge.printer.status import Condition
from edge.printer.transport import (
    FileTransport,
    NetworkTransport,
    PrinterUnavailable,
    transport_for,
)
from edge.printer.uri import (
    CupsUri,
    FileUri,
    PrinterUriError,
    SerialUri,
    TcpUri,
    UsbUri,
    describe,
    parse_printer_uri,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://192.0.2.50", TcpUri("192.0.2.50", 9100)),
        ("tcp://192.0.2.50:9101", TcpUri("192.0.2.50", 9101)),
        ("TCP://printer.local:9100/", TcpUri("printer.local", 9100)),
        ("tcp://[2001:db8::5]:9100?timeout=2.5", TcpUri("2001:db8::5", 9100, 2.5)),
        ("usb://04b8:0e15", UsbUri(0x04B8, 0x0E15)),
        ("usb://0x0416:0x5011?in_ep=0x81&out_ep=3", UsbUri(0x0416, 0x5011, 0x81, 0x03)),
        ("serial:///dev/ttyUSB0", SerialUri("/dev/ttyUSB0")),
        (
            "serial:///dev/serial/by-id/usb-1a86-if00?baud=19200&parity=e&stopbits=2&flow=rtscts",
            SerialUri("/dev/serial/by-id/usb-1a86-if00", 19200, 8, "E", 2, "rtscts"),
        ),
        (
            "serial:///dev/ttyS0?baud=9600&bytesize=7&timeout=1",
            SerialUri("/dev/ttyS0", 9600, 7, timeout_s=1.0),
        ),
        ("file:///dev/usb/lp0", FileUri(Path("/dev/usb/lp0"), folder=False)),
        ("file:///var/prints/", FileUri(Path("/var/prints"), folder=True)),
        ("cups://TM-T20II", CupsUri("TM-T20II")),
        ("cups://Kho%20hang", None),  # a space is not a CUPS name
    ],
)
def test_every_scheme_parses(text: str, expected: object) -> None:
    if expected is None:
        with pytest.raises(PrinterUriError, match="queue name"):
            parse_printer_uri(text)
        return
    assert parse_printer_uri(text) == expected


def test_an_existing_directory_is_the_simulated_printer(tmp_path: Path) -> None:
    assert parse_printer_uri(f"file://{tmp_path}") == FileUri(tmp_path, folder=True)
    assert parse_printer_uri(f"file://{tmp_path}/out.bin") == FileUri(tmp_path / "out.bin", False)


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("", "URI: empty"),
        ("192.0.2.50:9100", "scheme: missing"),
        ("http://192.0.2.50", "scheme: 'http' is unknown"),
        ("tcp://:9100", "host: missing"),
        ("tcp://192.0.2.50:99999", "port: '99999' is not a port number"),
        ("tcp://192.0.2.50:abc", "port: 'abc'"),
        ("tcp://2001:db8::5", "host: write an IPv6 address in brackets"),
        ("tcp://h/queue", "path: '/queue' is not allowed"),
        ("tcp://h?timeout=0", "option 'timeout': 0 is outside"),
        ("tcp://h?timeout=x", "option 'timeout': 'x' is not a number"),
        ("tcp://h?baud=9600", "option 'baud': unknown for tcp://"),
        ("tcp://h?timeout=1&timeout=2", "option 'timeout': given twice"),
        ("tcp://user@h", "host: a user name is not allowed"),
        ("tcp://h#x", "fragment"),
        ("usb://04b8", "device: write the vendor and product id"),
        ("usb://04b8:xyz1", "product id: 'xyz1' is not a 4-digit hex number"),
        ("usb://12345:0e15", "vendor id"),
        ("usb://04b8:0e15?in_ep=1", "option 'in_ep': 1 is outside"),
        ("serial://dev/ttyUSB0", "device: write serial:// then the absolute device path"),
        ("serial:///dev/ttyUSB0?baud=1234", "option 'baud': 1234 is not one of"),
        ("serial:///dev/ttyUSB0?parity=X", "option 'parity': 'X' is not N, E or O"),
        ("serial:///dev/ttyUSB0?flow=magic", "option 'flow'"),
        ("serial:///dev/ttyUSB0?bytesize=6", "option 'bytesize': 6 is outside"),
        ("file://relative/path", "path: write an absolute path"),
        ("file:///dev/usb/lp0?x=1", "option 'x': unknown for file://"),
        ("cups://", "queue name"),
    ],
)
def test_malformed_uris_name_the_part_and_show_an_example(text: str, part: str) -> None:
    with pytest.raises(PrinterUriError) as err:
        parse_printer_uri(text)
    message = str(err.value)
    assert part in message
    assert "(example: " in message and message.startswith(f"printer URI {text!r}: ")


def test_each_scheme_gets_its_transport(tmp_path: Path) -> None:
    cases = {
        "tcp://127.0.0.1:9100": (NetworkTransport, True, "network printer 127.0.0.1:9100"),
        "usb://04b8:0e15": (UsbTransport, True, "USB printer 04b8:0e15"),
        "serial:///dev/ttyUSB0?baud=19200": (
            SerialTransport,
            True,
            "serial printer /dev/ttyUSB0 (19200 8N1)",
        ),
        f"file://{tmp_path}/": (FileTransport, False, f"simulated printer (folder {tmp_path})"),
        "file:///dev/usb/lp0": (DeviceFileTransport, False, "printer device /dev/usb/lp0"),
        "cups://TM-T20II": (CupsTransport, False, "CUPS printer TM-T20II"),
    }
    for text, (kind, can_read, description) in cases.items():
        uri = parse_printer_uri(text)
        transport = transport_for(uri)
        assert isinstance(transport, kind), text
        assert transport.can_read is can_read
        assert transport.description == describe(uri) == description


def test_usb_without_pyusb_says_what_to_install() -> None:
    pytest.importorskip("escpos")
    try:
        import usb  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - pyusb is not a dependency
        pytest.skip("pyusb is installed here")
    with pytest.raises(PrinterUnavailable, match=r"pyusb is not installed.*python3-usb"):
        transport_for(parse_printer_uri("usb://04b8:0e15")).send("job", b"\x1b@", b"")


def test_device_file_gets_the_bytes_and_status_is_unknown(tmp_path: Path) -> None:
    device = tmp_path / "lp0"
    transport = transport_for(parse_printer_uri(f"file://{device}"))
    data = b"\x1b@hello\n\x1dV\x00" * 1000
    transport.send("job-1", data, b"")
    assert device.read_bytes() == data
    assert transport.status().condition is Condition.UNKNOWN
    missing = transport_for(parse_printer_uri(f"file://{tmp_path}/no/such/lp0"))
    with pytest.raises(PrinterUnavailable, match="cannot be opened"):
        missing.send("job-2", data, b"")


def _fake_lp(folder: Path, exit_code: int) -> None:
    script = folder / "lp"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{folder}/args"\n'
        f'cat > "{folder}/job"\n'
        + ('echo "lp: The printer or class does not exist." >&2\n' if exit_code else "")
        + f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_cups_job_goes_raw_through_lp_and_its_exit_status_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    _fake_lp(tmp_path, 0)
    transport = transport_for(parse_printer_uri("cups://TM-T20II"))
    transport.send("job-7", b"\x1b@label", b"")
    assert (tmp_path / "job").read_bytes() == b"\x1b@label"
    assert (tmp_path / "args").read_text().split() == ["-d", "TM-T20II", "-o", "raw", "-t", "job-7"]
    assert transport.status().condition is Condition.UNKNOWN

    _fake_lp(tmp_path, 1)
    with pytest.raises(PrinterUnavailable, match="CUPS refused the job: lp: The printer"):
        transport.send("job-8", b"\x1b@", b"")

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PrinterUnavailable, match="`lp` command is missing"):
        transport.send("job-9", b"\x1b@", b"")


# -- the [printer] section: type = "file" | "network" as before, or a uri -----------------


def test_printer_config_takes_a_uri_and_a_profile() -> None:
    cfg = parse_config({"printer": {"uri": "usb://04b8:0e15", "profile": "epson-tm-t20ii"}})
    printer = cfg.printer
    assert isinstance(printer, UriPrinterConfig) and printer.type == "uri"
    assert printer.paper_dots == 576, "from the profile"
    assert printer.printer_uri() == UsbUri(0x04B8, 0x0E15)
    assert printer.printer_profile().title == "Epson TM-T20II (80 mm)"
    explicit = parse_config(
        {"printer": {"uri": "tcp://h", "profile": "generic-80mm", "paper_dots": 384}}
    )
    assert explicit.printer.paper_dots == 384


def test_old_printer_configs_stay_valid() -> None:
    default = parse_config({}).printer
    assert default.type == "file" and default.paper_dots == 384
    assert default.printer_uri() == FileUri(Path("var/prints"), folder=True)
    net = parse_config({"printer": {"type": "network", "host": "192.0.2.50", "timeout_s": 2}})
    assert net.printer.printer_uri() == TcpUri("192.0.2.50", 9100, 2.0)
    assert net.printer.printer_profile().title.startswith("Generic ESC/POS, 58 mm")


@pytest.mark.parametrize(
    ("section", "key", "reason"),
    [
        ({"uri": "tcp://:9100"}, "printer.uri", "host: missing (example: tcp://"),
        ({"uri": "tcp://h", "profile": "epson"}, "printer.profile", "no such printer profile"),
        ({"uri": "tcp://h", "paper_dot": 384}, "printer.paper_dot", "did you mean 'paper_dots'?"),
        ({"type": "network", "host": "h", "uri": "tcp://h"}, "printer.uri", "unknown key"),
        ({"type": "laser"}, "printer", "does not match any of the expected tags"),
        (
            {"uri": "tcp://h", "profile": "xprinter-xp58", "native_text": "tcvn3"},
            "printer.native_text",
            "'tcvn3' needs codepages.tcvn3",
        ),
        ({"uri": "tcp://h", "status_timeout_s": 0}, "printer.status_timeout_s", "greater than 0"),
    ],
)
def test_printer_config_errors_name_file_key_and_reason(
    section: dict[str, object], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"printer": section}, "station.toml")
    line = str(err.value)
    assert line.startswith(f"station.toml: {key}: ") and reason in line, line


# -- printer profiles ------------------------------------------------------------------


def test_every_shipped_profile_loads() -> None:
    names = sorted(p.stem for p in PACKAGE_PROFILES.glob("*.toml"))
    assert names == [
        "epson-tm-t20ii",
        "generic-100mm-label",
        "generic-58mm",
        "generic-80mm",
        "xprinter-xp58",
    ]
    for name in names:
        profile = load_profile(name)
        assert profile.paper_dots == {58: 384, 80: 576, 100: 800}[profile.paper_mm]


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ({"paper_dots": 576}, "paper_dots", "58 mm paper is 384 dots wide"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"codepages": {"cp1259": 52}}, "codepages.cp1259", "did you mean 'cp1258'?"),
        ({"codepages": {"tcvn3": 30}}, "codepages", "give both tcvn3 and tcvn3_capitals"),
        ({"escpos_profile": "TM-X1"}, "escpos_profile", "not a python-escpos profile"),
        (
            {"escpos_profile": "POS-5890", "codepages": {"cp1258": 52}},
            "codepages.cp1258",
            "says page 52 is CP437",
        ),
        ({"native_text": "cp1258"}, "native_text", "needs codepages.cp1258"),
        ({"cutter": "guillotine"}, "cutter", "Input should be"),
    ],
)
def test_profile_errors_name_file_key_and_reason(
    tmp_path: Path, extra: dict[str, object], key: str, reason: str
) -> None:
    path = tmp_path / "bad.toml"
    lines = ['title = "Test"', "paper_mm = 58"]
    if "paper_dots" not in extra:
        lines.append("paper_dots = 384")
    for k, v in extra.items():
        if isinstance(v, dict):
            continue
        lines.append(f"{k} = {v!r}".replace("'", '"'))
    for k, v in extra.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {vv}" for kk, vv in v.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PrinterProfileError) as err:
        load_profile(str(path))
    assert str(err.value).startswith(f"{path}: {key}: ") and reason in str(err.value)
