"""The station's side of the wire and drain benchmarks, run as a process of its own
(inside the metered link's namespace): ``python -m bench.sync_station JOB.json``.

Jobs (JSON): ``{"mode": "drain", "config": CONFIG.json, "records": N}`` starts the
link worker (edge.sync.mqtt, records only, no telemetry) on the station database
whose outbox holds N waiting records and stops it once central has confirmed all
of them (the offline status and DISCONNECT included); ``{"mode": "baseline",
...}`` sends the same outbox the way common gateways do: each record as one JSON
message at QoS 1, 20 in flight, no application ack (a plain paho client, MQTT
3.1.1, clean session, the same mutual TLS), done when the broker has PUBACKed
every one. Prints one JSON line: seconds from the start to the last
acknowledgement, and ``meter_bytes`` (the link's own TCP_INFO count).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import StationConfig, parse_config
from edge.storage.store import Store
from edge.sync.connection import tls_context, topic_for
from edge.sync.link_setup import station_outbox
from edge.sync.mqtt import MqttSync
from edge.sync.usage import LinkMeter, LinkUsage

BASELINE_INFLIGHT = 20


def confirmed(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT count(*) FROM outbox WHERE status = 'confirmed'").fetchone()
        return int(row[0])
    finally:
        conn.close()


def outbox_json(path: Path) -> list[bytes]:
    """Each record of the records stream as compact JSON (type, seq, then its body)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT kind, seq, body FROM outbox WHERE stream = 'records' ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [
        json.dumps(
            {"type": kind, "seq": seq, **json.loads(body)},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        for kind, seq, body in rows
    ]


def drain(cfg: StationConfig, records: int, timeout_s: float) -> dict[str, Any]:
    """Start the link on the waiting records; seconds until all are confirmed."""
    store = Store.open(cfg.storage.path, cfg.site.id)
    usage = LinkUsage(store)
    sync = MqttSync(cfg.mqtt, cfg.site.id, station_outbox(cfg, store), usage=usage)
    t0 = time.perf_counter()
    sync.start()
    try:
        deadline = t0 + timeout_s
        while confirmed(cfg.storage.path) < records:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"not confirmed within {timeout_s} s")
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
    finally:
        sync.stop()  # offline status, DISCONNECT, the byte count saved
    meter = sum(m.total for m in usage.history())
    store.close()
    return {"seconds": seconds, "meter_bytes": meter}


def baseline(cfg: StationConfig, timeout_s: float) -> dict[str, Any]:
    """One JSON record a message, QoS 1, 20 in flight; seconds to the last PUBACK."""
    payloads = outbox_json(cfg.storage.path)
    assert cfg.mqtt.tls is not None
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.site.id)
    client.tls_set_context(tls_context(cfg.mqtt.tls))
    client.max_inflight_messages_set(BASELINE_INFLIGHT)
    client.max_queued_messages_set(0)  # no limit: paho queues beyond the 20 in flight
    meter = LinkMeter()
    meter.attach(client)
    done = threading.Event()
    connected = threading.Event()
    acked = 0

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client.on_connect = lambda *_a: connected.set()
    client.on_publish = on_publish
    topic = topic_for(cfg.mqtt, cfg.site.id, "records")
    t0 = time.perf_counter()
    client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=cfg.mqtt.keepalive_s)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise RuntimeError("baseline client: no CONNACK")
        for payload in payloads:
            client.publish(topic, payload, qos=1)
        if not done.wait(timeout_s):
            raise RuntimeError(f"baseline: {acked} of {len(payloads)} PUBACKed in {timeout_s} s")
        seconds = time.perf_counter() - t0
        client.disconnect()
    finally:
        client.loop_stop()
    meter.sample()
    out, in_ = meter.take()
    return {"seconds": seconds, "meter_bytes": out + in_, "messages": len(payloads)}


def main(job_file: Path) -> None:
    job = json.loads(job_file.read_text())
    cfg = parse_config(json.loads(Path(job["config"]).read_text()), job["config"])
    timeout = float(job.get("timeout_s", 600))
    if job["mode"] == "drain":
        result = drain(cfg, int(job["records"]), timeout)
    elif job["mode"] == "baseline":
        result = baseline(cfg, timeout)
    else:
        raise SystemExit(f"unknown mode {job['mode']!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
