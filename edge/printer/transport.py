"""Getting a finished ESC/POS job to a printer: one transport per URI scheme
(:mod:`edge.printer.uri`): raw TCP and the simulated folder printer here, serial, USB,
device files and CUPS in :mod:`edge.printer.devices`.

A transport opens a :class:`Connection`; on it the worker first asks the printer's status
(:mod:`edge.printer.status`; connections that cannot read say "unknown", never "fine"),
then sends the job. Sending either delivers the whole job or raises:

* :class:`PrinterUnavailable`: nothing of the job reached the printer; it stays queued and
  is sent again when the printer is back;
* :class:`PrinterInterrupted` (a subclass): the connection failed after part of the job
  may have reached the printer (switched off mid-job). The label may be half printed, so
  the job is held until staff confirm a reprint: a label is never doubled silently.
"""

from __future__ import annotations

import fcntl
import logging
import re
import socket
import sys
import termios
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Network

from edge.faults import PrinterFault
from edge.files import fsync_dir, write_atomic
from edge.printer import status as st
from edge.printer.uri import FileUri, PrinterUri, TcpUri

log = logging.getLogger(__name__)

_SAFE_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
CHUNK = 16384
DEFAULT_STATUS_TIMEOUT_S = 0.5


class PrinterUnavailable(Exception):
    """The printer cannot be reached now; the job was not delivered and must stay queued.
    The message says what failed and what to do (in English, for the log); ``fault``, when
    given, is the :class:`edge.faults.PrinterFault` staff are told about (else it is
    sorted from the OS error that caused this one, :func:`edge.faults.printer_fault_of`)."""

    def __init__(self, message: str, fault: PrinterFault | None = None) -> None:
        super().__init__(message)
        self.fault = fault


class PrinterInterrupted(PrinterUnavailable):
    """The connection failed after ``sent`` of ``total`` bytes were handed over: the label
    may be partly printed. Hold the job until staff confirm a reprint."""

    def __init__(self, message: str, sent: int, total: int) -> None:
        super().__init__(message, PrinterFault.INTERRUPTED)
        self.sent = sent
        self.total = total


class Connection(ABC):
    """One open connection to a printer: ask its status, send one job, close."""

    can_read = False

    def status(self) -> st.StatusReport:
        """DLE EOT 1/2/4 (3) replies; unknown when the connection cannot read."""
        return st.query(self.exchange) if self.can_read else st.UNKNOWN

    def exchange(self, request: bytes) -> int | None:  # pragma: no cover - read-only links
        """Send one status request; the reply byte, or None when none came in time."""
        return None

    @abstractmethod
    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        """Deliver the whole job or raise PrinterUnavailable / PrinterInterrupted."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Transport(ABC):
    description: str = "printer"
    can_read = False  # the connection can read the printer's status replies

    @abstractmethod
    def connect(self) -> Connection:
        """Open a connection; PrinterUnavailable when the printer cannot be reached."""

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        """Open, deliver one job (no status check), close."""
        with self.connect() as conn:
            conn.send(job_id, data, preview_png)

    def status(self) -> st.StatusReport:
        """Open, ask the status, close."""
        with self.connect() as conn:
            return conn.status()


def reason(exc: BaseException, timeout_s: float) -> str:
    """Short human text for an OS error."""
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


def interrupted(who: str, sent: int, total: int, why: str) -> PrinterInterrupted:
    return PrinterInterrupted(
        f"{who} failed after {sent} of {total} bytes were sent: {why}; the label may be partly "
        "printed: check the printer, and print it again from the page if no whole label "
        "came out",
        sent,
        total,
    )


class _Network(Network):  # type: ignore[misc]  # python-escpos has no type hints
    """python-escpos ``Network`` with a fixed ``open()``: 3.1 drops the socket unclosed when
    the connect fails (a ResourceWarning, an error under ``-W error``), keeps the OSError
    only as implicit context and only tries IPv4. ``close`` is python-escpos's own."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self.device = None
            raise DeviceNotFoundError(f"Could not open socket for {self.host}: {exc}") from exc
        self.device = sock


