"""Framing for families whose frames begin with a start byte (STX, ``=``) rather than
ending with CR LF.

:class:`StartFramedParser` cuts the stream at the start byte:

* bytes before a start byte are noise, reported as one invalid frame;
* a frame ends at its end byte (``end``) or after exactly ``length`` bytes;
* a start byte inside an unfinished frame means the frame was cut: the partial frame is
  reported invalid and parsing resumes at the new start byte;
* a frame that runs past ``max_frame`` bytes without its end byte is invalid.

Subclasses implement :meth:`parse_frame` (the complete frame, start byte included).
"""

from __future__ import annotations

from abc import abstractmethod

from edge.scale.protocols.base import Frame, FrameParser, Reading, strip_parity


class StartFramedParser(FrameParser):
    start: int
    """The byte every frame begins with."""
    end: int | None = None
    """The byte every frame ends with (included in the frame), or None for fixed length."""
    length: int = 0
    """Fixed frame length including the start byte (when ``end`` is None)."""
    max_frame: int = 32
    """Longest frame accepted (when ``end`` is set)."""
    seven_bit = False
    """Clear bit 7 of every byte first (7E1 families; see :class:`LineParser`)."""

    def feed_frames(self, data: bytes) -> list[Frame]:
        if self.seven_bit:
            data = strip_parity(data)
        self._buffer += data
        buf = bytes(self._buffer)
        out: list[Frame] = []
        pos = 0
        while pos < len(buf):
            s = buf.find(self.start, pos)
            if s < 0:
                break  # only noise so far: keep it (bounded) until a start byte comes
            if s > pos:
                out.append((buf[pos:s], None))
            nxt = buf.find(self.start, s + 1)
            stop = self._frame_stop(buf, s, nxt)
            if stop is None:  # incomplete: wait for more bytes
                pos = s
                break
            frame = buf[s:stop]
            out.append((frame, self.parse_frame(frame) if self._is_complete(frame) else None))
            pos = stop
        else:
            pos = len(buf)
        self._buffer = bytearray(buf[pos:])
        self._trim()
        return out

    def _frame_stop(self, buf: bytes, s: int, nxt: int) -> int | None:
        """Index just past the frame starting at ``s``; None while it is incomplete."""
        limit = s + (self.length if self.end is None else self.max_frame)
        if self.end is not None:
            e = buf.find(self.end, s + 1, limit)
            if e >= 0 and (nxt < 0 or e < nxt):
                return e + 1
        elif len(buf) >= limit and (nxt < 0 or nxt >= limit):
            return limit
        if 0 <= nxt < limit:
            return nxt  # cut by the next start byte
        if len(buf) >= limit:
            return limit  # too long without its end byte
        return None

    def _is_complete(self, frame: bytes) -> bool:
        if self.end is None:
            return len(frame) == self.length
        return frame.endswith(bytes([self.end]))

    @abstractmethod
    def parse_frame(self, frame: bytes) -> Reading | None:
        """The reading of one complete frame, or None if it is not valid."""
