"""Money and paper (issue 12): a lot's receipt data and a day's totals.

A lot's amount is ``net_g`` x its price per kg / 1000, rounded half up to the whole
đồng (:func:`edge.printer.kinds.amount_dong`, integers only), once per lot: a day's total
is the sum of its lots' amounts, so it equals the sum of the receipts. A lot's price is the
one its product had when the lot was recorded (``lots.unit_price_dong``, migration 0015),
else the product's current one (a product priced later).

The day's lots are read in one place, :data:`DAY_LOTS_SQL`, through the ``lots_current``
view (migration 0014, edge/storage/corrections.py): a voided lot does not count, a
corrected one counts for its current farmer and product (at that product's price), a
merged farmer's lots for the farmer it was merged into.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edge.printer.kinds import amount_dong
from edge.storage.store import NotFound, Store

_PRICE = (
    "CASE WHEN c.product_id = l.product_id "
    "THEN COALESCE(l.unit_price_dong, pr.unit_price_dong) ELSE pr.unit_price_dong END"
)
"""A lot's price: its own, unless its product was corrected (then the right product's)."""

DAY_LOTS_SQL = (
    "SELECT l.id, c.producer_id, p.name AS producer_name, c.product_id, "
    "pr.name AS product_name, l.net_g, "
    f"{_PRICE} AS unit_price_dong "
    "FROM lots l JOIN lots_current c ON c.id = l.id "  # as corrected and merged (0014)
    "JOIN producers p ON p.id = c.producer_id "
    "JOIN products pr ON pr.id = c.product_id "
    "WHERE l.site_id = ? AND l.day = ? AND NOT c.voided ORDER BY l.day_no"
)
"""The lots of one station-local day that count in its totals (the hook for voiding)."""


def lot_amount(net_g: int, unit_price_dong: int | None) -> int | None:
    """What a lot is worth in đồng (rounded half up), None without a price."""
    return None if unit_price_dong is None else amount_dong(net_g, unit_price_dong)


@dataclass
class Totals:
    """One farmer's, one product's or the whole day's lots."""

    id: str
    name: str
    lots: int = 0
    net_g: int = 0
    amount_dong: int = 0  # priced lots only
    unpriced_lots: int = 0  # weighed, not in amount_dong

    def add(self, net_g: int, amount: int | None) -> None:
        self.lots += 1
        self.net_g += net_g
        if amount is None:
            self.unpriced_lots += 1
        else:
            self.amount_dong += amount


@dataclass
class DayTotals:
    day: str
    total: Totals = field(default_factory=lambda: Totals("", ""))
    farmers: list[Totals] = field(default_factory=list)
    products: list[Totals] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        whole = asdict(self.total)
        del whole["id"], whole["name"]
        return {
            "day": self.day,
            **whole,
            "farmers": [asdict(t) for t in self.farmers],
            "products": [asdict(t) for t in self.products],
        }


def summarise(day: str, lots: list[dict[str, Any]]) -> DayTotals:
    """Pure: the day's lots (rows of :data:`DAY_LOTS_SQL`) added up per farmer and per
    product, each list sorted by name."""
    out = DayTotals(day)
    farmers: dict[str, Totals] = {}
    products: dict[str, Totals] = {}
    for lot in lots:
        amount = lot_amount(lot["net_g"], lot["unit_price_dong"])
        out.total.add(lot["net_g"], amount)
        farmer = farmers.setdefault(
            lot["producer_id"], Totals(lot["producer_id"], lot["producer_name"])
        )
        farmer.add(lot["net_g"], amount)
        product = products.setdefault(
            lot["product_id"], Totals(lot["product_id"], lot["product_name"])
        )
        product.add(lot["net_g"], amount)
    out.farmers = sorted(farmers.values(), key=lambda t: (t.name.casefold(), t.id))
    out.products = sorted(products.values(), key=lambda t: (t.name.casefold(), t.id))
    return out


def day_totals(store: Store, day: str) -> DayTotals:
    """The totals of station-local ``day`` (YYYY-MM-DD)."""
    return summarise(day, store.rows(DAY_LOTS_SQL, (store.site_id, day)))


def summary_rows(totals: list[Totals]) -> list[dict[str, Any]]:
    """Rows of the printed end-of-day summary (edge.printer.kinds.TotalsRow)."""
    return [
        {
            "name": t.name,
            "lots": t.lots,
            "net_g": t.net_g,
            "amount_dong": t.amount_dong,
            "unpriced_lots": t.unpriced_lots,
        }
        for t in totals
    ]


@dataclass(frozen=True)
class ReceiptLot:
    """What a receipt prints about a lot, and whether one was printed already."""

    id: str
    day_no: int | None
    producer_name: str
    product_name: str
    net_g: int
    recorded_at: str
    unit_price_dong: int | None
    receipt_job_id: str | None  # the first receipt printed for it (copies name it)
    voided: bool = False  # voided by a lead (edge.storage.corrections): "ĐÃ HỦY" on paper

    @property
    def amount_dong(self) -> int | None:
        return lot_amount(self.net_g, self.unit_price_dong)


def receipt_lot(store: Store, lot_id: str) -> ReceiptLot:
    rows = store.rows(
        "SELECT l.id, l.day_no, p.name AS producer_name, pr.name AS product_name, l.net_g, "
        f"l.recorded_at, {_PRICE} AS unit_price_dong, c.voided, "
        "(SELECT j.id FROM print_jobs j WHERE j.record_id = l.id AND j.kind = 'receipt' "
        " AND j.copy_of IS NULL ORDER BY j.created_at, j.rowid LIMIT 1) AS receipt_job_id "
        "FROM lots l JOIN lots_current c ON c.id = l.id "  # as corrected and merged (0014)
        "JOIN producers p ON p.id = c.producer_id "
        "JOIN products pr ON pr.id = c.product_id WHERE l.id = ?",
        (lot_id,),
    )
    if not rows:
        raise NotFound(f"lot {lot_id} not found")
    row = rows[0]
    return ReceiptLot(**{**row, "voided": bool(row["voided"])})
