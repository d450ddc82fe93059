"""The shipped broker configuration (firmware-config/mosquitto/), run by a real
mosquitto: mutual TLS only, names and client ids from certificates, and an ACL
that keeps every site to its own topics.

"Nothing arrived" is never waited for: a forbidden message is followed by an
allowed one from the same sender, and the broker delivers in order, so if the
forbidden one had got through it would be received first."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.sync import certs
from rigs.clock import on_real_clock
from rigs.faultproxy import FaultProxy
from rigs.helpers import Broker, Pki, session_pki, wait_for
from rigs.mqtt_probe import NOT_AUTHORIZED, Probe, Received, accepted

KINDS = ("records", "telemetry", "bulk", "status")
MakeProbe = Callable[..., Probe]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return session_pki(tmp_path_factory)


@pytest.fixture
def tls_broker(pki: Pki, tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker", tls=pki.broker_tls) as b:
        yield b


@pytest.fixture
def probe(tls_broker: Broker, pki: Pki) -> Iterator[MakeProbe]:
    """probe(name, ...) -> an unconnected client with ``name``'s certificate."""
    made: list[Probe] = []

    def make(name: str, port: int | None = None, **kw: Any) -> Probe:
        tls = kw.pop("tls", None) or pki.client(name)
        kw.setdefault("client_id", name)
        p = Probe(port or tls_broker.port, tls, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def online(probe: MakeProbe) -> MakeProbe:
    """online(name, ...) -> a client with ``name``'s certificate, connected."""

    def make(name: str, **kw: Any) -> Probe:
        p = probe(name, **kw)
        result = p.connect()
        assert result.ok, f"{name} could not connect: {result.reason}"
        return p

    return make


def dropped(broker: Broker, name: str) -> bool:
    """The broker has logged the end of ``name``'s connection (and so sent its will)."""
    log = broker.log.read_text(errors="replace")
    return f"Client {name} closed its connection" in log or f"Client {name} disconnected" in log


def topics(messages: list[Received]) -> list[str]:
    return [m.topic for m in messages]


def test_a_site_uses_its_own_topics_and_central_reads_them_shared(online: MakeProbe):
    central = online("central:ingest-1")
    for kind in KINDS:
        assert central.subscribe(f"$share/ingest/edge/+/{kind}") == [1]
    site = online("site-a")
    assert site.subscribe("edge/site-a/ack") == [1]
    for kind in KINDS:
        assert site.publish(f"edge/site-a/{kind}", kind.encode()) == 0
    got = central.wait_messages(4)
    assert sorted((m.topic, m.payload) for m in got) == sorted(
        (f"edge/site-a/{kind}", kind.encode()) for kind in KINDS
    )
    assert central.publish("edge/site-a/ack", b"upto 7") == 0
    assert [(m.topic, m.payload) for m in site.wait_messages(1)] == [("edge/site-a/ack", b"upto 7")]


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_site_cannot_publish_as_another_site(online: MakeProbe, v5: bool):
    central = online("central:ingest-1")
    for kind in KINDS:
        assert central.subscribe(f"edge/+/{kind}") == [1]
    site = online("site-a", v5=v5)
    assert site.subscribe("edge/site-a/ack") == [1]
    forbidden = [f"edge/site-b/{kind}" for kind in KINDS]
    forbidden += ["edge/site-a/ack", "edge/site-a/other", "edge/site-b", "other/site-a/records"]
    for topic in forbidden:
        code = site.publish(topic, b"forged")
        assert code == (NOT_AUTHORIZED if v5 else 0), topic  # 3.1.1 has no reason code
    assert site.publish("edge/site-a/records", b"marker") == 0
    assert central.publish("edge/site-a/ack", b"real ack") == 0
    assert topics(central.wait_messages(1)) == ["edge/site-a/records"]
    assert [m.payload for m in site.wait_messages(1)] == [b"real ack"]


def test_a_site_cannot_read_another_sites_acks_or_data(online: MakeProbe):
    site_a, site_b = online("site-a"), online("site-b")
    assert site_b.subscribe("edge/site-b/ack") == [1]
    # mosquitto 2.0 grants these in the SUBACK and filters every delivery instead
    for pattern in ("edge/site-b/ack", "edge/+/ack", "edge/site-b/records", "#"):
        site_a.subscribe(pattern)
    assert site_a.subscribe("edge/site-a/ack") == [1]
    central = online("central:ingest-1")
    assert site_b.publish("edge/site-b/records", b"b's data") == 0
    assert central.publish("edge/site-b/ack", b"for b") == 0
    assert central.publish("edge/site-a/ack", b"for a") == 0
    assert [(m.topic, m.payload) for m in site_a.wait_messages(1)] == [
        ("edge/site-a/ack", b"for a")
    ]
    assert [m.payload for m in site_b.wait_messages(1)] == [b"for b"]


def test_a_site_reads_only_its_own_downlink_and_acks_only_its_own(online: MakeProbe):
    central = online("central:ingest-1")
    assert central.subscribe("edge/+/downack") == [1]
    site_a, site_b = online("site-a"), online("site-b")
    assert site_b.subscribe("edge/site-b/down", qos=1) == [1]
    for pattern in ("edge/site-b/down", "edge/+/down", "#"):  # filtered on delivery
        site_a.subscribe(pattern, qos=1)
    assert site_a.subscribe("edge/site-a/down", qos=1) == [1]
    assert central.publish("edge/site-b/down", b"b's orders") == 0
    assert central.publish("edge/site-a/down", b"a's orders") == 0
    assert [(m.topic, m.payload) for m in site_a.wait_messages(1)] == [
        ("edge/site-a/down", b"a's orders")
    ]
    assert [m.payload for m in site_b.wait_messages(1)] == [b"b's orders"]
    # a site writes neither another site's downack nor any site's downlink
    for topic in ("edge/site-b/downack", "edge/site-b/down", "edge/site-a/down"):
        assert site_a.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    assert site_a.publish("edge/site-a/downack", b"upto 1") == 0
    assert [(m.topic, m.payload) for m in central.wait_messages(1)] == [
        ("edge/site-a/downack", b"upto 1")
    ]


def test_the_import_certificate_only_sends_the_downlink(online: MakeProbe):
    importer = online("central:import")
    assert importer.subscribe("edge/+/downack") == [1]
    importer.subscribe("edge/+/records")  # granted by mosquitto 2.0, never delivered
    site = online("site-a")
    assert site.subscribe("edge/site-a/down", qos=1) == [1]
    assert importer.publish("edge/site-a/ack", b"forged ack") == NOT_AUTHORIZED
    assert importer.publish("edge/site-a/down", b"orders") == 0
    assert [m.payload for m in site.wait_messages(1)] == [b"orders"]
    assert site.publish("edge/site-a/records", b"data") == 0
    assert site.publish("edge/site-a/downack", b"upto 1") == 0
    assert [m.topic for m in importer.wait_messages(1)] == ["edge/site-a/downack"]


def test_central_cannot_publish_data_as_a_site(online: MakeProbe):
    watcher = online("central:ingest-2")
    assert watcher.subscribe("edge/+/records") == [1]
    central = online("central:ingest-1")
    assert central.publish("edge/site-a/records", b"forged") == NOT_AUTHORIZED
    assert online("site-a").publish("edge/site-a/records", b"real") == 0
    assert [m.payload for m in watcher.wait_messages(1)] == [b"real"]


def test_a_forged_last_will_is_not_published(
    tls_broker: Broker, online: MakeProbe, probe: MakeProbe
):
    central = online("central:ingest-1")
    assert central.subscribe("edge/+/status") == [1]
    with FaultProxy(tls_broker.port) as proxy:
        forger = probe("site-b", port=proxy.port)
        assert forger.connect(will=("edge/site-a/status", b"forged")).ok
        proxy.cut()  # an unexpected end: the broker publishes the will, if allowed
        wait_for(lambda: forger.disconnected, what="site-b to notice the cut")
        wait_for(lambda: dropped(tls_broker, "site-b"), what="the broker to drop site-b")
        honest = probe("site-a", port=proxy.port)
        assert honest.connect(will=("edge/site-a/status", b"offline")).ok
        proxy.cut()
        got = central.wait_messages(1)
    assert [(m.topic, m.payload) for m in got] == [("edge/site-a/status", b"offline")]
    late = online("central:ingest-2")  # the retained status is the honest one too
    assert late.subscribe("edge/site-a/status") == [1]
    assert [(m.payload, m.retain) for m in late.wait_messages(1)] == [(b"offline", True)]


@pytest.mark.parametrize("how", ["no certificate", "another CA", "plain MQTT"])
def test_a_client_without_a_fleet_certificate_cannot_connect(
    tls_broker: Broker, probe: MakeProbe, pki: Pki, how: str
):
    if how == "no certificate":
        bad = probe("site-a", no_cert=True)
    elif how == "another CA":
        bad = probe("site-a", tls=pki.foreign("site-a"))  # the CN of a real site
    else:
        bad = Probe(tls_broker.port, None, client_id="site-a")
    try:
        assert not bad.connect().ok
    finally:
        bad.close()
    assert probe("site-a").connect().ok  # the same name with its real certificate


@pytest.mark.parametrize("impostor", ["another CA", "another name"])
def test_a_client_refuses_a_broker_it_cannot_verify(pki: Pki, tmp_path: Path, impostor: str):
    if impostor == "another CA":
        impostor_ca = certs.make_ca("Impostor CA", now=pki.now)
        cert = certs.issue_broker(impostor_ca, ["localhost", "127.0.0.1"], now=pki.now)
    else:
        cert = certs.issue_broker(pki.ca, ["mqtt.example.vn"], now=pki.now)
    (tmp_path / "b.pem").write_bytes(cert.cert_pem())
    (tmp_path / "b.key").write_bytes(cert.key_pem())
    tls = replace(pki.broker_tls, cert_file=tmp_path / "b.pem", key_file=tmp_path / "b.key")
    with Broker(tmp_path / "broker", tls=tls) as b:
        site = Probe(b.port, pki.client("site-a"), client_id="site-a")
        try:
            result = site.connect()
        finally:
            site.close()
    assert not result.ok and "certificate verify failed" in result.reason


def test_the_certificate_not_the_client_id_names_the_session(online: MakeProbe, probe: MakeProbe):
    first = online("site-a", client_id="site-a")
    impostor = online("site-b", client_id="site-a")  # becomes "site-b": no takeover
    assert accepted(first.publish("edge/site-a/records", b"still connected"))
    assert accepted(impostor.publish("edge/site-b/records", b"own topics only"))
    second = online("site-a", client_id="anything")  # becomes "site-a": takes over
    wait_for(lambda: first.disconnected, what="the older site-a connection to be replaced")
    assert accepted(second.publish("edge/site-a/records", b"x"))

    keeper = probe("central:ingest-1", client_id="one", persistent=True)
    assert keeper.connect().ok
    assert keeper.subscribe("edge/+/status") == [1]
    keeper.close()
    again = probe("central:ingest-1", client_id="two", persistent=True)
    assert again.connect().session_present  # same CN, same session


def test_central_processes_share_the_load(online: MakeProbe):
    workers = [online("central:ingest-1"), online("central:ingest-2")]
    for w in workers:
        assert w.subscribe("$share/ingest/edge/+/records") == [1]
    site = online("site-a")
    sent = [b"batch %d" % i for i in range(10)]
    for payload in sent:
        assert site.publish("edge/site-a/records", payload) == 0
    wait_for(lambda: sum(len(w.messages()) for w in workers) >= 10, what="10 deliveries")
    shares = [[m.payload for m in w.messages()] for w in workers]
    assert sorted(shares[0] + shares[1]) == sorted(sent)  # each exactly once
    assert all(shares), "mosquitto hands shared messages round-robin"


def test_sessions_queued_and_retained_messages_survive_restarts(
    tls_broker: Broker, probe: MakeProbe, online: MakeProbe
):
    ingest = probe("central:ingest-1", persistent=True)
    assert ingest.connect().ok
    assert ingest.subscribe("$share/ingest/edge/+/records") == [1]
    ingest.close()
    site = online("site-a")
    for i in range(3):
        assert site.publish("edge/site-a/records", b"queued %d" % i) == 0
    assert accepted(site.publish("edge/site-a/status", b'{"state":"online"}', retain=True))
    site.close()
    port = tls_broker.port
    tls_broker.restart()
    tls_broker.restart()
    assert tls_broker.port == port and tls_broker.starts == 3
    back = probe("central:ingest-1", persistent=True)
    assert back.connect().session_present
    assert [m.payload for m in back.wait_messages(3)] == [b"queued 0", b"queued 1", b"queued 2"]
    watcher = online("central:ingest-2")
    assert watcher.subscribe("edge/site-a/status") == [1]
    assert [m.payload for m in watcher.wait_messages(1)] == [b'{"state":"online"}']


def test_another_prefix_gets_the_same_rules(pki: Pki, tmp_path: Path):
    with Broker(tmp_path / "broker", tls=pki.broker_tls, prefix="fleet/vn") as b:
        site = Probe(b.port, pki.client("site-a"), client_id="site-a")
        try:
            assert site.connect().ok
            assert accepted(site.publish("fleet/vn/site-a/records", b"ok"))
            assert site.publish("edge/site-a/records", b"old prefix") == NOT_AUTHORIZED
            assert site.publish("fleet/vn/site-b/records", b"forged") == NOT_AUTHORIZED
        finally:
            site.close()


def test_a_revoked_certificate_is_refused_after_a_reload(pki: Pki, tmp_path: Path, capsys):
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    for name in ("ca.pem", "ca.key", "crl.pem"):
        shutil.copy(pki.folder / name, ca_dir / name)
    tls = replace(pki.broker_tls, crl_file=ca_dir / "crl.pem")
    with Broker(tmp_path / "broker", tls=tls) as b:

        def connects(name: str) -> bool:
            p = Probe(b.port, pki.client(name), client_id=name)
            try:
                return p.connect().ok
            finally:
                p.close()

        assert connects("site-b")
        revoke = ["certs", "revoke", str(pki.client("site-b").cert_file), "--ca", str(ca_dir)]
        with on_real_clock():  # the list is for the broker, which runs on the real clock
            assert main(revoke) == 0
        assert "1 revoked" in capsys.readouterr().out
        b.reload()
        wait_for(lambda: not connects("site-b"), what="the broker to refuse site-b")
        assert connects("site-a")
