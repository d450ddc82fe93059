"""The certificate tool: what it issues (checked with an RFC 5280 path validator)
and the files `edge certs` writes."""

from __future__ import annotations

import ipaddress
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from edge.cli import main
from edge.sync import certs
from edge.sync.certs import CertError


@pytest.fixture(scope="module")
def ca() -> certs.Credential:
    return certs.make_ca("CA Điểm thu gom Lai Châu")


def verify_client(ca: certs.Credential, leaf: certs.Credential) -> None:
    verifier = PolicyBuilder().store(Store([ca.cert])).build_client_verifier()
    verifier.verify(leaf.cert, [])


def verify_server(ca: certs.Credential, leaf: certs.Credential, host: str) -> None:
    try:
        name: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        name = x509.DNSName(host)
    verifier = PolicyBuilder().store(Store([ca.cert])).build_server_verifier(name)
    verifier.verify(leaf.cert, [])


def test_the_ca_keeps_its_name_and_signs_only_leaves(ca: certs.Credential):
    assert ca.common_name == "CA Điểm thu gom Lai Châu"
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc > timedelta(days=7300)


def test_a_site_certificate_names_the_site_and_validates_as_a_client(ca: certs.Credential):
    site = certs.issue_site(ca, "lai-chau-07")
    assert site.common_name == "lai-chau-07"
    assert certs.describe(site.cert)["alt_names"] == ["urn:edge:site:lai-chau-07"]
    verify_client(ca, site)
    assert certs.issued_by(site.cert, ca.cert)
    with pytest.raises(VerificationError):  # a client certificate is no server certificate
        verify_server(ca, site, "lai-chau-07")


def test_certificates_start_in_the_past_for_a_lagging_clock(ca: certs.Credential):
    now = datetime(2026, 3, 1, tzinfo=UTC)
    site = certs.issue_site(ca, "site-a", days=365, now=now)
    assert site.cert.not_valid_before_utc == now - certs.BACKDATE
    assert site.cert.not_valid_after_utc == now + timedelta(days=365)


@pytest.mark.parametrize(
    "bad", ["Lai-Chau", "-site", "", "a" * 64, "site/a", "site+a", "#", "site a", "điểm-1"]
)
def test_a_site_id_the_station_could_not_have_is_refused(ca: certs.Credential, bad: str):
    with pytest.raises(CertError, match=r"not a valid site id.*lower-case letters"):
        certs.issue_site(ca, bad)


def test_a_central_certificate_can_never_be_a_site(ca: certs.Credential):
    central = certs.issue_central(ca, "ingest-1")
    assert central.common_name == "central:ingest-1"
    assert certs.issue_central(ca, "central:ingest-1").common_name == "central:ingest-1"
    verify_client(ca, central)
    with pytest.raises(CertError, match="not a valid central name"):
        certs.issue_central(ca, "Ingest 1")


def test_the_broker_certificate_covers_every_host_given(ca: certs.Credential):
    broker = certs.issue_broker(ca, ["mqtt.example.vn", "10.8.0.1", "::1", "localhost"])
    for host in ("mqtt.example.vn", "10.8.0.1", "::1", "localhost"):
        verify_server(ca, broker, host)
    with pytest.raises(VerificationError):
        verify_server(ca, broker, "other.example.vn")
    with pytest.raises(VerificationError):  # a server certificate is no client certificate
        verify_client(ca, broker)


@pytest.mark.parametrize("bad", ["bad host", "ví-dụ.vn", "-x.example", "a..b", ""])
def test_a_host_that_is_no_name_or_address_is_refused(ca: certs.Credential, bad: str):
    with pytest.raises(CertError, match="neither an IP address nor a host name"):
        certs.issue_broker(ca, [bad])
    with pytest.raises(CertError, match="at least one host"):
        certs.issue_broker(ca, [])


def test_a_leaf_cannot_outlive_its_ca():
    short = certs.make_ca(days=30)
    with pytest.raises(CertError, match=r"CA expires on .* fewer --days or a new CA"):
        certs.issue_site(short, "site-a", days=31)


def test_a_key_must_belong_to_its_certificate(ca: certs.Credential):
    a, b = certs.issue_site(ca, "site-a"), certs.issue_site(ca, "site-b")
    again = certs.load_credential(a.cert_pem(), a.key_pem(), "site-a")
    assert again.cert == a.cert
    with pytest.raises(CertError, match="key does not belong to its certificate"):
        certs.load_credential(a.cert_pem(), b.key_pem(), "site-a")
    with pytest.raises(CertError, match="not a PEM certificate"):
        certs.load_credential(b"junk", a.key_pem(), "site-a")


def test_the_revocation_list_names_the_serials_and_is_signed(ca: certs.Credential):
    site = certs.issue_site(ca, "site-a")
    when = datetime(2026, 5, 1, tzinfo=UTC)
    crl = certs.make_crl(ca, [(site.cert.serial_number, when)])
    assert crl.is_signature_valid(ca.key.public_key())
    revoked = crl.get_revoked_certificate_by_serial_number(site.cert.serial_number)
    assert revoked is not None and revoked.revocation_date_utc == when
    assert crl.next_update_utc is not None
    assert crl.next_update_utc <= ca.cert.not_valid_after_utc


