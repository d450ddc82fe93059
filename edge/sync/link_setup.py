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
from edge.sync.downlink import Downlink, Handler
from edge.sync.mqtt import MqttSync
from edge.sync.policy import MB
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


def build_link(
    cfg: StationConfig,
    store: Store,
    devices: Devices | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> MqttSync:
    """The link worker on ``store`` (a connection of its own: it runs in its own
    thread). ``devices`` gives ``{"scale": {...}, "printer": {...}, "camera": {...}}``
    for telemetry. ``handlers`` apply the downlink's records by type (None: no
    downlink; edge.sync.downlink); telemetry then carries ``downlink``
    (``{"applied_upto", "refused", "foreign_epoch"}``). A plain link to another
    machine (``insecure_plaintext``) is warned about here, once at start, and said in
    every telemetry record."""
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

    usage = LinkUsage(store)
    budget_mb = cfg.mqtt.monthly_budget_mb

    def link(now: datetime) -> dict[str, Any]:
        """This month's bytes as the budget counts them, and the budget (null: none)."""
        month = usage.month(now, clock.clock_synced())
        budget = int(budget_mb * MB) if budget_mb > 0 else None
        return {"month": month.month, "bytes": month.total, "budget_bytes": budget}

    sources = Sources(
        storage_path=cfg.storage.path,
        min_free_mb=cfg.storage.min_free_mb,
        clock_synced=clock.clock_synced,
        outbox=streams,
        last_confirmed=last_confirmed,
        devices=devices,
        link_plaintext=cfg.mqtt.plaintext_off_host,
        link=link,
    )

    downlink = Downlink(store, cfg.site.id, handlers) if handlers is not None else None

    def telemetry(now: datetime) -> dict[str, Any]:
        record = collect(now, sources)
        if downlink is not None:
            try:
                record["downlink"] = downlink.summary()
            except Exception as exc:  # telemetry never stops the link
                record.setdefault("errors", {})["downlink"] = f"{type(exc).__name__}: {exc}"
        return record

    return MqttSync(
        cfg.mqtt,
        cfg.site.id,
        outbox,
        cfg_hash=config_hash(cfg),
        version=software_version(),
        telemetry=telemetry,
        usage=usage,
        downlink=downlink,
    )
