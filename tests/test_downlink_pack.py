"""Central's downlink batches: cut by count and size, each decodable by the station
with its limits, and a record that cannot go as it is replaced in place so the
seqs stay without gaps."""

from __future__ import annotations

import random
from typing import Any

from edge.central.downlink import pack
from edge.sync.downlink import MAX_TEXT_ITEM
from edge.sync.envelope import decode_batch

SITE = "sin-ho-01"
EPOCH = "0123456789abcdef"


def records(n: int, note: str | None = None) -> list[dict[str, Any]]:
    return [
        {"type": "product", "seq": s, "name": f"Chè {s}", "note": note} for s in range(1, n + 1)
    ]


def seqs(payloads: list[tuple[int, int, bytes]]) -> list[int]:
    out: list[int] = []
    for first, last, payload in payloads:
        batch = decode_batch(payload, max_text=MAX_TEXT_ITEM)
        assert (batch.site, batch.stream, batch.epoch) == (SITE, "down", EPOCH)
        assert (batch.first, batch.last) == (first, last)
        out += [r["seq"] for r in batch.records]
    return out


def test_records_go_in_batches_of_at_most_100_in_order() -> None:
    payloads = pack(SITE, EPOCH, records(250))
    assert [(f, last) for f, last, _ in payloads] == [(1, 100), (101, 200), (201, 250)]
    assert seqs(payloads) == list(range(1, 251))


def test_a_batch_over_the_byte_bound_is_split() -> None:
    rng = random.Random(3)
    noisy = [{**r, "note": rng.randbytes(2000).hex()} for r in records(40)]
    payloads = pack(SITE, EPOCH, noisy, max_bytes=20_000)
    assert len(payloads) > 2 and all(len(p) <= 20_000 for *_, p in payloads)
    assert seqs(payloads) == list(range(1, 41))


def test_a_record_beyond_the_stations_limits_goes_as_undeliverable() -> None:
    batch = records(3)
    batch[1]["note"] = "ằ" * 3000  # 9,000 bytes of UTF-8: more than one text item may hold
    payloads = pack(SITE, EPOCH, batch)
    assert seqs(payloads) == [1, 2, 3]
    got = [r for _, _, p in payloads for r in decode_batch(p, max_text=MAX_TEXT_ITEM).records]
    assert got[1]["type"] == "undeliverable"
    assert (got[1]["kind"], got[1]["id"]) == ("product", "Chè 2")
    assert "8192" in got[1]["reason"]
    assert got[0]["name"] == "Chè 1" and got[2]["name"] == "Chè 3"
