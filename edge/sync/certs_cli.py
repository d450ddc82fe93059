"""``edge certs ...``: the fleet's certificates for mutual TLS, for central operations.

The CA folder holds ``ca.pem``, ``ca.key`` and ``crl.pem``; keep it off the
broker and off every station. Each command writes into ``--out`` the files one
machine needs (its certificate, its key, and a copy of ``ca.pem``), never
overwrites a file without ``--force``, and writes keys with mode 0600.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.files import write_atomic
from edge.sync import certs
from edge.sync.certs import CertError, Credential

CA_CERT, CA_KEY, CRL = "ca.pem", "ca.key", "crl.pem"
Command = Callable[[argparse.Namespace], int]
Parser = argparse.ArgumentParser


@dataclass(frozen=True)
class Output:
    name: str
    data: bytes
    secret: bool = False


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_ca(folder: Path) -> Credential:
    """The CA in ``folder`` (``ca.pem`` and ``ca.key``)."""
    if not (folder / CA_CERT).exists() or not (folder / CA_KEY).exists():
        raise CertError(
            f"no CA in {folder} (needs {CA_CERT} and {CA_KEY}); "
            f"make one with `edge certs ca --out {folder}`"
        )
    cert_pem = _read(folder / CA_CERT, "the CA certificate")
    return certs.load_credential(cert_pem, _read(folder / CA_KEY, "the CA key"), f"{folder} CA")


def write_outputs(folder: Path, outputs: list[Output], force: bool) -> list[Path]:
    """Write every output, or none: existing files are refused unless ``force``.

    A file that already holds exactly the same bytes (``ca.pem`` copied before)
    is left alone. Keys are created with mode 0600; each file is replaced
    atomically, so a crash leaves the old file or the new one, never half."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = []
    for out in outputs:
        path = folder / out.name
        if path.exists() and path.read_bytes() == out.data:
            continue
        if path.exists() and not force:
            raise CertError(
                f"{path} already exists; nothing was written (use --force to replace it, "
                "or another --out folder)"
            )
        todo.append((path, out))
    written = []
    for path, out in todo:
        write_atomic(path, out.data, 0o600 if out.secret else 0o644)
        written.append(path)
    return written


def _pair(stem: str, cred: Credential) -> list[Output]:
    return [Output(f"{stem}.pem", cred.cert_pem()), Output(f"{stem}.key", cred.key_pem(), True)]


def _report(written: list[Path], out: Path) -> None:
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{out}: every file was already there, unchanged")


def cmd_ca(args: argparse.Namespace) -> int:
    if (args.out / CA_KEY).exists() and not args.force:
        raise CertError(
            f"{args.out / CA_KEY} already exists: a new CA would lock out every certificate "
            "it signed; use --force only if that is what you want"
        )
    ca = certs.make_ca(args.name, args.days)
    crl = certs.crl_pem(certs.make_crl(ca, [], days=args.days))
    _report(write_outputs(args.out, [*_pair("ca", ca), Output(CRL, crl)], args.force), args.out)
    print(f"keep {args.out / CA_KEY} offline; copy {CA_CERT} and {CRL} to the broker")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    ca = load_ca(args.ca)
    cred = certs.issue_site(ca, args.site, args.days)
    outputs = [*_pair(cred.common_name, cred), Output(CA_CERT, ca.cert_pem())]
    _report(write_outputs(args.out, outputs, args.force), args.out)
    where = "/etc/edge/tls"
    print(
        f"\ncopy {args.out}/{{{CA_CERT},{args.site}.pem,{args.site}.key}} to the station's "
        f"{where}/ (key mode 0600) and set in its station file:\n\n"
        f'[mqtt]\nenabled = true\nhost = "BROKER"  # a name in the broker certificate\n'
        f'port = 8883\n\n[mqtt.tls]\nca_file = "{where}/{CA_CERT}"\n'
        f'cert_file = "{where}/{args.site}.pem"\nkey_file = "{where}/{args.site}.key"'
    )
    return 0


def cmd_central(args: argparse.Namespace) -> int:
    ca = load_ca(args.ca)
    cred = certs.issue_central(ca, args.name, args.days)
    stem = cred.common_name.replace(":", "-")
    outputs = [*_pair(stem, cred), Output(CA_CERT, ca.cert_pem())]
    _report(write_outputs(args.out, outputs, args.force), args.out)
    print(
        f"\nunless the broker's ACL (/etc/mosquitto/edge.acl) already names it, add this "
        f"block and reload mosquitto:\n\nuser {cred.common_name}\n"
        "topic read edge/+/records\ntopic read edge/+/telemetry\ntopic read edge/+/bulk\n"
        "topic read edge/+/status\ntopic write edge/+/ack\n"
        "topic write edge/+/down\ntopic read edge/+/downack"
    )
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    ca = load_ca(args.ca)
    cred = certs.issue_broker(ca, args.hosts, args.days)
    outputs = [*_pair("broker", cred), Output(CA_CERT, ca.cert_pem())]
    if (args.ca / CRL).exists():
        outputs.append(Output(CRL, _read(args.ca / CRL, "the revocation list")))
    _report(write_outputs(args.out, outputs, args.force), args.out)
    print("copy them to the broker's /etc/mosquitto/certs/ (broker.key owned by mosquitto, 0600)")
    return 0


