"""Plain MQTT only when the configuration says so, on both sides: a station running
without TLS to a broker on another machine (``[mqtt] insecure_plaintext = true``) warns
in its log, in GET /api/state, on its page and in telemetry; ``edge central ingest``
refuses a plain broker on another machine without ``--insecure-plaintext`` and warns
with it. "Another machine" is an address that is not loopback: the host end of a veth
pair the test makes (rigs.netns, as the benchmarks' village link), where a real mosquitto
listens, so the link really runs and no traffic leaves this machine."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from edge.config import StationConfig
from edge.netaddr import is_loopback_host
from rigs.helpers import Broker, StationServer, station_config, wait_for
from rigs.ingest import IngestProcess
from rigs.need import need
from rigs.netns import Pair
from rigs.sync_central import TestCentral
from tests.browser import by_id, open_page, show_tab
from tests.test_web_browser import check_layout

SITE = "test-site"  # station_config's


class LanPair(Pair):
    """A pair of its own names and subnet, so the benchmarks' clean-up leaves it alone."""

    @property
    def ns(self) -> str:
        return f"edge-plain{self.index}"

    @property
    def host_dev(self) -> str:
        return f"eplain-h{self.index}"

    @property
    def station_dev(self) -> str:
        return f"eplain-s{self.index}"

    @property
    def host_addr(self) -> str:
        return f"10.214.{self.index}.1"

    @property
    def station_addr(self) -> str:
        return f"10.214.{self.index}.2"


@pytest.fixture(scope="module")
def lan_address() -> Iterator[str]:
    """10.214.0.1 (10.214.1.1 on the calendar pass): the host end of a veth pair made for
    this module (root only)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        need("a veth pair needs root and iproute2 (`ip`), to give a broker an address "
             "that is not loopback")  # fmt: skip
    # the calendar pass runs beside the real-clock one (make test): each its own pair
    pair = LanPair(1 if os.environ.get("EDGE_TEST_CLOCK") else 0)
    try:
        pair.up()
    except (OSError, subprocess.SubprocessError) as exc:
        remove_pair(pair)
        need(f"cannot make a veth pair here ({exc})")
    try:
        assert not is_loopback_host(pair.host_addr)
        yield pair.host_addr
    finally:
        remove_pair(pair)


def remove_pair(pair: Pair) -> None:
    subprocess.run(["ip", "link", "del", pair.host_dev], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", pair.ns], capture_output=True, check=False)


class LanBroker(Broker):
    """A plain mosquitto listening on 127.0.0.1 (for the test's own central) and on this
    machine's network address ``lan`` (for the station: not loopback)."""

    def __init__(self, workdir: Path, lan: str) -> None:
        super().__init__(workdir)
        self.lan = lan
        with self.conf.open("a") as conf:
            conf.write(f"listener {self.port} {lan}\n")

    def _accepts(self) -> bool:
        if not super()._accepts():
            return False
        try:
            with socket.create_connection((self.lan, self.port), timeout=0.5):
                return True
        except OSError:
            return False


@pytest.fixture
def lan_broker(tmp_path: Path, lan_address: str) -> Iterator[LanBroker]:
    broker = LanBroker(tmp_path / "broker", lan_address)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def plain_station(tmp_path: Path, broker: LanBroker) -> StationConfig:
    return station_config(
        tmp_path,
        mqtt={
            "enabled": True,
            "host": broker.lan,
            "port": broker.port,
            "insecure_plaintext": True,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
    )


def state(server: StationServer) -> dict[str, Any]:
    with server.client("staff", timeout=10) as c:
        body: dict[str, Any] = c.get("/api/state").json()
    return body


def test_plain_link_to_another_machine_warns_in_log_state_and_telemetry(
    tmp_path: Path, lan_broker: LanBroker, caplog: pytest.LogCaptureFixture
) -> None:
    central = TestCentral(lan_broker.port)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="edge.sync.link_setup"),
            StationServer(plain_station(tmp_path, lan_broker)) as server,
        ):
            wait_for(lambda: state(server)["link"] == "online", 15, "the plain link online")
            assert state(server)["link_plaintext"] is True
            [telemetry] = wait_for(
                lambda: central.records(SITE, "telemetry"), 15, "telemetry at central"
            )
        assert telemetry["link_plaintext"] is True
        [warning] = [r for r in caplog.records if r.name == "edge.sync.link_setup"]
        assert warning.levelno == logging.WARNING
        text = warning.getMessage()
        assert text.startswith("INSECURE: the link to central is plain MQTT without TLS")
        assert f"{lan_broker.lan}:{lan_broker.port}" in text
    finally:
        central.close()


