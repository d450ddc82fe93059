"""Orders, tracking-number blocks and parcels in the station database (issue 13,
migration 0017, docs/packing.md).

Orders arrive from central (edge.orders.apply). A parcel is packed in one write
transaction (:func:`record_parcel`): the parcel row with its lines and the lots its goods
came from, the tracking number (the order's own, or the next of a block, moved on in this
same transaction, so a number is issued at most once whatever happens after), the
shipping label's print job, the ``parcel`` record for central (outbox, records stream)
and the audit entry commit together, or none of them does. A parcel is never deleted: a
void marks it (:func:`void_parcel`, a ``parcel_void`` record) and the order can be packed
again. When the printer has printed a parcel's label, :func:`label_printed` adds the
``parcel_label`` record in the transaction that marks the job printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_utils

from edge import clock
from edge.errors import StaffError
from edge.ids import new_id, parse_iso
from edge.storage import outbox
from edge.storage.search_key import fold
from edge.storage.store import RECORD_STREAM, NotFound, Store, newest_job

MAX_PERSON = 60  # characters of a name in a record for central (edge.sync.validate)


class PackRefused(StaffError):
    """A parcel that cannot be packed, voided or printed as asked (409), with why."""


class Person(Protocol):
    """Who packs: the signed-in person (edge.web.auth.Person)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


def tracking_number(prefix: str, n: int, digits: int) -> str:
    """A block's number n as printed: ``prefix + str(n).zfill(digits)``."""
    return prefix + str(n).zfill(digits)


def claim_site(store: Store) -> None:
    """Make sure this station's site has its row in ``site_sequence``, so records applied
    from central's downlink (a product added there) take their sequence numbers from it."""
    with store.write() as db:
        db.execute(
            "INSERT OR IGNORE INTO site_sequence(site_id, last_seq) VALUES (?, 0)",
            [store.site_id],
        )


# -- orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    line_no: int
    sku: str
    name: str
    variation: str | None
    product: str
    product_key: str
    grade: str | None
    quantity: int
    pack_net_g: int
    pack_tare_g: int

    @property
    def net_g(self) -> int:
        return self.quantity * self.pack_net_g


@dataclass(frozen=True)
class Order:
    id: str
    version: int
    status: str  # central's word: open or cancelled
    channel: str
    carrier: str
    tracking: str | None
    recipient: str
    phone: str
    province: str
    district: str
    commune: str
    address: str
    payment: str
    cod_dong: int
    amount_dong: int
    buyer_message: str | None
    seller_note: str | None
    package_id: str | None
    created_at: str
    lines: tuple[Line, ...]

    @property
    def net_g(self) -> int:
        return sum(line.net_g for line in self.lines)


_ORDER_COLUMNS = (
    "id, version, status, channel, carrier, tracking, recipient, phone, province, district, "
    "commune, address, payment, cod_dong, amount_dong, buyer_message, seller_note, "
    "package_id, created_at"
)
_LIVE = "EXISTS (SELECT 1 FROM parcels p WHERE p.order_id = o.id AND p.voided_at IS NULL)"
STATUS_FILTERS = {
    "open": f"o.status = 'open' AND NOT {_LIVE}",
    "packed": f"o.status = 'open' AND {_LIVE}",
    "cancelled": "o.status = 'cancelled'",
    "all": "1",
}


Query = Callable[[str, list[Any]], list[dict[str, Any]]]


def _in(db: sqlite_utils.Database) -> Query:
    """Queries inside ``db``'s open transaction."""
    return lambda sql, params: list(db.query(sql, params))


def _of(store: Store) -> Query:
    """Queries on the store's shared connection (under its lock)."""
    return lambda sql, params: store.rows(sql, tuple(params))


def _orders(query: Query, where: str, params: list[Any], limit: int = -1) -> list[Order]:
    rows = query(
        f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE {where} ORDER BY o.created_at, o.id LIMIT ?",
        [*params, limit],
    )
    if not rows:
        return []
    lines: dict[str, list[Line]] = {r["id"]: [] for r in rows}
    for line in query(
        "SELECT * FROM order_lines WHERE order_id IN (SELECT o.id FROM orders o "
        f"WHERE {where} ORDER BY o.created_at, o.id LIMIT ?) ORDER BY order_id, line_no",
        [*params, limit],
    ):
        order_id = line.pop("order_id")
        lines[order_id].append(Line(**line))
    return [Order(**r, lines=tuple(lines[r["id"]])) for r in rows]


