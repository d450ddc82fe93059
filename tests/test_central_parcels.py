"""Parcel records at central (issue 13): the uplink validation of ``parcel``,
``parcel_void`` and ``parcel_label`` (edge.sync.validate), and central's fold of
them (edge.central.parcels) from what the real store kept: stored directly on SQLite
and PostgreSQL, and sent by a station stand-in through a real mosquitto to a real
``Ingest``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

from edge.central.ingest import Ingest
from edge.central.parcels import PACKED, VOIDED, fold, site_parcels
from edge.central.store import open_store
from edge.sync.envelope import Batch, EnvelopeError
from edge.sync.validate import record_problem, validate_batch
from rigs.helpers import Broker, wait_for
from tests.central_support import BOOT, Station, lot, pg_schema

SITE = "sin-ho-01"
LOTS = [lot(1, SITE)["id"], lot(2, SITE)["id"]]


def _id(n: int) -> str:
    return str(uuid.UUID(int=(0x019AF3C2 << 96) | (0x7000 << 64) | (0xA << 60) | n))


def _stamp(minute: int) -> dict[str, Any]:
    return {
        "recorded_at": f"2026-12-06T03:{minute:02d}:00.000Z",
        "boot_id": BOOT,
        "uptime_s": 100.0 + minute,
        "clock_synced": True,
    }


def parcel(n: int, order_id: str, minute: int, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "parcel",
        "id": _id(n),
        "order_id": order_id,
        "tracking": f"JTVN{100000 + n:08d}",
        "carrier": "J&T Express",
        "net_g": 1000,
        "gross_g": 1082,
        "expected_g": 1080,
        "tolerance_g": 40,
        "override": None,
        "by": "Lò Thị Mỷ",
        "packed_at": f"2026-12-06T03:{minute:02d}:00.000Z",
        "lots": [{"lot_id": LOTS[0], "net_g": 600}, {"lot_id": LOTS[1], "net_g": 400}],
        "lines": [{"product": "Chè Shan tuyết", "grade": "A", "quantity": 2}],
        **_stamp(minute),
    }
    rec.update(kw)
    return rec


def void(n: int, minute: int, reason: str = "rách hộp, đóng lại") -> dict[str, Any]:
    at = f"2026-12-06T03:{minute:02d}:00.000Z"
    return {"type": "parcel_void", "parcel_id": _id(n), "reason": reason,
            "by": "Giàng A Chứ", "at": at, **_stamp(minute)}  # fmt: skip


def label(n: int, job: int, minute: int, copy: bool = False) -> dict[str, Any]:
    at = f"2026-12-06T03:{minute:02d}:30.000Z"
    return {"type": "parcel_label", "parcel_id": _id(n), "job_id": _id(1000 + job),
            "copy": copy, "printed_at": at, **_stamp(minute)}  # fmt: skip


# -- validation -----------------------------------------------------------------------


def test_the_three_parcel_records_are_valid() -> None:
    for rec in (
        parcel(1, "578310245861937152", 1),
        parcel(
            2,
            "ZALO-2026-0041",
            2,
            override={"reason": "thùng to hơn"},
            lots=[],
            carrier=None,
            by_id="lead-01",
        ),
        void(1, 3),
        label(1, 1, 4),
        label(1, 2, 5, copy=True),
    ):
        assert record_problem(rec) is None, rec


def _with(rec: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = deepcopy(rec)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


P = parcel(1, "578310245861937152", 1)


@pytest.mark.parametrize(
    ("rec", "says"),
    [
        (_with(P, ("order_id",), KeyError), "order_id is missing"),
        (_with(P, ("order_id",), "578\n1"), "order_id holds a control character"),
        (_with(P, ("id",), "not-a-uuid"), "id 'not-a-uuid' is not a UUID"),
        (_with(P, ("net_g",), 0), "net_g 0 is not an integer"),
        (_with(P, ("gross_g",), 1082.5), "gross_g 1082.5 is not an integer"),
        (_with(P, ("tolerance_g",), -1), "tolerance_g -1 is not an integer"),
        (_with(P, ("tracking",), ""), "tracking is empty"),
        (_with(P, ("packed_at",), "hôm qua"), "packed_at 'hôm qua' is not an ISO 8601 time"),
        (_with(P, ("override",), {"reason": ""}), "override reason is empty"),
        (_with(P, ("override",), {"reason": "x", "by": "y"}), "unknown field 'by'"),
        (_with(P, ("override",), "thùng to"), "override 'thùng to' is not an object"),
        (_with(P, ("lines",), []), "lines has 0 lines, not 1..200"),
        (_with(P, ("lines", 0, "quantity"), "2"), "lines [0] quantity '2' is not an integer"),
        (_with(P, ("lines", 0, "product"), KeyError), "lines [0] product is missing"),
        (_with(P, ("lots", 1, "lot_id"), "lot-7"), "lots [1] lot_id 'lot-7' is not a UUID"),
        (_with(P, ("lots",), [{"lot_id": LOTS[0], "net_g": 1}] * 201), "has 201 lots"),
        (_with(P, ("lots",), {"lot_id": LOTS[0]}), "is not a list of lots"),
        (_with(void(1, 2), ("parcel_id",), KeyError), "parcel_id is missing"),
        (_with(void(1, 2), ("reason",), ""), "reason is empty"),
        (_with(void(1, 2), ("at",), None), "at None is not an ISO 8601 time"),
        (_with(label(1, 1, 2), ("copy",), "yes"), "copy 'yes' is not true or false"),
        (_with(label(1, 1, 2), ("job_id",), 7), "job_id 7 is not a UUID"),
        (_with(label(1, 1, 2), ("recorded_at",), KeyError), "recorded_at is missing"),
    ],
)
def test_bad_parcel_records_are_refused_with_the_field(rec: dict[str, Any], says: str) -> None:
    problem = record_problem(rec)
    assert problem is not None and says in problem, problem


def test_a_batch_with_one_bad_parcel_record_is_refused_at_its_seq() -> None:
    records = [parcel(1, "578", 1), void(1, 2), _with(label(1, 1, 3), ("copy",), None)]
    batch = Batch(SITE, "records", "records:1-3:1", 1, 3,
                  tuple({**r, "seq": i} for i, r in enumerate(records, 1)))  # fmt: skip
    with pytest.raises(EnvelopeError) as caught:
        validate_batch(batch)
    assert caught.value.reason == "invalid_record" and caught.value.seq == 3
    assert "record 3 (parcel_label): copy None is not true or false" in str(caught.value)


# -- the fold -------------------------------------------------------------------------

HISTORY = [
    parcel(1, "578000000000000001", 1),
    label(1, 1, 1),
    parcel(2, "578000000000000002", 2, override={"reason": "thùng to hơn"}, gross_g=1130),
    label(2, 2, 2),
    void(1, 3),
    parcel(3, "578000000000000001", 4, gross_g=1079),  # order 1 repacked
    label(3, 3, 4),
    label(3, 4, 5, copy=True),
    label(3, 4, 5, copy=True),  # the same job's record twice: one label
    parcel(4, "578000000000000003", 6),
    void(4, 7, "khách hủy"),
]


def _check(view: Any) -> None:
    p1, p2, p3, p4 = (view.parcels[_id(n)] for n in (1, 2, 3, 4))
    assert [p.state for p in (p1, p2, p3, p4)] == [VOIDED, PACKED, PACKED, VOIDED]
    assert (p1.void_reason, p1.voided_by, p1.voided_at) == (
        "rách hộp, đóng lại", "Giàng A Chứ", "2026-12-06T03:03:00.000Z",
    )  # fmt: skip
    assert (p1.labels, p2.labels, p3.labels, p4.labels) == (1, 1, 2, 0)
    assert (p3.copies, p3.first_printed_at, p3.last_printed_at) == (
        1, "2026-12-06T03:04:30.000Z", "2026-12-06T03:05:30.000Z",
    )  # fmt: skip
    assert p2.override_reason == "thùng to hơn" and p3.by == "Lò Thị Mỷ"
    assert p3.lots == [{"lot_id": LOTS[0], "net_g": 600}, {"lot_id": LOTS[1], "net_g": 400}]
    assert view.by_order["578000000000000001"] == [_id(1), _id(3)]
    assert {o: p.id for o, p in view.currents().items()} == {
        "578000000000000001": _id(3),
        "578000000000000002": _id(2),
    }
    assert view.current("578000000000000003") is None
    assert view.packed_twice() == {} and view.unknown == []


def test_fold_states_labels_and_current_parcel() -> None:
    _check(fold(HISTORY))
    twice = fold([*HISTORY, parcel(5, "578000000000000002", 9), void(77, 9)])
    assert twice.packed_twice() == {"578000000000000002": [_id(2), _id(5)]}
    assert [u["parcel_id"] for u in twice.unknown] == [_id(77)]


@contextmanager
def _central(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/central.db"
    else:
        with pg_schema() as url:
            yield url


def _batches(records: list[dict[str, Any]], size: int) -> list[Batch]:
    out = []
    numbered = [{**r, "seq": i} for i, r in enumerate(records, 1)]
    for start in range(0, len(numbered), size):
        part = tuple(numbered[start : start + size])
        first, last = part[0]["seq"], part[-1]["seq"]
        out.append(Batch(SITE, "records", f"records:{first}-{last}:1", first, last, part))
    return out


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_central_store_keeps_the_records_and_folds_them(kind: str, tmp_path: Path) -> None:
    records = [{k: v for k, v in lot(s, SITE).items() if k != "seq"} for s in (1, 2)]
    records += HISTORY
    batches = _batches(records, 4)
    for b in batches:
        validate_batch(b)
    with _central(kind, tmp_path) as url, open_store(url) as store:
        store.store_batches(batches[:2])
        store.store_batches(batches)  # the first two again: kept once
        assert store.contiguous(SITE, "records") == len(records)
        _check(site_parcels(store, SITE))
        assert site_parcels(store, "muong-te-02").parcels == {}


def test_parcel_records_reach_central_through_the_broker(tmp_path: Path, broker: Broker) -> None:
    with open_store(f"sqlite:///{tmp_path}/central.db") as store:
        ingest = Ingest(store, f"mqtt://127.0.0.1:{broker.port}")
        ingest.start()
        station = None
        try:
            wait_for(ingest.subscribed.is_set, 10, "ingest's subscriptions")
            station = Station(broker.port, SITE)
            batches = _batches(list(HISTORY), 3)
            for b in batches:
                station.publish(b)
            wait_for(lambda: station.upto() == len(HISTORY), 20, "central's ack of every record")
            _check(site_parcels(store, SITE))
            station.publish(
                Batch(
                    SITE,
                    "records",
                    "records:12-12:1",
                    12,
                    12,
                    ({**_with(void(2, 9), ("reason",), ""), "seq": 12},),
                )
            )
            wait_for(lambda: station.upto() == 12, 20, "the refusal's ack")
            refusal = station.received[-1]
            assert refusal.refused is not None and "reason is empty" in str(refusal.refused)
            assert site_parcels(store, SITE).parcels[_id(2)].state == PACKED
        finally:
            if station is not None:
                station.close()
            ingest.stop()
