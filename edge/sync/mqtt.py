"""Drain the outbox to the broker with paho-mqtt at QoS 1.

A row is published once per process while the broker holds the connection;
paho keeps unacknowledged QoS 1 messages and sends them again (DUP) after a
reconnect, so the worker never publishes a row that is still in flight. A
row is marked sent only after its PUBACK. Rows still pending after a restart
are published again: central de-duplicates on (site, seq).
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import MqttConfig
from edge.storage.outbox import Outbox
from edge.worker import Worker

log = logging.getLogger(__name__)

MAX_INFLIGHT = 20


class LinkStatus(StrEnum):
    DISABLED = "disabled"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"


def topic_for(cfg: MqttConfig, site_id: str, suffix: str) -> str:
    return f"{cfg.prefix}/{site_id}/{suffix}"


class MqttSync(Worker):
    name = "sync"

    def __init__(self, cfg: MqttConfig, site_id: str, outbox: Outbox, idle_s: float = 0.2) -> None:
        super().__init__()
        self.cfg = cfg
        self.site_id = site_id
        self.outbox = outbox
        self.idle_s = idle_s
        self._inflight: dict[int, mqtt.MQTTMessageInfo] = {}
        self._connected = threading.Event()
        self._started = False
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"edge-{site_id}",
            clean_session=False,
        )
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password)
        self.client.will_set(topic_for(cfg, site_id, "status"), b"offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    @property
    def status(self) -> LinkStatus:
        if not self._started:
            return LinkStatus.CONNECTING
        return LinkStatus.ONLINE if self._connected.is_set() else LinkStatus.OFFLINE

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        log.info("connected to broker %s:%s", self.cfg.host, self.cfg.port)
        client.publish(topic_for(self.cfg, self.site_id, "status"), b"online", qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._connected.is_set():
            log.warning("disconnected from broker: %s", reason)
        self._connected.clear()

    def step(self) -> None:
        if not self._started:
            self._started = True
            # connect_async + loop_start: paho reconnects by itself with back-off
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
            self.client.loop_start()
        self._collect_acks()
        if not self._connected.is_set():
            self.wait(self.idle_s)
            return
        room = MAX_INFLIGHT - len(self._inflight)
        rows = self.outbox.pending(room, exclude=set(self._inflight)) if room > 0 else []
        for row in rows:
            topic = topic_for(self.cfg, self.site_id, row.topic)
            info = self.client.publish(topic, row.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                raise RuntimeError(
                    f"publish of outbox row {row.id} failed: {mqtt.error_string(info.rc)}"
                )
            self._inflight[row.id] = info
        if not rows:
            self.wait(self.idle_s)
        else:
            self.wait(0.01)

    def _collect_acks(self) -> None:
        done = [row_id for row_id, info in self._inflight.items() if info.is_published()]
        if done:
            self.outbox.mark_sent(done)
            for row_id in done:
                del self._inflight[row_id]

    def close(self) -> None:
        if self._started:
            self._collect_acks()
            if self._connected.is_set():
                status = topic_for(self.cfg, self.site_id, "status")
                self.client.publish(status, b"offline", qos=1, retain=True).wait_for_publish(2)
            self.client.disconnect()
            self.client.loop_stop()
