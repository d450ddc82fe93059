"""Messages a stolen (or broken) station certificate can send on its own topics, as
observed in the field, for the poison tests and the flood benchmark. Each builds the
exact bytes, bypassing the station's encoder where it would refuse them."""

from __future__ import annotations

import uuid
from typing import Any

import cbor2
import zstandard

from edge.sync.envelope import Batch, encode_batch

BOOT = "5d1c0b7e-8f4a-4c11-9d5e-0a4b2c3d4e5f"
PEOPLE = "019ab3c0-0000-7000-8000-000000000001"
GOODS = "019ab3c0-0000-7000-9000-000000000001"


def frame(raw: bytes, level: int = 19) -> bytes:
    """A zstd frame with its content size and checksum, as a station writes one."""
    return zstandard.ZstdCompressor(
        level=level, write_content_size=True, write_checksum=True
    ).compress(raw)


def envelope(
    site: str,
    first: int,
    last: int,
    records: Any,
    *,
    stream: str = "records",
    epoch: str = "",
) -> bytes:
    """A batch envelope around any ``records`` value, with no check at all."""
    body: dict[str, Any] = {
        "v": 2,
        "site": site,
        "stream": stream,
        "batch": f"{stream}:{first}-{last}:1",
        "first": first,
        "last": last,
        "schema": 2,
        **({"epoch": epoch} if epoch else {}),
        "records": records,
    }
    return frame(cbor2.dumps(body))


def lot(seq: int, **changes: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "lot",
        "seq": seq,
        "id": str(uuid.UUID(int=(0x019AB3C2 << 96) | (0x7000 << 64) | (0x8 << 60) | seq)),
        "producer_id": PEOPLE,
        "product_id": GOODS,
        "net_g": 1000 + seq,
        "recorded_at": "2026-11-23T03:00:00.000Z",
        "boot_id": BOOT,
        "uptime_s": 1000.0 + seq,
        "clock_synced": True,
    }
    rec.update(changes)
    return rec


def batch_of(
    site: str, first: int, last: int, epoch: str = "", **changes_at: dict[str, Any]
) -> bytes:
    """Lots ``first``..``last`` through the station's own encoder (which does not judge
    records); ``changes_at={"s8": {"net_g": -5}}`` changes the lot of seq 8."""
    records = tuple(lot(s, **changes_at.get(f"s{s}", {})) for s in range(first, last + 1))
    return encode_batch(
        Batch(site, "records", f"records:{first}-{last}:1", first, last, records, epoch=epoch)
    )


def zstd_bomb(mib: float = 31.5) -> bytes:
    """About a kilobyte that decompresses to ``mib`` MiB of empty CBOR maps (one array
    of them): 2.7 GB of Python dicts for a decoder that trusts the lengths."""
    count = int(mib * 1024 * 1024) - 9
    return frame(b"\x9b" + count.to_bytes(8, "big") + b"\xa0" * count)


def million_rows(site: str, epoch: str = "") -> bytes:
    """Under a kilobyte claiming a lot segment of 1,000,000 lots whose columns are all
    zeros: a decoder without caps stores a million rows from it."""
    n = 1_000_000
    zeros = b"\x00"  # packed column: width 0 bits, every value 0
    segment = [
        1, n, 1_763_000_000_000, 1_762_000_000_000, bytes(10 * n),
        zeros, zeros, zeros, zeros, [True] * n, zeros, zeros,
        b"\x02" + bytes((2 * n + 7) // 8),  # net: 1 g each (zigzag 2, 2 bits)
        [None] * n, [None] * n,
    ]  # fmt: skip
    table = [uuid.UUID(BOOT).bytes, uuid.UUID(PEOPLE).bytes, uuid.UUID(GOODS).bytes]
    return envelope(site, 1, n, [table, segment], epoch=epoch)


def huge_seq(site: str, seq: int, epoch: str = "") -> bytes:
    """One valid lot at ``seq`` (2**62, 2**63 - 1...), which the encoder refuses."""
    body = lot(seq)
    del body["seq"]
    return envelope(site, seq, seq, [[], [0, [body]]], epoch=epoch)


NUL_STATUS = b'{"state":"online","version":"0.2.0\\u0000","config_hash":"3f2a9c0d1b7e"}'
"""A status PostgreSQL's jsonb refuses (U+0000)."""
SURROGATE_STATUS = b'{"state":"online","version":"0.2.0\\ud800","config_hash":"3f2a9c0d1b7e"}'
"""A status SQLite (UTF-8) cannot store: a lone surrogate."""


def max_work(site: str, epoch: str = "", records: int = 5000) -> bytes:
    """The costliest refusal within the caps: ``records`` generic producer records with
    the longest names the validator takes, the last one invalid, so everything is
    decompressed, scanned, decoded and validated before the batch is refused."""
    name = "Giàng Thị Mỷ Sìn Hồ " * 10  # 200 characters
    body = {
        "type": "producer",
        "id": PEOPLE,
        "name": name,
        "phone": "0912 345 678",
        "village": name,
        "recorded_at": "2026-11-23T03:00:00.000Z",
        "boot_id": BOOT,
        "uptime_s": 12.5,
        "clock_synced": True,
    }
    generic = [dict(body) for _ in range(records)]
    generic[-1]["name"] = ""  # invalid: the batch is refused after all that work
    return envelope(site, 1, records, [[], [0, generic]], epoch=epoch)
