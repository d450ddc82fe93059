"""The station as a systemd service, without systemd: a real ``edge run`` process given
``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` as systemd gives them, talking to a real datagram
socket of this test (edge/ops/sdnotify.py). READY=1 comes once the page answers,
WATCHDOG=1 keeps coming from the web app's event loop, none while the process is
SIGSTOPped (what makes systemd restart a hung station), and on SIGTERM (``systemctl
stop``) STOPPING=1 and the retained ``offline`` status on the broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge.ops.sdnotify import Notifier
from rigs.helpers import Broker, PortHold, wait_for
from rigs.mqtt_probe import Probe
from rigs.station_process import station_toml

SITE = "sin-ho-01"
WATCHDOG_USEC = 400_000  # systemd's WatchdogSec=0.4: a ping every 0.2 s
PING_S = WATCHDOG_USEC / 1_000_000 / 2
UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Datagram:
    fields: list[str]
    pid: int  # the sender, as the kernel says (what systemd's NotifyAccess=main checks)
    at: float


class NotifySocket:
    """systemd's end of the protocol: an abstract-namespace datagram socket that reads
    each message with the sender's credentials."""

    def __init__(self) -> None:
        self.name = f"edge-notify-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    @property
    def address(self) -> str:
        return "@" + self.name

    def receive(self, timeout: float) -> Datagram | None:
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(UCRED.size))
        except TimeoutError:
            return None
        pid = -1
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = UCRED.unpack(value[: UCRED.size])[0]
        return Datagram(data.decode().split("\n"), pid, time.monotonic())

    def wait_for(self, field: str, timeout: float) -> tuple[Datagram, list[Datagram]]:
        """The first message holding ``field`` and every message read before it."""
        before: list[Datagram] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            got = self.receive(left)
            if got is None:
                break
            if field in got.fields:
                return got, before
            before.append(got)
        raise AssertionError(f"no {field} within {timeout} s; got {before}")

    def drain(self) -> list[Datagram]:
        got = []
        while (d := self.receive(0.001)) is not None:
            got.append(d)
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    s = NotifySocket()
    yield s
    s.close()


def _start(
    tmp: Path, web: PortHold, notify: NotifySocket, extra: str = ""
) -> subprocess.Popen[bytes]:
    config = station_toml(tmp, SITE, web.port, f'type = "file"\ndir = "{tmp / "prints"}"')
    if extra:
        config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NOTIFY_SOCKET": notify.address,
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
    }
    with (tmp / "station.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _stopped(pid: int) -> bool:
    """Every thread of the process is in the stopped state (SIGSTOP has taken hold)."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
    except FileNotFoundError:  # a thread ended while we looked: not stopped yet
        return False
    return bool(states) and all(s == "T" for s in states)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)


def test_ready_once_the_page_answers_pings_from_the_loop_none_while_stopped(
    tmp_path: Path, notify: NotifySocket
) -> None:
    with PortHold() as web:
        proc = _start(tmp_path, web, notify)
        try:
            ready, _ = notify.wait_for("READY=1", 60)
            assert ready.pid == proc.pid  # from the main process: NotifyAccess=main
            assert f"STATUS=serving on port {web.port}" in ready.fields
            # READY=1 means the page answers: asked right away, it does
            r = httpx.get(f"http://127.0.0.1:{web.port}/", timeout=10)
            assert r.status_code == 200 and "<html" in r.text.lower()

            pings: list[float] = []
            while len(pings) < 5:
                got = notify.receive(10)
                assert got is not None, "the watchdog pings stopped"
                assert got.fields == ["WATCHDOG=1"] and got.pid == proc.pid
                pings.append(got.at)

            # a hung station: SIGSTOP. Once every thread is stopped, nothing more comes
            proc.send_signal(signal.SIGSTOP)
            wait_for(lambda: _stopped(proc.pid), 10, "the station stopped by SIGSTOP")
            notify.drain()  # a ping sent just before the stop
            silent_for = 10 * PING_S  # five ping periods, half of it beyond systemd's limit
            assert notify.receive(silent_for) is None
            assert _stopped(proc.pid)

            # continued (systemd would have killed it by now): the pings come back
            proc.send_signal(signal.SIGCONT)
            again = notify.receive(10)
            assert again is not None and again.fields == ["WATCHDOG=1"]
            assert httpx.get(f"http://127.0.0.1:{web.port}/", timeout=10).status_code == 200

            # systemctl stop: SIGTERM
            proc.send_signal(signal.SIGTERM)
            stopping, _ = notify.wait_for("STOPPING=1", 30)
            assert stopping.pid == proc.pid
            code = proc.wait(30)
            # uvicorn ends by re-raising the SIGTERM it caught: systemd counts a death by
            # SIGTERM as a clean stop (systemd.service, SuccessExitStatus=)
            assert code == -signal.SIGTERM, code
        finally:
            _stop(proc)
    log = (tmp_path / "station.log").read_text(errors="replace")
    assert "Traceback" not in log, log


def test_a_clean_stop_publishes_offline(tmp_path: Path, notify: NotifySocket) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    probe = Probe(broker.port, None, host="127.0.0.1")
    try:
        assert probe.connect().ok
        assert probe.subscribe(f"edge/{SITE}/status") == [1]
        mqtt = f'\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n'
        with PortHold() as web:
            proc = _start(tmp_path, web, notify, mqtt)
            try:
                notify.wait_for("READY=1", 60)

                def states() -> list[str]:
                    return [json.loads(m.payload)["state"] for m in probe.messages()]

                wait_for(lambda: "online" in states(), 30, "the station's online status")
                proc.send_signal(signal.SIGTERM)
                notify.wait_for("STOPPING=1", 30)
                assert proc.wait(30) == -signal.SIGTERM
            finally:
                _stop(proc)
        wait_for(lambda: states()[-1:] == ["offline"], 10, "the offline status")
        # the retained status a console sees afterwards
        late = Probe(broker.port, None, host="127.0.0.1")
        try:
            assert late.connect().ok
            late.subscribe(f"edge/{SITE}/status")
            (status,) = late.wait_messages(1)
            assert status.retain and json.loads(status.payload) == {"state": "offline"}
        finally:
            late.close()
    finally:
        probe.close()
        broker.stop()


def test_the_notifier_follows_systemds_environment() -> None:
    assert Notifier.from_environ({}) is None
    assert Notifier.from_environ({"NOTIFY_SOCKET": "relative/path"}) is None
    n = Notifier.from_environ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"})
    assert n is not None and n.watchdog_s == 30.0 and n.ping_every_s == 15.0
    assert n.address == "/run/systemd/notify"
    # WATCHDOG_PID names another process: the watchdog is not ours
    other = Notifier.from_environ(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=4242
    )
    assert other is not None and other.watchdog_s is None and other.address == "\0x"
    mine = Notifier.from_environ(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, pid=4242
    )
    assert mine is not None and mine.watchdog_s == 30.0
    # nobody listening: not sent, no exception
    assert Notifier("@edge-nobody-" + uuid.uuid4().hex).send("READY=1") is False
