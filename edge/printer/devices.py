"""Printers attached to the station itself: serial, USB, a device file, a CUPS queue.

Serial and USB connections are python-escpos's ``Serial`` and ``Usb`` and can read, so
the worker asks their status (DLE EOT) before each job. A device file
(``file:///dev/usb/lp0``, python-escpos ``File``) and CUPS cannot: their status is unknown.

USB needs pyusb (``python3-usb`` on Debian), imported only when a USB printer is used; when
it is missing, connecting fails with a message saying what to install, and the station
keeps running with the printer offline.

CUPS: the queue gets the job raw through the ``lp`` command (``lp -d NAME -o raw``), whose
exit status is checked. pycups is not a dependency, and python-escpos's ``LP`` printer
ignores ``lp``'s exit status (a failed job would look printed). ``lp`` returning 0 means
CUPS spooled the job; CUPS then owns it (retries, errors in ``lpstat``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
import subprocess
import time
from typing import Any

from escpos.exceptions import DeviceNotFoundError
from escpos.printer import File, Serial

from edge.faults import PrinterFault
from edge.printer.transport import (
    DEFAULT_STATUS_TIMEOUT_S,
    Connection,
    PrinterUnavailable,
    Transport,
    interrupted,
    reason,
)
from edge.printer.uri import CupsUri, FileUri, PrinterUri, SerialUri, UsbUri, describe

log = logging.getLogger(__name__)
SERIAL_CHUNK = 256  # small writes: the count of bytes handed over stays precise


class SerialTransport(Transport):
    can_read = True

    def __init__(self, uri: SerialUri, status_timeout_s: float = DEFAULT_STATUS_TIMEOUT_S) -> None:
        self.uri = uri
        self.status_timeout_s = status_timeout_s
        self.description = describe(uri)

    def connect(self) -> Connection:
        u = self.uri
        printer = Serial(
            devfile=u.device,
            baudrate=u.baudrate,
            bytesize=u.bytesize,
            parity=u.parity,
            stopbits=u.stopbits,
            timeout=self.status_timeout_s,
            xonxoff=u.flow == "xonxoff",
            dsrdtr=u.flow == "dsrdtr",
        )
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterUnavailable(
                f"{self.description} not reachable: {str(exc).splitlines()[-1]}; check the "
                "cable and the device name (prefer /dev/serial/by-id/...)"
            ) from exc
        device = printer.device
        device.rtscts = u.flow == "rtscts"
        device.write_timeout = u.timeout_s
        return _SerialConnection(self, printer, device)


class _SerialConnection(Connection):
    can_read = True

    def __init__(self, transport: SerialTransport, printer: Any, device: Any) -> None:
        self.t = transport
        self.printer = printer
        self.device = device

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.device.close()

    def exchange(self, request: bytes) -> int | None:
        try:
            self.device.reset_input_buffer()
            self.device.write(request)
            deadline = time.monotonic() + self.t.status_timeout_s
            while (remaining := deadline - time.monotonic()) > 0:
                self.device.timeout = remaining
                got: bytes = self.device.read(1)
                if not got:
                    break
                if got[0] & 0x93 == 0x12:  # reply-shaped (edge.printer.status.is_reply)
                    return got[0]
        except OSError as exc:  # serial.SerialException is an OSError
            raise PrinterUnavailable(f"{self.t.description}: {reason(exc, 0)}") from exc
        return None

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        total, sent = len(data), 0
        try:
            while sent < total:
                chunk = data[sent : sent + SERIAL_CHUNK]
                written = self.device.write(chunk)
                sent += written if isinstance(written, int) else len(chunk)
            seconds = total * 10 / self.t.uri.baudrate + self.t.uri.timeout_s
            deadline = time.monotonic() + seconds
            while self.device.out_waiting:  # bytes still in the UART: wait, bounded
                if time.monotonic() > deadline:
                    raise TimeoutError
                time.sleep(0.01)
        except (OSError, TimeoutError) as exc:  # SerialTimeoutException is a SerialException
            why = reason(exc, self.t.uri.timeout_s)
            if sent == 0:
                raise PrinterUnavailable(f"{self.t.description} took no data: {why}") from exc
            raise interrupted(self.t.description, sent, total, why) from exc
        log.info("job %s: %d bytes sent to %s", job_id, total, self.t.description)


class UsbTransport(Transport):
    can_read = True

    def __init__(self, uri: UsbUri, status_timeout_s: float = DEFAULT_STATUS_TIMEOUT_S) -> None:
        self.uri = uri
        self.status_timeout_s = status_timeout_s
        self.description = describe(uri)

    def connect(self) -> Connection:
        try:
            usb_core = importlib.import_module("usb.core")
        except ImportError:
            raise PrinterUnavailable(
                f"{self.description}: pyusb is not installed; install it with "
                "`apt install python3-usb` (or `pip install pyusb`) and restart",
                PrinterFault.SETUP,
            ) from None
        from escpos.printer import Usb

        u = self.uri
        printer = Usb(
            u.vendor_id,
            u.product_id,
            timeout=int(u.timeout_s * 1000),
            in_ep=u.in_ep,
            out_ep=u.out_ep,
        )
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterUnavailable(
                f"{self.description} not found: {str(exc).splitlines()[-1]}; check the cable "
                "and that the station may use the device (udev rule)"
            ) from exc
        return _UsbConnection(self, printer, usb_core)


class _UsbConnection(Connection):
    can_read = True

    def __init__(self, transport: UsbTransport, printer: Any, usb_core: Any) -> None:
        self.t = transport
        self.printer = printer
        self.usb_core = usb_core

    def close(self) -> None:
        try:
            self.printer.close()
        except Exception as exc:  # pyusb raises its own USBError types
            log.debug("closing %s: %s", self.t.description, exc)

    def exchange(self, request: bytes) -> int | None:
        device, u = self.printer.device, self.t.uri
        timeout_ms = max(1, int(self.t.status_timeout_s * 1000))
        try:
            device.write(u.out_ep, request, timeout_ms)
            reply = bytes(device.read(u.in_ep, 64, timeout_ms))
        except self.usb_core.USBTimeoutError:
            return None
        except self.usb_core.USBError as exc:
            raise PrinterUnavailable(f"{self.t.description}: {exc}") from exc
        shaped = [b for b in reply if b & 0x93 == 0x12]
        return shaped[-1] if shaped else None

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        device, u = self.printer.device, self.t.uri
        total, sent = len(data), 0
        try:
            while sent < total:
                sent += int(
                    device.write(u.out_ep, data[sent : sent + 4096], int(u.timeout_s * 1000))
                )
        except self.usb_core.USBError as exc:
            if sent == 0:
                raise PrinterUnavailable(f"{self.t.description} took no data: {exc}") from exc
            raise interrupted(self.t.description, sent, total, str(exc)) from exc
        log.info("job %s: %d bytes sent to %s", job_id, total, self.t.description)


class DeviceFileTransport(Transport):
    """A printer device node (``/dev/usb/lp0``, a parallel port) through python-escpos
    ``File``; write-only here, so its status is unknown."""

    def __init__(self, uri: FileUri) -> None:
        self.uri = uri
        self.description = describe(uri)

    def connect(self) -> Connection:
        printer = File(devfile=str(self.uri.path), auto_flush=False)
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterUnavailable(
                f"{self.description} cannot be opened: {str(exc).splitlines()[-1]}; check the "
                "cable and the device's permissions"
            ) from exc
        return _DeviceFileConnection(self, printer)


class _DeviceFileConnection(Connection):
    def __init__(self, transport: DeviceFileTransport, printer: Any) -> None:
        self.t = transport
        self.printer = printer

    def close(self) -> None:
        try:
            self.printer.close()
        except OSError as exc:
            log.debug("closing %s: %s", self.t.description, exc)

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        total, sent = len(data), 0
        try:
            while sent < total:
                chunk = data[sent : sent + 4096]
                self.printer._raw(chunk)
                sent += len(chunk)
            self.printer.device.flush()
        except OSError as exc:
            if sent == 0:
                raise PrinterUnavailable(f"{self.t.description}: {reason(exc, 0)}") from exc
            raise interrupted(self.t.description, sent, total, reason(exc, 0)) from exc
        log.info("job %s: %d bytes written to %s", job_id, total, self.t.description)


class CupsTransport(Transport):
    """A CUPS queue, fed raw through ``lp`` (see the module docstring)."""

    def __init__(self, uri: CupsUri, timeout_s: float = 30.0) -> None:
        self.uri = uri
        self.timeout_s = timeout_s
        self.description = describe(uri)

    def connect(self) -> Connection:
        lp = shutil.which("lp")
        if lp is None:
            raise PrinterUnavailable(
                f"{self.description}: the `lp` command is missing; install CUPS's client "
                "(`apt install cups-client`)",
                PrinterFault.SETUP,
            )
        return _CupsConnection(self, lp)


class _CupsConnection(Connection):
    def __init__(self, transport: CupsTransport, lp: str) -> None:
        self.t = transport
        self.lp = lp

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        command = [self.lp, "-d", self.t.uri.name, "-o", "raw", "-t", job_id]
        try:
            done = subprocess.run(
                command, input=data, capture_output=True, timeout=self.t.timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PrinterUnavailable(f"{self.t.description}: `lp` failed: {exc}") from exc
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise PrinterUnavailable(
                f"{self.t.description}: CUPS refused the job: {said}; check `lpstat -p`"
            )
        log.info("job %s: %d bytes spooled to %s", job_id, len(data), self.t.description)


def transport_for(
    uri: PrinterUri, *, status_timeout_s: float = DEFAULT_STATUS_TIMEOUT_S
) -> Transport:
    if isinstance(uri, SerialUri):
        return SerialTransport(uri, status_timeout_s)
    if isinstance(uri, UsbUri):
        return UsbTransport(uri, status_timeout_s)
    if isinstance(uri, FileUri):
        return DeviceFileTransport(uri)
    if isinstance(uri, CupsUri):
        return CupsTransport(uri)
    raise TypeError(f"no local transport for {uri!r}")