class NetworkTransport(Transport):
    """Raw TCP printing (port 9100, "JetDirect"): the connection is python-escpos's
    ``Network`` (see :class:`_Network`), status and job go over the same socket.

    Status: ``DLE EOT n`` then one reply byte within ``status_timeout_s``; bytes that are
    not reply-shaped (automatic status back, noise) are skipped.

    Job: sent in chunks, counting the bytes the kernel took; then the socket is half-closed
    (FIN after the last byte) and the transport waits until the printer's TCP stack has
    acknowledged every byte (Linux ``SIOCOUTQ`` = 0) or the printer closed its side, reading
    and discarding what it says meanwhile; only then is the job sent. A failure before any
    job byte was handed over is :class:`PrinterUnavailable`; after, it is
    :class:`PrinterInterrupted`, unless ``SIOCOUTQ`` shows the printer acknowledged none.
    """

    can_read = True

    def __init__(
        self,
        host: str,
        port: int = 9100,
        timeout_s: float = 5.0,
        status_timeout_s: float = DEFAULT_STATUS_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.status_timeout_s = status_timeout_s
        shown = f"[{host}]" if ":" in host else host
        self.name = f"printer {shown}:{port}"
        self.description = f"network printer {shown}:{port}"

    def unavailable(
        self, what: str, exc: BaseException | str, fault: PrinterFault | None = None
    ) -> PrinterUnavailable:
        why = exc if isinstance(exc, str) else reason(exc, self.timeout_s)
        return PrinterUnavailable(
            f"{self.name} {what}: {why}; "
            "check the printer's power and network cable, and its address",
            fault,
        )

    def connect(self) -> _NetworkConnection:
        printer = _Network(host=self.host, port=self.port, timeout=self.timeout_s)
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            cause = exc.__cause__ or exc.__context__ or exc
            raise self.unavailable("not reachable", cause) from exc
        return _NetworkConnection(self, printer)


class _NetworkConnection(Connection):
    can_read = True

    def __init__(self, transport: NetworkTransport, printer: _Network) -> None:
        self.t = transport
        self.printer = printer
        sock = printer.device
        assert isinstance(sock, socket.socket)
        self.sock = sock

    def close(self) -> None:
        self.printer.close()

    def exchange(self, request: bytes) -> int | None:
        sock = self.sock
        try:
            sock.setblocking(False)
            try:
                while sock.recv(4096):  # drop what the printer said before we asked
                    pass
            except BlockingIOError:
                pass
            sock.settimeout(self.t.timeout_s)
            sock.sendall(request)
            deadline = time.monotonic() + self.t.status_timeout_s
            while (remaining := deadline - time.monotonic()) > 0:
                sock.settimeout(remaining)
                try:
                    got = sock.recv(1)
                except TimeoutError:
                    break
                if not got:
                    raise self.t.unavailable(
                        "closed the connection", "while asked its status", PrinterFault.DROPPED
                    )
                if st.is_reply(got[0]):
                    return got[0]
        except OSError as exc:
            raise self.t.unavailable("dropped the connection", exc) from exc
        finally:
            sock.settimeout(self.t.timeout_s)
        return None

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        sock, total, sent = self.sock, len(data), 0
        view = memoryview(data)
        try:
            while sent < total:
                sent += sock.send(view[sent : sent + CHUNK])
            sock.shutdown(socket.SHUT_WR)  # FIN after the last byte: end of job
        except OSError as exc:
            raise self._failed(sent, total, exc) from exc
        self._wait_delivered(total)
        log.info("job %s: %d bytes sent to %s", job_id, total, self.t.description)

    def _failed(self, sent: int, total: int, exc: BaseException | str) -> PrinterUnavailable:
        why = exc if isinstance(exc, str) else reason(exc, self.t.timeout_s)
        if sent == 0:
            return self.t.unavailable("dropped the connection before the job", why)
        return interrupted(self.t.name, sent, total, why)

    def _wait_delivered(self, size: int) -> None:
        sock = self.sock
        deadline = time.monotonic() + self.t.timeout_s
        peer_closed = False
        while True:
            unacked = _unacked_bytes(sock)
            if unacked == 0 or (peer_closed and unacked is None):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if unacked is None:  # cannot tell on this OS: every byte was handed over
                    return
                acked = max(0, size - unacked + 1)  # +1: the queued FIN counts in SIOCOUTQ
                why = f"{unacked} bytes not acknowledged within {self.t.timeout_s:g} s"
                if acked == 0:
                    raise self.t.unavailable("stopped taking the job", why, PrinterFault.TIMEOUT)
                raise interrupted(self.t.name, acked, size, why)
            if peer_closed:
                time.sleep(min(remaining, 0.01))
                continue
            sock.settimeout(min(remaining, 0.05))
            try:
                peer_closed = not sock.recv(4096)  # discard status bytes; b"" = printer closed
            except TimeoutError:
                continue
            except OSError as exc:  # a reset: the printer dropped bytes it had not read
                raise self._failed(size, size, exc) from exc


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


class FileTransport(Transport):
    """The simulated printer: ``<dir>/<job_id>.png`` (preview) then ``<dir>/<job_id>.bin``
    (the ESC/POS bytes), each written to a temporary file, fsynced and renamed into place,
    so a reader never sees a partial file and a ``.bin`` always has its ``.png``. It cannot
    answer status queries: its status is unknown."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.description = f"simulated printer (folder {self.directory})"

    def connect(self) -> Connection:
        return _FolderConnection(self)


class _FolderConnection(Connection):
    def __init__(self, transport: FileTransport) -> None:
        self.t = transport

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        directory = self.t.directory
        if not _SAFE_JOB_ID.fullmatch(job_id):
            raise ValueError(f"job id {job_id!r} is not a safe file name")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Durable before the job is reported printed (a power cut must not undo it).
            write_atomic(directory / f"{job_id}.png", preview_png, sync_dir=False)
            write_atomic(directory / f"{job_id}.bin", data, sync_dir=False)
            fsync_dir(directory)
        except OSError as exc:
            raise PrinterUnavailable(
                f"simulated printer folder {directory} not writable: "
                f"{reason(exc, 0)}; check free disk space and permissions",
                PrinterFault.FOLDER,
            ) from exc
        log.info("job %s: %d bytes written to %s", job_id, len(data), self.t.description)


def transport_for(
    uri: PrinterUri, *, status_timeout_s: float = DEFAULT_STATUS_TIMEOUT_S
) -> Transport:
    """The transport for a parsed printer URI."""
    if isinstance(uri, TcpUri):
        return NetworkTransport(uri.host, uri.port, uri.timeout_s, status_timeout_s)
    if isinstance(uri, FileUri) and uri.folder:
        return FileTransport(uri.path)
    from edge.printer import devices  # serial, USB, device file, CUPS

    return devices.transport_for(uri, status_timeout_s=status_timeout_s)
