"""Central ingest: an MQTT v5 client that stores every station batch once and
acknowledges it.

Flow for each message (paho ``manual_ack=True``):

1. paho's network thread hands the message to a queue; nothing is PUBACKed yet.
2. The decode thread takes what is queued (up to ``max_group`` messages),
   decodes and checks each batch and lays the group out as rows.
3. The store thread (working on the previous group meanwhile: decoding and the
   database overlap) stores the group in ONE transaction, then publishes
   ``<prefix>/<site>/ack`` (QoS 1) with the highest contiguous seq of each
   (site, stream) touched, and only then PUBACKs the messages.

A payload that does not decode (or claims another site or stream than its
topic) is logged with the site and the reason, counted as rejected, and
PUBACKed: it can never succeed, and holding it would block that site. When the
database is unavailable nothing is PUBACKed: the store thread retries with capped
back-off, and if the process dies meanwhile the broker redelivers the messages
to the persistent session (clean_start False, session expiry) on reconnect.
Duplicates are harmless: the store is idempotent on (site, stream, seq).

A batch whose epoch (the station database it comes from) differs from the one
central holds for its site and stream is not stored and not acknowledged: its
seqs number another database's records (an SD card replaced, a second station
with the same site id), which would be dropped as duplicates. It is counted
(``epoch_conflicts``), logged with what to do, and PUBACKed; the station keeps
its records and sends them again, and GET /status shows the conflict.
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.central.core import (
    DATA_STREAMS,
    BrokerUrlError,
    GroupPlan,
    StreamProgress,
    check_batch,
    epoch_conflict_text,
    parse_broker_url,
    parse_status_payload,
    parse_topic,
)
from edge.central.status import Counters
from edge.central.store import BatchRefused, CentralStore, StoreUnavailable, plan_batches
from edge.sync.envelope import Ack, Batch, EnvelopeError, decode_batch, encode_ack

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass
class _Item:
    generation: int  # the connection it arrived on; a PUBACK is only valid there
    msg: mqtt.MQTTMessage
    site: str = ""
    batch: Batch | None = None


@dataclass
class _Group:
    items: list[_Item]  # batches that decoded, all in ``plan``
    plan: GroupPlan | None
    statuses: list[tuple[_Item, dict[str, Any]]]


class Ingest:
    def __init__(
        self,
        store: CentralStore,
        broker: str,
        *,
        prefix: str = "edge",
        group: str = "central",
        client_id: str | None = None,
        tls: TlsFiles | None = None,
        session_expiry_s: int = 7 * 86400,
        receive_maximum: int = 200,
        max_group: int = 64,
        keepalive_s: int = 60,
        retry_max_s: float = 30.0,
    ) -> None:
        self.store = store
        self.address = parse_broker_url(broker)
        if self.address.tls and tls is None:
            raise BrokerUrlError(f"{broker} is TLS: give --tls-ca, --tls-cert and --tls-key")
        self.prefix = prefix
        self.group = group
        self.client_id = client_id or f"edge-central-{group}-{socket.gethostname()}"
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.max_group = max_group
        self.keepalive_s = keepalive_s
        self.retry_max_s = retry_max_s
        self.counters = Counters()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._unreachable = False
        self._ready: queue.Queue[_Group] = queue.Queue(maxsize=1)
        self._threads = [
            threading.Thread(target=self._run_decoder, name="ingest-decode", daemon=True),
            threading.Thread(target=self._run_writer, name="ingest-store", daemon=True),
        ]
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if tls is not None:
            self.client.tls_set(
                ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
            )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=self.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish the group in hand, then disconnect; the session stays on the broker."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(30)
        self.client.disconnect()
        self.client.loop_stop()

    def status(self) -> dict[str, Any]:
        return {"sites": self.store.sites(), "ingest": self.counters.snapshot()}

    # -- paho callbacks (network thread) -----------------------------------------------

    def topics(self) -> list[str]:
        shared = [f"$share/{self.group}/{self.prefix}/+/{s}" for s in DATA_STREAMS]
        return [*shared, f"{self.prefix}/+/status"]

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self._where(), reason)
            return
        self._generation += 1
        self._unreachable = False
        resumed = bool(getattr(flags, "session_present", False))
        log.info(
            "connected to %s as %s (session %s)",
            self._where(),
            self.client_id,
            "resumed" if resumed else "new",
        )
        opts = SubscribeOptions(qos=1)
        client.subscribe([(topic, opts) for topic in self.topics()])
        self.connected.set()

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        if not self._unreachable:  # once per outage; paho keeps retrying with back-off
            self._unreachable = True
            log.warning("cannot reach broker %s; retrying", self._where())

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused subscriptions %s: %s", self.topics(), refused)
            return
        log.info("subscribed to %s", ", ".join(self.topics()))
        self.subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("disconnected from %s: %s", self._where(), reason)
        self.connected.clear()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(_Item(self._generation, msg))

    def _where(self) -> str:
        return f"{self.address.host}:{self.address.port}"

    # -- the pipeline: decode ‖ store ---------------------------------------------------

    def _run_decoder(self) -> None:
        """Stage 1: take what is queued (up to ``max_group`` messages), decode,
        check and lay out the batches; hand the group to the writer."""
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < self.max_group:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                group = self._prepare(items)
            except Exception:  # a bug must not stop ingest; the messages stay un-PUBACKed
                log.exception("unexpected error decoding %d message(s)", len(items))
                continue
            while not self._stop.is_set():
                try:
                    self._ready.put(group, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _run_writer(self) -> None:
        """Stage 2: store a group in one transaction, publish the acks, PUBACK."""
        while not self._stop.is_set():
            try:
                group = self._ready.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                for item, status in group.statuses:
                    self._note_status(item, status)
                if group.items:
                    self._store_and_ack(group)
            except Exception:  # a bug must not stop ingest; the messages stay un-PUBACKed
                log.exception("unexpected error storing %d batch(es)", len(group.items))

    def _prepare(self, items: list[_Item]) -> _Group:
        group = _Group([], None, [])
        epochs: dict[tuple[str, str], str] = {}
        for item in items:
            if item.batch is not None:  # decoded before, held back from a group
                self._group_batch(group, epochs, item)
                continue
            parsed = parse_topic(self.prefix, item.msg.topic)
            if parsed is None:
                self._reject(item, "?", f"unexpected topic {item.msg.topic!r}")
                continue
            item.site, kind = parsed
            if kind == "status":
                try:
                    group.statuses.append((item, parse_status_payload(bytes(item.msg.payload))))
                except ValueError as exc:
                    self._reject(item, item.site, str(exc))
                continue
            try:
                item.batch = decode_batch(bytes(item.msg.payload))
            except EnvelopeError as exc:
                self._reject(item, item.site, f"undecodable {kind} payload: {exc}")
                continue
            why = check_batch(item.batch, item.site, kind)
            if why is not None:
                self._reject(item, item.site, why)
                continue
            self._group_batch(group, epochs, item)
        if group.items:
            group.plan = self._plan(group.items)
        return group

    def _group_batch(self, group: _Group, epochs: dict[tuple[str, str], str], item: _Item) -> None:
        """Into the group, unless the group already has a batch of another epoch for
        its (site, stream): then back into the queue, to be stored after this group
        (and refused if central then holds the other epoch)."""
        assert item.batch is not None
        key = (item.batch.site, item.batch.stream)
        if epochs.setdefault(key, item.batch.epoch) != item.batch.epoch:
            self._queue.put(item)
            return
        group.items.append(item)

    def _plan(self, items: list[_Item]) -> GroupPlan:
        """The group's rows; a batch whose records cannot be stored as JSON is
        rejected (and dropped from ``items``), the others go on."""
        try:
            return plan_batches([item.batch for item in items if item.batch])
        except BatchRefused:
            pass
        good: list[_Item] = []
        for item in items:
            try:
                plan_batches([item.batch] if item.batch else [])
            except BatchRefused as exc:
                self._reject(item, item.site, f"cannot store the records: {exc}")
                continue
            good.append(item)
        items[:] = good
        return plan_batches([item.batch for item in items if item.batch])

    def _store_and_ack(self, group: _Group) -> None:
        stored = self._retrying(lambda: self._store_group(group))
        if stored is None:
            return  # stopping: nothing PUBACKed, the broker redelivers
        ((progress, done),) = stored
        conflicts = {(p.site, p.stream): p for p in progress if p.conflict}
        for p in progress:
            if not p.conflict:
                payload = encode_ack(Ack(p.stream, p.upto, p.epoch))
                self.client.publish(f"{self.prefix}/{p.site}/ack", payload, qos=1)
        refused = 0
        for item in done:
            assert item.batch is not None
            conflict = conflicts.get((item.batch.site, item.batch.stream))
            if conflict is not None:
                refused += 1
                self._log_conflict(item.batch, conflict)
        self.counters.add(
            batches=len(done) - refused,
            records=sum(p.inserted for p in progress),
            duplicates=sum(p.duplicates for p in progress),
            epoch_conflicts=refused,
        )
        for item in done:
            self._puback(item)

    @staticmethod
    def _log_conflict(batch: Batch, p: StreamProgress) -> None:
        log.error("site %s: refused %s: %s", batch.site, batch.batch_id, epoch_conflict_text(p))

    def _store_group(self, group: _Group) -> tuple[list[StreamProgress], list[_Item]]:
        """Store all in one transaction; if the database refuses the group, store
        the batches one by one so only the bad one is rejected."""
        items = group.items
        try:
            assert group.plan is not None
            return self.store.store_plan(group.plan), items
        except BatchRefused as exc:
            if len(items) == 1:
                self._reject(items[0], items[0].site, f"store refused the batch: {exc}")
                return [], []
        progress: dict[tuple[str, str], StreamProgress] = {}
        done: list[_Item] = []
        for item in items:
            assert item.batch is not None
            try:
                (p,) = self.store.store_batches([item.batch])
            except BatchRefused as exc:
                self._reject(item, item.site, f"store refused the batch: {exc}")
                continue
            old = progress.get((p.site, p.stream))
            if old is not None:
                new, dup = old.inserted + p.inserted, old.duplicates + p.duplicates
                p = replace(p, inserted=new, duplicates=dup)
            progress[(p.site, p.stream)] = p
            done.append(item)
        return list(progress.values()), done

    def _note_status(self, item: _Item, status: dict[str, Any]) -> None:
        if self._retrying(lambda: self.store.note_status(item.site, status)) is not None:
            self._puback(item)

    def _retrying(self, action: Callable[[], T]) -> tuple[T] | None:
        """``(action(),)``, retried with capped, jittered back-off while the store
        is unavailable; None (with a log line) if asked to stop meanwhile."""
        delay = 0.5
        failing = False
        while True:
            try:
                result = action()
            except StoreUnavailable as exc:
                if not failing:
                    log.error("store unavailable, holding messages and retrying: %s", exc)
                    failing = True
                if self._stop.wait(random.uniform(delay / 2, delay)):
                    log.warning("stopping with unstored messages; the broker keeps them")
                    return None
                delay = min(delay * 2, self.retry_max_s)
                continue
            if failing:
                log.info("store available again")
            return (result,)

    def _reject(self, item: _Item, site: str, reason: str) -> None:
        log.warning("site %s: rejected a message on %s: %s", site, item.msg.topic, reason)
        self.counters.add(rejected=1)
        self._puback(item)

    def _puback(self, item: _Item) -> None:
        if item.generation == self._generation:
            self.client.ack(item.msg.mid, item.msg.qos)
        # else it came on an earlier connection: the broker has sent it again, and
        # that copy (a duplicate for the store) is the one to PUBACK.
