"""A metered village link: a network namespace for the station, joined to the root
namespace by a veth pair, whose interface counters give every byte the carrier
would bill (IP and TCP headers, TLS, MQTT, keepalives, acknowledgements,
retransmissions, both ways).

    [netns edge-bench0] station 10.213.0.2 ebench-s0 <─veth─> ebench-h0 10.213.0.1 [root]
                                                             broker, ingest, shaper

Only the station's traffic crosses the pair: the broker listens on the host end
(:class:`HostBroker`), and central ingest, in the root namespace too, reaches it
through the loopback device, so the ingest-broker leg is not counted.

The pair is set up so that the counters count IP packets one by one: MTU 1,500,
GSO/TSO segments capped at one (``gso_max_segs 1``: the kernel would otherwise
hand the veth 64 kB super-packets, counted once with one header), IPv6 off (no
router or neighbour solicitations), static neighbour entries (no ARP). The
counters include a 14-byte Ethernet header per packet, which :meth:`Counters.ip_bytes`
takes off: a mobile carrier bills IP bytes.

:func:`village_link` removes whatever an earlier run left, builds the pair and
tears it down on the way out, even on error. With ``stations=N`` it makes N
namespaces, each with its own pair (10.213.<i>.2 and .1) routed to the broker's
address on pair 0, so several station processes can run side by side and each
pair still counts only its own station. It yields None when namespaces
cannot be made here (not root, no ``ip``), so a benchmark can fall back to
another method and say so.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigs.helpers import Broker, BrokerTls

NS = "edge-bench"
HOST_DEV = "ebench-h"
STATION_DEV = "ebench-s"
SUBNET = "10.213"
PREFIX_LEN = 30
MTU = 1500
ETHERNET_HEADER = 14


@dataclass(frozen=True)
class Counters:
    """A host end's counters: rx = station to broker, tx = broker to station."""

    rx_bytes: int = 0
    rx_packets: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.rx_bytes + other.rx_bytes,
            self.rx_packets + other.rx_packets,
            self.tx_bytes + other.tx_bytes,
            self.tx_packets + other.tx_packets,
        )

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.rx_bytes - other.rx_bytes,
            self.rx_packets - other.rx_packets,
            self.tx_bytes - other.tx_bytes,
            self.tx_packets - other.tx_packets,
        )

    @property
    def packets(self) -> int:
        return self.rx_packets + self.tx_packets

    @property
    def ip_bytes_up(self) -> int:
        return self.rx_bytes - ETHERNET_HEADER * self.rx_packets

    @property
    def ip_bytes_down(self) -> int:
        return self.tx_bytes - ETHERNET_HEADER * self.tx_packets

    @property
    def ip_bytes(self) -> int:
        """IP packets' bytes both ways (Ethernet headers taken off)."""
        return self.ip_bytes_up + self.ip_bytes_down


def read_counters(dev: str) -> Counters:
    """``dev``'s counters as this process's namespace sees them."""
    base = Path("/sys/class/net") / dev / "statistics"
    names = ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
    return Counters(*(int((base / name).read_text()) for name in names))


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


