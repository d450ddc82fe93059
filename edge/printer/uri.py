"""Printer connections written as URIs (pure parsing; :mod:`edge.printer.transport` opens them).

==========================================  ===================================================
URI                                         connection
==========================================  ===================================================
``tcp://192.0.2.50:9100?timeout=5``         raw TCP ("JetDirect"), port 9100 when left out
``usb://04b8:0e15?in_ep=0x82&out_ep=0x01``  USB vendor:product id (hex), endpoints optional
``serial:///dev/ttyUSB0?baud=9600``         serial port; also ``bytesize``, ``parity`` (N/E/O),
                                            ``stopbits``, ``flow`` (none/xonxoff/rtscts/dsrdtr)
``file:///dev/usb/lp0``                     a device file (python-escpos ``File``)
``file:///var/prints/``                     a folder: the simulated printer (``<job>.bin`` and
                                            ``<job>.png``); a folder is a path ending in ``/``
                                            or an existing directory
``cups://TM-T20II``                         a CUPS queue, sent raw
==========================================  ===================================================

Every scheme also takes ``timeout`` (seconds, default 5) where it opens a device.
Malformed URIs raise :class:`PrinterUriError` naming the wrong part and giving an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

EXAMPLES = {
    "tcp": "tcp://192.0.2.50:9100",
    "usb": "usb://04b8:0e15",
    "serial": "serial:///dev/ttyUSB0?baud=9600",
    "file": "file:///dev/usb/lp0",
    "cups": "cups://TM-T20II",
}
DEFAULT_TIMEOUT_S = 5.0
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
Flow = Literal["none", "xonxoff", "rtscts", "dsrdtr"]
_HEX_ID = re.compile(r"(?:0x)?([0-9a-fA-F]{1,4})")
_CUPS_NAME = re.compile(r"[A-Za-z0-9_.@-][A-Za-z0-9_.@/-]{0,126}")


class PrinterUriError(ValueError):
    """A printer URI that cannot be used; the message names the part and shows an example."""


@dataclass(frozen=True)
class TcpUri:
    host: str
    port: int = 9100
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class UsbUri:
    vendor_id: int
    product_id: int
    in_ep: int = 0x82
    out_ep: int = 0x01
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class SerialUri:
    device: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    flow: Flow = "none"
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class FileUri:
    path: Path
    folder: bool  # True: the simulated printer writing <job>.bin/.png into this folder


@dataclass(frozen=True)
class CupsUri:
    name: str


PrinterUri = TcpUri | UsbUri | SerialUri | FileUri | CupsUri


def _fail(text: str, scheme: str, part: str, reason: str) -> PrinterUriError:
    example = EXAMPLES.get(scheme, ", ".join(EXAMPLES.values()))
    return PrinterUriError(f"printer URI {text!r}: {part}: {reason} (example: {example})")


def _params(text: str, scheme: str, query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _fail(text, scheme, "query", f"cannot read {query!r} as name=value&...") from None
    found: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise _fail(
                text, scheme, f"option {name!r}", f"unknown for {scheme}:// (known: {known})"
            )
        if name in found:
            raise _fail(text, scheme, f"option {name!r}", "given twice")
        found[name] = value
    return found


def _number(text: str, scheme: str, name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _fail(text, scheme, f"option {name!r}", f"{value!r} is not a number") from None
    if not low <= number <= high:
        raise _fail(text, scheme, f"option {name!r}", f"{value} is outside {low:g}..{high:g}")
    return number


def _int(text: str, scheme: str, name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        raise _fail(text, scheme, f"option {name!r}", f"{value!r} is not a whole number") from None
    if not low <= number <= high:
        raise _fail(text, scheme, f"option {name!r}", f"{value} is outside {low}..{high}")
    return number


def _timeout(text: str, scheme: str, params: dict[str, str]) -> float:
    if "timeout" not in params:
        return DEFAULT_TIMEOUT_S
    return _number(text, scheme, "timeout", params["timeout"], 0.05, 600)


def _tcp(text: str, netloc: str, path: str, query: str) -> TcpUri:
    if "@" in netloc:
        raise _fail(text, "tcp", "host", "a user name is not allowed; write tcp://host:port")
    if netloc.startswith("["):  # IPv6: tcp://[2001:db8::5]:9100
        host, closed, rest = netloc[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise _fail(text, "tcp", "host", f"cannot read {netloc!r}")
        port_text: str | None = rest[1:] if rest else None
    else:
        host, colon, port_text = netloc.partition(":")
        if ":" in port_text:
            raise _fail(text, "tcp", "host", "write an IPv6 address in brackets: [2001:db8::5]")
        port_text = port_text if colon else None
    if not host:
        raise _fail(text, "tcp", "host", "missing")
    if path not in ("", "/"):
        raise _fail(text, "tcp", "path", f"{path!r} is not allowed; write tcp://host:port")
    port = 9100
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _fail(text, "tcp", "port", f"{port_text!r} is not a port number 1..65535")
        port = int(port_text)
    params = _params(text, "tcp", query, ("timeout",))
    return TcpUri(host, port, _timeout(text, "tcp", params))


def _usb(text: str, netloc: str, path: str, query: str) -> UsbUri:
    ids = netloc.split(":")
    if len(ids) != 2 or path not in ("", "/"):
        raise _fail(text, "usb", "device", "write the vendor and product id as VID:PID in hex")
    values = []
    for part, value in zip(("vendor id", "product id"), ids, strict=True):
        match = _HEX_ID.fullmatch(value)
        if match is None:
            raise _fail(text, "usb", part, f"{value!r} is not a 4-digit hex number")
        values.append(int(match.group(1), 16))
    params = _params(text, "usb", query, ("in_ep", "out_ep", "timeout"))
    in_ep = _int(text, "usb", "in_ep", params.get("in_ep", "0x82"), 0x81, 0x8F)
    out_ep = _int(text, "usb", "out_ep", params.get("out_ep", "0x01"), 0x01, 0x0F)
    return UsbUri(values[0], values[1], in_ep, out_ep, _timeout(text, "usb", params))


def _serial(text: str, netloc: str, path: str, query: str) -> SerialUri:
    if netloc or not path.startswith("/") or path == "/":
        raise _fail(
            text,
            "serial",
            "device",
            "write serial:// then the absolute device path (three slashes)",
        )
    params = _params(
        text, "serial", query, ("baud", "bytesize", "parity", "stopbits", "flow", "timeout")
    )
    baud = _int(text, "serial", "baud", params.get("baud", "9600"), 1, 4_000_000)
    if baud not in BAUD_RATES:
        raise _fail(text, "serial", "option 'baud'", f"{baud} is not one of {BAUD_RATES}")
    bytesize = _int(text, "serial", "bytesize", params.get("bytesize", "8"), 7, 8)
    parity = params.get("parity", "N").upper()
    if parity not in ("N", "E", "O"):
        raise _fail(text, "serial", "option 'parity'", f"{parity!r} is not N, E or O")
    stopbits = _int(text, "serial", "stopbits", params.get("stopbits", "1"), 1, 2)
    flow = params.get("flow", "none")
    if flow not in ("none", "xonxoff", "rtscts", "dsrdtr"):
        raise _fail(text, "serial", "option 'flow'", f"{flow!r} is not none/xonxoff/rtscts/dsrdtr")
    return SerialUri(
        device=path,
        baudrate=baud,
        bytesize=bytesize,
        parity=parity,  # type: ignore[arg-type]  # checked just above
        stopbits=stopbits,
        flow=flow,  # type: ignore[arg-type]  # checked just above
        timeout_s=_timeout(text, "serial", params),
    )


def _file(text: str, netloc: str, path: str, query: str) -> FileUri:
    if netloc or not path.startswith("/") or path == "/":
        raise _fail(text, "file", "path", "write an absolute path: file:///dev/usb/lp0")
    _params(text, "file", query, ())
    return FileUri(Path(path), folder=path.endswith("/") or Path(path).is_dir())


def _cups(text: str, netloc: str, path: str, query: str) -> CupsUri:
    name = netloc + path
    if not _CUPS_NAME.fullmatch(name):
        raise _fail(text, "cups", "queue name", f"{name!r} is not a CUPS printer name")
    _params(text, "cups", query, ())
    return CupsUri(name)


def parse_printer_uri(text: str) -> PrinterUri:
    """Parse a printer URI (see the module docstring); PrinterUriError when malformed."""
    if not isinstance(text, str) or not text.strip():
        raise _fail(str(text), "", "URI", "empty")
    if "://" not in text:
        raise _fail(
            text, "", "scheme", "missing; start with tcp://, usb://, serial://, file:// or cups://"
        )
    split = urlsplit(text.strip())
    scheme = split.scheme.lower()
    if split.fragment:
        raise _fail(text, scheme, "fragment", f"'#{split.fragment}' is not allowed")
    path = unquote(split.path)
    netloc = unquote(split.netloc)
    if scheme == "tcp":
        return _tcp(text, netloc, path, split.query)
    if scheme == "usb":
        return _usb(text, netloc, path, split.query)
    if scheme == "serial":
        return _serial(text, netloc, path, split.query)
    if scheme == "file":
        return _file(text, netloc, path, split.query)
    if scheme == "cups":
        return _cups(text, netloc, path, split.query)
    raise _fail(
        text, "", "scheme", f"{split.scheme!r} is unknown; use tcp, usb, serial, file or cups"
    )


def describe(uri: PrinterUri) -> str:
    """A short human name for the connection, e.g. "network printer 192.0.2.50:9100"."""
    if isinstance(uri, TcpUri):
        host = f"[{uri.host}]" if ":" in uri.host else uri.host
        return f"network printer {host}:{uri.port}"
    if isinstance(uri, UsbUri):
        return f"USB printer {uri.vendor_id:04x}:{uri.product_id:04x}"
    if isinstance(uri, SerialUri):
        return (
            f"serial printer {uri.device} ({uri.baudrate} {uri.bytesize}{uri.parity}{uri.stopbits})"
        )
    if isinstance(uri, FileUri):
        return (
            f"simulated printer (folder {uri.path})" if uri.folder else f"printer device {uri.path}"
        )
    return f"CUPS printer {uri.name}"
