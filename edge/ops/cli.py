"""``edge health``, ``edge backup`` and ``edge restore``: the station as a service."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.config import ConfigError, StationConfig, load_config
from edge.ops.backup import BackupError, restore_database, run_backup
from edge.ops.health import add_health_command, check, station_url
from edge.storage.db import migrations


def _config(path: Path | None) -> StationConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return None


def cmd_backup(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    if cfg is None:
        return 2
    try:
        result = run_backup(cfg, out=args.out, folder=args.dir, keep_days=args.keep_days)
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_json(), ensure_ascii=False))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    if cfg is None:
        return 2
    url = station_url(cfg)
    if check(url)["page"]["status"] is not None:
        print(
            f"the station answers at {url}: stop it first (systemctl stop edge-station), "
            "then restore",
            file=sys.stderr,
        )
        return 1
    try:
        result = restore_database(
            cfg.storage.path, args.backup, len(migrations()), datetime.now(UTC)
        )
    except (BackupError, OSError) as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_json(), ensure_ascii=False))
    return 0


def add_ops_commands(sub: Any) -> None:
    add_health_command(sub)
    b = sub.add_parser(
        "backup",
        help="online copy of the station database (kept 7 days)",
        description="Copy the station database while the station runs (SQLite's backup "
        "API), check the copy and keep it; copies older than --keep-days are removed (the "
        "newest 3 always stay). Refuses, writing nothing, when the copy would leave less "
        "than [storage] min_free_mb free. Prints JSON; exit 0 done, 1 not done, 2 bad "
        "configuration.",
    )
    b.add_argument("--config", type=Path, help="station TOML file (default: embedded default)")
    b.add_argument("--dir", type=Path, help="folder of the dated copies (default: [storage] "
                   "backup_dir, else <database folder>/backups)")  # fmt: skip
    b.add_argument("--out", type=Path, help="write one copy exactly here; prune nothing")
    b.add_argument("--keep-days", type=int, default=7, help="days a dated copy is kept (7)")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser(
        "restore",
        help="put a backup in place of the station database (station stopped)",
        description="Replace the station database with BACKUP after checking it (sound, a "
        "station schema this release knows). The station must be stopped. The database "
        "replaced is kept beside it as <name>.replaced-<UTC time>. Prints JSON; exit 0 "
        "done, 1 refused, 2 bad configuration.",
    )
    r.add_argument("backup", type=Path)
    r.add_argument("--config", type=Path, help="station TOML file (default: embedded default)")
    r.set_defaults(func=cmd_restore)
