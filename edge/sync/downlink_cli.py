"""``edge downlink status`` and ``edge downlink accept-epoch``: what central sent
down to this point (docs/mqtt.md "Downlink").

``status`` only reads. ``accept-epoch`` is the operator's word after central's
database was replaced (a new epoch: the station ignores it until then): the next
batch of the new database is applied from its seq 1, and the station's downlink
starts over (what was applied stays; orders of an equal version are ignored).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge.storage.store import Store
from edge.sync.downlink import Downlink
from edge.sync.outbox_cli import load_station_config, open_station_store


def _store(config: Path | None) -> tuple[Store, str]:
    cfg = load_station_config(config)
    return open_station_store(cfg), cfg.site.id


def status(store: Store, site: str) -> dict[str, Any]:
    down = Downlink(store, site, {})
    state = down.state()
    refused = store.rows(
        "SELECT seq, kind, record_id, reason, refused_at FROM downlink_refused "
        "ORDER BY refused_at DESC, seq DESC LIMIT 20"
    )
    return {**state, "refused": down.summary()["refused"], "latest_refused": refused}


def cmd_status(args: argparse.Namespace) -> int:
    store, site = _store(args.config)
    try:
        out = status(store, site)
    finally:
        store.close()
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"applied up to seq {out['applied_upto']} of central epoch {out['epoch'] or '-'}")
    print(f"last applied at {out['applied_at'] or '-'}; {out['refused']} record(s) refused")
    for r in out["latest_refused"]:
        print(f"  refused seq {r['seq']} {r['kind']} {r['record_id'] or ''}: {r['reason']}")
    if out["foreign_epoch"]:
        print(
            f"central of epoch {out['foreign_epoch']} sent batches at {out['foreign_at']}: "
            "ignored. If central's database was replaced on purpose, run "
            "`edge downlink accept-epoch`"
        )
    return 0


def cmd_accept_epoch(args: argparse.Namespace) -> int:
    store, site = _store(args.config)
    try:
        old = Downlink(store, site, {}).accept_epoch()
    finally:
        store.close()
    print(
        f"the downlink starts over: central's next batch is applied from seq 1 "
        f"(epoch {old or '-'} given up); restart the station if it runs"
    )
    return 0


def add_downlink_commands(sub: Any) -> None:
    """Register ``edge downlink status|accept-epoch`` on the top-level subparsers."""
    downlink = sub.add_parser(
        "downlink",
        help="what central sent down to this point",
        description="Orders, products and tracking blocks central sends this point "
        '(docs/mqtt.md "Downlink").',
    )
    dsub = downlink.add_subparsers(dest="downlink_command", required=True, metavar="COMMAND")
    st = dsub.add_parser(
        "status",
        help="how far the downlink is applied, refused records, another central's epoch",
    )
    st.add_argument("--config", type=Path, help="station TOML file")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=cmd_status)
    accept = dsub.add_parser(
        "accept-epoch",
        help="take the downlink of a replaced central database from its seq 1",
        description="After central's database was replaced (its downlink epoch changed), "
        "this station ignores the new one until told: this forgets the old epoch and how "
        "far it was applied. Records applied stay; the new database sends everything "
        "again and the point ignores what it has.",
    )
    accept.add_argument("--config", type=Path, help="station TOML file")
    accept.set_defaults(func=cmd_accept_epoch)
