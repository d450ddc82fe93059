"""The trace search: what an operator typed or scanned (a tracking number, a lot, parcel
or manifest id, a signed QR payload) -> the chain parcel -> lots -> farmers -> grades ->
handover and returns, with names from the point's producer and product records.

Every lookup goes through an index of ``records`` (schema.py: by record id, a parcel's
tracking number, what names a parcel, a lot or a manifest, the parcels that packed a lot,
a farmer's or product's edits and merges), always within the one point that sent them,
so a search costs a handful of index probes whatever the size of the store. What the
queries return is folded by the pure folds of central (:func:`edge.central.lots.site_view`
and :func:`edge.central.parcels.fold`) in seq order: records that arrived out of order
(a correction stored before the lot it corrects) fold as the station committed them.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edge.central.console.db import ConsoleDb
from edge.central.lots import site_view
from edge.central.parcels import Parcel, fold
from edge.printer.payload import (
    KeyFileError,
    PayloadError,
    PayloadKind,
    load_site_key,
    verify,
)

MAX_QUERY = 120
"""Longest query taken: a QR payload of a 63-character site id is 112 characters."""
QUERY_RE = re.compile(r"[A-Za-z0-9.:_ -]+")
UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
TRACKING_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{2,63}")
MAX_PARCELS = 20
"""Parcels shown for one tracking number or one lot (the newest first)."""
MAX_MANIFEST_PARCELS = 500

VALID = "valid"
FORGED = "forged"
UNCHECKED = "unchecked"

PARCEL_REFS = "('parcel_void', 'parcel_label', 'parcel_handover', 'parcel_return')"
LOT_REFS = "('grade', 'lot_void', 'lot_correction')"


# -- what was asked -------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A classified query: ``kind`` is ``empty``, ``bad`` (``problem`` says why), ``qr``,
    ``uuid`` or ``tracking``."""

    text: str
    kind: str
    problem: str | None = None
    site: str | None = None  # a QR payload's point
    ref_kind: str | None = None  # a QR payload's L, S or M
    ref: str | None = None  # the UUID or tracking number to look up
    signature: str | None = None  # VALID, FORGED or UNCHECKED (QR payloads)
    signature_detail: str | None = None


def _unchecked_ref(kind: PayloadKind, text: str) -> str:
    if kind is PayloadKind.SHIPPING:
        return text
    return str(uuid.UUID(bytes=base64.b32decode(text + "======")))


def read_payload(text: str, keys_dir: Path | None) -> Query:
    """A scanned ``E1:SITE:K:REF:MAC``: its form checked, then its signature with the
    point's key when ``keys_dir`` holds ``<site>.key``."""
    try:  # the form first (any key: only a wrong signature may be left)
        verify(text, bytes(32))
    except PayloadError as exc:
        if exc.code != "bad_signature":
            return Query(text, "bad", problem=str(exc))
    fields = text.split(":")
    site, kind = fields[1].lower(), PayloadKind(fields[2])
    ref = _unchecked_ref(kind, fields[3])
    base = Query(text, "qr", site=site, ref_kind=kind.value, ref=ref, signature=UNCHECKED)
    key_file = keys_dir / f"{site}.key" if keys_dir is not None else None
    if key_file is None or not key_file.exists():
        return base
    try:
        key = load_site_key(key_file)
    except KeyFileError as exc:
        return Query(**{**base.__dict__, "signature_detail": str(exc)})
    try:
        verify(text, key, site=site)
    except PayloadError as exc:
        return Query(**{**base.__dict__, "signature": FORGED, "signature_detail": str(exc)})
    return Query(**{**base.__dict__, "signature": VALID})


