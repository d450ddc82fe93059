"""Central ingest: an MQTT v5 client that stores every station batch once and
acknowledges it.

Flow for each message (paho ``manual_ack=True``):

1. paho's network thread files the message under its site (:class:`FairQueue`);
   nothing is PUBACKed yet. A payload beyond the size limits is refused right
   there, unread.
2. The decode thread takes what is queued (up to ``max_group`` messages, the sites
   in turn), decodes each batch within the limits of :mod:`edge.sync.limits`,
   checks it against its topic, validates every record (:mod:`edge.sync.validate`)
   and lays the group out as rows.
3. The store thread (working on the previous group meanwhile: decoding and the
   database overlap) stores the group in ONE transaction, then publishes
   ``<prefix>/<site>/ack`` (QoS 1) with the highest contiguous seq of each
   (site, stream) touched, and only then PUBACKs the messages.

Nothing one station sends can stall the others. A message that cannot be decoded,
validated or stored is counted per site and reason, logged once per site and
reason (then at most once a minute), and PUBACKed: it can never succeed, and
holding it would fill the receive window. When its batch header decoded (so the
range and epoch are known) the batch is *refused*: its range is recorded
(``refused`` table: its seqs count as done for the contiguous mark) and the ack
carries ``refused`` with the reason and the first bad seq, so the station marks
those records refused instead of sending them forever (docs/mqtt.md "Refusals").
A site that keeps sending garbage is flagged in GET /status, and while flagged at
most :data:`edge.central.guard.FLAGGED_QUEUE` of its messages wait; more are shed.

Permanent and transient failures are told apart by the store: values the database
refuses (``BatchRefused``: a NUL for PostgreSQL, a lone surrogate for SQLite...)
are refused as above, whereas when the database is unavailable (down, connection
lost, locked, read-only, a table missing: ``StoreUnavailable``) nothing is
PUBACKed: the store thread retries with capped back-off, and if the process dies
meanwhile the broker redelivers the messages to the persistent session
(clean_start False, session expiry) on reconnect. Duplicates are harmless: the
store is idempotent on (site, stream, seq). An unexpected error (a bug) on one
message rejects that message only (``internal_error``, PUBACKed, not acked: the
station sends it again after its ack timeout).

With ``downlink=True`` the ingest also runs the downlink sender
(:class:`edge.central.downlink.DownlinkSender`) on its client: it subscribes to
``<prefix>/+/downack`` (a plain subscription: the process that sends the downlink
must hear every point's acks; one ingest process of a group sends it) and publishes
what the store queued for each point on ``<prefix>/<site>/down``.

A batch whose epoch (the station database it comes from) differs from the one
central holds for its site and stream is not stored and not acknowledged: its
seqs number another database's records (an SD card replaced, a second station
with the same site id), which would be dropped as duplicates. It is counted
(``epoch_conflicts``), logged with what to do, and PUBACKed; the station keeps
its records and sends them again, and GET /status shows the conflict. A batch
without an epoch once central holds one for its site and stream is refused
(``epoch_missing``): an ack with ``upto`` 0 and no epoch, which confirms nothing.
"""

from __future__ import annotations

import functools
import logging
import queue
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    Refused,
    RefusedProgress,
    StreamProgress,
    check_batch,
    epoch_conflict_text,
    parse_broker_url,
    parse_status_payload,
    parse_topic,
)
from edge.central.downlink import RESEND_S, DownlinkSender
from edge.central.guard import FLAGGED_QUEUE, FairQueue, Rejections, printable
from edge.central.status import Counters
from edge.central.store import BatchRefused, CentralStore, StoreUnavailable, plan_batches
from edge.sync.envelope import Ack, Batch, EnvelopeError, Refusal, decode_batch, encode_ack
from edge.sync.limits import MAX_COMPRESSED, MAX_STATUS_BYTES
from edge.sync.validate import validate_batch

log = logging.getLogger(__name__)
T = TypeVar("T")

GROUP_RECORDS = 20_000
"""Records decoded into one group at most (what one transaction holds); the rest
waits for the next group. Bounds the memory of a group whatever the batches."""


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
    kind: str = ""  # a stream, or "status"
    batch: Batch | None = None
    acked: bool = False  # PUBACKed (or given up: it came on an earlier connection)


