"""The station's link worker, wired from the configuration: its outbox, telemetry
(edge.sync.telemetry), monthly byte count (edge.sync.usage), link policy, version
and configuration hash. The station calls :func:`build_link` once at start."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from edge import clock
from edge.config import StationConfig
from edge.storage.outbox import Outbox
from edge.storage.store import Store
from edge.sync.connection import config_hash
from edge.sync.mqtt import MqttSync
from edge.sync.telemetry import Sources, collect, software_version
from edge.sync.usage import LinkUsage

log = logging.getLogger(__name__)

Devices = Callable[[], Mapping[str, Any]]


def station_outbox(cfg: StationConfig, store: Store) -> Outbox:
    """An outbox with the configured ack time-out, retention and disk threshold."""
    return Outbox(
        store,
        ack_timeout_s=cfg.mqtt.ack_timeout_s,
        retention_days=cfg.mqtt.confirmed_retention_days,
        min_free_mb=cfg.storage.min_free_mb,
    )


def build_link(cfg: StationConfig, store: Store, devices: Devices | None = None) -> MqttSync:
    """The link worker on ``store`` (a connection of its own: it runs in its own
    thread). ``devices`` gives ``{"scale": {...}, "printer": {...}, "camera": {...}}``
    for telemetry. A plain link to another machine (``insecure_plaintext``) is warned
    about here, once at start, and said in every telemetry record."""
    if cfg.mqtt.plaintext_off_host:
        log.warning(
            "INSECURE: the link to central is plain MQTT without TLS to %s:%s (mqtt."
            "insecure_plaintext = true): records cross the network unencrypted and anyone "
            "on the way can read or forge them; set up [mqtt.tls] before real use",
            cfg.mqtt.host,
            cfg.mqtt.port,
        )
    outbox = station_outbox(cfg, store)

    def streams() -> Mapping[str, Any]:
        status: Mapping[str, Any] = outbox.status()["streams"]
        return status

    def last_confirmed() -> str | None:
        return max(
            (s.last_confirmed_at for s in outbox.stream_status().values() if s.last_confirmed_at),
            default=None,
        )

    sources = Sources(
        storage_path=cfg.storage.path,
        min_free_mb=cfg.storage.min_free_mb,
        clock_synced=clock.clock_synced,
        outbox=streams,
        last_confirmed=last_confirmed,
        devices=devices,
        link_plaintext=cfg.mqtt.plaintext_off_host,
    )

    def telemetry(now: datetime) -> dict[str, Any]:
        return collect(now, sources)

    return MqttSync(
        cfg.mqtt,
        cfg.site.id,
        outbox,
        cfg_hash=config_hash(cfg),
        version=software_version(),
        telemetry=telemetry,
        usage=LinkUsage(store),
    )
