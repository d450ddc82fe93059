"""Getting a finished ESC/POS job to a printer: raw TCP (port 9100) or a folder (the demo's
simulated printer). A transport either delivers the whole job or raises
:class:`PrinterUnavailable`, in which case the caller keeps the job queued.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Protocol

from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Network

log = logging.getLogger(__name__)

_SAFE_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


class PrinterUnavailable(Exception):
    """The printer cannot be reached now; the job was not (or not surely) delivered and must
    stay queued. The message says what failed and what to do."""


class Transport(Protocol):
    description: str

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        """Deliver one job; raise PrinterUnavailable when it was not delivered."""
        ...


def _reason(exc: BaseException, timeout_s: float) -> str:
    """Short human text for a socket error."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the printer"
    if isinstance(exc, BrokenPipeError):
        return "connection closed by the printer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


class _Network(Network):  # type: ignore[misc]  # python-escpos has no type hints
    """python-escpos ``Network`` with a fixed ``open()``: 3.1 drops the socket unclosed when
    the connect fails (a ResourceWarning, an error under ``-W error``), keeps the OSError
    only as implicit context and only tries IPv4. ``_raw`` (``sendall``) and ``close`` are
    python-escpos's own."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self.device = None
            raise DeviceNotFoundError(f"Could not open socket for {self.host}: {exc}") from exc
        self.device = sock


class NetworkTransport:
    """Raw TCP printing (port 9100, "JetDirect") through python-escpos's ``Network``.

    ``open()`` connects (on refusal, timeout, unreachable host or unknown name it raises
    ``DeviceNotFoundError``; python-escpos neither prints nor warns here, but see
    :class:`_Network`) and ``Network._raw()`` is ``socket.sendall``, which either hands
    every byte to the kernel or raises. That alone does not mean the printer got them, and
    ``Network.close()`` (``shutdown(SHUT_RDWR)``, errors swallowed) could turn the end of
    the job into a reset. So after ``sendall`` this class half-closes the socket (FIN after
    the last byte), then waits until the printer's TCP stack has acknowledged every byte
    (Linux ``SIOCOUTQ`` = 0) or the printer closed its side, reading and discarding
    anything it says meanwhile; only then is the job reported as sent.
    """

    def __init__(self, host: str, port: int = 9100, timeout_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.description = f"network printer {host}:{port}"

    def _unavailable(self, what: str, exc: BaseException | str) -> PrinterUnavailable:
        reason = exc if isinstance(exc, str) else _reason(exc, self.timeout_s)
        return PrinterUnavailable(
            f"printer {self.host}:{self.port} {what}: {reason}; "
            "check the printer's power and network cable, and its address"
        )

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        printer = _Network(host=self.host, port=self.port, timeout=self.timeout_s)
        try:
            try:
                printer.open()
            except DeviceNotFoundError as exc:
                cause = exc.__cause__ or exc.__context__ or exc
                raise self._unavailable("not reachable", cause) from exc
            sock = printer.device
            assert isinstance(sock, socket.socket)
            try:
                printer._raw(data)  # socket.sendall: every byte or an exception
                sock.shutdown(socket.SHUT_WR)  # FIN after the last byte: end of job
            except OSError as exc:
                raise self._unavailable("dropped the connection while printing", exc) from exc
            self._wait_delivered(sock, len(data))
        finally:
            printer.close()
        log.info("job %s: %d bytes sent to %s", job_id, len(data), self.description)

    def _wait_delivered(self, sock: socket.socket, size: int) -> None:
        deadline = time.monotonic() + self.timeout_s
        peer_closed = False
        while True:
            unacked = _unacked_bytes(sock)
            if unacked == 0 or (peer_closed and unacked is None):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if unacked is None:  # cannot tell on this OS: every byte was handed over
                    return
                raise self._unavailable(
                    "stopped taking the job",
                    f"{unacked} of {size} bytes not acknowledged within {self.timeout_s:g} s",
                )
            if peer_closed:
                time.sleep(min(remaining, 0.01))
                continue
            sock.settimeout(min(remaining, 0.05))
            try:
                peer_closed = not sock.recv(4096)  # discard status bytes; b"" = printer closed
            except TimeoutError:
                continue
            except OSError as exc:  # a reset: the printer dropped bytes it had not read
                raise self._unavailable("dropped the connection while printing", exc) from exc


def _unacked_bytes(sock: socket.socket) -> int | None:
    """Bytes (plus a queued FIN) the peer has not acknowledged yet; None if unknown."""
    request = getattr(termios, "TIOCOUTQ", None)  # == SIOCOUTQ for TCP sockets on Linux
    if request is None:
        return None
    try:
        buf = fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0")
    except OSError:
        return None
    return int.from_bytes(buf, sys.byteorder, signed=True)


class FileTransport:
    """The simulated printer: ``<dir>/<job_id>.png`` (preview) then ``<dir>/<job_id>.bin``
    (the ESC/POS bytes), each written to a temporary file, fsynced and renamed into place,
    so a reader never sees a partial file and a ``.bin`` always has its ``.png``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.description = f"simulated printer (folder {self.directory})"

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        if not _SAFE_JOB_ID.fullmatch(job_id):
            raise ValueError(f"job id {job_id!r} is not a safe file name")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.directory / f"{job_id}.png", preview_png)
            _write_atomic(self.directory / f"{job_id}.bin", data)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise PrinterUnavailable(
                f"simulated printer folder {self.directory} not writable: "
                f"{_reason(exc, 0)}; check free disk space and permissions"
            ) from exc
        log.info("job %s: %d bytes written to %s", job_id, len(data), self.description)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable (a power cut must not undo a reported print)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
