"""What an order import changes, worked out before any SQL: both central back-ends
(``sqlite_store``, ``pg_store``) read the stored state of the imported ids, ask
:func:`plan_import` what to write and what to queue down to which point, and run
that in one transaction.

An order's content is its canonical JSON (keys sorted, no spaces, UTF-8) without
``version`` and ``created_at``, site included; its hash decides "unchanged". The
rules (issue #13, the shared contract):

- a new id is stored as version 1 and queued to its site (``accepted``); one
  cancelled at its first import is stored and not sent (``cancelled``);
- a known id with other content becomes version + 1 and is queued (``updated``, or
  ``cancelled`` when it goes from not cancelled to cancelled); a cancelled order
  whose content changes again while still cancelled is stored, not sent;
- an order moved to another site: a cancelled version goes to the old site (unless
  it was cancelled there already), the order to the new one (``updated``);
- identical content: nothing (``unchanged``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CANCELLED = "cancelled"
STATUSES = frozenset({"open", CANCELLED})
_SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NOT_CONTENT = frozenset({"version", "created_at", "seq"})
"""Keys that do not make an order different (``seq`` is the envelope's)."""


def canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(order: Mapping[str, Any]) -> str:
    """sha256 of the order's canonical JSON without version and created_at."""
    content = {k: v for k, v in order.items() if k not in NOT_CONTENT}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def new_epoch() -> str:
    """A downlink epoch: 16 lower-case hex digits, made once per central database."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class StoredOrder:
    """An order as central holds it: ``body`` is the record last queued (or, for an
    order never sent, the record it would be), without ``site``."""

    id: str
    site: str
    status: str
    version: int
    hash: str
    body: dict[str, Any]


@dataclass
class ImportPlan:
    rows: dict[str, StoredOrder] = field(default_factory=dict)
    """id -> the order's state after the import (only the ids that changed)."""
    new_ids: set[str] = field(default_factory=set)
    queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """site -> downlink records to append, in order."""
    counts: dict[str, int] = field(
        default_factory=lambda: {"accepted": 0, "updated": 0, "cancelled": 0, "unchanged": 0}
    )


def check_site(site: object) -> str:
    if not isinstance(site, str) or not _SITE.match(site):
        raise ValueError(f"site {site!r} is not a site id (lower-case letters, digits, '-')")
    return site


def _check(order: Mapping[str, Any]) -> tuple[str, str, str]:
    oid, site, status = order.get("id"), order.get("site"), order.get("status")
    if not isinstance(oid, str) or not 0 < len(oid) <= 128:
        raise ValueError(f"order id {oid!r} must be text of 1 to 128 characters")
    if not isinstance(site, str) or not _SITE.match(site):
        raise ValueError(f"order {oid}: site {site!r} is not a site id")
    if status not in STATUSES:
        raise ValueError(f"order {oid}: status {status!r} is not one of {sorted(STATUSES)}")
    return oid, site, str(status)


def check_orders(orders: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ids of ``orders``, each once; ValueError for an order without a sane id,
    site or status, or whose content is not JSON."""
    ids: dict[str, None] = {}
    for order in orders:
        oid, _, _ = _check(order)
        try:
            content_hash(order)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"order {oid}: not JSON: {exc}") from None
        ids[oid] = None
    return list(ids)


def order_record(
    order: Mapping[str, Any], version: int, created_at: str, status: str | None = None
) -> dict[str, Any]:
    """The downlink ``order`` record of an imported order (``site`` dropped)."""
    body = {k: v for k, v in order.items() if k not in ("site", "seq", "version", "created_at")}
    body["type"] = "order"
    if status is not None:
        body["status"] = status
    body["version"] = version
    body["created_at"] = created_at
    return body


def plan_import(
    orders: Sequence[Mapping[str, Any]], stored: Mapping[str, StoredOrder], now: str
) -> ImportPlan:
    """What importing ``orders`` does, given the stored state of their ids; an id
    twice in ``orders`` is imported twice, in order. ValueError for an order
    without a sane id, site or status (nothing is planned then)."""
    plan = ImportPlan()
    state = dict(stored)

    def queue(site: str, record: dict[str, Any]) -> None:
        plan.queue.setdefault(site, []).append(record)

    for order in orders:
        oid, site, status = _check(order)
        digest = content_hash(order)
        old = state.get(oid)
        if old is not None and old.hash == digest:
            plan.counts["unchanged"] += 1
            continue
        cancelled = status == CANCELLED
        if old is None:
            created = order.get("created_at")
            record = order_record(order, 1, created if isinstance(created, str) else now)
            plan.new_ids.add(oid)
            if cancelled:
                plan.counts["cancelled"] += 1
            else:
                plan.counts["accepted"] += 1
                queue(site, record)
        else:
            version = old.version + 1
            record = order_record(order, version, str(old.body.get("created_at", now)))
            was_cancelled = old.status == CANCELLED
            if old.site != site:
                if not was_cancelled:
                    queue(old.site, {**old.body, "status": CANCELLED, "version": version})
                if not cancelled:
                    queue(site, record)
                plan.counts["cancelled" if cancelled and not was_cancelled else "updated"] += 1
            elif cancelled and was_cancelled:
                plan.counts["updated"] += 1  # stored; the point has it cancelled or never had it
            else:
                queue(site, record)
                plan.counts["cancelled" if cancelled else "updated"] += 1
        row = StoredOrder(oid, site, status, record["version"], digest, record)
        state[oid] = row
        plan.rows[oid] = row
    return plan


QueuedRow = tuple[str, str | None, str]
"""(kind, record id, JSON body) of a record queued down."""


def queued_rows(records: Sequence[Mapping[str, Any]]) -> list[QueuedRow]:
    """The rows of records queued down; ValueError when one has no type or is not JSON."""
    out: list[QueuedRow] = []
    for record in records:
        kind = record.get("type")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"a downlink record needs a 'type': {dict(record)!r:.120}")
        rid = record.get("id", record.get("name"))
        body = {k: v for k, v in record.items() if k != "seq"}
        try:
            text = canonical_json(body)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a {kind} record is not JSON: {exc}") from None
        out.append((kind, rid if isinstance(rid, str) else None, text))
    return out
