"""The scale reader: a supervised thread that keeps :class:`ScaleState` current.

It speaks any family of :mod:`edge.scale.protocols`. Each step opens the port by path if
it is not open (so a /dev/serial/by-id link that now points at another ttyUSB is
followed), writes what is due (a command from the API, the poll command of a polled
family), waits for data with ``select`` (at most :data:`READ_TIMEOUT_S`, so a frame is
handled the moment it arrives), and decodes it. Every valid reading goes through the
stability window (:mod:`edge.scale.stability`).

* Streaming family, no valid frame for ``stale_after_s`` (silent, unpowered, wrong
  format or baud rate): OFFLINE with the reason; the port stays open and readings resume
  as soon as valid frames arrive.
* Polled family: the poll command goes out every ``poll_interval_s``; no valid answer
  for ``stale_after_s``: OFFLINE.
* ``silent_when_unchanged`` (a scale that sends, or answers a poll, only when the weight
  changes, e.g. Adam): the scale must answer within ``stale_after_s`` of the port
  opening, as any other; after that, silence means "the same weight" and the last
  reading stays valid while the port is there (polls go on, so a new weight shows at
  once). Such a scale switched off behind a USB adapter that stays plugged in cannot be
  told from an unchanged one: its last reading stays on screen.
* The port vanishes (USB adapter pulled: hangup/EIO on read, or the path is gone on
  open): OFFLINE at once, the port is closed, and the worker retries with a short
  back-off (0.1 s doubling to 1 s), so readings resume within about a second of the
  port coming back, without restarting anything.

Tare and zero: :meth:`ScaleReader.send_command` hands bytes to the reader thread (the
only one touching the port) and waits until they are written. A software tare
(:meth:`ScaleReader.set_software_tare`) is subtracted from every reading shown; the
reader drops it by itself when the scale starts reporting a net weight (the indicator
took the tare) and then tells ``on_software_tare_dropped``, so a durable copy can follow.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path

import serial

from edge.faults import ScaleFault, scale_open_fault
from edge.scale.protocols import ProtocolSpec, Reading, get_protocol, printable
from edge.scale.stability import StabilityTracker, StabilityWindow
from edge.scale.state import WEIGHING_STATUSES, ScaleState, ScaleStatus, TareSource
from edge.scale.wirelog import WireLog, escape
from edge.worker import Backoff, Worker

log = logging.getLogger(__name__)

RECENT_FRAMES = 10
READ_TIMEOUT_S = 0.05
DEFAULT_POLL_INTERVAL_S = 0.2


class CommandError(Exception):
    """A command could not be written to the scale (offline, port gone, timed out)."""


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
        protocol: ProtocolSpec | str = "stgs",
        baudrate: int | None = None,
        bytesize: int | None = None,
        parity: str | None = None,
        stopbits: int | None = None,
        stale_after_s: float = 2.0,
        window: StabilityWindow | None = None,
        poll_interval_s: float | None = None,
        poll_command: bytes | None = None,
        silent_when_unchanged: bool | None = None,
        overload_above_g: int | None = None,
        unit: str | None = None,
        wire_log: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_software_tare_dropped: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(Backoff(base_s=0.1, cap_s=1.0))
        self.port = port
        self.protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
        spec = self.protocol
        self.stale_after_s = stale_after_s
        self._clock = clock
        self.baudrate = baudrate or spec.line.baudrate
        self.bytesize = bytesize or spec.line.bytesize
        self.parity = parity or spec.line.parity
        self.stopbits = stopbits or spec.line.stopbits
        # Validate the line settings now (a ValueError here is a configuration error,
        # not something to retry forever); port=None does not open anything.
        serial.Serial(None, self.baudrate, self.bytesize, self.parity, self.stopbits)
        self.polled = spec.mode == "poll"
        self.poll_command = poll_command or spec.poll_command
        if self.polled and not self.poll_command:
            raise ValueError(f"protocol {spec.name!r} is polled but has no poll command")
        self.poll_interval_s = poll_interval_s or DEFAULT_POLL_INTERVAL_S
        self.silent_when_unchanged = (
            spec.sends_on_change_only if silent_when_unchanged is None else silent_when_unchanged
        )
        self._tracker = StabilityTracker(
            window,
            has_flag=spec.has_stability_flag,
            hold_last=self.silent_when_unchanged,
            overload_above_g=overload_above_g,
        )
        self._wire = WireLog(wire_log) if wire_log else None
        self._serial: serial.Serial | None = None
        self._parser = spec.parser()
        self._parser.assume_unit(unit)  # for frames without a unit, until one has one
        self._recent: deque[str] = deque(maxlen=RECENT_FRAMES)
        self._commands: queue.SimpleQueue[tuple[bytes, Future[None]]] = queue.SimpleQueue()
        self._opened_at = 0.0
        self._next_poll = 0.0
        self._last_valid_at: float | None = None
        self._junk_bytes = 0  # bytes received since the last valid frame (or the open)
        self._reading: Reading | None = None
        self._software_tare: int | None = None
        self._on_tare_dropped = on_software_tare_dropped  # called from the reader thread
        # a tare the scale reported (tare command reply) while its weight frames may carry
        # no net flag (MT-SICS); dropped by a gross frame once the family has shown a flag
        self._scale_tare: int | None = None
        self._net_flag_seen = False
        self._lock = threading.Lock()
        self._watchers: tuple[Callable[[ScaleState], None], ...] = ()
        self._published: ScaleState  # behind the _state property (which tells the watchers)
        self._state = ScaleState(
            status=ScaleStatus.OFFLINE,
            weight_g=None,
            net=False,
            updated_at=None,
            port=port,
            error="reader not started",
            recent_frames=(),
            protocol=spec.name,
            fault=ScaleFault.STOPPED,
        )

    @property
    def state(self) -> ScaleState:
        with self._lock:
            return self._state

    @property
    def _state(self) -> ScaleState:
        return self._published

    @_state.setter
    def _state(self, state: ScaleState) -> None:
        """Every new state (set under the lock) goes to the watchers at once."""
        self._published = state
        for watcher in self._watchers:
            watcher(state)

    def watch(self, watcher: Callable[[ScaleState], None]) -> Callable[[], None]:
        """Call ``watcher(state)`` with every new state; returns the function that stops it.

        Called from whichever thread changed the state (the reader's, or an API thread
        setting a software tare), under the reader's lock: a watcher must be quick, must
        not block and must not read :attr:`state` (it has the state it needs).
        """
        self._watchers = (*self._watchers, watcher)

        def unwatch() -> None:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)

        return unwatch

    @property
    def software_tare_g(self) -> int | None:
        with self._lock:
            return self._software_tare

    # -- called from other threads ----------------------------------------------------

    def send_command(self, data: bytes, timeout: float = 1.0) -> None:
        """Write ``data`` to the scale from the reader thread; return once written.

        CommandError if the port is not open or the bytes were not written within
        ``timeout`` (then they never will be: a late tare is worse than none).
        """
        if self._serial is None or self._thread is None:
            raise CommandError(f"port {self.port} is not open")
        done: Future[None] = Future()
        self._commands.put((data, done))
        try:
            done.result(timeout)
        except FutureTimeout:
            if done.cancel():
                raise CommandError(f"not sent within {timeout:.1f} s") from None
            done.result()  # being written right now: wait for it

    def set_software_tare(self, tare_g: int | None, *, if_weighing: int | None = None) -> bool:
        """Subtract ``tare_g`` from every reading shown (None clears it).

        With ``if_weighing``, only if the scale is still stable on that weighing (the
        weight the caller saw); False when it moved on.
        """
        with self._lock:
            if if_weighing is not None and (
                self._state.status is not ScaleStatus.STABLE or self._state.weighing != if_weighing
            ):
                return False
            self._software_tare = tare_g
            if self._reading is not None and self._state.status is not ScaleStatus.OFFLINE:
                self._state = self._build_locked(self._reading, self._state.status, None)
            else:
                source: TareSource | None = "software" if tare_g is not None else None
                self._state = replace(self._state, tare_g=tare_g, tare_source=source)
        log.info("software tare %s", f"set to {tare_g} g" if tare_g is not None else "cleared")
        return True

    # -- the reader thread -------------------------------------------------------------

    def step(self) -> None:
        ser = self._serial if self._serial is not None else self._open()
        try:
            self._write_due(ser)
            data = self._read(ser)
        except (serial.SerialException, OSError) as exc:
            self._set_offline(f"port {self.port} disconnected: {exc}", ScaleFault.DISCONNECTED)
            raise
        self._consume(data, self._now())

    def on_failure(self, exc: BaseException) -> None:
        self._close_port(f"closed after {type(exc).__name__}: {exc}")
        if not isinstance(exc, serial.SerialException | OSError):  # those set their reason
            self._set_offline(
                f"scale reader failed: {type(exc).__name__}: {exc}", ScaleFault.READER_FAILED
            )

    def close(self) -> None:
        self._close_port("reader stopped")
        self._set_offline("reader stopped", ScaleFault.STOPPED, quiet=True)
        if self._wire is not None:
            self._wire.close()

    # -- internals -------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock()

    def _open(self) -> serial.Serial:
        try:
            ser = serial.Serial(
                self.port,
                self.baudrate,
                self.bytesize,
                self.parity,
                self.stopbits,
                timeout=0,
                write_timeout=1.0,
                exclusive=True,
            )
        except (serial.SerialException, OSError) as exc:
            self._set_offline(open_failure_reason(self.port, exc), scale_open_fault(exc))
            raise
        try:
            ser.reset_input_buffer()  # frames queued while nobody read are stale
        except (serial.SerialException, OSError) as exc:
            ser.close()
            self._set_offline(f"port {self.port} disconnected: {exc}", ScaleFault.DISCONNECTED)
            raise
        self._serial = ser
        self._parser.reset()
        self._tracker.reset()
        with self._lock:
            self._scale_tare = None  # unknown after a reconnection: show what frames say
        now = self._now()
        self._opened_at = self._next_poll = now
        self._junk_bytes = 0
        if self._wire:
            line = f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
            self._wire.note(f"port {self.port} opened ({self.protocol.name}, {line})")
        self._set_offline(f"port {self.port} open, waiting for the first frame", ScaleFault.WAITING)
        return ser

    def _close_port(self, why: str) -> None:
        ser, self._serial = self._serial, None
        self._fail_commands(CommandError(f"port {self.port} closed"))
        if ser is not None:
            if self._wire:
                self._wire.note(f"port {self.port} {why}")
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _fail_commands(self, exc: Exception) -> None:
        while True:
            try:
                _, done = self._commands.get_nowait()
            except queue.Empty:
                return
            if done.set_running_or_notify_cancel():
                done.set_exception(exc)

    def _write(self, ser: serial.Serial, data: bytes) -> None:
        if self._wire:
            self._wire.sent(data)
        ser.write(data)

    def _write_due(self, ser: serial.Serial) -> None:
        while True:
            try:
                data, done = self._commands.get_nowait()
            except queue.Empty:
                break
            if not done.set_running_or_notify_cancel():
                continue  # the caller gave up: never send a late command
            try:
                self._write(ser, data)
            except BaseException as exc:
                done.set_exception(CommandError(f"write failed: {exc}"))
                raise
            done.set_result(None)
        now = self._now()
        if self.poll_command is not None and self.polled and now >= self._next_poll:
            self._write(ser, self.poll_command)
            self._next_poll += self.poll_interval_s  # a steady rate ...
            if self._next_poll <= now:  # ... but never a burst to catch up
                self._next_poll = now + self.poll_interval_s

    def _read(self, ser: serial.Serial) -> bytes:
        timeout = READ_TIMEOUT_S
        if self.polled:
            timeout = max(0.0, min(timeout, self._next_poll - self._now()))
        ready, _, _ = select.select([ser.fileno()], [], [], timeout)
        if not ready:
            return b""
        data = ser.read(ser.in_waiting or 1)  # a hung-up port raises here
        data += ser.read(ser.in_waiting)
        if self._wire:
            self._wire.received(data)
        return data

    def _consume(self, data: bytes, now: float) -> None:
        frames = self._parser.feed_frames(data) if data else []
        valid = False
        for raw, reading in frames:
            self._recent.append(printable(raw))
            if reading is None:
                continue
            valid = True
            if reading.status == "ok" and reading.weight_g is None and reading.tare_g is not None:
                self._tare_report(reading.tare_g)  # e.g. MT-SICS "T S 12.00 g"
            else:
                self._publish_reading(reading, self._tracker.observe(reading, now), now)
        if valid:
            self._last_valid_at = now
            self._junk_bytes = 0
            return
        self._junk_bytes += len(data)
        if frames:
            with self._lock:
                self._state = replace(self._state, recent_frames=tuple(self._recent))
        self._check_stale(now)

    def _check_stale(self, now: float) -> None:
        if self.silent_when_unchanged and self.state.status is not ScaleStatus.OFFLINE:
            # silence is the same weight: it may settle by time alone
            if self._tracker.verdict is ScaleStatus.SETTLING and self._reading is not None:
                verdict = self._tracker.status(now)
                if verdict is ScaleStatus.STABLE:
                    self._publish_reading(self._reading, verdict, now, fresh=False)
            return
        since = max(self._opened_at, self._last_valid_at or self._opened_at)
        if now - since < self.stale_after_s:
            return
        if self.polled:
            reason = (
                f"no answer to {escape(self.poll_command or b'')} for {self.stale_after_s:.1f} s"
            )
        else:
            reason = f"no valid frame for {self.stale_after_s:.1f} s"
        if self._junk_bytes:
            reason += (
                f" (data arrives but is not {self.protocol.name} frames: "
                "check the protocol, baud rate and line settings)"
            )
        self._set_offline(reason, ScaleFault.GARBLED if self._junk_bytes else ScaleFault.SILENT)

    def _tare_report(self, tare_g: int) -> None:
        """The scale says what tare it holds (a reply to its tare command)."""
        with self._lock:
            self._scale_tare = tare_g or None
            if self._reading is not None and self._state.status is not ScaleStatus.OFFLINE:
                self._state = self._build_locked(self._reading, self._state.status, None)

    def forget_scale_tare(self) -> None:
        """The scale was zeroed: a tare it reported earlier is gone, from the state shown too
        (a reading that arrived before this call must not keep showing the old tare)."""
        with self._lock:
            self._scale_tare = None
            state, reading = self._state, self._reading
            if state.tare_source == "scale" and reading is not None and not reading.net:
                self._state = replace(state, tare_g=None, tare_source=None, net=False)

    def _publish_reading(
        self, reading: Reading, verdict: ScaleStatus, now: float, *, fresh: bool = True
    ) -> None:
        if reading.status == "error":
            self._set_offline(f"scale reports an error: {reading.text}", ScaleFault.REPORTS_ERROR)
            return
        dropped = None
        with self._lock:
            if reading.net and self._software_tare is not None:
                log.warning("the scale reports a net weight: software tare dropped")
                dropped, self._software_tare = self._software_tare, None
            if reading.weight_g is not None:  # a weight frame: does it say gross or net?
                if reading.net:
                    self._net_flag_seen = True
                    self._scale_tare = reading.tare_g or self._scale_tare
                elif self._net_flag_seen:
                    self._scale_tare = None
            was_offline = self._state.status is ScaleStatus.OFFLINE
            self._reading = reading
            self._state = self._build_locked(reading, verdict, now if fresh else None)
        if was_offline:
            log.info("scale %s reading again (%s)", self.port, self.protocol.name)
        if dropped is not None and self._on_tare_dropped is not None:
            self._on_tare_dropped(dropped)  # outside the lock: it may write to a database

    def _build_locked(self, reading: Reading, status: ScaleStatus, now: float | None) -> ScaleState:
        previous = self._state
        tare = self._software_tare
        weight = reading.weight_g if status in WEIGHING_STATUSES else None
        if weight is not None and tare is not None:
            weight -= tare
        weighing = previous.weighing
        if status is ScaleStatus.STABLE and (
            previous.status is not ScaleStatus.STABLE or previous.weight_g != weight
        ):
            weighing += 1
        source: TareSource | None = None
        tare_g, net = None, False
        if tare is not None:
            tare_g, source, net = tare, "software", True
        elif reading.net or self._scale_tare is not None:
            tare_g, source, net = reading.tare_g or self._scale_tare, "scale", True
        return ScaleState(
            status=status,
            weight_g=weight,
            net=net,
            updated_at=now if now is not None else previous.updated_at,
            port=self.port,
            error=None,
            recent_frames=tuple(self._recent),
            frame=reading.text,
            weighing=weighing,
            tare_g=tare_g,
            tare_source=source,
            protocol=self.protocol.name,
        )

    def _set_offline(self, reason: str, fault: ScaleFault, *, quiet: bool = False) -> None:
        """OFFLINE: ``reason`` (raw, for the log) and ``fault`` (what staff are told)."""
        with self._lock:
            previous = self._state
            self._state = ScaleState(
                weighing=previous.weighing,
                status=ScaleStatus.OFFLINE,
                weight_g=None,
                net=False,
                updated_at=self._last_valid_at,
                port=self.port,
                error=reason,
                recent_frames=tuple(self._recent),
                tare_g=self._software_tare,
                tare_source="software" if self._software_tare is not None else None,
                protocol=self.protocol.name,
                fault=fault,
            )
        if previous.status is not ScaleStatus.OFFLINE:
            self._tracker.reset()
            if quiet:
                return
            frames = " | ".join(self._recent) or "none"
            log.warning("scale %s offline: %s; last frames: %s", self.port, reason, frames)
        elif previous.fault is not fault and not quiet:  # still offline, for another reason
            log.info("scale %s offline: %s", self.port, reason)
