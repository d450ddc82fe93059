"""A simulated "ST,GS" scale on a pseudo-terminal, for development and tests.

The simulator owns a pty pair and writes real frames (:func:`encode_frame`) into the
master side every ``interval_s``. ``link`` is a symlink to the slave device (like a
/dev/serial/by-id name), replaced atomically, so a reader opens ``link`` exactly as it
would open a real scale.

* The simulator keeps its own slave fd open, so the pty stays valid while no reader
  has it open. Frames then queue up in the pty: a reader must flush its input after
  opening (the real :class:`~edge.scale.reader.ScaleReader` does).
* Writes to the master are non-blocking: when the pty buffer is full the frame is
  dropped (partially written frames happen, as on a real line), and the thread never
  blocks.
* :meth:`unplug` closes both ends and removes the link: the kernel hangs up a slave
  that a reader has open (select reports it readable, read returns EOF or EIO, which
  pyserial raises as SerialException), and opening the link fails (no such file).
  :meth:`replug` creates a new pty and points the link at it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import tty
from pathlib import Path

from edge.scale.stgs import encode_frame


class ScaleSimulator:
    def __init__(
        self,
        link: Path,
        *,
        weight_g: int = 0,
        interval_s: float = 0.1,
        settle_frames: int = 3,
    ) -> None:
        self.link = Path(link)
        self.interval_s = interval_s
        self.settle_frames = settle_frames
        self.frames_sent = 0
        self.frames_dropped = 0
        self._weight_g = weight_g
        self._settle_left = 0
        self._unstable_hold = False
        self._overload = False
        self._silent = False
        self._master: int | None = None
        self._slave: int | None = None
        self._device: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._master is None:
                self._plug_locked()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="scale-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending, close the pty and remove the link."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            self._unplug_locked()

    def unplug(self) -> None:
        """The USB cable is pulled: the port disappears (no-op if already unplugged)."""
        with self._lock:
            self._unplug_locked()

    def replug(self) -> None:
        """A new port appears and the link points to it (no-op if already plugged)."""
        with self._lock:
            if self._master is None:
                self._plug_locked()

    # -- scale behaviour ---------------------------------------------------------------

    def set_weight(self, weight_g: int) -> None:
        """New load: the next ``settle_frames`` frames are unstable, then stable."""
        with self._lock:
            self._weight_g = weight_g
            self._settle_left = self.settle_frames

    def set_unstable(self, unstable: bool) -> None:
        """Hold the reading unstable (someone leaning on the platform) until cleared."""
        with self._lock:
            self._unstable_hold = unstable

    def set_overload(self, on: bool) -> None:
        with self._lock:
            self._overload = on

    def silence(self, on: bool) -> None:
        """Stop (or resume) sending frames without unplugging."""
        with self._lock:
            self._silent = on

    def send_noise(self, data: bytes) -> None:
        """Raw bytes into the line (dropped if unplugged or the buffer is full)."""
        with self._lock:
            self._write_locked(data)

    @property
    def device(self) -> str:
        """The current (or, when unplugged, the last) slave device path."""
        with self._lock:
            if self._device is None:
                raise RuntimeError("the simulator has no port yet; call start()")
            return self._device

    @property
    def plugged(self) -> bool:
        with self._lock:
            return self._master is not None

    @property
    def weight_g(self) -> int:
        with self._lock:
            return self._weight_g

    @property
    def stable(self) -> bool:
        with self._lock:
            return not (self._unstable_hold or self._settle_left or self._overload)

    # -- internals ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._master is not None and not self._silent:
                    if self._write_locked(self._next_frame_locked()):
                        self.frames_sent += 1
                    else:
                        self.frames_dropped += 1
            self._stop.wait(self.interval_s)

    def _next_frame_locked(self) -> bytes:
        if self._overload:
            return encode_frame(None, overload=True)
        stable = not self._unstable_hold and self._settle_left == 0
        if self._settle_left > 0:
            self._settle_left -= 1
        return encode_frame(self._weight_g, stable=stable)

    def _write_locked(self, data: bytes) -> bool:
        """Write without blocking; True if every byte went out."""
        if self._master is None:
            return False
        try:
            return os.write(self._master, data) == len(data)
        except OSError:  # BlockingIOError when the pty buffer is full
            return False

    def _plug_locked(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no CR/LF translation, no echo
            os.set_blocking(master, False)
            device = os.ttyname(slave)
            self._point_link(device)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self._device = master, slave, device

    def _point_link(self, target: str) -> None:
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.{secrets.token_hex(4)}.tmp")
        os.symlink(target, tmp)
        try:
            os.replace(tmp, self.link)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _unplug_locked(self) -> None:
        if self._master is None:
            return
        self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
