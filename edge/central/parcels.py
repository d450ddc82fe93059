"""Central's view of the parcels a point packed (issue 13) and handed to couriers
(issue 14): folded from the ``parcel``, ``parcel_void``, ``parcel_label``,
``manifest``, ``parcel_handover`` and ``parcel_return`` records the station sent on
its records stream (docs/mqtt.md), which the store keeps once each, in seq order.

A parcel is *packed* until a ``parcel_void`` names it (then *voided*: kept, with
why, by whom and when) or a ``parcel_handover`` hands it to a courier (then
*handed_over*: to whom, when, on which manifest). A ``parcel_return`` of a handed-over
parcel makes it *returned* (the courier brought it back: why, who took it, when); a
returned parcel can be handed over again, or voided. A parcel confirmed missing when a
handover closed has no record: it stays packed. A repacked order is a void of the old
parcel followed by a new ``parcel`` for the same order: the order's *current* parcel
is its latest one not voided. Each ``parcel_label`` (one per print job) counts a label
printed, a copy or the first. Pure: records in, a :class:`ParcelView` out;
:func:`site_parcels` reads a site's records from the store, :func:`holder` answers
"who holds parcel X" and :func:`manifest_parcels` "which parcels were on manifest M",
at one site or at every site central knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.central.store import CentralStore

PARCEL_TYPES = (
    "parcel",
    "parcel_void",
    "parcel_label",
    "manifest",
    "parcel_handover",
    "parcel_return",
)
PACKED = "packed"
HANDED_OVER = "handed_over"
RETURNED = "returned"
VOIDED = "voided"
STATES = (PACKED, HANDED_OVER, RETURNED, VOIDED)


@dataclass
class Parcel:
    id: str
    order_id: str
    tracking: str
    carrier: str | None
    net_g: int
    gross_g: int
    expected_g: int
    tolerance_g: int
    override_reason: str | None
    by: str
    packed_at: str
    lots: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    state: str = PACKED
    void_reason: str | None = None
    voided_by: str | None = None
    voided_at: str | None = None
    labels: int = 0
    """Labels printed (the first and its copies)."""
    copies: int = 0
    first_printed_at: str | None = None
    last_printed_at: str | None = None
    courier: str | None = None
    """The courier of its latest handover (kept when it is returned)."""
    courier_id: str | None = None
    manifest_id: str | None = None
    """The manifest of its latest handover."""
    handed_over_at: str | None = None
    handovers: int = 0
    """Times it was handed over (a returned parcel may go out again)."""
    return_reason: str | None = None
    returned_by: str | None = None
    returned_at: str | None = None

    @property
    def at(self) -> str:
        """When it came to its present state."""
        when = {
            HANDED_OVER: self.handed_over_at,
            RETURNED: self.returned_at,
            VOIDED: self.voided_at,
        }.get(self.state)
        return when or self.packed_at


@dataclass
class ParcelView:
    parcels: dict[str, Parcel] = field(default_factory=dict)
    """By parcel id, in the order the station packed them."""
    by_order: dict[str, list[str]] = field(default_factory=dict)
    """Order id -> its parcel ids, oldest first (voided ones included)."""
    unknown: list[dict[str, Any]] = field(default_factory=list)
    """Voids, labels, handovers and returns naming a parcel central has no record of."""
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Manifest id -> its ``manifest`` record (as the station sent it)."""
    on_manifest: dict[str, list[str]] = field(default_factory=dict)
    """Manifest id -> the parcel ids handed over on it, in the station's order."""

    def current(self, order_id: str) -> Parcel | None:
        """The order's parcel now: its latest one not voided."""
        for pid in reversed(self.by_order.get(order_id, [])):
            if self.parcels[pid].state != VOIDED:
                return self.parcels[pid]
        return None

    def find(self, code: str) -> Parcel | None:
        """The parcel a scanned or typed code names: a parcel id, else a tracking
        number (exact, then ignoring case and surrounding blanks); of several parcels
        with that number (a repack may keep it) the latest one not voided, else the
        latest."""
        code = code.strip()
        if code in self.parcels:
            return self.parcels[code]
        named = [p for p in self.parcels.values() if p.tracking == code]
        if not named:
            folded = code.casefold()
            named = [p for p in self.parcels.values() if p.tracking.casefold() == folded]
        live = [p for p in named if p.state != VOIDED]
        chosen = live or named
        return chosen[-1] if chosen else None

    def counts(self) -> dict[str, int]:
        """Parcels per state (every state, 0 included)."""
        out = dict.fromkeys(STATES, 0)
        for parcel in self.parcels.values():
            out[parcel.state] += 1
        return out

    def currents(self) -> dict[str, Parcel]:
        """Order id -> its current parcel, for every order with one."""
        out = {}
        for order_id in self.by_order:
            parcel = self.current(order_id)
            if parcel is not None:
                out[order_id] = parcel
        return out

    def packed_twice(self) -> dict[str, list[str]]:
        """Orders with more than one parcel packed or handed over (the station should
        never let that happen: a sign to look at). A returned parcel's goods are back in
        stock at the point: it does not count."""
        out = {}
        for order_id, pids in self.by_order.items():
            live = [p for p in pids if self.parcels[p].state in (PACKED, HANDED_OVER)]
            if len(live) > 1:
                out[order_id] = live
        return out