def test_plain_link_on_this_machine_says_nothing(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    central = TestCentral(broker.port)
    mqtt = {"enabled": True, "port": broker.port}  # 127.0.0.1, no TLS, no flag: allowed
    try:
        with (
            caplog.at_level(logging.WARNING, logger="edge.sync.link_setup"),
            StationServer(station_config(tmp_path, mqtt=mqtt)) as server,
        ):
            wait_for(lambda: state(server)["link"] == "online", 15, "the link online")
            assert state(server)["link_plaintext"] is False
            [telemetry] = wait_for(
                lambda: central.records(SITE, "telemetry"), 15, "telemetry at central"
            )
        assert "link_plaintext" not in telemetry
        assert not [r for r in caplog.records if r.name == "edge.sync.link_setup"]
    finally:
        central.close()


def test_the_page_shows_the_plain_link_warning(
    tmp_path: Path, lan_broker: LanBroker, browser: Browser
) -> None:
    with StationServer(plain_station(tmp_path, lan_broker)) as server:
        page = open_page(browser, server, 800, 480)
        errors: list[str] = page.errors  # type: ignore[attr-defined]
        show_tab(page, "station")  # the station's state is behind its tab
        warning = by_id(page, "link-plaintext")
        expect(by_id(page, "link-status")).to_have_attribute("data-status", "online")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text("Cảnh báo: kết nối về trung tâm không mã hóa")
        expect(warning).to_contain_text("không có TLS")
        warning.scroll_into_view_if_needed()
        box = warning.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800
        check_layout(page, 800, 480, tmp_path / "page-800x480.png")  # no sideways scroll
        by_id(page, "lang-toggle").click()
        expect(warning).to_contain_text("Warning: the link to central is not encrypted (no TLS)")
        assert errors == []


def test_the_page_shows_no_warning_without_a_plain_link(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server:  # link off
        page = open_page(browser, server, 800, 480)
        expect(by_id(page, "link-status")).to_have_attribute("data-status", "disabled")
        expect(by_id(page, "link-plaintext")).to_be_hidden()


def _ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "central", "ingest", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "broker_url", ["mqtt://192.0.2.77:1883", "mqtt://broker.example.org", "tcp://10.1.2.3:1883"]
)
def test_central_refuses_a_plain_broker_on_another_machine(tmp_path: Path, broker_url: str) -> None:
    db = f"sqlite:///{tmp_path}/central.db"
    refused = _ingest("--broker", broker_url, "--db", db)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"edge central ingest: {broker_url} is plain MQTT to another")
    assert "--insecure-plaintext" in refused.stderr and "--tls-ca" in refused.stderr
    assert not (tmp_path / "central.db").exists()  # refused before touching the database


def test_central_runs_plain_to_another_machine_only_when_told_and_warns(
    tmp_path: Path, lan_broker: LanBroker
) -> None:
    ingest = IngestProcess(lan_broker.port, f"sqlite:///{tmp_path}/central.db", "central-plain")
    url = ingest.args.index("--broker") + 1
    ingest.args[url] = f"mqtt://{lan_broker.lan}:{lan_broker.port}"
    ingest.args.append("--insecure-plaintext")
    ingest.start()  # waits until it has subscribed: it runs
    try:
        [warning] = [line for line in ingest.lines if "INSECURE" in line]
        assert "WARNING" in warning and f"{lan_broker.lan}:{lan_broker.port}" in warning
        assert "--insecure-plaintext" in warning
    finally:
        assert ingest.stop() == 0
