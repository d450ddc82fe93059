"""The packing service the station builds as ``station.orders`` (issue 13, docs/packing.md):
orders as staff see them, the pick list, packing with the check-weigh, voids and label
copies. The web layer (edge.web.orders_api) calls it; it calls storage
(edge.storage.orders) and the station's scale through ``weighing``.

Packing weighs with the scale's current stable reading under the station's rules for
recording a lot (stable, positive, one weighing makes one record: Station.weighing), checks
it (edge.orders.checkweigh), and commits the parcel with its lots, its tracking number,
its shipping label's print job, its record for central and its audit entry in one
transaction (edge.storage.orders.record_parcel); then the printer is woken, so the label
prints at once. A weight outside the tolerance is refused with the numbers; only a lead
passes it, with a reason kept in the parcel, its record and the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from edge.errors import StaffError
from edge.orders.checkweigh import PackLine, Verdict, check
from edge.orders.stock import Coverage, Key, Stock, cover, on_hand, pick_lines, stock_rows
from edge.orders.tracking import numbers_left
from edge.printer.kinds import MAX_LOTS, LabelDataError, parse_label_data
from edge.storage import orders as db_orders
from edge.storage.orders import Order, Packed, PackPlan, PackRefused
from edge.storage.print_queue import PrintQueue
from edge.storage.store import NotFound, Store

STATUSES = ("open", "packed", "cancelled", "all")
MAX_LIST = 5000


class Reading(Protocol):
    """The scale's reading a parcel is weighed with (edge.scale.state.ScaleState)."""

    @property
    def weight_g(self) -> int | None: ...
    @property
    def frame(self) -> str | None: ...


