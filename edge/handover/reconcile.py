"""Live reconciliation of a handover (pure: rows in, the courier's view out).

Expected: the carrier's parcels waiting at the point (packed, not voided, order not
cancelled, never handed over). Scanned: those with an accepted scan not undone. Missing:
expected and not scanned. Extra: scans refused for any other reason than a repeat (not
ours, forged, another carrier's, voided, handed over or returned before, cancelled).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Expected:
    parcel_id: str
    tracking: str
    order_id: str
    recipient: str
    gross_g: int
    cod_dong: int


@dataclass(frozen=True)
class Reconciliation:
    expected: list[dict[str, Any]]
    extra: list[dict[str, Any]]
    counts: dict[str, int]
    scanned_g: int
    scanned_cod_dong: int
    expected_g: int
    expected_cod_dong: int
    scanned: list[Expected]
    missing: list[Expected]
    missing_confirmed: bool
    """A lead confirmed the parcels missing as not handed over, and none is missing since
    that the lead did not confirm."""

    def totals(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "scanned_g": self.scanned_g,
            "scanned_cod_dong": self.scanned_cod_dong,
        }


EXTRA_VERDICTS = frozenset(
    {"unknown", "forged", "other_carrier", "voided", "handed_over", "returned", "cancelled"}
)


def reconcile(
    expected: Iterable[Expected],
    scanned_ids: set[str],
    scans: Iterable[dict[str, Any]],
    confirmed_missing: set[str],
) -> Reconciliation:
    """``scans``: every scan of the handover (code, verdict, at), oldest first."""
    rows = sorted(expected, key=lambda e: e.tracking)
    scanned = [e for e in rows if e.parcel_id in scanned_ids]
    missing = [e for e in rows if e.parcel_id not in scanned_ids]
    extra = [
        {"code": s["code"], "verdict": s["verdict"], "at": s["at"]}
        for s in scans
        if s["verdict"] in EXTRA_VERDICTS
    ]
    return Reconciliation(
        expected=[
            {
                "parcel_id": e.parcel_id,
                "tracking": e.tracking,
                "order_id": e.order_id,
                "recipient": e.recipient,
                "gross_g": e.gross_g,
                "cod_dong": e.cod_dong,
                "scanned": e.parcel_id in scanned_ids,
            }
            for e in rows
        ],
        extra=extra,
        counts={
            "expected": len(rows),
            "scanned": len(scanned),
            "missing": len(missing),
            "extra": len(extra),
        },
        scanned_g=sum(e.gross_g for e in scanned),
        scanned_cod_dong=sum(e.cod_dong for e in scanned),
        expected_g=sum(e.gross_g for e in rows),
        expected_cod_dong=sum(e.cod_dong for e in rows),
        scanned=scanned,
        missing=missing,
        missing_confirmed=bool(confirmed_missing)
        and all(e.parcel_id in confirmed_missing for e in missing),
    )
