"""ESC/POS real-time status (DLE EOT n): the request bytes and the meaning of the replies.

Pure: bytes in, values out. The driver sends ``DLE EOT n`` (``10 04 n``) and reads one byte
back with a time-out; :func:`query` takes that exchange as a function, so the same code
serves TCP, serial and USB, and the tests.

Reply bytes (Epson "ESC/POS Command Reference", DLE EOT; the same tables appear in the
Bixolon SRP-350 and Sewoo LK-P manuals, e.g.
https://manualshive.com/en/manual/epson/esc-pos-tm-l60ii/esc-pos-tm-l60ii_technical-information_109143-280.html
and http://88.208.23.73:8080/en/manual/samsung/srp-350-bixolon/351193?page=8). In every
reply bit 0 is 0, bit 1 is 1, bit 4 is 1 and bit 7 is 0 (``byte & 0x93 == 0x12``); a byte
that does not have that shape is not a status reply and counts as no answer.

=====  =======================  =========================================================
n      what                      bits used here
=====  =======================  =========================================================
1      printer status            bit 3: off-line; bit 5: waiting for on-line recovery
2      off-line cause            bit 2: cover open; bit 3: paper being fed by the FEED
                                 button; bit 5: printing stopped by paper end;
                                 bit 6: an error occurred
3      error cause               bit 3: auto-cutter error; bit 5: unrecoverable error;
                                 bit 6: automatically recoverable error (head too hot,
                                 cover opened while printing)
4      roll paper sensor         bits 2-3: near-end sensor says paper near end;
                                 bits 5-6: end sensor says paper out
=====  =======================  =========================================================

Epson sets both bits of a pair (``0x0C``, ``0x60``); some clones set only one, so either
bit of a pair counts.

No answer is never "fine": python-escpos 3.1's ``paper_status()`` says "paper adequate"
when the printer stays silent; here a missing or malformed reply makes that part
``None`` (unknown) and :attr:`StatusReport.condition` ``unknown``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

DLE_EOT = b"\x10\x04"
PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, PAPER_SENSOR = 1, 2, 3, 4
REPLY_MASK, REPLY_FIXED = 0x93, 0x12


def request(n: int) -> bytes:
    """``DLE EOT n``: the real-time status request for ``n`` in 1..4."""
    if n not in (PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, PAPER_SENSOR):
        raise ValueError(f"DLE EOT n: n must be 1, 2, 3 or 4, got {n}")
    return DLE_EOT + bytes([n])


def is_reply(byte: int) -> bool:
    """True when ``byte`` has the fixed bits every DLE EOT reply has."""
    return 0 <= byte <= 0xFF and byte & REPLY_MASK == REPLY_FIXED


class Paper(StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"
    UNKNOWN = "unknown"


class Condition(StrEnum):
    """What the station does with the printer: print (ready), or wait and say why."""

    READY = "ready"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    ERROR = "error"
    OFFLINE = "offline"  # the printer says it is off-line, for no reason it reports
    UNKNOWN = "unknown"  # it did not answer: print, but never claim it is fine


BLOCKING = frozenset(
    {Condition.PAPER_OUT, Condition.COVER_OPEN, Condition.ERROR, Condition.OFFLINE}
)

MESSAGES: dict[Condition, tuple[str, str]] = {
    Condition.READY: ("Máy in sẵn sàng.", "The printer is ready."),
    Condition.PAPER_OUT: (
        "Máy in hết giấy. Lắp cuộn giấy mới; các nhãn đang chờ sẽ tự in.",
        "The printer is out of paper. Load a new roll; waiting labels print by themselves.",
    ),
    Condition.COVER_OPEN: (
        "Nắp máy in đang mở. Đóng nắp lại; các nhãn đang chờ sẽ tự in.",
        "The printer cover is open. Close it; waiting labels print by themselves.",
    ),
    Condition.ERROR: (
        "Máy in báo lỗi (kẹt giấy, dao cắt hoặc đầu in quá nóng). "
        "Tắt máy in, kiểm tra rồi bật lại.",
        "The printer reports an error (paper jam, cutter or head too hot). Switch it off, "
        "check it, switch it on again.",
    ),
    Condition.OFFLINE: (
        "Máy in đang tạm dừng (offline). Kiểm tra đèn báo trên máy in.",
        "The printer is off-line. Check its lights.",
    ),
    Condition.UNKNOWN: (
        "Máy in không trả lời câu hỏi trạng thái; không biết còn giấy hay không.",
        "The printer does not answer status queries; paper and cover state are unknown.",
    ),
}


def _any(byte: int, mask: int) -> bool:
    return bool(byte & mask)


@dataclass(frozen=True)
class StatusReport:
    """The printer's state as far as its replies tell; ``None`` = unknown."""

    online: bool | None = None
    waiting_recovery: bool | None = None
    cover_open: bool | None = None
    feed_button: bool | None = None
    paper_end_stop: bool | None = None
    error: bool | None = None
    cutter_error: bool | None = None
    unrecoverable_error: bool | None = None
    recoverable_error: bool | None = None
    paper: Paper = Paper.UNKNOWN
    replies: dict[int, int | None] = field(default_factory=dict)  # n -> reply byte or None

    @property
    def answered(self) -> bool:
        return any(v is not None for v in self.replies.values())

    @property
    def condition(self) -> Condition:
        if self.paper is Paper.OUT:
            return Condition.PAPER_OUT
        if self.cover_open:
            return Condition.COVER_OPEN
        if self.error or self.unrecoverable_error or self.recoverable_error or self.cutter_error:
            return Condition.ERROR
        if self.online is False:
            return Condition.OFFLINE
        if self.online is None:
            return Condition.UNKNOWN
        return Condition.READY

    @property
    def blocks_printing(self) -> bool:
        return self.condition in BLOCKING

    def message(self) -> tuple[str, str]:
        """(Vietnamese, English) text for staff."""
        vi, en = MESSAGES[self.condition]
        if self.condition is Condition.READY and self.paper is Paper.NEAR_END:
            return (
                "Máy in sẵn sàng, nhưng giấy sắp hết: chuẩn bị cuộn mới.",
                "The printer is ready, but the paper is near its end: have a new roll ready.",
            )
        return vi, en

    def as_json(self) -> dict[str, object]:
        vi, en = self.message()
        return {
            "condition": self.condition.value,
            "online": self.online,
            "cover_open": self.cover_open,
            "paper": self.paper.value,
            "error": self.error,
            "message": vi,
            "message_en": en,
            "replies": {
                str(n): (None if b is None else f"0x{b:02x}") for n, b in self.replies.items()
            },
        }