def can_pack(store: Store, order: Order) -> None:
    """:func:`refuse_unpackable` on the store's connection: refused before weighing."""
    refuse_unpackable(_of(store), order, order.version)


def list_orders(store: Store, status: str, limit: int, upto: Order | None = None) -> list[Order]:
    """Orders in ``status`` (:data:`STATUS_FILTERS`), oldest first, at most ``limit``;
    with ``upto``, only those up to that order (itself included)."""
    if upto is None:
        return _orders(_of(store), STATUS_FILTERS[status], [], limit)
    where = f"{STATUS_FILTERS[status]} AND (o.created_at, o.id) <= (?, ?)"
    return _orders(_of(store), where, [upto.created_at, upto.id], limit)


def get_order(store: Store, order_id: str) -> Order:
    found = _orders(_of(store), "o.id = ?", [order_id])
    if not found:
        raise NotFound(f"order {order_id} not found")
    return found[0]


def find_order(store: Store, code: str) -> Order | None:
    """The order a scanned code names: its id, its package id, its own tracking number or
    the tracking number of a parcel packed for it (the newest parcel's order first)."""
    rows = store.rows(
        "SELECT id FROM orders WHERE id = :c OR package_id = :c OR tracking = :c "
        "UNION ALL SELECT order_id FROM (SELECT order_id FROM parcels WHERE tracking = :c "
        "ORDER BY voided_at IS NULL DESC, packed_at DESC) LIMIT 1",
        {"c": code},
    )
    return get_order(store, rows[0]["id"]) if rows else None