@dataclass(frozen=True)
class Pair:
    """Station ``index``'s namespace and veth pair: 10.213.<index>.2 in the namespace,
    10.213.<index>.1 on the host end."""

    index: int

    @property
    def ns(self) -> str:
        return f"{NS}{self.index}"

    @property
    def host_dev(self) -> str:
        return f"{HOST_DEV}{self.index}"

    @property
    def station_dev(self) -> str:
        return f"{STATION_DEV}{self.index}"

    @property
    def host_addr(self) -> str:
        return f"{SUBNET}.{self.index}.1"

    @property
    def station_addr(self) -> str:
        return f"{SUBNET}.{self.index}.2"

    def ip(self, *args: str, ns: bool = False) -> None:
        _run("ip", *(["-n", self.ns] if ns else []), *args)

    def mac(self, ns: bool) -> str:
        cmd = ["ip", *(["-n", self.ns] if ns else []), "-j", "link", "show"]
        dev = self.station_dev if ns else self.host_dev
        info: list[dict[str, Any]] = json.loads(_run(*cmd, dev).stdout)
        return str(info[0]["address"])

    def up(self) -> None:
        self.ip("netns", "add", self.ns)
        self.ip("link", "add", self.host_dev, "type", "veth", "peer", "name", self.station_dev,
                "netns", self.ns)  # fmt: skip
        for dev, addr, ns in (
            (self.host_dev, self.host_addr, False),
            (self.station_dev, self.station_addr, True),
        ):
            prefix = ["ip", "netns", "exec", self.ns] if ns else []
            _run(*prefix, "sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            self.ip("link", "set", dev, "mtu", str(MTU), "gso_max_segs", "1", ns=ns)
            self.ip("addr", "add", f"{addr}/{PREFIX_LEN}", "dev", dev, ns=ns)
            self.ip("link", "set", dev, "up", ns=ns)
        self.ip("link", "set", "lo", "up", ns=True)
        self.ip("route", "add", "default", "via", self.host_addr, ns=True)
        self.ip("neigh", "replace", self.station_addr, "lladdr", self.mac(ns=True),
                "dev", self.host_dev, "nud", "permanent")  # fmt: skip
        self.ip("neigh", "replace", self.host_addr, "lladdr", self.mac(ns=False),
                "dev", self.station_dev, "nud", "permanent", ns=True)  # fmt: skip

    def counters(self) -> Counters:
        return read_counters(self.host_dev)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this station's namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]


class VillageLink:
    """``stations`` namespaces with a veth pair each (see the module's docstring). The
    broker listens on :attr:`host` (pair 0's host end); every namespace routes to it
    over its own pair, so each pair counts one station's traffic."""

    def __init__(self, stations: int = 1) -> None:
        self.pairs = [Pair(i) for i in range(stations)]
        self.host = self.pairs[0].host_addr

    @staticmethod
    def remove() -> None:
        """Delete every namespace and pair of this rig (a veth goes with either end)."""
        links = json.loads(_run("ip", "-j", "link", "show", check=False).stdout or "[]")
        for link in links:
            if str(link.get("ifname", "")).startswith(HOST_DEV):
                _run("ip", "link", "del", link["ifname"], check=False)
        for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(NS):
                _run("ip", "netns", "del", name, check=False)

    def up(self) -> VillageLink:
        self.remove()
        for pair in self.pairs:
            pair.up()
        return self

    def down(self) -> None:
        self.remove()

    def counters(self) -> Counters:
        """All pairs' host ends together."""
        total = Counters()
        for pair in self.pairs:
            total = total + pair.counters()
        return total

    def command(self, argv: list[str], station: int = 0) -> list[str]:
        return self.pairs[station].command(argv)


@contextlib.contextmanager
def village_link(stations: int = 1) -> Iterator[VillageLink | None]:
    """The metered link, or None when this machine cannot make one (then nothing is
    left behind either)."""
    link = VillageLink(stations)
    if shutil.which("ip") is None:
        yield None
        return
    try:
        link.up()
    except (OSError, subprocess.SubprocessError):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            link.remove()
        yield None
        return
    try:
        yield link
    finally:
        link.down()


class HostBroker(Broker):
    """The shipped mutual-TLS mosquitto listening on ``host`` (the veth's host end)
    instead of 127.0.0.1; its certificate must name ``host`` for central's clients."""

    def __init__(self, workdir: Path, tls: BrokerTls, host: str) -> None:
        super().__init__(workdir, tls=tls)
        self.host = host
        text = self.conf.read_text()
        old = f"listener {self.port} 127.0.0.1\n"
        if old not in text:
            raise AssertionError(f"no {old!r} in {self.conf}")
        self.conf.write_text(text.replace(old, f"listener {self.port} {host}\n"))

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return super()._accepts()  # raises with mosquitto's own words
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False