UNKNOWN = StatusReport()


def parse(replies: dict[int, int | None]) -> StatusReport:
    """Combine the replies to DLE EOT 1..4 (missing or malformed ones = unknown)."""
    good = {n: b for n, b in replies.items() if b is not None and is_reply(b)}
    printer, offline, error, sensor = (good.get(n) for n in (1, 2, 3, 4))
    paper = Paper.UNKNOWN
    if sensor is not None:
        if _any(sensor, 0x60):
            paper = Paper.OUT
        elif _any(sensor, 0x0C):
            paper = Paper.NEAR_END
        else:
            paper = Paper.OK
    if offline is not None and offline & 0x20:  # printing stopped by paper end
        paper = Paper.OUT
    return StatusReport(
        online=None if printer is None else not printer & 0x08,
        waiting_recovery=None if printer is None else bool(printer & 0x20),
        cover_open=None if offline is None else bool(offline & 0x04),
        feed_button=None if offline is None else bool(offline & 0x08),
        paper_end_stop=None if offline is None else bool(offline & 0x20),
        error=None if offline is None else bool(offline & 0x40),
        cutter_error=None if error is None else bool(error & 0x08),
        unrecoverable_error=None if error is None else bool(error & 0x20),
        recoverable_error=None if error is None else bool(error & 0x40),
        paper=paper,
        replies={n: (b if b is None or is_reply(b) else None) for n, b in replies.items()},
    )


Exchange = Callable[[bytes], int | None]
"""Send one request, return the one reply byte, or None when nothing came in time."""


def query(exchange: Exchange) -> StatusReport:
    """Ask DLE EOT 1, 2 and 4 (and 3 when 2 reports an error) through ``exchange``.

    A printer that does not answer DLE EOT 1 is not asked anything else: its status is
    unknown, and the caller waited for one time-out only."""
    replies: dict[int, int | None] = {}
    first = exchange(request(PRINTER))
    replies[PRINTER] = first
    if first is None or not is_reply(first):
        return parse(replies)
    for n in (OFFLINE_CAUSE, PAPER_SENSOR):
        replies[n] = exchange(request(n))
    offline = replies[OFFLINE_CAUSE]
    if offline is not None and is_reply(offline) and offline & 0x40:
        replies[ERROR_CAUSE] = exchange(request(ERROR_CAUSE))
    return parse(replies)


def reply_bytes(
    *,
    online: bool = True,
    cover_open: bool = False,
    paper: Paper = Paper.OK,
    error: bool = False,
) -> dict[int, int]:
    """What a real printer in this state answers to DLE EOT 1..4 (for fakes and tests)."""
    paper_out = paper is Paper.OUT
    stopped = paper_out or cover_open or error
    printer = REPLY_FIXED | (0x08 if stopped or not online else 0)
    offline = REPLY_FIXED | (0x04 if cover_open else 0) | (0x20 if paper_out else 0)
    offline |= 0x40 if error else 0
    error_cause = REPLY_FIXED | (0x40 if error else 0)
    sensor = REPLY_FIXED | (0x0C if paper in (Paper.NEAR_END, Paper.OUT) else 0)
    sensor |= 0x60 if paper_out else 0
    return {
        PRINTER: printer,
        OFFLINE_CAUSE: offline,
        ERROR_CAUSE: error_cause,
        PAPER_SENSOR: sensor,
    }