# --- the command line -------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["certs", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_commands_write_every_file_a_machine_needs(tmp_path: Path, capsys):
    ca_dir = tmp_path / "ca"
    assert run(capsys, "ca", "--out", str(ca_dir))[0] == 0
    assert mode(ca_dir / "ca.key") == 0o600 and mode(ca_dir / "ca.pem") == 0o644
    assert (ca_dir / "crl.pem").exists()

    code, out, _ = run(capsys, "site", "lai-chau-07", "--ca", str(ca_dir), "--out", str(tmp_path))
    assert code == 0
    assert mode(tmp_path / "lai-chau-07.key") == 0o600
    assert (tmp_path / "ca.pem").read_bytes() == (ca_dir / "ca.pem").read_bytes()
    assert 'cert_file = "/etc/edge/tls/lai-chau-07.pem"' in out
    cred = certs.load_credential(
        (tmp_path / "lai-chau-07.pem").read_bytes(),
        (tmp_path / "lai-chau-07.key").read_bytes(),
        "site",
    )
    assert cred.common_name == "lai-chau-07"

    code, out, _ = run(capsys, "central", "ingest-3", "--ca", str(ca_dir), "--out", str(tmp_path))
    assert code == 0 and "user central:ingest-3\ntopic read edge/+/records" in out
    assert mode(tmp_path / "central-ingest-3.key") == 0o600

    broker_dir = tmp_path / "broker"
    argv = ["broker", "mqtt.example.vn", "10.8.0.1", "--ca", str(ca_dir), "--out", str(broker_dir)]
    assert run(capsys, *argv)[0] == 0
    assert sorted(p.name for p in broker_dir.iterdir()) == [
        "broker.key",
        "broker.pem",
        "ca.pem",
        "crl.pem",
    ]
    code, out, _ = run(capsys, "show", str(broker_dir / "broker.pem"))
    shown = json.loads(out)
    assert shown["alt_names"] == ["mqtt.example.vn", "10.8.0.1"]
    assert shown["purposes"] == ["server"]


def test_nothing_is_overwritten_without_force(tmp_path: Path, capsys):
    ca_dir = tmp_path / "ca"
    run(capsys, "ca", "--out", str(ca_dir))
    run(capsys, "site", "site-a", "--ca", str(ca_dir), "--out", str(tmp_path))
    before = (tmp_path / "site-a.key").read_bytes()
    code, _, err = run(capsys, "site", "site-a", "--ca", str(ca_dir), "--out", str(tmp_path))
    assert code == 1 and "already exists; nothing was written (use --force" in err
    assert (tmp_path / "site-a.key").read_bytes() == before
    assert (
        run(capsys, "site", "site-a", "--ca", str(ca_dir), "--out", str(tmp_path), "--force")[0]
        == 0
    )
    assert (tmp_path / "site-a.key").read_bytes() != before
    assert mode(tmp_path / "site-a.key") == 0o600

    ca_key = (ca_dir / "ca.key").read_bytes()
    code, _, err = run(capsys, "ca", "--out", str(ca_dir))
    assert code == 1 and "would lock out every certificate" in err
    assert (ca_dir / "ca.key").read_bytes() == ca_key


def test_mistakes_are_named(tmp_path: Path, capsys):
    out = str(tmp_path / "x")
    code, _, err = run(capsys, "site", "site-a", "--ca", str(tmp_path / "none"), "--out", out)
    assert code == 1 and "no CA in" in err and "edge certs ca --out" in err
    run(capsys, "ca", "--out", str(tmp_path / "ca"))
    code, _, err = run(capsys, "site", "Site_A", "--ca", str(tmp_path / "ca"), "--out", out)
    assert code == 1 and "'Site_A' is not a valid site id" in err
    assert not Path(out).exists()
    code, _, err = run(capsys, "revoke", "--serial", "zz", "--ca", str(tmp_path / "ca"))
    assert code == 1 and "not hexadecimal" in err


def test_revoking_adds_to_the_list(tmp_path: Path, capsys):
    ca_dir = tmp_path / "ca"
    run(capsys, "ca", "--out", str(ca_dir))
    for site in ("site-a", "site-b"):
        run(capsys, "site", site, "--ca", str(ca_dir), "--out", str(tmp_path))
    assert run(capsys, "revoke", str(tmp_path / "site-a.pem"), "--ca", str(ca_dir))[0] == 0
    serial_b = x509.load_pem_x509_certificate((tmp_path / "site-b.pem").read_bytes()).serial_number
    code, out, _ = run(capsys, "revoke", "--serial", format(serial_b, "x"), "--ca", str(ca_dir))
    assert code == 0 and "2 revoked" in out
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    site_a = x509.load_pem_x509_certificate((tmp_path / "site-a.pem").read_bytes())
    assert {r.serial_number for r in crl} == {site_a.serial_number, serial_b}

    other = tmp_path / "other"
    run(capsys, "ca", "--out", str(other))
    run(capsys, "site", "site-c", "--ca", str(other), "--out", str(other))
    code, _, err = run(capsys, "revoke", str(other / "site-c.pem"), "--ca", str(ca_dir))
    assert code == 1 and "was not issued by the CA" in err
