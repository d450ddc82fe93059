"""A simulated scale of any registered family on a pseudo-terminal, for development and tests.

The simulator owns a pty pair and speaks one protocol family of
:mod:`edge.scale.protocols` (``spec.encode`` builds every frame, ``spec.answer`` every
reply). ``link`` is a symlink to the slave device (like a /dev/serial/by-id name),
replaced atomically, so a reader opens ``link`` exactly as it would open a real scale.

* Streaming families (``mode == "stream"``) send a frame every ``interval_s``. Polled
  families (``mode == "poll"``) send nothing unasked. A family with
  ``sends_on_change_only`` sends (or answers) a frame only when it differs from the last
  one sent: a new weight, settling, overload... (Adam answers ``P`` once per weight).
* Every family reads what the reader writes: a known command (the family's poll, tare,
  zero or harmless query) is answered with ``spec.answer``; tare sets the tare to the
  current gross weight and switches to net, zero sets the weight to 0 and clears the
  tare. Everything received is kept in :attr:`received` (tests check that a probe never
  sent tare or zero).
* Settling is counted in frames: after :meth:`set_weight` the next ``settle_frames``
  frames (stream ticks, or answers to polls) are unstable, then stable.
* The simulator keeps its own slave fd open, so the pty stays valid while no reader
  has it open. Frames then queue up in the pty: a reader must flush its input after
  opening.
* Writes to the master are non-blocking: when the pty buffer is full the frame is
  dropped (partially written frames happen, as on a real line); the thread never blocks.
* :meth:`unplug` closes both ends and removes the link: the kernel hangs up a slave that
  a reader has open (select reports it readable, read returns EOF or EIO, which pyserial
  raises as SerialException), and opening the link fails (no such file). :meth:`replug`
  creates a new pty and points the link at it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import threading
import time
import tty
from collections import deque
from pathlib import Path

from edge.scale.protocols import SimState, get_protocol

MAX_COMMAND = 64
"""Bytes of an unrecognised command kept while waiting for its end."""
INBOX_TIMEOUT_S = 0.3
"""A pause this long ends a half-received command (as the inter-character timeout of an
indicator): what is kept of it is dropped."""
TICK_S = 0.05
"""Longest wait of the simulator thread: how quickly it notices stop() and commands."""
RECEIVED_MAX = 65536
COMMANDS_MAX = 1000


class ScaleSimulator:
    def __init__(
        self,
        link: Path,
        *,
        protocol: str = "stgs",
        weight_g: int = 0,
        interval_s: float = 0.1,
        settle_frames: int = 3,
        unit: str = "kg",
    ) -> None:
        self.spec = get_protocol(protocol)  # ValueError naming the known families
        self.link = Path(link)
        self.interval_s = interval_s
        self.settle_frames = settle_frames
        self.unit = unit
        self.frames_sent = 0
        self.frames_dropped = 0
        self.received = bytearray()
        """The last RECEIVED_MAX bytes read from the line (what readers and probes sent)."""
        self.commands: deque[bytes] = deque(maxlen=COMMANDS_MAX)
        """The last COMMANDS_MAX known commands recognised, oldest first."""
        self._known = self._known_commands()
        self._letters = bool(self._known) and not any(
            k.endswith((b"\r", b"\n")) for k in self._known
        )
        self._weight_g = weight_g  # gross
        self._tare_g = 0
        self._net = False
        self._settle_left = 0
        self._unstable_hold = False
        self._overload = False
        self._underload = False
        self._silent = False
        self._cut_next = False
        self._last_sent: bytes | None = None
        self._inbox = bytearray()
        self._inbox_at = 0.0
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
        """New gross load: the next ``settle_frames`` frames are unstable, then stable."""
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

    def set_underload(self, on: bool) -> None:
        with self._lock:
            self._underload = on

    def tare(self) -> None:
        """As the tare key: the current gross becomes the tare, the display shows net."""
        with self._lock:
            self._tare_locked()

    def zero(self) -> None:
        """As the zero key: the weight becomes 0 and the tare is cleared (gross)."""
        with self._lock:
            self._zero_locked()

    def silence(self, on: bool) -> None:
        """Stop (or resume) sending frames and answering, without unplugging."""
        with self._lock:
            self._silent = on

    def cut(self) -> None:
        """The next frame is cut: only its first half goes out, then the next frame follows."""
        with self._lock:
            self._cut_next = True

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
        """The gross weight on the platform."""
        with self._lock:
            return self._weight_g

    @property
    def stable(self) -> bool:
        with self._lock:
            busy = self._unstable_hold or self._settle_left
            return not (busy or self._overload or self._underload)

    @property
    def state(self) -> SimState:
        """What the next frame shows (without using up a settling frame)."""
        with self._lock:
            return self._state_locked(consume=False)

    # -- internals ---------------------------------------------------------------------

    def _known_commands(self) -> list[bytes]:
        spec = self.spec
        found = {spec.poll_command, spec.tare_command, spec.zero_command, *spec.harmless_queries}
        return sorted((c for c in found if c), key=len, reverse=True)

    def _state_locked(self, *, consume: bool) -> SimState:
        stable = not self._unstable_hold and self._settle_left == 0
        if consume and self._settle_left > 0:
            self._settle_left -= 1
        return SimState(
            weight_g=self._weight_g - self._tare_g if self._net else self._weight_g,
            stable=stable,
            net=self._net,
            tare_g=self._tare_g,
            overload=self._overload,
            underload=self._underload,
            unit=self.unit,
        )

    def _tare_locked(self) -> None:
        self._tare_g = self._weight_g
        self._net = True

    def _zero_locked(self) -> None:
        self._weight_g = self._tare_g = 0
        self._net = False

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                master = self._master
            if master is None:
                self._stop.wait(TICK_S)
                next_tick = time.monotonic()
                continue
            timeout = TICK_S
            if self.spec.mode == "stream":
                timeout = min(max(0.0, next_tick - time.monotonic()), TICK_S)
            with contextlib.suppress(OSError, ValueError):  # closed by unplug meanwhile
                if select.select([master], [], [], timeout)[0]:
                    self._receive(master)
            if self.spec.mode == "stream" and time.monotonic() >= next_tick:
                with self._lock:
                    self._tick_locked()
                next_tick = max(next_tick + self.interval_s, time.monotonic() - self.interval_s)

    def _tick_locked(self) -> None:
        if self._master is None:
            return
        state = self._state_locked(consume=True)
        if self._silent:
            return
        frame = self.spec.encode(state)
        if self.spec.sends_on_change_only and frame == self._last_sent:
            return
        self._emit_locked(frame)

    def _emit_locked(self, frame: bytes) -> None:
        if self._cut_next:
            self._cut_next = False
            self._write_locked(frame[: len(frame) // 2])
            self._last_sent = None  # a cut frame does not count as sent
        elif self._write_locked(frame):
            self._last_sent = frame
            self.frames_sent += 1
        else:
            self.frames_dropped += 1

    def _receive(self, master: int) -> None:
        with self._lock:
            if self._master != master:
                return
            try:
                data = os.read(master, 4096)
            except OSError:  # BlockingIOError: nothing after all
                return
            now = time.monotonic()
            if now - self._inbox_at > INBOX_TIMEOUT_S:
                self._inbox.clear()
            self._inbox_at = now
            self.received += data
            del self.received[:-RECEIVED_MAX]
            self._inbox += data
            while (command := self._next_command_locked()) is not None:
                self._dispatch_locked(command)

    def _next_command_locked(self) -> bytes | None:
        """Cut one command off the front of the inbox, or None while incomplete.

        A known command is matched exactly. Otherwise, for a family whose commands are
        single letters without a line end (Toledo ``W``), one byte is one command; for
        the others, bytes up to CR or LF are one unknown command. Either way the family's
        ``answer`` decides whether an unknown command gets a reply (an error, a status).
        """
        box = self._inbox
        if not box:
            return None
        for known in self._known:
            if box.startswith(known):
                del box[: len(known)]
                return known
        if any(known.startswith(box) for known in self._known):
            return None  # the start of a known command: wait for the rest
        if self._letters:
            command = bytes(box[:1])
            del box[:1]
            return command
        ends = [i for i in (box.find(b"\r"), box.find(b"\n")) if i >= 0]
        if not ends:
            if len(box) > MAX_COMMAND:
                box.clear()  # garbage, not a command
            return None  # an unknown command still arriving
        end = min(ends) + 1
        if box[end - 1 : end + 1] == b"\r\n":
            end += 1
        command = bytes(box[:end])
        del box[:end]
        return command

    def _dispatch_locked(self, command: bytes) -> None:
        spec = self.spec
        if command in self._known:
            self.commands.append(command)
        if command == spec.tare_command:
            self._tare_locked()
        elif command == spec.zero_command:
            self._zero_locked()
        if self._silent:
            return
        consume = command not in (spec.tare_command, spec.zero_command)
        reply = spec.answer(command, self._state_locked(consume=consume))
        if reply and not (spec.sends_on_change_only and reply == self._last_sent):
            self._emit_locked(reply)

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
        self._last_sent = None
        self._inbox.clear()

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
