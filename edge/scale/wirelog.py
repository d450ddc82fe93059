"""The wire log: every byte in and out of the scale's port, with a timestamp.

Off by default (``[scale] wire_log = "var/scale-wire.log"``). One line per read or
write, the bytes printable (``\\r`` ``\\n`` ``\\xNN`` escapes, a backslash doubled)::

    2026-11-23T10:38:01.125+07:00 out W\\r
    2026-11-23T10:38:01.131+07:00 in  \\x02 00.250\\r
    2026-11-23T10:38:03.402+07:00 --  port /dev/serial/by-id/... closed: unplugged

The file is flushed on every line and rotated at ``max_bytes`` (one older copy is
kept as ``<file>.1``), so a forgotten wire log cannot fill the card. Only the reader
thread writes to it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

MAX_BYTES = 5_000_000

_ESCAPES = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}


def escape(data: bytes) -> str:
    """Bytes as one printable line: ASCII kept, CR/LF/TAB/backslash escaped, others \\xNN."""
    return "".join(_ESCAPES.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}") for b in data)


def _local_now() -> datetime:
    return datetime.now().astimezone()


class WireLog:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = MAX_BYTES,
        now: Callable[[], datetime] = _local_now,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._now = now
        self._file: TextIO | None = None

    def received(self, data: bytes) -> None:
        if data:
            self._write("in ", escape(data))

    def sent(self, data: bytes) -> None:
        if data:
            self._write("out", escape(data))

    def note(self, text: str) -> None:
        """An event on the port (opened, closed), in words."""
        self._write("-- ", text)

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

    def _write(self, direction: str, text: str) -> None:
        try:
            file = self._open()
            file.write(f"{self._now().isoformat(timespec='milliseconds')} {direction} {text}\n")
            file.flush()
            if file.tell() >= self.max_bytes:
                self.close()
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except OSError:
            self.close()  # a full or missing disk must not stop the scale; retried next time

    def _open(self) -> TextIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="ascii", newline="\n")
        return self._file