def fold(records: Iterable[Mapping[str, Any]]) -> ParcelView:
    """The parcels' state after these records (in the station's seq order)."""
    view = ParcelView()
    jobs: set[str] = set()
    for rec in records:
        kind = rec.get("type")
        if kind == "parcel":
            pid = str(rec["id"])
            if pid in view.parcels:
                continue
            override = rec.get("override")
            parcel = Parcel(
                id=pid,
                order_id=str(rec["order_id"]),
                tracking=str(rec["tracking"]),
                carrier=rec.get("carrier"),
                net_g=int(rec["net_g"]),
                gross_g=int(rec["gross_g"]),
                expected_g=int(rec["expected_g"]),
                tolerance_g=int(rec["tolerance_g"]),
                override_reason=override.get("reason") if isinstance(override, dict) else None,
                by=str(rec["by"]),
                packed_at=str(rec["packed_at"]),
                lots=list(rec.get("lots") or []),
                lines=list(rec.get("lines") or []),
            )
            view.parcels[pid] = parcel
            view.by_order.setdefault(parcel.order_id, []).append(pid)
        elif kind == "parcel_void":
            found = view.parcels.get(str(rec.get("parcel_id")))
            if found is None:
                view.unknown.append(dict(rec))
            elif found.state in (PACKED, RETURNED):
                found.state = VOIDED
                found.void_reason = rec.get("reason")
                found.voided_by = rec.get("by")
                found.voided_at = rec.get("at")
        elif kind == "parcel_label":
            found = view.parcels.get(str(rec.get("parcel_id")))
            job = str(rec.get("job_id"))
            if found is None:
                view.unknown.append(dict(rec))
            elif job not in jobs:
                jobs.add(job)
                found.labels += 1
                found.copies += 1 if rec.get("copy") else 0
                at = rec.get("printed_at")
                if isinstance(at, str):
                    found.first_printed_at = min(found.first_printed_at or at, at)
                    found.last_printed_at = max(found.last_printed_at or at, at)
        elif kind == "manifest":
            view.manifests.setdefault(str(rec["id"]), dict(rec))
        elif kind == "parcel_handover":
            found = view.parcels.get(str(rec.get("parcel_id")))
            mid = str(rec.get("manifest_id"))
            if found is None:
                view.unknown.append(dict(rec))
            elif found.state in (PACKED, RETURNED) and not (
                found.state == RETURNED and found.manifest_id == mid
            ):
                found.state = HANDED_OVER
                found.courier = rec.get("courier")
                found.courier_id = rec.get("courier_id")
                found.manifest_id = mid
                found.handed_over_at = rec.get("at")
                found.handovers += 1
                found.return_reason = found.returned_by = found.returned_at = None
                listed = view.on_manifest.setdefault(mid, [])
                if found.id not in listed:
                    listed.append(found.id)
        elif kind == "parcel_return":
            found = view.parcels.get(str(rec.get("parcel_id")))
            if found is None:
                view.unknown.append(dict(rec))
            elif found.state == HANDED_OVER:
                found.state = RETURNED
                found.return_reason = rec.get("reason")
                found.returned_by = rec.get("by")
                found.returned_at = rec.get("at")
    return view


