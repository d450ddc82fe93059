"""The station's link to central (sync contract v2, docs/mqtt.md): batches out, acks in.

MQTT 5 with a persistent session: ``clean_start`` false and a session expiry of
:data:`SESSION_EXPIRY_S`, so the broker keeps the station's subscription to
``<prefix>/<site>/ack`` and queues the acks central publishes while the station is
away, and unacknowledged QoS 1 publishes are sent again (DUP) after a reconnect.
MQTT 5 also reports a refused publish (PUBACK reason "not authorized"), which 3.1.1
silently drops. The client id is the site id (the broker ties it to the
certificate's CN).

Flow, per stream in priority order (records, telemetry, bulk): the outbox hands out
a due batch (count or age), it is encoded (edge.sync.envelope) and published at QoS
1; its rows are ``sent`` on PUBACK and ``confirmed`` when central's ack arrives. Sent
rows central has not confirmed after ``ack_timeout_s`` go out again (the outbox
offers them again); a publish without PUBACK for that long is given up and its rows
re-batched. Nothing is confirmed by a PUBACK alone.

Downlink (docs/mqtt.md "Downlink"): with a :class:`edge.sync.downlink.Downlink`, the
worker also subscribes to ``<prefix>/<site>/down`` at QoS 1 in the same persistent
session (the broker keeps what central sends while the station is away and delivers
it at the next connection, scheduled or not), applies each batch in one transaction,
then publishes the ack on ``<prefix>/<site>/downack`` (QoS 1) and only then PUBACKs
the message (paho ``manual_ack``): a process killed before the commit gets the
message again from the broker. The current ack is also published at every connect,
so central learns where this station is after either side restarted. A scheduled
link stays up :data:`DOWN_LINGER_S` after the connect and after each downlink batch.

One thread does everything: the supervised worker runs paho's network loop itself
(``client.loop``), so every callback, and every database write it causes, happens in
the worker's thread, after the loop call returns. Reconnection uses the link
policy's capped, jittered exponential back-off; the policy also decides a connection
schedule and which streams the monthly byte budget lets through.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttConfig
from edge.storage.outbox import STREAMS, Outbox
from edge.sync.connection import status_payload, tls_context, topic_for
from edge.sync.downlink import Downlink
from edge.sync.envelope import EnvelopeError, Refusal, decode_ack, encode_batch
from edge.sync.policy import Allowance, LinkPolicy
from edge.sync.usage import PUBACK_SIZE, LinkMeter, LinkUsage, publish_packet_size
from edge.worker import Worker

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 30 * 86_400
"""How long the broker keeps the station's session (subscription, queued acks)."""
CONNACK_TIMEOUT_S = 30.0
PRUNE_EVERY_S = 3_600.0
USAGE_EVERY_S = 30.0
TELEMETRY_MAX_AGE_S = 0.0  # one record a batch, sent as soon as it is taken
DOWN_LINGER_S = 10.0
"""A scheduled link stays connected this long after connecting and after the last
downlink batch: what central queued for the station arrives in the same window."""

Telemetry = Callable[[datetime], dict[str, Any]]


class LinkStatus(StrEnum):
    DISABLED = "disabled"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass
class _Flight:
    stream: str
    batch: Any  # envelope.Batch
    published_at: float


class _State(StrEnum):
    DOWN = "down"
    CONNECTING = "connecting"
    ONLINE = "online"


