"""Real parts for the tests: a mosquitto broker on a free port (plain, or running
the shipped mutual-TLS configuration with its ACL), a test PKI, the station's web
server in a thread, and a polling wait instead of fixed sleeps.

Ports are held from the moment they are picked until the server listens (no
pick-close-reuse race with the other processes of a busy machine): the station's web
server gets the very socket that was bound for its port (:func:`station_config`,
:class:`StationServer`), and a port given by number to another process (mosquitto, a
station process) stays bound here by a :class:`PortHold` while that process binds it."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from edge.config import StationConfig, parse_config
from edge.ids import Now
from edge.storage.store import Store
from edge.sync import certs
from rigs.clock import earliest_now

T = TypeVar("T")


def free_port() -> int:
    """A port that was free a moment ago. Racy: it is not held, so another process can
    take it before whoever it is given to binds it. Prefer :class:`PortHold` (or a
    server that binds port 0 and reads the port back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bound_socket(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port, read back with
    ``getsockname()``), not listening, with SO_REUSEADDR. Its protocol is IPPROTO_TCP, not
    0: asyncio sets TCP_NODELAY only on sockets that say so, and without it every small
    HTTP answer of a server on this socket waits 40 ms for a delayed ACK (Nagle)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class PortHold:
    """A port held by this process: a socket bound to it (SO_REUSEADDR) that never
    listens. Connections to it are refused, as to a closed port, and no other process
    is given it meanwhile (a bind to port 0 skips it, a plain bind to it fails). A
    server that sets SO_REUSEADDR (mosquitto, uvicorn, asyncio and Python's socket
    servers all do) can still bind it and listen: Linux lets SO_REUSEADDR sockets
    share a port as long as only one of them listens. So a port handed to another
    process by number is held from the pick to that process's listen, and across its
    restarts. ``close()`` (or the hold being garbage) lets it go."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        sock = bound_socket(port, host)
        self.host = host
        self.port: int = sock.getsockname()[1]
        self._release = weakref.finalize(self, sock.close)

    def close(self) -> None:
        self._release()

    def __enter__(self) -> PortHold:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


_WEB_SOCKETS: dict[int, socket.socket] = {}
"""Sockets bound by station_config() for its web port, until a StationServer takes one."""
_WEB_LOCK = threading.Lock()


def _drop_web_socket(port: int, sock: socket.socket) -> None:
    """The config that carried ``port`` is gone: close its socket if nobody took it."""
    with _WEB_LOCK:
        if _WEB_SOCKETS.get(port) is not sock:
            return  # a StationServer has it: it is the server's to close
        del _WEB_SOCKETS[port]
    sock.close()


def _take_web_socket(port: int) -> socket.socket | None:
    with _WEB_LOCK:
        return _WEB_SOCKETS.pop(port, None)


def wait_for(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(0.02)
        last = check()
    return last


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(found).exists():
        raise RuntimeError("mosquitto is not installed; run `make test`, which installs it")
    return found


SOURCE_CONFIG = Path(__file__).resolve().parents[1] / "firmware-config"
"""The checkout's firmware-config/: deployment material that is not part of the station
package (the broker's configuration, the example station file)."""

SHIPPED_MOSQUITTO = SOURCE_CONFIG / "mosquitto"
"""firmware-config/mosquitto/: the broker configuration and ACL shipped for deployment."""


@dataclass(frozen=True)
class BrokerTls:
    """The broker's side of mutual TLS: the CA it trusts, its own pair, the CRL."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    crl_file: Path


@dataclass(frozen=True)
class ClientTls:
    """A client's side: the CA to check the broker with, and its own pair."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def as_config(self) -> dict[str, str]:
        """The station's ``[mqtt.tls]`` section (edge.config.TlsConfig)."""
        return {
            "ca_file": str(self.ca_file),
            "cert_file": str(self.cert_file),
            "key_file": str(self.key_file),
        }


class Pki:
    """A CA, the broker's certificate (localhost, 127.0.0.1) and client certificates,
    as files in ``folder``. Clients are issued on first use: ``client("test-site")``
    (CN = the site id), ``client("central:ingest-1")``; ``foreign("site-a")`` is signed
    by another CA that the broker does not trust."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        now = earliest_now()  # valid on the test clock and on the broker's real one
        self.now = now
        self.ca = certs.make_ca("Test fleet CA", now=now)
        self.ca_file = self._write("ca", self.ca)
        self.crl_file = folder / "crl.pem"
        self.crl_file.write_bytes(certs.crl_pem(certs.make_crl(self.ca, [], now=now)))
        broker = certs.issue_broker(self.ca, ["localhost", "127.0.0.1"], now=now)
        self.broker_tls = BrokerTls(
            self.ca_file, self._write("broker", broker), folder / "broker.key", self.crl_file
        )
        self._foreign_ca = certs.make_ca("Somebody else's CA", now=now)
        self._issued: dict[str, tuple[certs.Credential, ClientTls]] = {}
        self._lock = threading.Lock()
        for name in ("site-a", "site-b", "central:ingest-1", "central:ingest-2"):
            self.client(name)

    def _write(self, stem: str, cred: certs.Credential) -> Path:
        (self.folder / f"{stem}.key").write_bytes(cred.key_pem())
        (self.folder / f"{stem}.key").chmod(0o600)
        path = self.folder / f"{stem}.pem"
        path.write_bytes(cred.cert_pem())
        return path

    def _issue(self, name: str, ca: certs.Credential, stem: str) -> ClientTls:
        with self._lock:
            if stem not in self._issued:
                if name.startswith(certs.CENTRAL_PREFIX):
                    cred = certs.issue_central(ca, name, now=self.now)
                else:
                    cred = certs.issue_site(ca, name, now=self.now)
                files = ClientTls(
                    self.ca_file, self._write(stem, cred), self.folder / f"{stem}.key"
                )
                self._issued[stem] = (cred, files)
            return self._issued[stem][1]

    def client(self, name: str) -> ClientTls:
        """Files for the client whose certificate CN is ``name``."""
        return self._issue(name, self.ca, name.replace(":", "-"))

    def foreign(self, name: str) -> ClientTls:
        """A certificate with CN ``name`` from a CA the broker does not trust."""
        return self._issue(name, self._foreign_ca, "foreign-" + name.replace(":", "-"))

    def credential(self, name: str) -> certs.Credential:
        self.client(name)
        return self._issued[name.replace(":", "-")][0]


_SESSION_PKI: dict[str, Pki] = {}


def session_pki(factory: pytest.TempPathFactory) -> Pki:
    """One Pki for the whole test session, whichever fixture asks first."""
    if "pki" not in _SESSION_PKI:
        _SESSION_PKI["pki"] = Pki(factory.mktemp("pki"))
    return _SESSION_PKI["pki"]


def render_broker_config(
    shipped: str, port: int, workdir: Path, tls: BrokerTls, acl_file: Path
) -> str:
    """The shipped mosquitto.conf with only its paths, its listener and ``user`` changed.

    Each replaced option must be in the shipped file exactly once, so a change
    there that the tests would no longer follow fails here, loudly."""
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "pid_file": f"pid_file {workdir / 'mosquitto.pid'}",
        "persistence_location": f"persistence_location {workdir}/",
        "log_dest": f"log_dest file {workdir / 'mosquitto.log'}",
        "acl_file": f"acl_file {acl_file}",
        "cafile": f"cafile {tls.ca_file}",
        "certfile": f"certfile {tls.cert_file}",
        "keyfile": f"keyfile {tls.key_file}",
        "crlfile": f"crlfile {tls.crl_file}",
    }
    # as root, keep root so it can write the test's tmp dir (Debian drops to mosquitto)
    lines, seen = ["user root"], dict.fromkeys(replacements, 0)
    for line in shipped.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() else ""
        if key in replacements:
            seen[key] += 1
            line = replacements[key]
        lines.append(line)
    wrong = {key: n for key, n in seen.items() if n != 1}
    if wrong:
        raise AssertionError(f"shipped mosquitto.conf: expected each option once, got {wrong}")
    return "\n".join(lines) + "\n"


def render_acl(shipped: str, prefix: str) -> str:
    """The shipped ACL for another topic prefix than ``edge``."""
    out = []
    for line in shipped.splitlines():
        if line.startswith(("pattern ", "topic ")):
            line = line.replace(" edge/", f" {prefix}/")
        out.append(line)
    return "\n".join(out) + "\n"


class Broker:
    """A mosquitto of our own on a free port; stop/start and restart keep the port
    and the persistence (sessions, queued and retained messages). The port is held
    (:class:`PortHold`) from construction on, while mosquitto runs and while it is
    stopped, so no other process can take it between a stop and the next start.

    Without ``tls`` it is a plain anonymous broker. With ``tls`` it runs the shipped
    firmware-config/mosquitto/mosquitto.conf and edge.acl (for ``prefix``): mutual
    TLS only, the client's name and client id taken from its certificate's CN.
    ``acl_extra`` is appended to that ACL, as an operator adds the block that
    ``edge certs central NAME`` prints for another central certificate."""

    def __init__(
        self,
        workdir: Path,
        tls: BrokerTls | None = None,
        prefix: str = "edge",
        acl_extra: str = "",
    ) -> None:
        self.hold = PortHold()  # mosquitto sets SO_REUSEADDR: it binds beside the hold
        self.port = self.hold.port
        self.host = "127.0.0.1"
        self.workdir = workdir
        self.tls = tls
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        if tls is None:
            self.conf.write_text(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "user root\n"  # when run as root: keep root so it can write the test's tmp dir
                "persistence true\n"
                f"persistence_location {workdir}/\n"
                f"log_dest file {self.log}\n"
            )
        else:
            acl = SHIPPED_MOSQUITTO / "edge.acl"
            if prefix != "edge" or acl_extra:
                acl = workdir / "edge.acl"
                text = render_acl((SHIPPED_MOSQUITTO / "edge.acl").read_text(), prefix)
                if acl_extra:
                    text += "\n" + acl_extra.strip("\n") + "\n"
                acl.write_text(text)
            shipped = (SHIPPED_MOSQUITTO / "mosquitto.conf").read_text()
            self.conf.write_text(render_broker_config(shipped, self.port, workdir, tls, acl))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with (self.workdir / "mosquitto.stderr").open("ab") as err:  # never a full pipe
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stderr=err)
        self.starts += 1
        wait_for(self._accepts, 10, f"mosquitto on port {self.port}")

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            err = (self.workdir / "mosquitto.stderr").read_text(errors="replace")
            raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {err}{self.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop cleanly: mosquitto writes its persistence file on the way out."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def kill(self) -> None:
        """Stop as a crash would: what was not saved yet (autosave) is lost."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self, hard: bool = False) -> None:
        """Stop (``hard``: SIGKILL) and start again on the same port and persistence."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads the ACL and the revocation list."""
        if self.proc is None:
            raise RuntimeError("the broker is not running")
        self.proc.send_signal(signal.SIGHUP)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def station_config(tmp: Path, **sections: dict[str, Any]) -> StationConfig:
    """A station in ``tmp``: simulated scale, file printer, no broker, unless overridden.

    Its web port is a socket bound here and kept (not listening) until a
    :class:`StationServer` for this config listens on it, or the config is garbage."""
    web = bound_socket()
    data: dict[str, Any] = {
        "site": {
            "id": "test-site",
            "name": "Điểm thu gom Sìn Hồ",
            "key_file": str(tmp / "site.key"),
        },
        "scale": {
            "type": "simulated",
            "link": str(tmp / "scale"),
            "interval_s": 0.05,
            "stale_after_s": 1.0,
        },
        "printer": {"type": "file", "dir": str(tmp / "prints")},
        "storage": {"path": str(tmp / "station.db")},
        "web": {"port": web.getsockname()[1]},
        "camera": {"photos_dir": str(tmp / "photos")},
    }
    for name, values in sections.items():
        data[name] = values if name in ("scale", "printer") else {**data.get(name, {}), **values}
    try:
        cfg = parse_config(data, "test")
    except BaseException:
        web.close()
        raise
    port = web.getsockname()[1]
    if cfg.web.port != port:
        web.close()  # the caller chose another port: nothing to hold
        return cfg
    with _WEB_LOCK:
        _WEB_SOCKETS[port] = web
    weakref.finalize(cfg, _drop_web_socket, port, web)
    return cfg


class StationServer:
    """The real app served by uvicorn in a thread, on the config's port: on the very
    socket :func:`station_config` bound for it (so the port was never free for another
    process to take), or, for a config made otherwise, on a socket bound here to that
    port."""

    def __init__(self, cfg: StationConfig, now: Now | None = None) -> None:
        """``now``: the station's clock (default: this process's wall clock)."""
        from edge.station import Station  # imported late: helpers stay usable without devices
        from edge.web.app import create_app
        from edge.web.events import Server

        self.cfg = cfg
        self.station = Station(cfg) if now is None else Station(cfg, now=now)
        app = create_app(cfg, self.station)
        config = uvicorn.Config(app, host="127.0.0.1", port=cfg.web.port, log_level="warning")
        self.server = Server(config)  # uvicorn's, ending the event streams as it stops
        sock = _take_web_socket(cfg.web.port) or bound_socket(cfg.web.port)
        self._close_socket = weakref.finalize(self, sock.close)  # uvicorn closes it on exit
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.web.port}"

    def client(self, role: str | None = "lead", **kwargs: Any) -> httpx.Client:
        """An HTTP client on the station, signed in as a person of ``role`` (added to the
        station on first use, PIN :data:`TEST_PIN`); ``role=None``: not signed in."""
        return signed_in_client(self.url, self.station.db, role, **kwargs)

    def __enter__(self) -> StationServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 15, "the web server to start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self._close_socket()


def lots_of_day(client: httpx.Client, lot: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /api/lots`` for the station-local day ``lot`` (as ``POST /api/lots`` answered)
    counts in: the same list whether or not the test's clock has since passed midnight
    (the suite's calendar pass crosses it while tests run)."""
    r = client.get("/api/lots", params={"day": lot["day"]})
    assert r.status_code == 200, r.text
    lots: list[dict[str, Any]] = r.json()
    return lots


TEST_PIN = "2468"


def person_of_role(store: Store, role: str) -> str:
    """The name of this station's test person of ``role``, added on first use."""
    from edge.accounts.people import AccountError, People

    name = f"Thử {role}"
    try:
        People(store).add(name, role, TEST_PIN, actor="tests")
    except AccountError as exc:
        if exc.code != "name_taken":
            raise
    return name


def signed_in_client(url: str, store: Store, role: str | None, **kwargs: Any) -> httpx.Client:
    """An HTTP client on a station at ``url`` whose database is ``store`` (the station's
    own, or the file opened beside a station process), signed in as ``role``."""
    if role is None:
        return httpx.Client(base_url=url, **kwargs)
    name = person_of_role(store, role)
    with httpx.Client(base_url=url, timeout=30) as login:
        r = login.post("/api/login", json={"name": name, "pin": TEST_PIN})
    if r.status_code != 200:
        raise AssertionError(f"signing in as {name} failed: {r.status_code} {r.text}")
    return httpx.Client(base_url=url, cookies={"edge_session": r.cookies["edge_session"]}, **kwargs)


def process_client(
    url: str, db_path: Path, site_id: str, role: str | None = "lead", **kwargs: Any
) -> httpx.Client:
    """:func:`signed_in_client` for a station running as its own process."""
    store = Store.open(db_path, site_id)
    try:
        return signed_in_client(url, store, role, **kwargs)
    finally:
        store.close()


def settle(client: Any, grams: int, timeout: float = 5.0) -> None:
    """Put ``grams`` on the station's simulated scale and wait until the scale has
    settled on it as a new weighing (an httpx.Client on the station's URL). Putting
    the same weight on again is a new weighing too: the simulator goes unstable
    first, so the stable state from before must not count."""
    before = client.get("/api/state").json()["scale"]["weighing"]
    client.post("/api/simulator", json={"weight_g": grams})

    def reached() -> bool:
        scale = client.get("/api/state").json()["scale"]
        return bool(
            scale["status"] == "stable"
            and scale["weight_g"] == grams
            and scale["weighing"] > before
        )

    wait_for(reached, timeout, f"a new stable weighing of {grams} g")
