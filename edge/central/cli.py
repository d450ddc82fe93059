"""``edge central ingest`` and ``edge central status``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from edge.central.alerts import add_alert_commands
from edge.central.console.cli import add_console_commands
from edge.central.console.points import add_points_commands
from edge.central.core import BrokerUrlError, DbUrlError, parse_broker_url, parse_db_url
from edge.central.ingest import Ingest, TlsFiles
from edge.central.orders.cli import add_order_commands
from edge.central.parcels_cli import add_parcel_commands
from edge.central.status import StatusServer
from edge.central.store import StoreError, open_store
from edge.netaddr import is_loopback_host

log = logging.getLogger("edge.central")

DB_HELP = (
    "database URL: sqlite:///REL/PATH.db, sqlite:////ABS/PATH.db, or postgresql://USER@HOST:PORT/DB"
)


def _tls(args: argparse.Namespace) -> TlsFiles | None:
    given = [args.tls_ca, args.tls_cert, args.tls_key]
    if not any(given):
        return None
    if not all(given):
        raise BrokerUrlError("TLS needs all three of --tls-ca, --tls-cert and --tls-key")
    for path in given:
        if not Path(path).is_file():
            raise BrokerUrlError(f"TLS file {path} does not exist or is not a file")
    return TlsFiles(Path(args.tls_ca), Path(args.tls_cert), Path(args.tls_key))


def cmd_ingest(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    try:
        tls = _tls(args)
        address = parse_broker_url(args.broker)
        if address.tls and tls is None:
            raise BrokerUrlError(f"{args.broker} is TLS: give --tls-ca, --tls-cert and --tls-key")
        plaintext = tls is None and not is_loopback_host(address.host)
        if plaintext and not args.insecure_plaintext:
            raise BrokerUrlError(
                f"{args.broker} is plain MQTT to another machine: the stations' records and "
                "central's acks would cross the network unencrypted and forgeable; use "
                "mqtts:// with --tls-ca, --tls-cert and --tls-key, or, only on a trusted "
                "test network, pass --insecure-plaintext"
            )
        parse_db_url(args.db)
    except (DbUrlError, BrokerUrlError) as exc:
        print(f"edge central ingest: {exc}", file=sys.stderr)
        return 2
    if plaintext:
        log.warning(
            "INSECURE: plain MQTT without TLS to %s:%s (--insecure-plaintext): records and "
            "acks cross the network unencrypted and anyone on the way can read or forge them",
            address.host,
            address.port,
        )
    try:
        store = open_store(args.db)
    except StoreError as exc:
        print(f"edge central ingest: {exc}", file=sys.stderr)
        return 1
    ingest = Ingest(
        store,
        args.broker,
        prefix=args.prefix,
        group=args.group,
        client_id=args.client_id,
        tls=tls,
        session_expiry_s=args.session_expiry_s,
        downlink=args.downlink,
        downlink_resend_s=args.downlink_resend_s,
    )
    status = None
    if args.status_port is not None:
        status = StatusServer(ingest.status, args.status_host, args.status_port).start()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ingest.start()
    log.info(
        "ingest: broker %s:%s%s, database %s, group %s, client id %s, topics %s%s",
        ingest.address.host,
        ingest.address.port,
        " (TLS)" if tls else "",
        store.description,
        args.group,
        ingest.client_id,
        ", ".join(ingest.topics()),
        f", status on {status.url}" if status else "",
    )
    stop.wait()
    ingest.stop()
    if status is not None:
        status.stop()
    store.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        with open_store(args.db) as store:
            shown = {"sites": store.sites(), "downlink": store.down_progress()}
            print(json.dumps(shown, ensure_ascii=False, indent=2))
    except DbUrlError as exc:
        print(f"edge central status: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"edge central status: {exc}", file=sys.stderr)
        return 1
    return 0


def add_central_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    central = sub.add_parser(
        "central",
        help="central ingest: store every station's records once and acknowledge them",
        description="The reference consumer of the stations' MQTT sync (docs/mqtt.md).",
    )
    csub = central.add_subparsers(dest="central_command", required=True, metavar="COMMAND")
    ingest = csub.add_parser(
        "ingest",
        help="subscribe to all sites, store batches idempotently, publish acks",
        description="Subscribe (MQTT v5 shared subscription) to every site's records, "
        "telemetry and bulk batches and to their status; store each batch once "
        "(unique on site, stream, seq) and publish <prefix>/<site>/ack with the highest "
        "contiguous seq stored. Several processes with the same --group (and distinct "
        "client ids or certificates) split the load. Stops on SIGTERM/SIGINT.",
    )
    ingest.add_argument(
        "--broker", required=True, help="mqtt://HOST:PORT, or mqtts://HOST:PORT with --tls-*"
    )
    ingest.add_argument("--db", required=True, help=DB_HELP)
    ingest.add_argument("--group", default="central", help="shared-subscription group name")
    ingest.add_argument("--prefix", default="edge", help="the stations' [mqtt] prefix")
    ingest.add_argument(
        "--client-id",
        help="MQTT client id; keep it the same across restarts so the broker's session "
        "(messages that arrived meanwhile) is resumed. Default edge-central-GROUP-HOSTNAME. "
        "With a certificate the broker uses its CN instead",
    )
    ingest.add_argument(
        "--session-expiry-s",
        type=int,
        default=7 * 86400,
        help="how long the broker keeps this process's session while it is away",
    )
    ingest.add_argument(
        "--no-downlink",
        dest="downlink",
        action="store_false",
        help="do not send the downlink (orders, products, tracking blocks queued for the "
        'points; docs/mqtt.md "Downlink"): with several ingest processes, exactly one '
        "sends it",
    )
    ingest.add_argument(
        "--downlink-resend-s",
        type=float,
        default=30.0,
        help="send a point's downlink again from its last ack when it is heard without "
        "progress for this long",
    )
    ingest.add_argument("--status-port", type=int, help="serve GET /status on this port")
    ingest.add_argument("--status-host", default="127.0.0.1", help="address for --status-port")
    ingest.add_argument("--tls-ca", help="CA certificate of the broker (PEM)")
    ingest.add_argument("--tls-cert", help="this ingest's client certificate (PEM)")
    ingest.add_argument("--tls-key", help="its private key (PEM)")
    ingest.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="allow a plain mqtt:// broker on another machine (no TLS: records readable and "
        "forgeable on the way); only for a trusted test network. A broker on this machine "
        "(localhost, 127.0.0.0/8, ::1) needs no flag",
    )
    ingest.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    ingest.set_defaults(func=cmd_ingest)

    status = csub.add_parser(
        "status",
        help="print the sites' state from the database as JSON",
        description="Print what GET /status shows under 'sites' and 'downlink' (per site: "
        "queued_upto, acked_upto, sent_upto, epoch), read from the database.",
    )
    status.add_argument("--db", required=True, help=DB_HELP)
    status.set_defaults(func=cmd_status)
    add_order_commands(csub)
    add_parcel_commands(csub)
    add_console_commands(csub)
    add_points_commands(csub)
    add_alert_commands(csub)
