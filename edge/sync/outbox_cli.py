"""``edge outbox status`` and ``edge outbox show``: what waits to leave the station.

Both only read the database (a running station may keep writing it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.config import ConfigError, StationConfig, load_config
from edge.storage.db import StorageError
from edge.storage.outbox import STREAMS, Outbox
from edge.storage.store import Store
from edge.sync.envelope import ENVELOPE_VERSION, decode_batch, encode_batch


def load_station_config(path: Path | None) -> StationConfig:
    """The station's configuration for a command (exit 2 on a configuration error)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def open_station_store(cfg: StationConfig) -> Store:
    """The station's existing database for a command (exit 1 when there is none or it
    cannot be opened)."""
    if not cfg.storage.path.exists():
        print(
            f"no station database at {cfg.storage.path}: nothing recorded yet, or the wrong "
            "--config (it names the database in [storage] path)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    try:
        return Store.open(cfg.storage.path, cfg.site.id, cfg.storage.backup_dir)
    except StorageError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


@contextmanager
def _outbox(cfg: StationConfig) -> Iterator[Outbox]:
    store = open_station_store(cfg)
    try:
        yield Outbox(
            store,
            ack_timeout_s=cfg.mqtt.ack_timeout_s,
            retention_days=cfg.mqtt.confirmed_retention_days,
            min_free_mb=cfg.storage.min_free_mb,
        )
    finally:
        store.close()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_station_config(args.config)
    with _outbox(cfg) as outbox:
        status = outbox.status()
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return 0
    print(f"{'stream':<10} {'waiting':>8} {'sent':>6} {'oldest':>10}  last confirmed")
    for name, s in status["streams"].items():
        last = s["last_confirmed_at"] or "never"
        print(f"{name:<10} {s['depth']:>8} {s['sent']:>6} {_age(s['oldest_age_s']):>10}  {last}")
    for name, s in status["streams"].items():
        if s["refused"]:
            print(
                f"REFUSED by central: {s['refused']} {name} records, kept here and not sent "
                f"again (latest at {s['refused_at']}: {s['refused_reason']})",
                file=sys.stderr,
            )
    disk = status["disk"]
    if disk["nearly_full"]:
        print(
            f"DISK NEARLY FULL: {disk['free_mb']} MB free (below {disk['min_free_mb']} MB); "
            "nothing is dropped: free space or the station will stop recording",
            file=sys.stderr,
        )
    return 0


def _shown(data: bytes) -> dict[str, Any]:
    """The envelope as central will decode it, with its size on the wire."""
    batch = decode_batch(data)
    return {
        "v": ENVELOPE_VERSION,
        "site": batch.site,
        "stream": batch.stream,
        "batch": batch.batch_id,
        "first": batch.first,
        "last": batch.last,
        "schema": batch.schema,
        "wire_bytes": len(data),
        "records": list(batch.records),
    }


def cmd_show(args: argparse.Namespace) -> int:
    cfg = load_station_config(args.config)
    streams = [args.stream] if args.stream else list(STREAMS)
    shown: list[dict[str, Any]] = []
    with _outbox(cfg) as outbox:
        for stream in streams:
            size = 1 if stream == "telemetry" else cfg.mqtt.batch_max_records
            for batch in outbox.preview(stream, size):
                if len(shown) >= args.limit:
                    break
                shown.append(_shown(encode_batch(batch)))
    print(json.dumps(shown, ensure_ascii=False, indent=2, default=_bytes_hex))
    return 0


def _bytes_hex(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def add_outbox_commands(sub: Any) -> None:
    """Register ``edge outbox status|show`` on the top-level subparsers."""
    outbox = sub.add_parser(
        "outbox",
        help="what waits to be sent to central",
        description="Inspect the outbox: rows waiting per stream, and the batches they "
        "would go out in. Reads the database only.",
    )
    osub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")
    status = osub.add_parser(
        "status",
        help="depth and oldest age per stream",
        description="Rows not yet confirmed by central, per stream (records, telemetry, "
        "bulk): how many, how many sent and awaiting central's ack, the oldest one's age, "
        "and when central last confirmed; also free disk space.",
    )
    status.add_argument("--config", type=Path, help="station TOML file")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)
    show = osub.add_parser(
        "show",
        help="pending batches as readable JSON",
        description="The batches waiting rows would go out in, exactly as central will "
        "decode them: the envelope fields, the records, and the bytes on the wire.",
    )
    show.add_argument("--config", type=Path, help="station TOML file")
    show.add_argument("--stream", choices=STREAMS, help="only this stream")
    show.add_argument("--limit", type=_positive, default=10, help="at most N batches (10)")
    show.set_defaults(func=cmd_show)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
