"""The station's downlink applier on a real station database: each record applied
once and in order, duplicates skipped, a gap applies nothing, a refused record is
kept and does not block the ones after it, and the ack follows the commit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
import sqlite_utils
import zstandard

from edge.cli import main
from edge.storage.store import Store
from edge.sync.downlink import Downlink, DownlinkRefused
from edge.sync.envelope import Batch, decode_ack, encode_batch

SITE = "sin-ho-01"
EPOCH = "0123456789abcdef"
OTHER_EPOCH = "fedcba9876543210"


def put_product(db: sqlite_utils.Database, record: dict[str, Any]) -> None:
    if record.get("unit_price_dong") == -1:
        db.execute("INSERT INTO applied (seq, name) VALUES (?, ?)", [record["seq"], "half"])
        raise DownlinkRefused("a price below zero")
    db.execute("INSERT INTO applied (seq, name) VALUES (?, ?)", [record["seq"], record["name"]])


def broken(db: sqlite_utils.Database, record: dict[str, Any]) -> None:
    record["missing"]  # a malformed record: KeyError


HANDLERS = {"product": put_product, "broken": broken}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", SITE)
    with s.write() as db:
        db.execute("CREATE TABLE applied (seq INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    yield s
    s.close()


def product(seq: int, **extra: Any) -> dict[str, Any]:
    return {"type": "product", "seq": seq, "name": f"Chè {seq}", **extra}


def payload(
    first: int, last: int, epoch: str = EPOCH, site: str = SITE, **by_seq: dict[str, Any]
) -> bytes:
    records = tuple(by_seq.get(f"r{s}", product(s)) for s in range(first, last + 1))
    return encode_batch(
        Batch(site, "down", f"down:{first}-{last}:1", first, last, records, 2, epoch)
    )


def applied(store: Store) -> list[int]:
    return [r["seq"] for r in store.rows("SELECT seq FROM applied ORDER BY seq")]


def acked(outcome_ack: bytes | None) -> tuple[int, str]:
    assert outcome_ack is not None
    ack = decode_ack(outcome_ack)
    assert ack.stream == "down"
    return ack.upto, ack.epoch


def test_batches_apply_in_order_and_duplicates_are_skipped(store: Store) -> None:
    down = Downlink(store, SITE, HANDLERS)
    assert acked(down.ack()) == (0, "")
    first = down.receive(payload(1, 3))
    assert (first.result, first.applied, acked(first.ack)) == ("applied", 3, (3, EPOCH))
    again = down.receive(payload(1, 3))
    assert (again.result, again.applied, acked(again.ack)) == ("duplicate", 0, (3, EPOCH))
    overlap = down.receive(payload(2, 6))
    assert (overlap.result, overlap.applied, acked(overlap.ack)) == ("applied", 3, (6, EPOCH))
    assert applied(store) == [1, 2, 3, 4, 5, 6]
    assert acked(down.ack()) == (6, EPOCH)


def test_a_gap_applies_nothing_and_acks_what_is_applied(store: Store) -> None:
    down = Downlink(store, SITE, HANDLERS)
    down.receive(payload(1, 2))
    gap = down.receive(payload(5, 6))
    assert (gap.result, acked(gap.ack)) == ("gap", (2, EPOCH))
    assert applied(store) == [1, 2]
    assert down.receive(payload(3, 4)).upto == 4
    assert down.receive(payload(5, 6)).upto == 6
    assert applied(store) == [1, 2, 3, 4, 5, 6]


def test_refused_and_unknown_records_are_kept_and_do_not_block(store: Store) -> None:
    down = Downlink(store, SITE, HANDLERS)
    out = down.receive(
        payload(
            1,
            5,
            r2={"type": "product", "seq": 2, "name": "x", "unit_price_dong": -1},
            r3={"type": "parcel_route", "seq": 3, "id": "r-1"},
            r4={"type": "broken", "seq": 4},
        )
    )
    assert (out.result, out.applied, out.refused, acked(out.ack)) == ("applied", 2, 3, (5, EPOCH))
    assert applied(store) == [1, 5]  # record 2's half-write was rolled back with it
    refused = store.rows("SELECT seq, kind, record_id, reason FROM downlink_refused ORDER BY seq")
    assert [(r["seq"], r["kind"]) for r in refused] == [
        (2, "product"),
        (3, "parcel_route"),
        (4, "broken"),
    ]
    assert refused[0]["reason"] == "a price below zero"
    assert "unknown record type 'parcel_route'" in refused[1]["reason"]
    assert refused[1]["record_id"] == "r-1"
    assert "KeyError" in refused[2]["reason"]
    assert down.summary() == {"applied_upto": 5, "refused": 3, "foreign_epoch": None}


@pytest.mark.parametrize(
    ("garbage", "why"),
    [
        (b"", "empty payload"),
        (b"\x28\xb5\x2f\xfd" + b"\xff" * 40, "zstd"),
        (zstandard.ZstdCompressor().compress(cbor2.dumps([1, 2])), "CBOR map"),
        (b"x" * (5 * 1024 * 1024), "more than"),
        (payload(1, 2, site="ta-phin"), "is for ta-phin/down"),
        (encode_batch(Batch(SITE, "records", "r:1-1:1", 1, 1, (product(1),))), "not sin-ho-01"),
        (encode_batch(Batch(SITE, "down", "down:1-1:1", 1, 1, (product(1),))), "no epoch"),
    ],
)
def test_a_payload_that_is_not_a_batch_for_this_site_changes_nothing(
    store: Store, garbage: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = Downlink(store, SITE, HANDLERS)
    out = down.receive(garbage)
    assert (out.result, out.ack, out.upto) == ("invalid", None, 0)
    assert why in out.detail
    assert applied(store) == []
    assert down.receive(payload(1, 1)).upto == 1


def test_a_zip_bomb_is_refused_before_it_is_inflated(store: Store) -> None:
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(b"\0" * (64 << 20))
    out = Downlink(store, SITE, HANDLERS).receive(bomb)
    assert out.result == "invalid" and "more than" in out.detail


def test_another_central_database_is_ignored_and_reported(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    down = Downlink(store, SITE, HANDLERS)
    down.receive(payload(1, 2))
    with caplog.at_level(logging.ERROR, logger="edge.sync.downlink"):
        out = down.receive(payload(1, 4, epoch=OTHER_EPOCH))
        down.receive(payload(5, 6, epoch=OTHER_EPOCH))
    assert (out.result, acked(out.ack)) == ("foreign_epoch", (2, EPOCH))
    assert applied(store) == [1, 2]
    assert down.summary()["foreign_epoch"] == OTHER_EPOCH
    assert len([r for r in caplog.records if "accept-epoch" in r.getMessage()]) == 1
    # the operator accepts the new database: it numbers from 1 again
    assert down.accept_epoch() == EPOCH
    assert acked(down.ack()) == (0, "")
    out = down.receive(payload(1, 4, epoch=OTHER_EPOCH))
    assert (out.result, acked(out.ack)) == ("applied", (4, OTHER_EPOCH))
    assert applied(store) == [1, 2, 3, 4]  # 1 and 2 again: the handler's own business


def test_a_long_buyer_message_fits_the_downlink(store: Store) -> None:
    note = "Giao hàng giờ hành chính, gọi trước khi đến. " * 45  # 2,000+ characters
    assert len(note.encode()) > 1024
    out = Downlink(store, SITE, HANDLERS).receive(payload(1, 1, r1=product(1, note=note)))
    assert out.result == "applied"


def test_a_failing_database_applies_nothing_and_acks_nothing(store: Store) -> None:
    def disk_full(db: sqlite_utils.Database, record: dict[str, Any]) -> None:
        raise __import__("sqlite3").OperationalError("database or disk is full")

    down = Downlink(store, SITE, {"product": disk_full})
    with pytest.raises(Exception, match="full"):
        down.receive(payload(1, 2))
    assert acked(down.ack()) == (0, "")
    assert store.rows("SELECT count(*) AS n FROM downlink_refused")[0]["n"] == 0


def test_the_cli_shows_the_state_and_accepts_a_new_epoch(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[site]\nid = "{SITE}"\n[storage]\npath = "{tmp_path / "station.db"}"\n')
    down = Downlink(store, SITE, HANDLERS)
    down.receive(payload(1, 2, r2={"type": "parcel_route", "seq": 2, "id": "r-1"}))
    down.receive(payload(3, 3, epoch=OTHER_EPOCH))
    assert main(["downlink", "status", "--config", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["applied_upto"], shown["epoch"], shown["refused"]) == (2, EPOCH, 1)
    assert shown["foreign_epoch"] == OTHER_EPOCH
    assert shown["latest_refused"][0]["kind"] == "parcel_route"
    assert main(["downlink", "status", "--config", str(config)]) == 0
    assert "edge downlink accept-epoch" in capsys.readouterr().out
    assert main(["downlink", "accept-epoch", "--config", str(config)]) == 0
    assert EPOCH in capsys.readouterr().out
    assert down.receive(payload(1, 3, epoch=OTHER_EPOCH)).upto == 3