@dataclass
class _Group:
    items: list[_Item]  # batches that decoded, all in ``plan``
    plan: GroupPlan | None
    statuses: list[tuple[_Item, dict[str, Any]]]
    refusals: list[tuple[_Item, Refused]] = field(default_factory=list)


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
        downlink: bool = False,
        downlink_resend_s: float | None = None,
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
        self.rejections = Rejections()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._queue: FairQueue[_Item] = FairQueue()
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
        self.downlink: DownlinkSender | None = None
        if downlink:
            resend_s = RESEND_S if downlink_resend_s is None else downlink_resend_s
            self.downlink = DownlinkSender(store, self.client, prefix, resend_s=resend_s)

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
        if self.downlink is not None:
            self.downlink.start()

    def stop(self) -> None:
        """Finish the group in hand, then disconnect; the session stays on the broker."""
        self._stop.set()
        if self.downlink is not None:
            self.downlink.stop()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(30)
        self.client.disconnect()
        self.client.loop_stop()

    def status(self) -> dict[str, Any]:
        out = {
            "sites": self.store.sites(),
            "ingest": self.counters.snapshot(),
            "rejected_by_site": self.rejections.snapshot(),
        }
        if self.downlink is not None:
            out["downlink"] = self.store.down_progress()
        return out

    # -- paho callbacks (network thread) -----------------------------------------------

    def topics(self) -> list[str]:
        shared = [f"$share/{self.group}/{self.prefix}/+/{s}" for s in DATA_STREAMS]
        down = [self.downlink.topic] if self.downlink is not None else []
        return [*shared, f"{self.prefix}/+/status", *down]

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
        if self.downlink is not None:
            self.downlink.wake()

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
        """File the message under its site; refuse at once, unread, what is too large
        and what a flagged site sends beyond its small share of the queue."""
        if self.downlink is not None and self.downlink.on_message(msg):
            self.client.ack(msg.mid, msg.qos)  # acks are cumulative: the next one covers it
            return
        item = _Item(self._generation, msg)
        if not self._parse_topic(item):
            return
        size = len(msg.payload)
        cap = MAX_STATUS_BYTES if item.kind == "status" else MAX_COMPRESSED
        if size > cap:
            self._reject(item, "oversize", f"{item.kind} payload of {size} bytes, more than {cap}")
            return
        if self._queue.waiting(item.site) >= FLAGGED_QUEUE and self.rejections.flagged(item.site):
            self._reject(item, "shed", "dropped unread: this site keeps sending garbage")
            return
        self._queue.put(item)

    def _parse_topic(self, item: _Item) -> bool:
        parsed = parse_topic(self.prefix, item.msg.topic)
        if parsed is None:
            item.site = "?"
            self._reject(item, "wrong_topic", f"unexpected topic {item.msg.topic!r}")
            return False
        item.site, item.kind = parsed
        return True

    def _where(self) -> str:
        return f"{self.address.host}:{self.address.port}"

    # -- the pipeline: decode ‖ store ---------------------------------------------------

    def _run_decoder(self) -> None:
        """Stage 1: take what is queued (up to ``max_group`` messages, the sites in
        turn), decode, check and lay out the batches; hand the group to the writer."""
        while not self._stop.is_set():
            items = self._queue.take(self.max_group, timeout=0.2)
            self.rejections.flush()
            if not items:
                continue
            group = self._prepare(items)
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
            self._write(group)

    def _write(self, group: _Group) -> None:
        """Statuses, then batches, then refusals (storing batches may add some); an
        unexpected error (a bug) in one part rejects the messages of that part that
        are not PUBACKed yet: none is ever left holding the receive window."""
        self._guarded(lambda: [i for i, _ in group.statuses], lambda: self._note_statuses(group))
        self._guarded(lambda: group.items, lambda: self._store_and_ack(group))
        self._guarded(lambda: [i for i, _ in group.refusals], lambda: self._refuse(group))

    def _guarded(self, items: Callable[[], list[_Item]], action: Callable[[], None]) -> None:
        if not items():
            return
        try:
            action()
        except Exception as exc:
            log.exception("unexpected error storing %d message(s)", len(items()))
            for item in items():
                if not item.acked:
                    self._reject(item, "internal_error", f"{type(exc).__name__}: {exc}")

    def _prepare(self, items: list[_Item]) -> _Group:
        group = _Group([], None, [])
        epochs: dict[tuple[str, str], str] = {}
        records = 0
        for n, item in enumerate(items):
            if records >= GROUP_RECORDS:
                self._queue.put_back(items[n:])  # the next group takes them
                break
            try:
                self._prepare_one(group, epochs, item)
            except Exception as exc:  # a bug must not hold the message (nor the window)
                log.exception("unexpected error decoding a message of site %s", item.site)
                self._reject(item, "internal_error", f"{type(exc).__name__}: {exc}")
                continue
            if item.batch is not None and group.items and group.items[-1] is item:
                records += len(item.batch.records)
        if group.items:
            group.plan = self._plan(group)
        return group

    def _prepare_one(self, group: _Group, epochs: dict[tuple[str, str], str], item: _Item) -> None:
        if item.batch is not None:  # decoded before, held back from a group
            self._group_batch(group, epochs, item)
            return
        if not item.kind and not self._parse_topic(item):
            return
        payload = bytes(item.msg.payload)
        if item.kind == "status":
            try:
                group.statuses.append((item, parse_status_payload(payload)))
            except ValueError as exc:
                self._reject(item, "invalid_status", str(exc))
            return
        try:
            batch = decode_batch(payload)
            why = check_batch(batch, item.site, item.kind)
            if why is not None:
                self._reject(item, "wrong_topic", why)
                return
            validate_batch(batch)
        except EnvelopeError as exc:
            header = exc.header
            own = header is not None and (header.site, header.stream) == (item.site, item.kind)
            if header is not None and own and exc.reason != "too_many_records":
                # (a range of more than 5,000 seqs is never recorded as done: one
                # message must not move a stream's mark by an arbitrary amount)
                detail = printable(str(exc))
                where = (
                    f"batch {header.batch_id} ({header.site}/{header.stream} "
                    f"{header.first}-{header.last}): "
                )
                detail = detail.removeprefix(where)
                seq = exc.seq if exc.seq is not None else header.first
                refused = Refused(
                    header.site,
                    header.stream,
                    header.first,
                    header.last,
                    header.epoch,
                    exc.reason,
                    seq,
                    detail,
                )
                group.refusals.append((item, refused))
                self._count(item.site, exc.reason, f"refused {header.batch_id}: {detail}")
            else:
                self._reject(item, exc.reason, f"undecodable {item.kind} payload: {exc}")
            return
        item.batch = batch
        self._group_batch(group, epochs, item)

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

    def _plan(self, group: _Group) -> GroupPlan:
        """The group's rows; a batch whose records cannot be stored as JSON is refused
        (and dropped from ``group.items``), the others go on."""
        items = group.items
        try:
            return plan_batches([item.batch for item in items if item.batch])
        except BatchRefused:
            pass
        good: list[_Item] = []
        for item in items:
            try:
                plan_batches([item.batch] if item.batch else [])
            except BatchRefused as exc:
                self._refuse_later(group, item, "invalid_record", f"not storable as JSON: {exc}")
                continue
            good.append(item)
        items[:] = good
        return plan_batches([item.batch for item in items if item.batch])

    def _refuse_later(self, group: _Group, item: _Item, reason: str, detail: str) -> None:
        """Refuse a decoded batch with the group's refusals (after its batches)."""
        b = item.batch
        assert b is not None
        detail = printable(detail)
        group.refusals.append(
            (item, Refused(b.site, b.stream, b.first, b.last, b.epoch, reason, b.first, detail))
        )
        self._count(item.site, reason, f"refused {b.batch_id}: {detail}")

    def _store_and_ack(self, group: _Group) -> None:
        stored = self._retrying(lambda: self._store_group(group))
        if stored is None:
            return  # stopping: nothing PUBACKed, the broker redelivers
        ((progress, done),) = stored
        by_key = {(p.site, p.stream): p for p in progress}
        for p in progress:
            if not p.conflict and not p.missing_epoch:
                r = p.refusal  # a recent refusal, said again (acks may be lost)
                again = Refusal(r.first, r.last, r.seq, r.reason) if r else None
                payload = encode_ack(Ack(p.stream, p.upto, p.epoch, again))
                self.client.publish(f"{self.prefix}/{p.site}/ack", payload, qos=1)
        refused = missing = 0
        for item in done:
            assert item.batch is not None
            b = item.batch
            p = by_key[(b.site, b.stream)]
            if p.conflict:
                refused += 1
                self._log_conflict(b, p)
            elif p.missing_epoch:
                missing += 1
                self._epoch_missing(item, b, p)
        self.counters.add(
            batches=len(done) - refused - missing,
            records=sum(p.inserted for p in progress),
            duplicates=sum(p.duplicates for p in progress),
            epoch_conflicts=refused,
        )
        for item in done:
            self._puback(item)

    def _epoch_missing(self, item: _Item, b: Batch, p: StreamProgress) -> None:
        """Refused: no epoch, and central holds one for this site and stream. The ack
        says upto 0 and carries no epoch: it confirms nothing, whoever reads it."""
        detail = (
            f"refused {b.batch_id}: it carries no epoch, but central holds {b.stream} seqs "
            f"1-{p.upto} of this site from epoch {p.epoch}: whose seqs these are cannot "
            "be told; not stored (upgrade the station, or reset central's progress)"
        )
        self._count(item.site, "epoch_missing", detail)
        short = f"no epoch, but central holds {b.stream} 1-{p.upto} from epoch {p.epoch}"
        refusal = Refusal(b.first, b.last, b.first, "epoch_missing", short)
        payload = encode_ack(Ack(b.stream, 0, "", refusal))
        self.client.publish(f"{self.prefix}/{b.site}/ack", payload, qos=1)

    def _log_conflict(self, batch: Batch, p: StreamProgress) -> None:
        self.rejections.note(
            batch.site,
            "epoch_conflict",
            f"refused {batch.batch_id}: {epoch_conflict_text(p)}",
            logging.ERROR,
        )

    def _store_group(self, group: _Group) -> tuple[list[StreamProgress], list[_Item]]:
        """Store all in one transaction; if the database refuses the group, store
        the batches one by one so only the bad one is refused."""
        items = group.items
        try:
            assert group.plan is not None
            return self.store.store_plan(group.plan), items
        except BatchRefused as exc:
            if len(items) == 1:
                self._refuse_later(group, items[0], "store_refused", f"the database: {exc}")
                return [], []
        progress: dict[tuple[str, str], StreamProgress] = {}
        done: list[_Item] = []
        for item in items:
            assert item.batch is not None
            try:
                (p,) = self.store.store_batches([item.batch])
            except BatchRefused as exc:
                self._refuse_later(group, item, "store_refused", f"the database: {exc}")
                continue
            old = progress.get((p.site, p.stream))
            if old is not None:
                new, dup = old.inserted + p.inserted, old.duplicates + p.duplicates
                p = replace(p, inserted=new, duplicates=dup)
            progress[(p.site, p.stream)] = p
            done.append(item)
        return list(progress.values()), done

    def _refuse(self, group: _Group) -> None:
        """Record the refused batches (their ranges count as done), tell each
        station through its ack, PUBACK."""
        refusals = group.refusals
        outcome = self._retrying(lambda: self.store.refuse([r for _, r in refusals]))
        if outcome is None:
            return  # stopping: the broker redelivers them
        (results,) = outcome
        for (item, _), result in zip(refusals, results, strict=True):
            ack = self._refusal_ack(result)
            if ack is not None:
                self.client.publish(f"{self.prefix}/{item.site}/ack", encode_ack(ack), qos=1)
            self._puback(item)

    @staticmethod
    def _refusal_ack(result: RefusedProgress) -> Ack | None:
        r = result.refused
        refusal = Refusal(r.first, r.last, r.seq, r.reason, r.detail)
        if result.verdict == "":  # recorded: the ack also moves past its range
            return Ack(r.stream, result.upto, result.epoch, refusal)
        if result.verdict == "missing":
            return Ack(r.stream, 0, "", refusal)
        return None  # another database's batch: not acknowledged, like its records

    def _note_statuses(self, group: _Group) -> None:
        """The latest status of each site is stored (one write a site); all PUBACKed."""
        statuses = group.statuses
        latest: dict[str, dict[str, Any]] = {}
        for item, status in statuses:
            latest[item.site] = status
        for site, status in latest.items():
            mine = [item for item, _ in statuses if item.site == site]
            try:
                if self._retrying(functools.partial(self.store.note_status, site, status)) is None:
                    return  # stopping
            except BatchRefused as exc:
                for item in mine:
                    self._reject(item, "store_refused", f"status not storable: {exc}")
                continue
            for item in mine:
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

    def _count(self, site: str, reason: str, detail: str) -> None:
        self.rejections.note(site, reason, detail)
        self.counters.add(rejected=1)

    def _reject(self, item: _Item, reason: str, detail: str) -> None:
        """Never to be stored, nothing to answer: counted, logged (rate-limited),
        PUBACKed."""
        self._count(item.site, reason, f"rejected a message on {item.msg.topic}: {detail}")
        self._puback(item)

    def _puback(self, item: _Item) -> None:
        if item.acked:
            return
        item.acked = True
        if item.generation == self._generation:
            self.client.ack(item.msg.mid, item.msg.qos)
        # else it came on an earlier connection: the broker has sent it again, and
        # that copy (a duplicate for the store) is the one to PUBACK.
