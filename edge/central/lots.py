"""Central's view of a site's lots and farmers, as corrected (issue 12). Pure: records
in, values out.

Central stores every record as sent (``records``), never changed: a correction made at a
station arrives as a record of its own (docs/mqtt.md: ``lot_void``, ``lot_correction``,
``producer_update``, ``product_update``, ``producer_merge``). The view folds a site's
``records`` stream in seq order (the station's commit order): a lot's farmer and product
are the latest correction's, a voided lot is marked so (never dropped), a farmer or product
has its latest edit's values, and a lot whose farmer was merged counts for the farmer it
was merged into (through chains of merges), as at the station (its ``lots_current`` view).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

CORRECTION_TYPES = (
    "lot_void",
    "lot_correction",
    "producer_update",
    "product_update",
    "producer_merge",
)
VIEW_TYPES = ("producer", "product", "lot", *CORRECTION_TYPES)
"""The record types the views read; every other type is passed over."""


@dataclass(frozen=True)
class LotView:
    id: str
    seq: int  # the lot record's seq
    producer_id: str  # as corrected, and merged
    product_id: str  # as corrected
    net_g: int
    recorded_at: str
    recorded_producer_id: str  # as the lot record says
    recorded_product_id: str
    voided: bool = False
    void_reason: str | None = None
    voided_by: str | None = None
    corrections: tuple[str, ...] = ()  # ids of the correction records, in order


@dataclass(frozen=True)
class ProducerView:
    id: str
    name: str
    phone: str | None
    village: str | None
    merged_into: str | None = None  # the farmer its lots count for now


@dataclass(frozen=True)
class ProductView:
    id: str
    name: str
    unit_price_dong: int | None
    grading: str | None


@dataclass
class SiteView:
    lots: dict[str, LotView] = field(default_factory=dict)
    producers: dict[str, ProducerView] = field(default_factory=dict)
    products: dict[str, ProductView] = field(default_factory=dict)
    orphans: list[int] = field(default_factory=list)  # seqs of corrections of unknown ids


def _resolve(merged: Mapping[str, str], producer_id: str) -> str:
    seen = {producer_id}
    while producer_id in merged:
        producer_id = merged[producer_id]
        if producer_id in seen:  # a cycle no station makes: stop where it closes
            break
        seen.add(producer_id)
    return producer_id


def site_view(records: Iterable[Mapping[str, Any]]) -> SiteView:
    """Fold one site's records (its ``records`` stream, in seq order)."""
    view = SiteView()
    merged: dict[str, str] = {}
    for rec in records:
        kind = rec.get("type")
        seq = int(rec.get("seq") or 0)
        if kind == "producer":
            view.producers[rec["id"]] = ProducerView(
                rec["id"], rec["name"], rec.get("phone"), rec.get("village")
            )
        elif kind == "product":
            view.products[rec["id"]] = ProductView(
                rec["id"], rec["name"], rec.get("unit_price_dong"), rec.get("grading")
            )
        elif kind == "lot":
            view.lots[rec["id"]] = LotView(
                rec["id"], seq, rec["producer_id"], rec["product_id"], rec["net_g"],
                rec["recorded_at"], rec["producer_id"], rec["product_id"],
            )  # fmt: skip
        elif kind in ("lot_void", "lot_correction"):
            lot = view.lots.get(rec["lot_id"])
            if lot is None:
                view.orphans.append(seq)
                continue
            done = (*lot.corrections, rec["id"])
            if kind == "lot_void":
                lot = replace(
                    lot, voided=True, void_reason=rec.get("reason"), voided_by=rec.get("by")
                )
            else:
                lot = replace(
                    lot,
                    producer_id=rec.get("producer_id") or lot.producer_id,
                    product_id=rec.get("product_id") or lot.product_id,
                )
            view.lots[lot.id] = replace(lot, corrections=done)
        elif kind == "producer_update":
            pid = rec["producer_id"]
            was = view.producers.get(pid)
            view.producers[pid] = ProducerView(
                pid, rec["name"], rec.get("phone"), rec.get("village"),
                was.merged_into if was else None,
            )  # fmt: skip
        elif kind == "product_update":
            pid = rec["product_id"]
            view.products[pid] = ProductView(
                pid, rec["name"], rec.get("unit_price_dong"), rec.get("grading")
            )
        elif kind == "producer_merge":
            merged[rec["merged_id"]] = rec["survivor_id"]
    for pid, producer in view.producers.items():
        if pid in merged:
            view.producers[pid] = replace(producer, merged_into=_resolve(merged, pid))
    for lot_id, lot in view.lots.items():
        if lot.producer_id in merged:
            view.lots[lot_id] = replace(lot, producer_id=_resolve(merged, lot.producer_id))
    return view