def classify(raw: str, keys_dir: Path | None) -> Query:
    """What ``raw`` (typed or scanned) asks for; a query not understood says why."""
    text = raw.strip()
    if not text:
        return Query("", "empty")
    if len(text) > MAX_QUERY:
        return Query(text[:MAX_QUERY], "bad", problem=f"too long: {len(text)} characters")
    if not QUERY_RE.fullmatch(text):
        bad = next(c for c in text if not QUERY_RE.fullmatch(c))
        return Query(text, "bad", problem=f"character {bad!r} (U+{ord(bad):04X}) is not taken")
    if text[:3].upper() == "E1:" or re.match(r"[Ee][0-9]+:", text):
        return read_payload(text.upper(), keys_dir)
    if UUID_RE.fullmatch(text):
        return Query(text, "uuid", ref=str(uuid.UUID(text)))
    if TRACKING_RE.fullmatch(text):
        return Query(text, "tracking", ref=text)
    return Query(text, "bad", problem="neither a lot, parcel or manifest id nor a tracking number")


# -- what was found ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GradeLine:
    grade: str | None
    proposed: str | None
    method: str | None
    confirmed_by: str | None
    overridden: bool
    photo_id: str | None
    at: str | None


@dataclass(frozen=True)
class LotLine:
    site: str
    id: str
    found: bool  # False: the parcel names a lot whose record has not reached central
    farmer: str | None = None
    farmer_id: str | None = None
    village: str | None = None
    recorded_farmer: str | None = None  # the farmer the lot record named, when corrected
    product: str | None = None
    product_id: str | None = None
    recorded_product: str | None = None
    net_g: int | None = None
    packed_g: int | None = None  # what the parcel took of it
    recorded_at: str | None = None
    day_no: int | None = None
    voided: bool = False
    void_reason: str | None = None
    voided_by: str | None = None
    corrections: int = 0
    grades: tuple[GradeLine, ...] = ()


@dataclass(frozen=True)
class Event:
    at: str | None
    what: str  # packed, label, handed_over, returned, voided
    detail: dict[str, Any]


@dataclass
class ParcelChain:
    site: str
    parcel: Parcel
    events: list[Event]
    manifests: dict[str, dict[str, Any]]
    lots: list[LotLine] = field(default_factory=list)


@dataclass
class ManifestChain:
    site: str
    id: str
    record: dict[str, Any] | None
    parcels: list[tuple[str, str, str]]  # (parcel id, tracking, state now)


@dataclass
class Found:
    parcels: list[ParcelChain] = field(default_factory=list)
    lot: LotLine | None = None
    manifest: ManifestChain | None = None
    other: str | None = None  # a record id of another kind: which kind

    @property
    def empty(self) -> bool:
        return not self.parcels and self.lot is None and self.manifest is None


# -- pure assembly ---------------------------------------------------------------------------