class Packer(Protocol):
    """Who packs: the signed-in person (edge.web.auth.Person)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


Weighing = Callable[[str], AbstractContextManager[Reading]]
"""Station.weighing: the reading for one record of a kind ("parcel")."""


class OrderNotFound(StaffError):
    default_status = 404


def _not_found(what: str) -> OrderNotFound:
    return OrderNotFound(
        "order_not_found",
        f"Không tìm thấy đơn “{what}” ở điểm này. Kiểm tra mã trên phiếu đơn.",
        f"No order {what!r} at this point. Check the code on the order slip.",
    )


def _lot_label(lot: dict[str, Any]) -> str:
    """A lot as staff know it: "06/12 #3" (its local day, its daily number)."""
    day, no = lot.get("day"), lot.get("day_no")
    if not day or no is None:
        return "#?"
    return f"{day[8:10]}/{day[5:7]} #{no}"


def goods_summary(order: Order) -> str:
    """The single product, or "Chè Shan tuyết + 1 mặt hàng"."""
    names: list[str] = []
    for line in order.lines:
        if line.product not in names:
            names.append(line.product)
    return names[0] if len(names) == 1 else f"{names[0]} + {len(names) - 1} mặt hàng"


def full_address(order: Order) -> str:
    parts = (order.address, order.commune, order.district, order.province)
    return ", ".join(p for p in parts if p)


class Orders:
    def __init__(
        self,
        store: Store,
        site_name: str,
        weighing: Weighing,
        printed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.site_name = site_name
        self.weighing = weighing  # the scale's stable reading, under the one-weighing rule
        self.printed = printed  # wakes the printer: a label was queued

    # -- reading ---------------------------------------------------------------------

    def _lines(self, order: Order) -> list[PackLine]:
        tolerances = db_orders.product_tolerances(self.store)
        return [
            PackLine(x.quantity, x.pack_net_g, x.pack_tare_g, tolerances.get(x.product_key))
            for x in order.lines
        ]

    def _json(
        self,
        orders: list[Order],
        covered: dict[str, bool] | None = None,
    ) -> list[dict[str, Any]]:
        parcels = db_orders.live_parcels(self.store, (o.id for o in orders))
        tolerances = db_orders.product_tolerances(self.store)
        found = []
        for order in orders:
            parcel = parcels.get(order.id)
            status = order.status
            if parcel is not None:
                status = "cancelled_after_packing" if status == "cancelled" else "packed"
                if parcel["state"] != "packed":  # handed_over, returned (issue 14)
                    status = parcel["state"]
            lines = [
                PackLine(x.quantity, x.pack_net_g, x.pack_tare_g, tolerances.get(x.product_key))
                for x in order.lines
            ]
            verdict = check(lines, 0)
            found.append(
                {
                    "id": order.id,
                    "status": status,
                    "channel": order.channel,
                    "created_at": order.created_at,
                    "package_id": order.package_id,
                    "recipient": order.recipient,
                    "phone": order.phone,
                    "province": order.province,
                    "district": order.district,
                    "commune": order.commune,
                    "address": order.address,
                    "carrier": order.carrier,
                    "tracking": order.tracking,
                    "payment": order.payment,
                    "cod_dong": order.cod_dong,
                    "amount_dong": order.amount_dong,
                    "buyer_message": order.buyer_message,
                    "seller_note": order.seller_note,
                    "lines": [
                        {
                            "sku": x.sku,
                            "name": x.name,
                            "variation": x.variation,
                            "product": x.product,
                            "grade": x.grade,
                            "quantity": x.quantity,
                            "pack_net_g": x.pack_net_g,
                            "pack_tare_g": x.pack_tare_g,
                        }
                        for x in order.lines
                    ],
                    "expected_g": verdict.expected_g,
                    "tolerance_g": verdict.tolerance_g,
                    "covered": (covered or {}).get(order.id, True),
                    "parcel": parcel,
                }
            )
        return found

    def _coverage(
        self, upto: Order | None = None
    ) -> tuple[list[Order], dict[Key, Stock], Coverage]:
        """The open orders (up to ``upto``: older ones come first for the stock), the
        stock on hand, and which of them it covers."""
        open_orders = db_orders.list_orders(self.store, "open", -1, upto)
        stock = on_hand(db_orders.lots_received(self.store), db_orders.packed_goods(self.store))
        return open_orders, stock, cover(open_orders, stock)

    def list(self, status: str = "open", limit: int = 500) -> list[dict[str, Any]]:
        """Orders in ``status`` (open, packed, cancelled, all), oldest first."""
        orders = db_orders.list_orders(self.store, status, limit)
        covered = None
        if any(o.status == "open" for o in orders):
            covered = self._coverage()[2].covered
        return self._json(orders, covered)

    def get(self, order_id: str) -> dict[str, Any]:
        try:
            order = db_orders.get_order(self.store, order_id)
        except NotFound:
            raise _not_found(order_id) from None
        return self.one(order)

    def one(self, order: Order, coverage: bool = True) -> dict[str, Any]:
        wanted = coverage and order.status == "open"
        covered = self._coverage(upto=order)[2].covered if wanted else None
        return self._json([order], covered)[0]

    def lookup(self, code: str) -> dict[str, Any]:
        """The order a scanned slip names (order id, package id or tracking number)."""
        order = db_orders.find_order(self.store, code.strip())
        if order is None:
            raise _not_found(code.strip())
        return self.one(order)

    def picklist(self) -> dict[str, Any]:
        open_orders, stock, coverage = self._coverage()
        carriers = {o.carrier for o in open_orders if not o.tracking}
        return {
            "lines": pick_lines(open_orders),
            "stock": stock_rows(stock),
            "short": coverage.short,
            "tracking": numbers_left(db_orders.tracking_left(self.store), sorted(carriers)),
        }

    # -- packing ---------------------------------------------------------------------

    def _label(self, packed: Packed) -> dict[str, Any]:
        """The shipping label's data (edge.printer.kinds.ShippingData), checked: a label
        that could not print is never queued."""
        order = packed.order
        grades = {x.grade for x in order.lines}
        data = {
            "tracking_code": packed.tracking,
            "courier": order.carrier,
            "collection_point": self.site_name,
            "sender_phone": None,
            "order_id": order.id,
            "recipient": {
                "name": order.recipient,
                "phone": order.phone,
                "address": full_address(order),
            },
            "product": goods_summary(order),
            "grade": grades.pop() if len(grades) == 1 else None,
            "goods": [
                {"name": x.product, "grade": x.grade, "quantity": x.quantity, "net_g": x.net_g}
                for x in order.lines
            ],
            "net_g": packed.net_g,
            "gross_g": packed.gross_g,
            "cod_dong": order.cod_dong,
            "lots": [_lot_label(lot) for lot in packed.lots][:MAX_LOTS],
            "created_at": packed.packed_at,
            "note": order.buyer_message,
        }
        try:
            parse_label_data("shipping", data)
        except LabelDataError as exc:
            raise PackRefused(
                "label_invalid",
                f"Không in được nhãn vận đơn cho đơn {order.id}: {exc}. Báo văn phòng.",
                f"The shipping label of order {order.id} cannot be printed: {exc}.",
            ) from None
        return data

    def pack(
        self, order_id: str, person: Packer, override_reason: str | None = None
    ) -> dict[str, Any]:
        """Check-weigh and pack ``order_id`` (see the module's note); 201's body."""
        if override_reason is not None and person.role != "lead":
            raise PackRefused(
                "override_lead_only",
                "Chỉ trưởng điểm được cho qua khối lượng sai, kèm lý do.",
                "Only a lead may pass a refused weight, with a reason.",
                403,
            )
        try:
            order = db_orders.get_order(self.store, order_id)
        except NotFound:
            raise _not_found(order_id) from None
        db_orders.can_pack(self.store, order)  # cancelled or packed: said before weighing
        with self.weighing("parcel") as reading:
            weight = reading.weight_g or 0
            verdict = check(self._lines(order), weight)
            override = self._verdict(verdict, override_reason)
            plan = PackPlan(
                order.id, order.version, weight, reading.frame or "",
                verdict.expected_g, verdict.tolerance_g, override,
            )  # fmt: skip
            packed = db_orders.record_parcel(self.store, plan, person, self._label)
        self.printed()
        parcel = db_orders.live_parcels(self.store, [order.id])[order.id]
        return {
            "parcel": {**parcel, "order_id": order.id, "net_g": packed.net_g,
                       "expected_g": packed.expected_g, "tolerance_g": packed.tolerance_g,
                       "override_reason": packed.override_reason,
                       "packed_at": packed.packed_at,
                       "lots": [{"lot_id": x["id"], "net_g": x["net_g"],
                                 "label": _lot_label(x)} for x in packed.lots]},
            "order": self.one(packed.order, coverage=False),
        }  # fmt: skip

    @staticmethod
    def _verdict(verdict: Verdict, override_reason: str | None) -> str | None:
        """The override kept with the parcel (None when the weight passes); refused when
        the weight is wrong and nobody (or nobody able) passes it."""
        if verdict.ok:
            return None
        vi, en = verdict.messages()
        if override_reason is None:
            raise PackRefused(verdict.code or "weight_wrong", vi, en)
        if verdict.below_goods:
            raise PackRefused(
                "weight_below_goods",
                f"{vi}. Kiện nhẹ hơn cả hàng bên trong: thiếu hàng, không cho qua được. "
                "Kiểm tra và đóng lại.",
                f"{en}. The parcel weighs less than its goods alone: goods are missing, it "
                "cannot be passed. Check it and pack it again.",
            )
        return override_reason

    def void(self, parcel_id: str, person: Packer, reason: str) -> dict[str, Any]:
        """Void a packed parcel (a lead): kept with its void mark; the order opens again."""
        done = db_orders.void_parcel(self.store, parcel_id, reason, person)
        order = db_orders.get_order(self.store, done["order_id"])
        return {"parcel": db_orders.get_parcel(self.store, parcel_id), "order": self.one(order)}

    def reprint(self, parcel_id: str, person: Packer, reason: str) -> dict[str, Any]:
        """The parcel's label again: a copy ("BẢN SAO") once one printed; a held or failed
        label is queued again as it is."""
        parcel = db_orders.get_parcel(self.store, parcel_id)
        if parcel["voided_at"] is not None:
            raise PackRefused(
                "parcel_voided",
                f"Kiện {parcel['tracking']} đã bị hủy: không in lại nhãn của kiện đã hủy.",
                f"Parcel {parcel['tracking']} was voided: its label is not printed again.",
            )
        latest = db_orders.parcel_jobs(self.store, parcel_id)[-1]["id"]
        try:
            job_id = PrintQueue(self.store).requeue(latest, person.name, reason)
        except ValueError:
            raise PackRefused(
                "label_printing",
                "Nhãn của kiện này đang chờ in. Xem máy in trước khi in lại.",
                "This parcel's label is still waiting to print. Check the printer first.",
            ) from None
        self.printed()
        return {"job_id": job_id, "copy": job_id != latest, "parcel_id": parcel_id}
