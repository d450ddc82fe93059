"""What one scan means: a pure function of the code as the scanner typed it and of what the
station knows about the parcel it names (issue 14, docs/handover.md).

A code is a bare tracking number (the label's Code 128) or the label's signed QR payload
(edge.printer.payload). :func:`parse` reads it: a QR of this site with a good signature
gives its tracking number; a bad signature is ``forged``; another site's QR, a QR of a lot
or a manifest, or text that is no tracking number is ``unknown``. :func:`verdict` then says
what the scan of that parcel is worth in this handover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.printer.payload import TRACKING_RE, PayloadError, PayloadKind, verify

Verdict = Literal[
    "accepted",
    "duplicate",
    "unknown",
    "forged",
    "other_carrier",
    "voided",
    "handed_over",
    "returned",
    "cancelled",
]
VERDICTS: tuple[Verdict, ...] = (
    "accepted", "duplicate", "unknown", "forged", "other_carrier", "voided",
    "handed_over", "returned", "cancelled",
)  # fmt: skip
MAX_CODE = 512


@dataclass(frozen=True)
class Parsed:
    """A scanned code read: the tracking number it names (None when it names none), and
    ``refused`` when the code itself is refused (forged, unknown)."""

    tracking: str | None
    refused: Verdict | None = None
    signed: bool = False


def parse(code: str, site: str, key: bytes) -> Parsed:
    """Read a scanned code (see the module's note). Whitespace around it (the scanner's
    Enter, a tab) is not part of it."""
    text = code.strip()
    if not text or len(text) > MAX_CODE:
        return Parsed(None, "unknown")
    if ":" in text:
        try:
            found = verify(text, key, site=site)
        except PayloadError as exc:
            return Parsed(None, "forged" if exc.code == "bad_signature" else "unknown")
        if found.kind is not PayloadKind.SHIPPING:
            return Parsed(None, "unknown")
        return Parsed(found.ref, signed=True)
    if not TRACKING_RE.fullmatch(text):
        return Parsed(None, "unknown")
    return Parsed(text)


@dataclass(frozen=True)
class Known:
    """What the station knows of the parcel a tracking number names (its live parcel, or
    else its newest voided one)."""

    parcel_id: str
    carrier_key: str  # the parcel's carrier, folded
    voided: bool
    order_cancelled: bool
    handed_over: bool  # in a closed handover
    returned: bool
    scanned_here: bool  # accepted (and not undone) in this handover


def verdict(parsed: Parsed, known: Known | None, carrier_key: str) -> Verdict:
    """The verdict of a scan in a handover of the carrier ``carrier_key`` (folded)."""
    if parsed.refused is not None:
        return parsed.refused
    if known is None:
        return "unknown"
    if known.returned:
        return "returned"
    if known.handed_over:
        return "handed_over"
    if known.voided:
        return "voided"
    if known.carrier_key != carrier_key:
        return "other_carrier"
    if known.order_cancelled:
        return "cancelled"
    if known.scanned_here:
        return "duplicate"
    return "accepted"


_MESSAGES: dict[Verdict, tuple[str, str]] = {
    "accepted": ("Đã nhận kiện {t}.", "Parcel {t} accepted."),
    "duplicate": ("Kiện {t} đã quét rồi: bỏ qua.", "Parcel {t} was already scanned: ignored."),
    "unknown": (
        "Mã không phải của điểm này: không nhận. Để kiện riêng ra.",
        "Not a parcel of this point: refused. Put it aside.",
    ),
    "forged": (
        "Mã QR giả hoặc bị sửa (chữ ký sai): không nhận. Để kiện riêng và báo trưởng điểm.",
        "Forged or altered QR code (bad signature): refused. Put it aside and tell the lead.",
    ),
    "other_carrier": (
        "Kiện {t} của hãng vận chuyển khác: không giao cho chuyến này.",
        "Parcel {t} is for another carrier: not for this pickup.",
    ),
    "voided": (
        "Kiện {t} đã bị hủy: không giao. Để lại điểm.",
        "Parcel {t} was voided: do not hand it over. Keep it at the point.",
    ),
    "handed_over": (
        "Kiện {t} đã bàn giao ở chuyến trước rồi.",
        "Parcel {t} was already handed over at an earlier pickup.",
    ),
    "returned": (
        "Kiện {t} đã bị hoàn về: không giao lại.",
        "Parcel {t} was returned: it is not handed over again.",
    ),
    "cancelled": (
        "Đơn của kiện {t} đã bị hủy: không giao. Để lại điểm.",
        "The order of parcel {t} was cancelled: do not hand it over.",
    ),
}


def messages(v: Verdict, tracking: str | None) -> tuple[str, str]:
    """What the courier reads after a scan (Vietnamese, English)."""
    vi, en = _MESSAGES[v]
    t = tracking or ""
    return vi.format(t=t), en.format(t=t)