def _revoked_so_far(ca: Credential, path: Path) -> list[tuple[int, datetime]]:
    if not path.exists():
        return []
    crl = certs.load_crl(_read(path, "the revocation list"), str(path))
    if not crl.is_signature_valid(ca.key.public_key()):
        raise CertError(f"{path} was not signed by this CA; move it away and run revoke again")
    return [(r.serial_number, r.revocation_date_utc) for r in crl]


def cmd_revoke(args: argparse.Namespace) -> int:
    ca = load_ca(args.ca)
    serials: list[int] = []
    for path in args.certs:
        cert = certs.load_certificate(_read(path, "the certificate"), str(path))
        if not certs.issued_by(cert, ca.cert):
            raise CertError(f"{path} was not issued by the CA in {args.ca}; nothing to revoke")
        serials.append(cert.serial_number)
    for text in args.serial:
        try:
            serials.append(int(text.replace(":", ""), 16))
        except ValueError:
            raise CertError(
                f"--serial {text!r} is not hexadecimal (see `edge certs show`)"
            ) from None
    if not serials:
        raise CertError("name the certificates to revoke (files, or --serial HEX)")
    entries = _revoked_so_far(ca, args.ca / CRL)
    known = {serial for serial, _ in entries}
    now = datetime.now(UTC)
    entries += [(serial, now) for serial in serials if serial not in known]
    crl = certs.crl_pem(certs.make_crl(ca, entries, days=certs.CA_DAYS))
    write_outputs(args.ca, [Output(CRL, crl)], force=True)
    print(
        f"{args.ca / CRL}: {len(entries)} revoked certificate(s); copy it to the broker's "
        "/etc/mosquitto/certs/crl.pem and `systemctl reload mosquitto` (a revoked client "
        "still connected stays so until it reconnects: restart mosquitto to cut it off now)"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    cert = certs.load_certificate(_read(args.file, "the certificate"), str(args.file))
    print(json.dumps(certs.describe(cert), indent=2, ensure_ascii=False))
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.certs_func(args)
    except CertError as exc:
        print(f"edge certs: {exc}", file=sys.stderr)
        return 1
    return code


def add_certs_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``certs`` group (ca, site, central, broker, revoke, show)."""
    group = sub.add_parser(
        "certs",
        help="make the fleet's TLS certificates (central operations)",
        description="Make the CA, station, central and broker certificates for mutual TLS "
        "with the broker (firmware-config/mosquitto/). Keys are written with mode 0600; "
        "existing files are never replaced without --force.",
    )
    gsub = group.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")

    def command(name: str, func: Command, help_text: str, description: str) -> Parser:
        p = gsub.add_parser(name, help=help_text, description=description)
        p.set_defaults(func=_run, certs_func=func)
        return p

    def issuing(p: argparse.ArgumentParser, days: int) -> None:
        p.add_argument("--ca", type=Path, required=True, help="the CA folder (edge certs ca)")
        p.add_argument("--out", type=Path, required=True, help="folder to write into")
        p.add_argument("--days", type=int, default=days, help=f"validity (default {days})")
        p.add_argument("--force", action="store_true", help="replace existing files")

    ca = command(
        "ca",
        cmd_ca,
        "make the fleet CA",
        "Make a CA: ca.pem (give it to the broker and every station), ca.key (keep it "
        "offline: whoever has it can make certificates for any site) and an empty crl.pem.",
    )
    ca.add_argument("--out", type=Path, required=True, help="the CA folder to create")
    ca.add_argument("--name", default="Edge collection-point CA", help="the CA's CN")
    ca.add_argument("--days", type=int, default=certs.CA_DAYS, help="validity (default 7300)")
    ca.add_argument("--force", action="store_true", help="replace an existing CA")

    site = command(
        "site",
        cmd_site,
        "a station's client certificate (CN = site id)",
        "Issue SITE.pem and SITE.key for the station whose site.id is SITE; the broker "
        "lets it publish only to <prefix>/SITE/... and read only <prefix>/SITE/ack.",
    )
    site.add_argument("site", help="the station's site.id")
    issuing(site, certs.LEAF_DAYS)

    central = command(
        "central",
        cmd_central,
        "a central client certificate (CN = central:NAME)",
        "Issue central-NAME.pem and .key for a central process (e.g. an ingest worker); "
        "prints the ACL block that grants it all sites' data and the acks.",
    )
    central.add_argument("name", help="e.g. ingest-1 (one per process)")
    issuing(central, certs.LEAF_DAYS)

    broker = command(
        "broker",
        cmd_broker,
        "the broker's server certificate",
        "Issue broker.pem and broker.key valid for every HOST (DNS names and IP addresses "
        "the stations and central use to reach the broker).",
    )
    broker.add_argument("hosts", nargs="+", metavar="HOST")
    issuing(broker, certs.LEAF_DAYS)

    revoke = command(
        "revoke",
        cmd_revoke,
        "revoke certificates (a lost or retired station)",
        "Add certificates to the CA folder's crl.pem; copy it to the broker and reload.",
    )
    revoke.add_argument("certs", type=Path, nargs="*", metavar="CERT", help="certificate files")
    revoke.add_argument("--serial", action="append", default=[], help="a serial number (hex)")
    revoke.add_argument("--ca", type=Path, required=True, help="the CA folder")

    show = command("show", cmd_show, "describe a certificate", "Print a certificate as JSON.")
    show.add_argument("file", type=Path)