def live_parcels(store: Store, order_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The live parcel of each of these orders that has one: id, tracking, gross_g, its
    label's print job (the newest: a copy once one was printed) and status, and its
    ``state`` (packed, handed_over, returned: issue 14)."""
    ids = list(order_ids)
    if not ids:
        return {}
    marks = ",".join("?" for _ in ids)
    rows = store.rows(
        "SELECT p.order_id, p.id, p.tracking, p.gross_g, j.id AS print_job_id, "
        "j.status AS print_status, CASE WHEN EXISTS (SELECT 1 FROM parcel_returns r "
        " WHERE r.parcel_id = p.id) THEN 'returned' WHEN EXISTS (SELECT 1 FROM "
        " parcel_handovers h WHERE h.parcel_id = p.id) THEN 'handed_over' ELSE 'packed' END "
        "AS state FROM parcels p "
        f"LEFT JOIN print_jobs j ON j.id = {newest_job('shipping', 'p.id')} "
        f"WHERE p.voided_at IS NULL AND p.order_id IN ({marks})",
        tuple(ids),
    )
    return {r.pop("order_id"): r for r in rows}


def get_parcel(store: Store, parcel_id: str) -> dict[str, Any]:
    rows = store.rows("SELECT * FROM parcels WHERE id = ?", (parcel_id,))
    if not rows:
        raise NotFound(f"parcel {parcel_id} not found")
    return rows[0]


def parcel_jobs(store: Store, parcel_id: str) -> list[dict[str, Any]]:
    """The parcel's shipping label jobs, oldest first."""
    return store.rows(
        "SELECT id, status, copy_of, created_at, printed_at FROM print_jobs "
        "WHERE record_id = ? AND kind = 'shipping' ORDER BY created_at, rowid",
        (parcel_id,),
    )


def product_tolerances(store: Store) -> dict[str, int | None]:
    """Each product's check-weigh tolerance per pack, by folded name (the oldest product of
    a name wins, as edge.orders.apply matches them)."""
    found: dict[str, int | None] = {}
    for row in store.rows("SELECT name, pack_tolerance_g FROM products ORDER BY seq DESC"):
        found[fold(row["name"])] = row["pack_tolerance_g"]
    return found


# -- stock ---------------------------------------------------------------------------------


def _product_keys(rows: Iterable[tuple[Any, ...]]) -> dict[str, tuple[str, str]]:
    """product id -> (folded name, name), from (id, name) rows."""
    return {str(pid): (fold(name), str(name)) for pid, name in rows}


def lots_received(store: Store) -> list[dict[str, Any]]:
    """Grams of the lots that count (not voided; their product as corrected, their
    confirmed grade or None), per product (folded) and grade."""
    names = store.rows("SELECT id, name FROM products")
    products = _product_keys((r["id"], r["name"]) for r in names)
    rows = store.rows(
        "SELECT c.product_id, g.grade, sum(c.net_g) AS net_g FROM lots_current c "
        "LEFT JOIN lot_grades g ON g.lot_id = c.id WHERE NOT c.voided "
        "GROUP BY c.product_id, g.grade"
    )
    return [
        {"product_key": products[r["product_id"]][0], "product": products[r["product_id"]][1],
         "grade": r["grade"], "net_g": r["net_g"]}
        for r in rows
    ]  # fmt: skip


def packed_goods(store: Store) -> list[dict[str, Any]]:
    """Grams live parcels took, per product (folded) and grade (a returned parcel's goods
    are back in stock)."""
    return store.rows(
        "SELECT l.product_key, min(l.product) AS product, l.grade, sum(l.net_g) AS net_g "
        "FROM parcel_lines l "
        "JOIN parcels p ON p.id = l.parcel_id WHERE p.voided_at IS NULL "
        "AND p.id NOT IN (SELECT parcel_id FROM parcel_returns) "  # returned: back in stock
        "GROUP BY l.product_key, l.grade"
    )


def tracking_left(store: Store) -> list[dict[str, Any]]:
    """Per carrier (as the blocks name it): numbers left to issue and numbers received."""
    return store.rows(
        "SELECT carrier, sum(last - next_n + 1) AS left, sum(last - first + 1) AS size "
        "FROM tracking_blocks GROUP BY carrier ORDER BY carrier"
    )


# -- packing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackPlan:
    """A check-weighed parcel for ``order_id`` as it stood at ``version``."""

    order_id: str
    version: int
    gross_g: int
    scale_frame: str
    expected_g: int
    tolerance_g: int
    override_reason: str | None


@dataclass(frozen=True)
class Packed:
    """What the label and the answer need of a parcel packed a moment ago."""

    id: str
    order: Order
    tracking: str
    net_g: int
    gross_g: int
    expected_g: int
    tolerance_g: int
    override_reason: str | None
    packed_at: str
    lots: tuple[dict[str, Any], ...]  # id, net_g, day, day_no
    print_job_id: str


Label = Callable[[Packed], dict[str, Any]]


def refuse_unpackable(query: Query, order: Order | None, version: int) -> None:
    """PackRefused when ``order`` cannot be packed now (cancelled, packed, changed since
    ``version`` was read)."""
    if order is None:
        raise NotFound("order not found")
    if order.status == "cancelled":
        raise PackRefused(
            "order_cancelled",
            f"Đơn {order.id} đã bị hủy. Không đóng gói đơn này; để hàng lại kho.",
            f"Order {order.id} was cancelled. Do not pack it; put the goods back.",
        )
    live = query(
        "SELECT tracking FROM parcels WHERE order_id = ? AND voided_at IS NULL", [order.id]
    )
    if live:
        tracking = live[0]["tracking"]
        raise PackRefused(
            "already_packed",
            f"Đơn {order.id} đã đóng gói rồi (mã vận đơn {tracking}). Cần đóng lại thì "
            "trưởng điểm hủy kiện cũ trước.",
            f"Order {order.id} is already packed (tracking {tracking}). To repack it, a "
            "lead voids the old parcel first.",
        )
    if order.version != version:
        raise PackRefused(
            "order_changed",
            f"Đơn {order.id} vừa được cập nhật. Xem lại đơn rồi cân lại.",
            f"Order {order.id} was just updated. Check it again, then weigh again.",
        )


def _issue_tracking(db: sqlite_utils.Database, order: Order) -> tuple[str, str | None]:
    """(number, block id): the order's own number, else the next of the oldest block of
    its carrier with numbers left, moved on here (in the parcel's transaction)."""
    if order.tracking:
        return order.tracking, None
    carrier = fold(order.carrier)
    for block_id, name, prefix, n, digits in db.execute(
        "SELECT id, carrier, prefix, next_n, digits FROM tracking_blocks "
        "WHERE next_n <= last ORDER BY received_at, id"
    ).fetchall():
        if fold(name) == carrier:
            db.execute("UPDATE tracking_blocks SET next_n = next_n + 1 WHERE id = ?", [block_id])
            return tracking_number(prefix, n, digits), str(block_id)
    raise PackRefused(
        "no_tracking_number",
        f"Hết mã vận đơn của {order.carrier} ở điểm này, và đơn chưa có mã. "
        "Báo văn phòng cấp thêm dải mã.",
        f"No {order.carrier} tracking numbers are left at this point and the order has "
        "none. Ask the office for a new block.",
    )


_LOTS_LEFT = (
    "SELECT c.id, c.product_id, g.grade, l.day, l.day_no, c.net_g - COALESCE(("
    " SELECT sum(pl.net_g) FROM parcel_lots pl JOIN parcels p ON p.id = pl.parcel_id"
    " WHERE pl.lot_id = c.id AND p.voided_at IS NULL"
    " AND p.id NOT IN (SELECT parcel_id FROM parcel_returns)), 0) AS left_g "
    "FROM lots_current c JOIN lots l ON l.id = c.id LEFT JOIN lot_grades g ON g.lot_id = c.id "
    "WHERE NOT c.voided AND c.product_id IN ({ids}) AND left_g > 0 "
    "ORDER BY c.recorded_at, c.seq"
)


def _allocate(db: sqlite_utils.Database, order: Order) -> list[dict[str, Any]]:
    """The lots the goods come from: per product and grade, the oldest lots with grams
    left first. What no lot covers is packed from stock not recorded (no link)."""
    need: dict[tuple[str, str | None], int] = {}
    for line in order.lines:
        key = (line.product_key, line.grade)
        need[key] = need.get(key, 0) + line.net_g
    products = _product_keys(db.execute("SELECT id, name FROM products").fetchall())
    ids = [pid for pid, (key, _) in products.items() if any(key == k for k, _ in need)]
    taken: list[dict[str, Any]] = []
    if not ids:
        return taken
    cursor = db.execute(_LOTS_LEFT.format(ids=",".join("?" for _ in ids)), ids)
    for lot_id, product_id, grade, day, day_no, left in cursor:
        key = (products[product_id][0], grade)
        if need.get(key, 0) > 0:
            grams = min(left, need[key])
            need[key] -= grams
            taken.append({"id": lot_id, "net_g": grams, "day": day, "day_no": day_no})
            if not any(need.values()):
                break
    cursor.close()
    return taken


def parcel_record(packed: Packed, person: Person, stamp: dict[str, Any]) -> dict[str, Any]:
    """The ``parcel`` record central receives (docs/packing.md)."""
    return {
        "id": packed.id,
        "order_id": packed.order.id,
        "tracking": packed.tracking,
        "carrier": packed.order.carrier,
        "net_g": packed.net_g,
        "gross_g": packed.gross_g,
        "expected_g": packed.expected_g,
        "tolerance_g": packed.tolerance_g,
        "override": (
            None if packed.override_reason is None else {"reason": packed.override_reason}
        ),
        "by": person.name[:MAX_PERSON],
        "by_id": person.id,
        "packed_at": packed.packed_at,
        "lots": [{"lot_id": lot["id"], "net_g": lot["net_g"]} for lot in packed.lots],
        "lines": [
            {"product": x.product, "grade": x.grade, "quantity": x.quantity}
            for x in packed.order.lines
        ],
        **stamp,
    }


def record_parcel(store: Store, plan: PackPlan, person: Person, label: Label) -> Packed:
    """Pack: everything in one transaction (see the module's note). Refused (PackRefused)
    when the order is cancelled, already packed, changed since it was checked, or its
    carrier has no number left; ``label`` makes the shipping label's data."""
    with store.write() as db:
        found = _orders(_in(db), "o.id = ?", [plan.order_id])
        order = found[0] if found else None
        refuse_unpackable(_in(db), order, plan.version)
        assert order is not None
        tracking, block_id = _issue_tracking(db, order)
        at = store.now()
        stamp = clock.stamp(at)
        packed = Packed(
            id=new_id(at),
            order=order,
            tracking=tracking,
            net_g=order.net_g,
            gross_g=plan.gross_g,
            expected_g=plan.expected_g,
            tolerance_g=plan.tolerance_g,
            override_reason=plan.override_reason,
            packed_at=stamp["recorded_at"],
            lots=tuple(_allocate(db, order)),
            print_job_id=new_id(at),
        )
        db.table("print_jobs").insert(
            {
                "id": packed.print_job_id,
                "kind": "shipping",
                "record_id": packed.id,
                "data": json.dumps(label(packed), ensure_ascii=False),
                "status": "queued",
                "attempts": 0,
                "created_at": packed.packed_at,
                "updated_at": packed.packed_at,
            }
        )
        db.table("parcels").insert(
            {
                "id": packed.id,
                "order_id": order.id,
                "tracking": tracking,
                "tracking_block_id": block_id,
                "carrier": order.carrier,
                "net_g": packed.net_g,
                "gross_g": plan.gross_g,
                "expected_g": plan.expected_g,
                "tolerance_g": plan.tolerance_g,
                "override_reason": plan.override_reason,
                "scale_frame": plan.scale_frame,
                "print_job_id": packed.print_job_id,
                "packed_by": person.name,
                "packed_by_id": person.id,
                "packed_at": packed.packed_at,
            }
        )
        db.table("parcel_lines").insert_all(
            {"parcel_id": packed.id, "line_no": x.line_no, "sku": x.sku, "product": x.product,
             "product_key": x.product_key, "grade": x.grade, "quantity": x.quantity,
             "net_g": x.net_g}
            for x in order.lines
        )  # fmt: skip
        db.table("parcel_lots").insert_all(
            {"parcel_id": packed.id, "lot_id": lot["id"], "net_g": lot["net_g"]}
            for lot in packed.lots
        )
        outbox.add(db, RECORD_STREAM, "parcel", packed.id, parcel_record(packed, person, stamp))
        store.audit(
            db, "parcel.packed", packed.id, actor=person.name, actor_id=person.id,
            order_id=order.id, tracking=tracking, gross_g=plan.gross_g,
            expected_g=plan.expected_g, tolerance_g=plan.tolerance_g,
            override_reason=plan.override_reason, print_job_id=packed.print_job_id,
        )  # fmt: skip
    return packed


def void_parcel(store: Store, parcel_id: str, reason: str, person: Person) -> dict[str, Any]:
    """Mark a parcel voided (kept, never deleted); its order can be packed again."""
    with store.write() as db:
        row = db.execute(
            "SELECT order_id, tracking, voided_at FROM parcels WHERE id = ?", [parcel_id]
        ).fetchone()
        if row is None:
            raise NotFound(f"parcel {parcel_id} not found")
        if row[2] is not None:
            raise PackRefused(
                "parcel_voided",
                f"Kiện {row[1]} đã bị hủy rồi.",
                f"Parcel {row[1]} is already voided.",
            )
        if db.execute("SELECT 1 FROM parcel_handovers WHERE parcel_id = ?", [parcel_id]).fetchone():
            raise PackRefused(  # issue 14: the courier has it; a return brings it back
                "parcel_handed_over",
                f"Kiện {row[1]} đã bàn giao cho hãng vận chuyển: không hủy được.",
                f"Parcel {row[1]} was handed over to the carrier: it cannot be voided.",
            )
        at = store.now()
        stamp = clock.stamp(at)
        db.execute(
            "UPDATE parcels SET voided_at = ?, void_reason = ?, voided_by = ?, voided_by_id = ? "
            "WHERE id = ?",
            [stamp["recorded_at"], reason, person.name, person.id, parcel_id],
        )
        record = {"parcel_id": parcel_id, "reason": reason, "by": person.name[:MAX_PERSON],
                  "by_id": person.id, "at": stamp["recorded_at"], **stamp}  # fmt: skip
        outbox.add(db, RECORD_STREAM, "parcel_void", parcel_id, record)
        store.audit(
            db, "parcel.voided", parcel_id, actor=person.name, actor_id=person.id,
            order_id=row[0], tracking=row[1], reason=reason,
        )  # fmt: skip
    return {"order_id": row[0], "tracking": row[1]}


def label_printed(db: sqlite_utils.Database, job_id: str, printed_at: str) -> None:
    """In the transaction that marks ``job_id`` printed: a shipping label of a parcel
    gets its ``parcel_label`` record for central (any other job nothing)."""
    row = db.execute(
        "SELECT j.record_id, j.copy_of FROM print_jobs j JOIN parcels p ON p.id = j.record_id "
        "WHERE j.id = ? AND j.kind = 'shipping'",
        [job_id],
    ).fetchone()
    if row is None:
        return
    stamp = clock.stamp(parse_iso(printed_at))
    record = {"parcel_id": row[0], "job_id": job_id, "copy": row[1] is not None,
              "printed_at": printed_at, **stamp}  # fmt: skip
    outbox.add(db, RECORD_STREAM, "parcel_label", job_id, record)
