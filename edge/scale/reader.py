"""The scale reader: a supervised thread that keeps :class:`ScaleState` current.

Each step opens the port by path if it is not open (so a /dev/serial/by-id link that
now points at another ttyUSB is followed), reads what has arrived, and decodes it.

* No valid frame for ``stale_after_s`` (scale silent, unpowered, wrong format or baud
  rate): OFFLINE with the reason; the port stays open and readings resume as soon as
  valid frames arrive.
* The port vanishes (USB adapter pulled: hangup/EIO on read, or the path is gone on
  open): OFFLINE at once, the port is closed, and the worker retries with a short
  back-off (0.1 s doubling to 1 s), so readings resume within about a second of the
  port coming back, without restarting anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import threading
import time
from collections import deque
from collections.abc import Callable

import serial

from edge.scale.state import ScaleState, ScaleStatus
from edge.scale.stgs import Reading, StgsParser, printable
from edge.worker import Backoff, Worker

RECENT_FRAMES = 10
READ_TIMEOUT_S = 0.1


def open_failure_reason(port: str, exc: BaseException) -> str:
    """Plain words for why ``port`` could not be opened."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return f"port {port} not found"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to open port {port} (is the user in the dialout group?)"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return f"port {port} is in use by another program"
    return f"cannot open port {port}: {exc}"


class ScaleReader(Worker):
    name = "scale"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        stale_after_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(Backoff(base_s=0.1, cap_s=1.0))
        self.port = port
        self.stale_after_s = stale_after_s
        self._clock = clock
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        # Validate the line settings now (a ValueError here is a configuration error,
        # not something to retry forever); port=None does not open anything.
        serial.Serial(None, baudrate, bytesize, parity, stopbits)
        self._serial: serial.Serial | None = None
        self._parser = StgsParser()
        self._recent: deque[str] = deque(maxlen=RECENT_FRAMES)
        self._opened_at = 0.0
        self._last_valid_at: float | None = None
        self._junk_bytes = 0  # bytes received since the last valid frame (or the open)
        self._lock = threading.Lock()
        self._state = ScaleState(
            status=ScaleStatus.OFFLINE,
            weight_g=None,
            net=False,
            updated_at=None,
            port=port,
            error="reader not started",
            recent_frames=(),
        )

    @property
    def state(self) -> ScaleState:
        with self._lock:
            return self._state

    def step(self) -> None:
        ser = self._serial if self._serial is not None else self._open()
        try:
            data = ser.read(ser.in_waiting or 1)
            if data:
                data += ser.read(ser.in_waiting)
        except (serial.SerialException, OSError) as exc:
            self._set_offline(f"port {self.port} disconnected: {exc}")
            raise
        self._consume(data, self._clock())

    def on_failure(self, exc: BaseException) -> None:
        self._close_port()
        if not isinstance(exc, serial.SerialException | OSError):  # those set their reason
            self._set_offline(f"scale reader failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._close_port()
        self._set_offline("reader stopped")

    # -- internals -------------------------------------------------------------------

    def _open(self) -> serial.Serial:
        try:
            ser = serial.Serial(
                self.port,
                self.baudrate,
                self.bytesize,
                self.parity,
                self.stopbits,
                timeout=READ_TIMEOUT_S,
                exclusive=True,
            )
        except (serial.SerialException, OSError) as exc:
            self._set_offline(open_failure_reason(self.port, exc))
            raise
        try:
            ser.reset_input_buffer()  # frames queued while nobody read are stale
        except (serial.SerialException, OSError) as exc:
            ser.close()
            self._set_offline(f"port {self.port} disconnected: {exc}")
            raise
        self._serial = ser
        self._parser.reset()
        self._opened_at = self._clock()
        self._junk_bytes = 0
        self._set_offline(f"port {self.port} open, waiting for the first frame")
        return ser

    def _close_port(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _consume(self, data: bytes, now: float) -> None:
        lines = self._parser.feed_lines(data)
        latest: Reading | None = None
        for raw, reading in lines:
            self._recent.append(printable(raw))
            if reading is not None:
                latest = reading
        if latest is not None:
            self._last_valid_at = now
            self._junk_bytes = 0
            self._publish_reading(latest, now)
            return
        self._junk_bytes += len(data)
        if lines:
            with self._lock:
                self._state = dataclasses.replace(self._state, recent_frames=tuple(self._recent))
        since = max(self._opened_at, self._last_valid_at or self._opened_at)
        if now - since >= self.stale_after_s:
            reason = f"no valid frame for {self.stale_after_s:.1f} s"
            if self._junk_bytes:
                reason += " (data arrives but is not ST,GS frames: check format and baud rate)"
            self._set_offline(reason)

    def _publish_reading(self, reading: Reading, now: float) -> None:
        if reading.status == "overload":
            status, error = ScaleStatus.OVERLOAD, None
        elif reading.status == "error":
            status, error = ScaleStatus.OFFLINE, f"scale reports an error: {reading.text}"
        else:
            status = ScaleStatus.STABLE if reading.stable else ScaleStatus.UNSTABLE
            error = None
        with self._lock:
            previous = self._state
            weighing = previous.weighing
            if status is ScaleStatus.STABLE and (
                previous.status is not ScaleStatus.STABLE or previous.weight_g != reading.weight_g
            ):
                weighing += 1
            self._state = ScaleState(
                weighing=weighing,
                status=status,
                weight_g=reading.weight_g if status is not ScaleStatus.OFFLINE else None,
                net=reading.net,
                updated_at=now,
                port=self.port,
                error=error,
                recent_frames=tuple(self._recent),
                frame=reading.text,
            )

    def _set_offline(self, reason: str) -> None:
        with self._lock:
            self._state = ScaleState(
                weighing=self._state.weighing,
                status=ScaleStatus.OFFLINE,
                weight_g=None,
                net=False,
                updated_at=self._last_valid_at,
                port=self.port,
                error=reason,
                recent_frames=tuple(self._recent),
            )
