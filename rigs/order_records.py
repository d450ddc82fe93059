"""The downlink records of issue 13 as the tests build them (docs/mqtt.md "Downlink
record types"): an ``order`` (or the same order as central's import hands it to its
store) and a ``tracking_block``, each the contract's example unless told otherwise."""

from __future__ import annotations

import uuid
from typing import Any


def order_line(**changes: Any) -> dict[str, Any]:
    """The contract's order line (2 packs of 500 g tea in 40 g of packaging each), with
    ``changes``."""
    line: dict[str, Any] = {
        "sku": "SHAN-500-A",
        "name": "Chè Shan tuyết 500g",
        "variation": "Hạng A",
        "product": "Chè Shan tuyết",
        "grade": "A",
        "quantity": 2,
        "pack_net_g": 500,
        "pack_tare_g": 40,
    }
    line.update(changes)
    return line


def order_record(n: int = 1, **changes: Any) -> dict[str, Any]:
    """The contract's ``order`` record numbered ``n`` (its id ``5781234567890`` and ``n``
    in 5 digits: 12345 gives the contract's own id), a new dict each call, with
    ``changes`` (a whole field each: ``lines`` replaces the lines)."""
    record: dict[str, Any] = {
        "type": "order",
        "id": f"5781234567890{n:05d}",
        "version": 1,
        "status": "open",
        "channel": "tiktok",
        "carrier": "J&T Express",
        "tracking": None,
        "recipient": "Nguyễn Thị Thu Hằng",
        "phone": "0987654321",
        "province": "Hà Nội",
        "district": "Quận Đống Đa",
        "commune": "Phường Láng Hạ",
        "address": "Số 18, ngõ 25 Láng Hạ",
        "payment": "cod",
        "cod_dong": 370000,
        "amount_dong": 370000,
        "buyer_message": None,
        "seller_note": None,
        "package_id": None,
        "created_at": "2026-12-06T10:00:00Z",
        "lines": [order_line()],
    }
    record.update(changes)
    return record


def import_record(n: int, site: str, **changes: Any) -> dict[str, Any]:
    """:func:`order_record` as central's import hands it to the store: for the point
    ``site``, without ``version`` and ``created_at`` (the store gives them)."""
    record = order_record(n, site=site, **changes)
    del record["version"], record["created_at"]
    return record


def tracking_block(
    carrier: str = "J&T Express",
    prefix: str = "JTVN",
    first: int = 100_000,
    last: int = 100_999,
    block_id: str | None = None,
) -> dict[str, Any]:
    """A ``tracking_block`` central assigns to a point for ``carrier``: ``prefix`` and
    ``first``..``last`` in 8 digits; its id ``block_id``, a new uuid if None."""
    return {
        "type": "tracking_block",
        "id": block_id if block_id is not None else str(uuid.uuid4()),
        "carrier": carrier,
        "prefix": prefix,
        "first": first,
        "last": last,
        "digits": 8,
    }
