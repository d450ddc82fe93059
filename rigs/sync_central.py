"""A minimal central for the station's link tests: a real MQTT client that decodes
batches with the envelope module, stores each record once per (site, stream, seq),
and acknowledges the highest contiguous seq it holds, as the contract says.

Not the real ingest (edge.central): small enough to trust in a test, and it can
misbehave on command (stop acking, forget what it stored)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.sync.envelope import Ack, EnvelopeError, decode_batch, encode_ack
from rigs.helpers import ClientTls, wait_for


class TestCentral:
    __test__ = False  # not a test class

    def __init__(
        self,
        port: int,
        prefix: str = "edge",
        *,
        acking: bool = True,
        tls: ClientTls | None = None,
        client_id: str = "central-test",
    ) -> None:
        self.prefix = prefix
        self.acking = acking
        self._lock = threading.Lock()
        self.stored: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        self.batch_ids: list[str] = []
        self.deliveries: Counter[tuple[str, str, int]] = Counter()
        self.rejected: list[str] = []
        self.status: dict[str, dict[str, Any]] = {}
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if tls is not None:
            self.client.tls_set(
                ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
            )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600  # batches published while the broker restarts wait
        self.client.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "the test central to connect")
        wait_for(lambda: self._subscribed.is_set(), 10, "the test central to subscribe")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        topics = [(f"{self.prefix}/+/{s}", 1) for s in ("records", "telemetry", "bulk", "status")]
        client.subscribe(topics)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        site, kind = msg.topic.split("/")[-2:]
        if kind == "status":
            with self._lock:
                self.status[site] = json.loads(msg.payload)
            return
        try:
            batch = decode_batch(bytes(msg.payload))
        except EnvelopeError as exc:
            with self._lock:
                self.rejected.append(str(exc))
            return
        assert (batch.site, batch.stream) == (site, kind), "envelope and topic agree"
        with self._lock:
            self.batch_ids.append(batch.batch_id)
            held = self.stored.setdefault((site, kind), {})
            for record in batch.records:
                self.deliveries[(site, kind, record["seq"])] += 1
                held.setdefault(record["seq"], record)  # stored once: unique on seq
            acking = self.acking
            upto = self._upto(site, kind)
        if acking:
            self._ack(site, kind, upto)

    def _upto(self, site: str, stream: str) -> int:
        held = self.stored.get((site, stream), {})
        upto = 0
        while upto + 1 in held:
            upto += 1
        return upto

    def _ack(self, site: str, stream: str, upto: int) -> None:
        payload = encode_ack(Ack(stream, upto))
        self.client.publish(f"{self.prefix}/{site}/ack", payload, qos=1)

    def ack_all(self) -> None:
        """Acknowledge everything held now (after a spell without acks)."""
        with self._lock:
            keys = [(site, stream, self._upto(site, stream)) for site, stream in self.stored]
        for site, stream, upto in keys:
            self._ack(site, stream, upto)

    def records(self, site: str, stream: str = "records") -> list[dict[str, Any]]:
        with self._lock:
            held = self.stored.get((site, stream), {})
            return [held[seq] for seq in sorted(held)]

    def upto(self, site: str, stream: str = "records") -> int:
        with self._lock:
            return self._upto(site, stream)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
