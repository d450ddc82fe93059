"""Shared parts of the central ingest tests: lot-like records, batches, a
PostgreSQL schema of the test's own, and a station stand-in that publishes
batches and collects acknowledgements over a real broker."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.sync.envelope import Ack, Batch, decode_ack, encode_batch
from rigs.helpers import ClientTls
from rigs.need import need

PG_URL = os.environ.get("EDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BOOT = "5d1c0b7e-8f4a-4c11-9d5e-0a4b2c3d4e5f"
PRODUCERS = [str(uuid.UUID(int=0x019AB3C0_0000_7000_8000_000000000000 + i)) for i in range(5)]
PRODUCTS = [str(uuid.UUID(int=0x019AB3C0_0000_7000_9000_000000000000 + i)) for i in range(3)]


def lot(seq: int, site: str = "sin-ho-01") -> dict[str, Any]:
    """A lot record as a station sends it (schema 2), distinct per seq."""
    t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC) + timedelta(seconds=17 * seq)
    rec: dict[str, Any] = {
        "type": "lot",
        "seq": seq,
        "id": str(uuid.UUID(int=(0x019AB3C2 << 96) | (0x7000 << 64) | (0x8 << 60) | seq)),
        "producer_id": PRODUCERS[seq % len(PRODUCERS)],
        "product_id": PRODUCTS[seq % len(PRODUCTS)],
        "net_g": 500 + (seq * 37) % 20_000,
        "recorded_at": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "boot_id": BOOT,
        "uptime_s": round(1000.0 + 17 * seq, 3),
        "clock_synced": True,
    }
    if seq % 4 == 0:
        rec["tare_g"] = 120
        rec["tare_source"] = "scale"
    return rec


def batch(
    site: str, first: int, last: int, stream: str = "records", attempt: int = 1, epoch: str = ""
) -> Batch:
    records: tuple[dict[str, Any], ...]
    if stream == "telemetry":
        records = tuple(
            {"type": "telemetry", "seq": s, "uptime_s": 10.0 * s, "outbox": {"records": 100 - s}}
            for s in range(first, last + 1)
        )
    else:
        records = tuple(lot(s, site) for s in range(first, last + 1))
    batch_id = f"{stream}:{first}-{last}:{attempt}"
    return Batch(site, stream, batch_id, first, last, records, epoch=epoch)


def pg_reachable() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432, else why not."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as exc:
        return f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A database URL whose search_path is a fresh schema, dropped afterwards.
    Skips when PostgreSQL is unreachable, except under CI=true, where it fails (rigs.need)."""
    why = pg_reachable()
    if why is not None:
        need(f"{why}; the PostgreSQL tests need it (make system-deps starts it)")
    import psycopg

    name = f"central_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@contextmanager
def central_db(kind: str, tmp_path: Path) -> Iterator[str]:
    """A central database URL of ``kind``: ``sqlite`` (a file in ``tmp_path``) or
    ``postgresql`` (:func:`pg_schema`)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/central.db"
    else:
        with pg_schema() as url:
            yield url


class Station:
    """A station stand-in: publishes batches at QoS 1 and records every ack."""

    def __init__(
        self, port: int, site: str, prefix: str = "edge", tls: ClientTls | None = None
    ) -> None:
        self.site = site
        self.prefix = prefix
        self.acks: list[tuple[str, int]] = []
        self.received: list[Ack] = []  # every ack whole (with its epoch)
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"station-{site}",
            protocol=mqtt.MQTTv5,
        )
        if tls is not None:
            self.client.tls_set(
                ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
            )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{prefix}/{site}/ack", qos=1)
        if not subscribed.wait(5):
            raise AssertionError(f"the broker did not confirm station {site}'s subscription")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode_ack(bytes(msg.payload))
        with self._lock:
            self.acks.append((ack.stream, ack.upto))
            self.received.append(ack)

    def publish(self, b: Batch) -> None:
        self.send(f"{self.prefix}/{self.site}/{b.stream}", encode_batch(b))

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def upto(self, stream: str = "records") -> int:
        with self._lock:
            return max((u for s, u in self.acks if s == stream), default=-1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