def by_seq(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records in the station's commit order, each once (a record fetched twice is one)."""
    seen: dict[int, dict[str, Any]] = {}
    for rec in records:
        seen[int(rec["seq"])] = dict(rec)
    return [seen[s] for s in sorted(seen)]


def lot_lines(
    site: str, records: Iterable[Mapping[str, Any]], lot_ids: list[str]
) -> dict[str, LotLine]:
    """Each lot of ``lot_ids`` as it stands after ``records`` (the lots, their grades,
    voids and corrections, the farmers and products they name with edits and merges)."""
    ordered = by_seq(records)
    view = site_view(ordered)
    grades: dict[str, list[GradeLine]] = {}
    for rec in ordered:
        if rec.get("type") == "grade":
            grades.setdefault(str(rec.get("lot_id")), []).append(
                GradeLine(
                    rec.get("grade"),
                    rec.get("proposed_grade"),
                    rec.get("method"),
                    rec.get("confirmed_by"),
                    bool(rec.get("overridden")),
                    rec.get("photo_id"),
                    rec.get("recorded_at"),
                )
            )
    day_nos = {r["id"]: r.get("day_no") for r in ordered if r.get("type") == "lot"}
    fixes = [r for r in ordered if r.get("type") == "lot_correction"]
    farmer_fixed = {str(r.get("lot_id")) for r in fixes if r.get("producer_id")}
    product_fixed = {str(r.get("lot_id")) for r in fixes if r.get("product_id")}
    out: dict[str, LotLine] = {}
    for lot_id in lot_ids:
        lot = view.lots.get(lot_id)
        if lot is None:
            out[lot_id] = LotLine(site, lot_id, False, grades=tuple(grades.get(lot_id, [])))
            continue
        farmer = view.producers.get(lot.producer_id)
        product = view.products.get(lot.product_id)
        was = view.producers.get(lot.recorded_producer_id)
        was_product = view.products.get(lot.recorded_product_id)
        out[lot_id] = LotLine(
            site=site,
            id=lot_id,
            found=True,
            farmer=farmer.name if farmer else None,
            farmer_id=lot.producer_id,
            village=farmer.village if farmer else None,
            recorded_farmer=(
                (was.name if was else lot.recorded_producer_id)
                if lot_id in farmer_fixed and lot.recorded_producer_id != lot.producer_id
                else None
            ),
            product=product.name if product else None,
            product_id=lot.product_id,
            recorded_product=(
                (was_product.name if was_product else lot.recorded_product_id)
                if lot_id in product_fixed and lot.recorded_product_id != lot.product_id
                else None
            ),
            net_g=lot.net_g,
            recorded_at=lot.recorded_at,
            day_no=day_nos.get(lot_id),
            voided=lot.voided,
            void_reason=lot.void_reason,
            voided_by=lot.voided_by,
            corrections=len(lot.corrections),
            grades=tuple(grades.get(lot_id, [])),
        )
    return out


_EVENT = {
    "parcel_label": "label",
    "parcel_handover": "handed_over",
    "parcel_return": "returned",
    "parcel_void": "voided",
}


def parcel_events(records: Iterable[Mapping[str, Any]], parcel_id: str) -> list[Event]:
    """What happened to one parcel, in seq order: packed, labels, handovers, returns,
    void."""
    out = []
    for rec in by_seq(records):
        kind = rec.get("type")
        if kind == "parcel" and rec.get("id") == parcel_id:
            out.append(Event(rec.get("packed_at"), "packed", {"by": rec.get("by")}))
        elif kind in _EVENT and rec.get("parcel_id") == parcel_id:
            at = rec.get("printed_at") if kind == "parcel_label" else rec.get("at")
            out.append(Event(at, _EVENT[kind], dict(rec)))
    return out


def parcel_chain(
    site: str, parcel_id: str, records: Iterable[Mapping[str, Any]]
) -> ParcelChain | None:
    """The parcel ``parcel_id`` as it stands after ``records`` (it and what names it,
    with the manifests of its handovers), or None without its parcel record."""
    ordered = by_seq(records)
    view = fold(ordered)
    parcel = view.parcels.get(parcel_id)
    if parcel is None:
        return None
    return ParcelChain(site, parcel, parcel_events(ordered, parcel_id), view.manifests)


# -- queries ---------------------------------------------------------------------------------


def find(
    db: ConsoleDb,
    where: str,
    params: tuple[Any, ...],
    site: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Records matching ``where`` (which names one of the indexes of schema.py: a record
    id or what a record refers to), then kept to ``site``, as records with their seq and
    type (and ``_site``). The index lookup is done first (a materialised step): the
    point is a filter on its few rows, never a way in, so the planner cannot choose to
    read a point's whole stream out of the primary key and intersect it."""
    sql = f"WITH found AS MATERIALIZED (SELECT site, seq, kind, body FROM records WHERE {where}) "
    sql += "SELECT site, seq, kind, body FROM found"
    args: list[Any] = list(params)
    if site is not None:
        sql += " WHERE site = %s"
        args.append(site)
    if limit is not None:
        sql += " LIMIT %s"
        args.append(limit)
    out = []
    for row in db.rows(sql, args):
        body = row["body"]
        rec = dict(body) if isinstance(body, Mapping) else {}
        rec["seq"] = int(row["seq"])
        rec["type"] = row["kind"]
        rec["_site"] = row["site"]
        out.append(rec)
    return out


BY_ID = "record_id = ANY(%s) AND kind = %s"
BY_LOT = f"(body->>'lot_id') = ANY(%s) AND kind IN {LOT_REFS}"
BY_PARCEL = f"(body->>'parcel_id') = ANY(%s) AND kind IN {PARCEL_REFS}"
BY_MANIFEST = "(body->>'manifest_id') = %s AND kind IN ('parcel_handover', 'parcel_return')"
PACKED_FROM = "kind = 'parcel' AND ((body::jsonb)->'lots') @> %s::jsonb"


def _packed_from(lot_id: str) -> str:
    return json.dumps([{"lot_id": lot_id}])


def _names(
    db: ConsoleDb, site: str, producer_ids: set[str], product_ids: set[str]
) -> list[dict[str, Any]]:
    """The producer and product records of these ids at ``site`` with their edits, and
    the merges that lead from them (followed until no new farmer appears)."""
    out: list[dict[str, Any]] = []
    known = set(producer_ids)
    frontier = sorted(producer_ids)
    while frontier:
        merges = find(
            db, "(body->>'merged_id') = ANY(%s) AND kind = 'producer_merge'", (frontier,), site
        )
        out += merges
        frontier = sorted({str(m["survivor_id"]) for m in merges} - known)
        known.update(frontier)
    out += find(db, BY_ID, (sorted(known), "producer"), site)
    out += find(db, BY_ID, (sorted(product_ids), "product"), site)
    out += find(
        db, "(body->>'producer_id') = ANY(%s) AND kind = 'producer_update'", (sorted(known),), site
    )
    out += find(
        db,
        "(body->>'product_id') = ANY(%s) AND kind = 'product_update'",
        (sorted(product_ids),),
        site,
    )
    return out


def load_lots(db: ConsoleDb, site: str, lot_ids: list[str]) -> dict[str, LotLine]:
    """These lots of ``site`` as they stand, names resolved."""
    if not lot_ids:
        return {}
    lots = find(db, BY_ID, (lot_ids, "lot"), site)
    refs = find(db, BY_LOT, (lot_ids,), site)
    producers = {str(r["producer_id"]) for r in lots if r.get("producer_id")}
    products = {str(r["product_id"]) for r in lots if r.get("product_id")}
    for r in refs:
        if r["type"] == "lot_correction":
            producers.update(str(r[k]) for k in ("producer_id", "was_producer_id") if r.get(k))
            products.update(str(r[k]) for k in ("product_id", "was_product_id") if r.get(k))
    names = _names(db, site, producers, products)
    return lot_lines(site, [*lots, *refs, *names], lot_ids)


def load_parcel(
    db: ConsoleDb, site: str, parcel: Mapping[str, Any], with_lots: bool = True
) -> ParcelChain | None:
    """One parcel record's chain: its events, manifests and (``with_lots``) its lots."""
    pid = str(parcel["id"])
    refs = find(db, BY_PARCEL, ([pid],), site)
    manifest_ids = sorted({str(r["manifest_id"]) for r in refs if r.get("manifest_id")})
    manifests = find(db, BY_ID, (manifest_ids, "manifest"), site) if manifest_ids else []
    chain = parcel_chain(site, pid, [parcel, *refs, *manifests])
    if chain is None:
        return None
    if with_lots:
        packed = [
            (str(x.get("lot_id")), x.get("net_g"))
            for x in chain.parcel.lots
            if isinstance(x, Mapping)
        ]
        lines = load_lots(db, site, [lot_id for lot_id, _ in packed])
        chain.lots = [
            replace(lines[lot_id], packed_g=grams if isinstance(grams, int) else None)
            for lot_id, grams in packed
            if lot_id in lines
        ]
    return chain


def _newest_first(parcels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(parcels, key=lambda p: (str(p.get("packed_at") or ""), p["seq"]), reverse=True)


def by_tracking(db: ConsoleDb, code: str, site: str | None = None) -> list[ParcelChain]:
    """The parcels with this tracking number (at ``site`` only, when given), newest first,
    a voided one after those that are not."""
    codes = list(dict.fromkeys([code, code.upper()]))
    found = find(
        db, "kind = 'parcel' AND (body->>'tracking') = ANY(%s)", (codes,), site, MAX_PARCELS
    )
    chains = []
    for rec in _newest_first(found):
        chain = load_parcel(db, rec["_site"], rec)
        if chain is not None:
            chains.append(chain)
    chains.sort(key=lambda c: c.parcel.state == "voided")
    return chains


def parcels_of_lot(db: ConsoleDb, site: str, lot_id: str) -> list[ParcelChain]:
    out = []
    for rec in _newest_first(find(db, PACKED_FROM, (_packed_from(lot_id),), site, MAX_PARCELS)):
        chain = load_parcel(db, site, rec, with_lots=False)
        if chain is not None:
            out.append(chain)
    return out


def load_manifest(
    db: ConsoleDb, site: str, manifest_id: str, record: dict[str, Any] | None
) -> ManifestChain:
    handovers = find(db, BY_MANIFEST, (manifest_id,), site, MAX_MANIFEST_PARCELS * 2)
    pids = sorted({str(h["parcel_id"]) for h in handovers if h.get("parcel_id")})
    parcels = find(db, BY_ID, (pids, "parcel"), site)
    refs = find(db, BY_PARCEL, (pids,), site)
    view = fold(by_seq([*parcels, *refs]))
    listed = []
    for pid in view.on_manifest.get(manifest_id, []):
        p = view.parcels[pid]
        listed.append((pid, p.tracking, p.state))
    return ManifestChain(site, manifest_id, record, listed)


def search(db: ConsoleDb, query: Query) -> Found:
    """What ``query`` finds (nothing for a forged payload: the caller refuses it first)."""
    found = Found()
    if query.kind == "tracking" or (query.kind == "qr" and query.ref_kind == "S"):
        assert query.ref is not None
        found.parcels = by_tracking(db, query.ref, query.site)
        return found
    if query.kind not in ("uuid", "qr") or query.ref is None:
        return found
    rows = find(db, "record_id = %s", (query.ref,), query.site, 5)
    wanted = {"L": ("lot",), "M": ("manifest",)}.get(query.ref_kind or "")
    for rec in rows:
        kind, site = rec["type"], rec["_site"]
        if wanted is not None and kind not in wanted:
            continue
        if kind == "lot":
            found.lot = load_lots(db, site, [query.ref])[query.ref]
            found.parcels = parcels_of_lot(db, site, query.ref)
            return found
        if kind == "parcel":
            chain = load_parcel(db, site, rec)
            found.parcels = [chain] if chain else []
            return found
        if kind == "manifest":
            found.manifest = load_manifest(db, site, query.ref, rec)
            return found
        found.other = kind
    if not rows:
        _not_yet(db, query, found)
    return found


def _not_yet(db: ConsoleDb, query: Query, found: Found) -> None:
    """An id central holds no record of may still be named by records that came: the
    handovers of a manifest whose own record is on its way, the parcels that packed a
    lot whose record is."""
    assert query.ref is not None
    if query.ref_kind in (None, "M"):
        named = find(db, BY_MANIFEST, (query.ref,), query.site, 1)
        if named:
            found.manifest = load_manifest(db, named[0]["_site"], query.ref, None)
            return
    if query.ref_kind in (None, "L"):
        named = find(db, PACKED_FROM, (_packed_from(query.ref),), query.site, 1)
        if named:
            site = named[0]["_site"]
            found.lot = LotLine(site, query.ref, False)
            found.parcels = parcels_of_lot(db, site, query.ref)
