"""Certificates for mutual TLS between stations, central ingest and the broker.

Pure: keys and certificates in, PEM bytes out; nothing here touches a file
(``edge/sync/certs_cli.py`` writes them). One private CA signs everything:

- a site certificate: CN = the site id (``site.id``), also in its subjectAltName
  as ``urn:edge:site:<id>`` (RFC 5280 validators want one); mosquitto takes the CN as
  the MQTT username and client id, and the ACL lets that name write only its
  own topics (``firmware-config/mosquitto/edge.acl``);
- a central certificate: CN = ``central:<name>``, a name no site id can have
  (site ids have no ``:``); the ACL gives each central name read access to all
  sites and the right to publish acks;
- the broker's server certificate, with every DNS name and IP address that
  stations and central use to reach it in its subjectAltName.

Keys are ECDSA P-256: a mutual-TLS MQTT connection costs about 4.5 kB from
connect to disconnect (measured through rigs/faultproxy.py, TLS 1.3) instead
of about 7 kB with RSA (../shared/FIELD.md), which matters on a metered link. Certificates
start 30 days in the past, so a Raspberry Pi whose clock lags after a power
cut (no battery clock) still accepts the broker's certificate.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from edge.config import SiteConfig

CENTRAL_PREFIX = "central:"
BACKDATE = timedelta(days=30)
CA_DAYS = 7300
LEAF_DAYS = 3650

_NAME_RULE = "lower-case letters, digits and '-', 1-63 characters, not starting with '-'"
_PURPOSES = {ExtendedKeyUsageOID.CLIENT_AUTH: "client", ExtendedKeyUsageOID.SERVER_AUTH: "server"}
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class CertError(ValueError):
    """A certificate request or file that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def common_name(self) -> str:
        return common_name(self.cert)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _valid_name(name: str) -> bool:
    """The rule of ``site.id`` (edge/config.py), used for central names too."""
    try:
        SiteConfig(id=name)
    except ValidationError:
        return False
    return True


def site_common_name(site_id: str) -> str:
    """The CN of a site's certificate: the site id itself, checked like ``site.id``."""
    if not _valid_name(site_id):
        raise CertError(
            f"{site_id!r} is not a valid site id ({_NAME_RULE}); use the station's site.id exactly"
        )
    return site_id


def central_common_name(name: str) -> str:
    """The CN of a central identity: ``central:<name>`` (never a valid site id)."""
    if name.startswith(CENTRAL_PREFIX):
        name = name[len(CENTRAL_PREFIX) :]
    if not _valid_name(name):
        raise CertError(f"{name!r} is not a valid central name ({_NAME_RULE}), e.g. 'ingest-1'")
    return CENTRAL_PREFIX + name


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _ski(key: ec.EllipticCurvePrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def make_ca(
    name: str = "Edge collection-point CA", days: int = CA_DAYS, now: datetime | None = None
) -> Credential:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    if not name.strip():
        raise CertError("the CA name is empty; give a name such as 'Edge collection-point CA'")
    if days < 1:
        raise CertError(f"days must be at least 1 (got {days})")
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = _now(now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credential(cert, key)


def _issue(
    ca: Credential,
    cn: str,
    organisation: str,
    usage: x509.ObjectIdentifier,
    days: int,
    now: datetime | None,
    san: Sequence[x509.GeneralName] = (),
) -> Credential:
    if days < 1:
        raise CertError(f"days must be at least 1 (got {days})")
    start = _now(now)
    end = start + timedelta(days=days)
    if end > ca.cert.not_valid_after_utc:
        raise CertError(
            f"the CA expires on {ca.cert.not_valid_after_utc:%Y-%m-%d}, before the "
            f"{days} days asked for; use fewer --days or a new CA"
        )
    key = _new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return Credential(builder.sign(ca.key, hashes.SHA256()), key)


def issue_site(
    ca: Credential, site_id: str, days: int = LEAF_DAYS, now: datetime | None = None
) -> Credential:
    """A station's client certificate: CN = ``site_id``."""
    cn = site_common_name(site_id)
    san = [x509.UniformResourceIdentifier(f"urn:edge:site:{cn}")]
    return _issue(ca, cn, "Edge station", ExtendedKeyUsageOID.CLIENT_AUTH, days, now, san)


def issue_central(
    ca: Credential, name: str, days: int = LEAF_DAYS, now: datetime | None = None
) -> Credential:
    """A central (ingest, operations) client certificate: CN = ``central:<name>``."""
    cn = central_common_name(name)
    san = [x509.UniformResourceIdentifier(f"urn:edge:{cn}")]
    return _issue(ca, cn, "Edge central", ExtendedKeyUsageOID.CLIENT_AUTH, days, now, san)


def broker_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """subjectAltName entries for ``hosts``: IP addresses as such, the rest as DNS names."""
    if not hosts:
        raise CertError("give at least one host name or IP address the broker is reached by")
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        labels = host.removeprefix("*.").rstrip(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise CertError(
                f"{host!r} is neither an IP address nor a host name (letters, digits, '-' "
                "and dots; an internationalised name in its xn-- form)"
            )
        names.append(x509.DNSName(host.rstrip(".").lower()))
    return names


def issue_broker(
    ca: Credential, hosts: Sequence[str], days: int = LEAF_DAYS, now: datetime | None = None
) -> Credential:
    """The broker's server certificate, valid for every name and address in ``hosts``."""
    san = broker_names(hosts)
    return _issue(ca, hosts[0], "Edge broker", ExtendedKeyUsageOID.SERVER_AUTH, days, now, san)


def make_crl(
    ca: Credential,
    revoked: Sequence[tuple[int, datetime]],
    days: int = LEAF_DAYS,
    now: datetime | None = None,
) -> x509.CertificateRevocationList:
    """A revocation list signed by ``ca`` listing (serial, revoked at) pairs.

    It is valid for ``days`` (capped at the CA's own end): OpenSSL refuses every
    client once the list has expired, so it must not run out before the CA does."""
    start = _now(now)
    end = min(start + timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(start - timedelta(minutes=5))
        .next_update(end)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    for serial, when in sorted(set(revoked)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertError(f"{what} is not a PEM certificate") from None


def load_crl(pem: bytes, what: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(pem)
    except ValueError:
        raise CertError(f"{what} is not a PEM revocation list") from None


def load_credential(cert_pem: bytes, key_pem: bytes, what: str) -> Credential:
    """A certificate and key read back; the key must be the certificate's own."""
    cert = load_certificate(cert_pem, f"{what} certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise CertError(f"{what} key is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertError(f"{what} key does not belong to its certificate")
    return Credential(cert, key)


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``ca`` signed ``cert`` (signature checked, not just the names)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def describe(cert: x509.Certificate) -> dict[str, object]:
    """What an operator needs to know about a certificate, as plain values."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in san]
    except x509.ExtensionNotFound:
        names = []
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        purposes = [_PURPOSES.get(u, u.dotted_string) for u in usage]
    except x509.ExtensionNotFound:
        purposes = []
    return {
        "common_name": common_name(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "alt_names": names,
        "purposes": purposes,
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":"),
    }