class MqttSync(Worker):
    """The link worker. ``telemetry`` (optional) makes one telemetry record for a wall
    time; ``usage`` (optional) keeps the month's byte count for the budget."""

    name = "sync"

    def __init__(
        self,
        cfg: MqttConfig,
        site_id: str,
        outbox: Outbox,
        *,
        cfg_hash: str | None = None,
        version: str | None = None,
        telemetry: Telemetry | None = None,
        usage: LinkUsage | None = None,
        policy: LinkPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        idle_s: float = 0.2,
        downlink: Downlink | None = None,
    ) -> None:
        self.policy = policy or LinkPolicy(cfg)
        super().__init__()
        self.cfg = cfg
        self.site_id = site_id
        self.outbox = outbox
        outbox.ack_timeout_s = cfg.ack_timeout_s
        outbox.retention_days = cfg.confirmed_retention_days
        self.cfg_hash = cfg_hash or hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]
        self.version = version
        self.telemetry = telemetry
        self.usage = usage
        self.idle_s = idle_s
        self.downlink = downlink
        self._last_downlink = 0.0
        self._mono = monotonic
        self._link_backoff = self.policy.backoff()
        self._state = _State.DOWN
        self._ever_online = False
        self._started = False
        self._claims_released = False
        self._next_attempt = 0.0
        self._attempt_at = 0.0
        self._last_connect_at: float | None = None
        self._last_progress = 0.0
        self._flights: dict[int, _Flight] = {}
        self._events: deque[tuple[Any, ...]] = deque()
        self._timer_next: dict[str, float] = {}
        self._used_month = 0
        self._denied_logged: set[str] = set()
        self._foreign_epochs: set[str] = set()
        self.meter = LinkMeter()
        self.client = self._make_client()

    # -- the paho client -------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.site_id,
            protocol=mqtt.MQTTv5,
            manual_ack=self.downlink is not None,  # a downlink batch: PUBACK after commit
        )
        if self.cfg.tls is not None:
            client.tls_set_context(tls_context(self.cfg.tls))
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        client.max_inflight_messages_set(self.cfg.max_inflight_batches)
        client.will_set(self.topic("status"), status_payload("offline"), qos=1, retain=True)
        client.on_connect = lambda _c, _u, _f, reason, _p: self._events.append(("connack", reason))
        client.on_disconnect = lambda _c, _u, _f, reason, _p: self._events.append(("gone", reason))
        client.on_publish = lambda _c, _u, mid, reason, _p: self._events.append(
            ("puback", mid, reason)
        )
        client.on_message = lambda _c, _u, msg: self._events.append(("message", msg))
        self.meter.attach(client)
        return client

    def topic(self, suffix: str) -> str:
        return topic_for(self.cfg, self.site_id, suffix)

    @property
    def status(self) -> LinkStatus:
        if self._state is _State.ONLINE:
            return LinkStatus.ONLINE
        return LinkStatus.OFFLINE if self._ever_online else LinkStatus.CONNECTING

    def _connect(self, now: float) -> None:
        self._handle_events(now)  # the last connection's PUBACKs; its "gone" is old news
        self._attempt_at = now
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            if not self._started:
                self._started = True
                self.client.connect(
                    self.cfg.host,
                    self.cfg.port,
                    keepalive=self.cfg.keepalive_s,
                    clean_start=False,
                    properties=props,
                )
            else:
                self.client.reconnect()
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake
            self._failed(now, f"cannot connect to {self.cfg.host}:{self.cfg.port}: {exc}")
            return
        self._state = _State.CONNECTING

    def _failed(self, now: float, reason: str) -> None:
        delay = self._link_backoff.next_delay()
        if self._link_backoff.failures == 1:
            log.warning("link down: %s; retrying with back-off (next in %.1f s)", reason, delay)
        else:
            log.debug("link still down: %s; next attempt in %.1f s", reason, delay)
        self._state = _State.DOWN
        self._next_attempt = now + delay

    # -- the worker loop -------------------------------------------------------------------

    def step(self) -> None:
        if not self._claims_released:  # a new process: nothing of ours is in flight
            self.outbox.release_claims()
            self._claims_released = True
        now = self._mono()
        self._every("telemetry-check", now, 1.0, self._maybe_telemetry)
        self._every("prune", now, PRUNE_EVERY_S, lambda _n: self.outbox.prune())
        self._every("usage", now, USAGE_EVERY_S, self._flush_usage)
        if self._state is _State.DOWN:
            if now >= self._next_attempt and self._schedule_says_connect(now):
                self._connect(now)
            if self._down():
                self.wait(self.idle_s)
                return
        busy = bool(self._flights)
        rc = self.client.loop(timeout=0.01 if busy else self.idle_s)
        self._handle_events(self._mono())
        now = self._mono()
        if rc != mqtt.MQTT_ERR_SUCCESS and self._state is not _State.DOWN:
            self._lost(now, mqtt.error_string(rc))
        if self._state is _State.CONNECTING and now - self._attempt_at > CONNACK_TIMEOUT_S:
            self.client.disconnect()
            self._lost(now, f"no CONNACK within {CONNACK_TIMEOUT_S:.0f} s")
        if self._state is _State.ONLINE:
            self._expire_flights(now)
            self._publish_due(now)
            self._maybe_close_window(now)

    def _down(self) -> bool:
        return self._state is _State.DOWN

    def _every(self, key: str, now: float, period: float, action: Callable[[float], Any]) -> None:
        if now >= self._timer_next.get(key, 0.0):
            self._timer_next[key] = now + period
            action(now)

    def _handle_events(self, now: float) -> None:
        while self._events:
            kind, *args = self._events.popleft()
            if kind == "connack":
                self._on_connack(now, args[0])
            elif kind == "gone":
                if self._state is not _State.DOWN:
                    self._lost(now, str(args[0]))
            elif kind == "puback":
                self._on_puback(now, args[0], args[1])
            elif kind == "message":
                self._on_message(now, args[0])

    def _on_connack(self, now: float, reason: Any) -> None:
        if reason.is_failure:
            self.client.disconnect()
            self._failed(now, f"broker refused the connection: {reason}")
            return
        if self._link_backoff.failures:
            log.info("link up again: connected to %s:%s", self.cfg.host, self.cfg.port)
        else:
            log.info("connected to broker %s:%s", self.cfg.host, self.cfg.port)
        self._link_backoff.reset()
        self._state = _State.ONLINE
        self._ever_online = True
        self._last_connect_at = now
        self._last_progress = now
        # QoS 0: no PUBACK for each ack on the metered link; acks are cumulative, so a
        # lost one is covered by the next, or by a resend after ack_timeout_s.
        self.client.subscribe(self.topic("ack"), qos=0)
        if self.downlink is not None:
            self._last_downlink = now
            self.client.subscribe(self.topic("down"), qos=1)
            self._publish_downack(self.downlink.ack())
        online = status_payload("online", self.version, self.cfg_hash)
        self.client.publish(self.topic("status"), online, qos=1, retain=True)

    def _lost(self, now: float, reason: str) -> None:
        self._flush_usage(now)
        self._failed(now, f"connection lost: {reason}")
        # paho keeps unacknowledged publishes and sends them again after reconnecting

    def _on_puback(self, now: float, mid: int, reason: Any) -> None:
        flight = self._flights.get(mid)
        if flight is None:
            return  # the status message, or a publish already given up
        if reason.is_failure:
            if flight.stream not in self._denied_logged:
                self._denied_logged.add(flight.stream)
                log.error(
                    "broker refused %s on %s: %s; check the broker's ACL for site %s",
                    flight.batch.batch_id,
                    self.topic(flight.stream),
                    reason,
                    self.site_id,
                )
            self.outbox.release(flight.batch)
        else:
            self._last_progress = now
            self.outbox.mark_sent(flight.batch)
        del self._flights[mid]  # only once recorded: a failed write leaves it to expire

    def _publish_downack(self, payload: bytes) -> None:
        self.client.publish(self.topic("downack"), payload, qos=1)

    def _on_downlink(self, now: float, msg: mqtt.MQTTMessage) -> None:
        """Apply a downlink batch (one transaction), publish the ack, then PUBACK.
        A transient failure (disk full, database locked) is logged and PUBACKed
        too: central sends what is not acknowledged again."""
        assert self.downlink is not None
        self._last_downlink = now
        self._last_progress = now
        try:
            outcome = self.downlink.receive(bytes(msg.payload))
        except Exception:
            log.exception("could not apply a downlink batch; central will send it again")
            try:  # an ack without progress: central sends again from there
                self._publish_downack(self.downlink.ack())
            except Exception as exc:
                log.warning("could not read the downlink's state either: %s", exc)
        else:
            if outcome.ack is not None:
                self._publish_downack(outcome.ack)
            if outcome.applied or outcome.refused:
                log.info(
                    "downlink applied up to %d (%d records, %d refused)",
                    outcome.upto,
                    outcome.applied,
                    outcome.refused,
                )
        if msg.qos > 0:
            self.client.ack(msg.mid, msg.qos)

    def _on_message(self, now: float, msg: mqtt.MQTTMessage) -> None:
        if self.downlink is not None and msg.topic == self.topic("down"):
            self._on_downlink(now, msg)
            return
        if msg.topic != self.topic("ack"):
            if msg.qos > 0 and self.downlink is not None:
                self.client.ack(msg.mid, msg.qos)  # manual acks: nothing may hold the window
            return
        try:
            ack = decode_ack(bytes(msg.payload))
        except EnvelopeError as exc:
            log.warning("ignoring a malformed ack on %s: %s", msg.topic, exc)
            return
        if ack.stream not in STREAMS:
            log.warning("ignoring an ack for unknown stream %r", ack.stream)
            return
        if ack.epoch and ack.epoch != self.outbox.epoch:
            # For the records of another database under this site id (a replaced SD
            # card, two stations with one id): confirming ours by it would lose them.
            if ack.epoch not in self._foreign_epochs:
                self._foreign_epochs.add(ack.epoch)
                log.error(
                    "ignoring central's ack of %s up to %d for epoch %s: this station's "
                    "database has epoch %s, so another database uses site id %s; central "
                    "keeps refusing this station's records until it gets a new site id "
                    "(or central's progress for this site is reset); nothing is confirmed",
                    ack.stream,
                    ack.upto,
                    ack.epoch,
                    self.outbox.epoch,
                    self.site_id,
                )
            return
        self._last_progress = now
        if ack.refused is not None:
            self._on_refusal(ack.stream, ack.epoch, ack.refused)
        changed = self.outbox.confirm(ack.stream, ack.upto)
        log.debug("central confirmed %s up to %d (%d rows)", ack.stream, ack.upto, changed)

    def _on_refusal(self, stream: str, epoch: str, refused: Refusal) -> None:
        """Central will never store the batch ``refused.first``..``last``: its rows are
        marked refused (kept, reported, not sent again). Only a refusal carrying this
        database's epoch counts: one without (answering a batch that carried none,
        which this station never sends) may answer someone else's batch."""
        if epoch != self.outbox.epoch:
            log.warning(
                "ignoring central's refusal of %s %d-%d (%s): it does not carry this "
                "database's epoch",
                stream,
                refused.first,
                refused.last,
                refused.reason,
            )
            return
        why = f"{refused.reason}: {refused.detail} (first bad seq {refused.seq})"
        changed = self.outbox.refuse(stream, refused.first, refused.last, why)
        if changed:
            log.error(
                "central refused %s %d-%d for good (%s); %d records kept here as refused "
                "and not sent again: see edge outbox status",
                stream,
                refused.first,
                refused.last,
                why,
                changed,
            )

    def _expire_flights(self, now: float) -> None:
        for mid, flight in list(self._flights.items()):
            if now - flight.published_at > self.cfg.ack_timeout_s:
                batch_id, timeout = flight.batch.batch_id, self.cfg.ack_timeout_s
                log.warning("no PUBACK for %s in %.0f s: sent again", batch_id, timeout)
                del self._flights[mid]
                self.outbox.release(flight.batch)

    def _allowance(self) -> Allowance:
        return self.policy.allowance(self._used_month)

    def _publish_due(self, now: float) -> None:
        allowance = self._allowance()
        for stream in STREAMS:
            if not allowance.allows(stream):
                continue
            max_age = TELEMETRY_MAX_AGE_S if stream == "telemetry" else self.cfg.batch_max_age_s
            while len(self._flights) < self.cfg.max_inflight_batches:
                batch = self.outbox.next_batch(stream, self.cfg.batch_max_records, max_age)
                if batch is None:
                    break
                topic = self.topic(stream)
                try:
                    payload = encode_batch(batch)
                    info = self.client.publish(topic, payload, qos=1)
                except Exception:
                    self.outbox.release(batch)  # claimed, never sent: offer it again
                    raise
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    self.outbox.release(batch)
                    return
                if not self.meter.exact:
                    out = publish_packet_size(topic, len(payload), qos=1, mqtt_v5=True)
                    self.meter.add_estimate(out, PUBACK_SIZE)
                self._flights[info.mid] = _Flight(stream, batch, now)

    # -- schedule, telemetry, usage ----------------------------------------------------------

    def _schedule_says_connect(self, now: float) -> bool:
        if not self.policy.scheduled:
            return True
        backlog = self.outbox.stream_status()["records"].pending
        return self.policy.should_connect(now, backlog, self._last_connect_at)

    def _maybe_close_window(self, now: float) -> None:
        if not self.policy.scheduled or self._flights:
            return
        if self.downlink is not None and now - self._last_downlink < DOWN_LINGER_S:
            return  # what central queued arrives right after the connect
        streams = self.outbox.stream_status()
        if self.policy.may_disconnect(
            now,
            pending={name: s.pending for name, s in streams.items()},
            inflight=len(self._flights),
            unconfirmed=sum(s.sent for s in streams.values()),
            last_progress_at=self._last_progress,
            bytes_used_this_month=self._used_month,
        ):
            log.info("all sent and confirmed: closing the link until the next window")
            self._say_offline()
            self._state = _State.DOWN
            self._handle_events(now)
            self._next_attempt = now
            self._flush_usage(now)

    def _maybe_telemetry(self, now: float) -> None:
        if self.telemetry is None:
            return
        timer = self._timer_next.get("telemetry")
        every = max(self.cfg.telemetry_every_s, self._allowance().telemetry_every_s)
        if timer is not None and now < timer:
            return
        self._timer_next["telemetry"] = now + every
        self.outbox.put_telemetry(self.telemetry(self.outbox.store.now()))

    def _flush_usage(self, _now: float) -> None:
        self.meter.sample()
        out, in_ = self.meter.take()
        if self.usage is None:
            return
        wall = self.outbox.store.now()
        self.usage.add(out, in_, wall)
        self._used_month = self.usage.used_this_month(wall)

    # -- stopping --------------------------------------------------------------------------

    def _say_offline(self) -> None:
        """Publish the retained offline status, wait briefly for it, disconnect."""
        info = self.client.publish(self.topic("status"), status_payload("offline"), 1, True)
        deadline = self._mono() + 2.0
        while not info.is_published() and self._mono() < deadline:
            if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        self.client.disconnect()
        self.client.loop(timeout=0.05)

    def close(self) -> None:
        if self._state is _State.ONLINE:
            self._handle_events(self._mono())
            self._say_offline()
            self._state = _State.DOWN
            self._handle_events(self._mono())
        elif self._state is _State.CONNECTING:
            self.client.disconnect()
        self._state = _State.DOWN
        # paho keeps its connection and a socket pair (loop() wake-ups) until the client
        # is garbage; a stopped link holds no sockets (no public call closes the pair)
        self.client._reset_sockets()
        try:
            self._flush_usage(self._mono())
        except Exception:  # the store may be closing with the station
            log.exception("could not save the link's byte count")
