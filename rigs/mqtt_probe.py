"""A paho MQTT client driven step by step for tests: connect, subscribe and
publish each return the broker's own answer (CONNACK, SUBACK and PUBACK reason
codes), and received messages are kept in order."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from rigs.helpers import ClientTls, wait_for

T = TypeVar("T")
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code, in PUBACK, SUBACK and CONNACK
SUBACK_FAILURE_311 = 0x80


def _await(check: Callable[[], T | None], timeout: float, what: str) -> T:
    found = wait_for(check, timeout, what)
    assert found is not None
    return found


def accepted(code: int) -> bool:
    """A PUBACK reason code that means success (0, or 0x10 "no matching subscribers")."""
    return code < 0x80


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Connected:
    """What became of a connection attempt: ``ok``, or why not."""

    ok: bool
    reason: str
    session_present: bool = False


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    connect: Connected | None = None
    subacks: dict[int, list[int]] = field(default_factory=dict)
    pubacks: dict[int, int] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    disconnected: bool = False


class _Client(mqtt.Client):
    """paho's client, except that a TLS handshake that fails closes its socket
    (paho 2.2 leaves it to the garbage collector: a ResourceWarning)."""

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        assert self._ssl_context is not None
        ssl_sock = self._ssl_context.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


class Probe:
    """One client. ``tls=None`` connects without TLS; ``no_cert`` offers no client
    certificate; ``persistent`` resumes (or starts) a session kept for an hour."""

    def __init__(
        self,
        port: int,
        tls: ClientTls | None,
        client_id: str = "",
        v5: bool = True,
        host: str = "localhost",
        no_cert: bool = False,
        persistent: bool = False,
    ) -> None:
        self.host, self.port, self.v5, self.persistent = host, port, v5, persistent
        self.state = _State()
        self.client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id,
            clean_session=None if v5 else not persistent,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if tls is not None:
            ctx = ssl.create_default_context(cafile=str(tls.ca_file))
            if not no_cert:
                ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            self.client.tls_set_context(ctx)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # paho callbacks (its network thread)
    def _on_connect(self, _c: Any, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        with self.state.lock:
            self.state.connect = Connected(not rc.is_failure, str(rc), bool(flags.session_present))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self.state.lock:
            self.state.disconnected = True
            if self.state.connect is None:
                self.state.connect = Connected(False, f"closed before CONNACK ({rc})")

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        with self.state.lock:
            self.state.subacks[mid] = [c.value for c in codes]

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        with self.state.lock:
            self.state.pubacks[mid] = rc.value

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.state.lock:
            self.state.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def connect(self, will: tuple[str, bytes] | None = None, timeout: float = 10.0) -> Connected:
        """Connect and wait for the CONNACK (or the connection's end)."""
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        with self.state.lock:
            self.state.connect, self.state.disconnected = None, False
        try:
            if self.v5:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 3600 if self.persistent else 0
                clean = not self.persistent
                self.client.connect(self.host, self.port, 30, clean_start=clean, properties=props)
            else:
                self.client.connect(self.host, self.port, 30)
        except OSError as exc:  # ssl.SSLError and refused connections included
            return Connected(False, f"{type(exc).__name__}: {exc}")
        self.client.loop_start()
        result = _await(lambda: self.state.connect, timeout, "CONNACK or disconnect")
        if not result.ok:
            self.client.loop_stop()
        return result

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10.0) -> list[int]:
        """Subscribe; the SUBACK's codes (granted QoS, or 0x80 / 0x87 refused)."""
        _err, mid = self.client.subscribe(topic, qos)
        assert mid is not None
        return _await(lambda: self.state.subacks.get(mid), timeout, f"SUBACK for {topic}")

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout: float = 10.0
    ) -> int:
        """Publish and wait for the PUBACK; its reason code (always 0 with MQTT 3.1.1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        mid = info.mid
        with self.state.lock:
            if mid in self.state.pubacks:
                return self.state.pubacks[mid]
        return _await(lambda: self._puback(mid), timeout, f"PUBACK for {topic}")[1]

    def _puback(self, mid: int) -> tuple[bool, int] | None:
        with self.state.lock:
            return (True, self.state.pubacks[mid]) if mid in self.state.pubacks else None

    def messages(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.messages)

    def wait_messages(self, n: int, timeout: float = 10.0) -> list[Received]:
        """The first ``n`` messages received, once they are all there."""
        wait_for(lambda: len(self.messages()) >= n, timeout, f"{n} messages")
        return self.messages()[:n]

    @property
    def disconnected(self) -> bool:
        with self.state.lock:
            return self.state.disconnected

    def close(self) -> None:
        """Disconnect cleanly (no will) and stop the network thread."""
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()