def site_parcels(store: CentralStore, site: str) -> ParcelView:
    """A site's parcels as central holds them."""
    return fold(store.records_of(site, "records", PARCEL_TYPES))


def record_sites(store: CentralStore) -> list[str]:
    """Every site that sent records, by name."""
    return sorted({row.site for row in store.stream_rows() if row.stream == "records"})


def _views(store: CentralStore, site: str | None) -> Iterator[tuple[str, ParcelView]]:
    for name in [site] if site is not None else record_sites(store):
        yield name, site_parcels(store, name)


def answer(site: str, parcel: Parcel) -> dict[str, Any]:
    """What :func:`holder` says of one parcel."""
    reason = {RETURNED: parcel.return_reason, VOIDED: parcel.void_reason}.get(parcel.state)
    return {
        "state": parcel.state,
        "parcel_id": parcel.id,
        "tracking": parcel.tracking,
        "order_id": parcel.order_id,
        "carrier": parcel.carrier,
        "courier": parcel.courier,
        "manifest_id": parcel.manifest_id,
        "at": parcel.at,
        "site": site,
        "reason": reason,
    }


def holder(store: CentralStore, site: str | None, code: str) -> dict[str, Any] | None:
    """Who holds the parcel ``code`` names (a tracking number or a parcel id), at
    ``site`` or, when it is None, at every site: ``{"state", "parcel_id", "tracking",
    "order_id", "carrier", "courier", "manifest_id", "at", "site", "reason"}``, with
    ``state`` one of :data:`STATES`; ``courier`` and ``manifest_id`` are its latest
    handover's (None while it was never handed over), ``at`` when it came to its
    state, ``reason`` why it was returned or voided. None when no site has it. Of
    several sites naming it, one not voided wins."""
    found: tuple[str, Parcel] | None = None
    for name, view in _views(store, site):
        parcel = view.find(code)
        if parcel is None:
            continue
        if parcel.state != VOIDED:
            return answer(name, parcel)
        found = found or (name, parcel)
    return None if found is None else answer(*found)


def manifest(store: CentralStore, site: str | None, manifest_id: str) -> dict[str, Any] | None:
    """The ``manifest`` record of that id (with ``site``) and its ``parcels`` (as
    :func:`manifest_parcels`); None when no site has the manifest nor a handover on
    it."""
    for name, view in _views(store, site):
        record = view.manifests.get(manifest_id)
        if record is None and manifest_id not in view.on_manifest:
            continue
        return {
            "site": name,
            "record": record,
            "parcels": _listed(view, manifest_id),
        }
    return None


def _listed(view: ParcelView, manifest_id: str) -> list[dict[str, Any]]:
    out = []
    for pid in view.on_manifest.get(manifest_id, []):
        parcel = view.parcels[pid]
        out.append({"parcel_id": pid, "tracking": parcel.tracking, "state": parcel.state})
    return out


def manifest_parcels(
    store: CentralStore, site: str | None, manifest_id: str
) -> list[dict[str, Any]]:
    """The parcels handed over on manifest ``manifest_id``, in the order the courier
    took them: ``[{"parcel_id", "tracking", "state"}]`` (``state`` now: a parcel
    returned later reads ``returned``, one handed over again on a later manifest is
    listed on both). Empty when no site knows that manifest. The manifest's own
    record: :func:`manifest`."""
    found = manifest(store, site, manifest_id)
    return [] if found is None else list(found["parcels"])
