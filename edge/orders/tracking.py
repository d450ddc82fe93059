"""Tracking numbers left per carrier, and when that is low (pure; docs/packing.md).

Numbers come with the order (the marketplace's) or from the blocks central assigned to
this point (edge.orders.apply, issued by edge.storage.orders.record_parcel, each at most
once). A carrier's numbers are low when fewer than :data:`LOW_LEFT` are left, or less
than :data:`LOW_SHARE_PERCENT` % of what its blocks held; a carrier that open orders
need and that has no block at all shows with 0 left.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge.storage.search_key import fold

LOW_LEFT = 50
LOW_SHARE_PERCENT = 10


def low(left: int, size: int) -> bool:
    return left < LOW_LEFT or left * 100 < size * LOW_SHARE_PERCENT


def numbers_left(blocks: Iterable[dict[str, Any]], needed: Iterable[str]) -> list[dict[str, Any]]:
    """``blocks``: carrier, left, size per carrier (edge.storage.orders.tracking_left);
    ``needed``: the carriers of open orders that came without a number."""
    found: dict[str, dict[str, Any]] = {}
    for row in blocks:
        had = found.setdefault(fold(row["carrier"]), {"carrier": row["carrier"], "left": 0,
                                                       "size": 0})  # fmt: skip
        had["left"] += row["left"]
        had["size"] += row["size"]
    for carrier in needed:
        found.setdefault(fold(carrier), {"carrier": carrier, "left": 0, "size": 0})
    return [
        {"carrier": row["carrier"], "left": row["left"], "low": low(row["left"], row["size"])}
        for _, row in sorted(found.items())
    ]
