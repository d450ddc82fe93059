"""Stock on hand and the pick list (pure: rows in, lists out; docs/packing.md).

Stock per product (folded name) and grade: what the lots that count received (a voided
lot counts for nothing, a corrected one under its product as corrected; its grade is the
confirmed one, or None until one is confirmed) minus what live (not voided) parcels took.
Open orders (not cancelled, not packed) are covered oldest first: an order whose every
product and grade the stock left holds takes its goods from it; one it cannot cover takes
nothing, is flagged, and each product and grade it lacks is listed with the grams missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edge.storage.orders import Order

Key = tuple[str, str | None]
"""(product name folded, grade or None)."""


@dataclass
class Stock:
    product: str  # as the station's product (or, with no lot, the order line) names it
    grade: str | None
    on_hand_g: int


def on_hand(lots: Iterable[dict[str, Any]], packed: Iterable[dict[str, Any]]) -> dict[Key, Stock]:
    """``lots`` as edge.storage.orders.lots_received gives them (grams in, per product
    and grade), ``packed`` as packed_goods (grams out)."""
    found: dict[Key, Stock] = {}
    for lot in lots:
        key = (lot["product_key"], lot["grade"])
        found.setdefault(key, Stock(lot["product"], lot["grade"], 0)).on_hand_g += lot["net_g"]
    for row in packed:
        key = (row["product_key"], row["grade"])
        found.setdefault(key, Stock(row["product"], row["grade"], 0)).on_hand_g -= row["net_g"]
    return found


def needs(order: Order) -> dict[Key, tuple[str, int]]:
    """What an order takes, per product and grade: (the product as the order names it,
    grams of goods)."""
    found: dict[Key, tuple[str, int]] = {}
    for line in order.lines:
        key = (line.product_key, line.grade)
        name, grams = found.get(key, (line.product, 0))
        found[key] = (name, grams + line.net_g)
    return found


@dataclass(frozen=True)
class Coverage:
    covered: dict[str, bool]  # order id -> the stock covers it
    short: list[dict[str, Any]]  # order_id, product, grade, missing_g


def cover(orders: Iterable[Order], stock: dict[Key, Stock]) -> Coverage:
    """Open orders, oldest first, against the stock on hand (see the module's note)."""
    left = {key: s.on_hand_g for key, s in stock.items()}
    covered: dict[str, bool] = {}
    short: list[dict[str, Any]] = []
    for order in orders:
        wanted = needs(order)
        missing = {k: g - max(left.get(k, 0), 0) for k, (_, g) in wanted.items()}
        lacking = {k: g for k, g in missing.items() if g > 0}
        covered[order.id] = not lacking
        if lacking:
            short.extend(
                {"order_id": order.id, "product": wanted[k][0], "grade": k[1], "missing_g": g}
                for k, g in lacking.items()
            )
            continue
        for k, (_, g) in wanted.items():
            left[k] = left.get(k, 0) - g
    return Coverage(covered, short)


def _by_product(item: tuple[Key, Any]) -> tuple[str, str]:
    (product, grade), _ = item
    return product, grade or ""


def pick_lines(orders: Iterable[Order]) -> list[dict[str, Any]]:
    """What to take from stock for these orders, per product and grade: packs, grams."""
    found: dict[Key, dict[str, Any]] = {}
    for order in orders:
        for line in order.lines:
            row = found.setdefault(
                (line.product_key, line.grade),
                {"product": line.product, "grade": line.grade, "packs": 0, "net_g": 0},
            )
            row["packs"] += line.quantity
            row["net_g"] += line.net_g
    return [row for _, row in sorted(found.items(), key=_by_product)]


def stock_rows(stock: dict[Key, Stock]) -> list[dict[str, Any]]:
    return [
        {"product": s.product, "grade": s.grade, "on_hand_g": s.on_hand_g}
        for _, s in sorted(stock.items(), key=_by_product)
    ]
