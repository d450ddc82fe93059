"""Central's end of the downlink (docs/mqtt.md "Downlink"): what the store queued for
each point (``down_queue``: orders, products, tracking blocks) goes out on
``<prefix>/<site>/down`` in batches, and the points' acknowledgements on
``<prefix>/<site>/downack`` move ``acked_upto``.

:class:`DownlinkSender` runs inside ``edge central ingest`` on the ingest's own MQTT
client (the broker names a session by the certificate: a second client with the same
certificate would take the ingest's session over). Per site it keeps at most
``window`` batches unacknowledged, :data:`BATCH_RECORDS` records a batch (fewer when a
batch would be larger than :data:`BATCH_BYTES`), in seq order, starting after
``acked_upto`` when the process starts. The broker queues what a point misses while
it is offline (its persistent session) and delivers it when it connects, so nothing
is sent again while a point is silent: only when a point was heard (every station
acknowledges at connect and after each batch) and what it was sent beyond that ack
has not been acknowledged ``resend_s`` later does the sender go back to the point's
last ack (a message lost in a broker crash, a gap). An ack of another
epoch (a station that applied another central database's downlink) is reported and
stops the sending to that point until it acks this epoch, or none (after
``edge downlink accept-epoch`` there).

:func:`send_pending` is the one-shot version for ``edge central orders import
--broker``: publish what is queued and wait a while for the acks, with a client (and
certificate) of its own.

:func:`pack` cuts records into payloads that the station's decoder accepts (each is
decoded here with the station's limits before it goes); a record that cannot go as it
is (a text beyond the limits) goes as an ``undeliverable`` record naming it, which the
station keeps as refused: the seqs stay without gaps and the point says what it did
not get.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.central.core import parse_broker_url
from edge.central.store import CentralStore, StoreUnavailable
from edge.sync.downlink import MAX_TEXT_ITEM, STREAM
from edge.sync.envelope import (
    Ack,
    Batch,
    EnvelopeError,
    batch_id_for,
    decode_ack,
    decode_batch,
    encode_batch,
)
from edge.sync.limits import MAX_COMPRESSED

log = logging.getLogger(__name__)

BATCH_RECORDS = 100
BATCH_BYTES = 256 * 1024
"""A payload at most this (compressed): a batch of 100 orders is about 15 KiB."""
WINDOW = 6
"""Batches per site sent and not yet acknowledged."""
RESEND_S = 30.0
TICK_S = 0.5
"""How often queued_upto is read from the store (records queued by another process)."""

Payload = tuple[int, int, bytes]
"""(first seq, last seq, envelope)."""


# -- batches -----------------------------------------------------------------------------


def _encode(site: str, epoch: str, records: Sequence[Mapping[str, Any]], attempt: int) -> bytes:
    first, last = int(records[0]["seq"]), int(records[-1]["seq"])
    batch = Batch(
        site,
        STREAM,
        batch_id_for(STREAM, first, last, attempt),
        first,
        last,
        tuple(dict(r) for r in records),
        epoch=epoch,
    )
    payload = encode_batch(batch)
    if len(payload) > MAX_COMPRESSED:
        raise EnvelopeError(f"{len(payload)} bytes compressed", "oversize")
    decode_batch(payload, max_text=MAX_TEXT_ITEM)  # what the station will do with it
    return payload


def undeliverable(record: Mapping[str, Any], why: str) -> dict[str, Any]:
    """What goes in place of a record the station could not decode."""
    rid = record.get("id", record.get("name"))
    return {
        "type": "undeliverable",
        "seq": record["seq"],
        "kind": str(record.get("type"))[:64],
        "id": str(rid)[:128] if rid is not None else None,
        "reason": why[:300],
    }


def pack(
    site: str,
    epoch: str,
    records: Sequence[Mapping[str, Any]],
    attempt: int = 1,
    max_records: int = BATCH_RECORDS,
    max_bytes: int = BATCH_BYTES,
) -> list[Payload]:
    """Consecutive records (each with its ``seq``) as payloads of at most
    ``max_records`` records and ``max_bytes`` bytes, in seq order."""
    out: list[Payload] = []
    for start in range(0, len(records), max_records):
        out += _pack(site, epoch, records[start : start + max_records], attempt, max_bytes)
    return out


def _pack(
    site: str, epoch: str, records: Sequence[Mapping[str, Any]], attempt: int, max_bytes: int
) -> list[Payload]:
    try:
        payload = _encode(site, epoch, records, attempt)
        if len(payload) <= max_bytes or len(records) == 1:
            return [(int(records[0]["seq"]), int(records[-1]["seq"]), payload)]
    except EnvelopeError as exc:
        if len(records) == 1:
            why = f"cannot go down as it is: {exc}"
            rec = records[0]
            log.error("downlink record %s %d of %s %s", rec.get("type"), rec["seq"], site, why)
            return _pack(site, epoch, [undeliverable(records[0], why)], attempt, max_bytes)
    half = len(records) // 2
    return _pack(site, epoch, records[:half], attempt, max_bytes) + _pack(
        site, epoch, records[half:], attempt, max_bytes
    )


def parse_downack_topic(prefix: str, topic: str) -> str | None:
    """The site of ``<prefix>/<site>/downack``, else None."""
    head = f"{prefix}/"
    if not topic.startswith(head) or not topic.endswith("/downack"):
        return None
    site = topic[len(head) : -len("/downack")]
    return site if site and "/" not in site else None


def read_ack(payload: bytes) -> Ack | None:
    """A downlink ack, or None (logged) when the payload is not one."""
    try:
        ack = decode_ack(payload)
    except EnvelopeError as exc:
        log.warning("ignoring a malformed downlink ack: %s", exc)
        return None
    if ack.stream != STREAM:
        log.warning("ignoring an ack of stream %r on a downack topic", ack.stream)
        return None
    return ack


# -- the sender inside ingest --------------------------------------------------------------


@dataclass
class _Site:
    station: int  # the point's latest ack (at start: acked_upto)
    sent: int  # the highest seq published in the current pass
    queued: int = 0
    attempt: int = 1
    inflight: deque[int] = field(default_factory=deque)  # last seq of each batch out
    stalled_at: float | None = None  # last heard (ack) with more sent than it acked
    foreign: str | None = None  # the other epoch it acked
    noted_sent: int = 0


class DownlinkSender:
    """Sends every site's queued downlink on ``client`` (connected and looped by its
    owner, the ingest) and follows the acks that the owner hands to :meth:`on_message`."""

    def __init__(
        self,
        store: CentralStore,
        client: mqtt.Client,
        prefix: str = "edge",
        *,
        window: int = WINDOW,
        batch_records: int = BATCH_RECORDS,
        resend_s: float = RESEND_S,
        tick_s: float = TICK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.client = client
        self.prefix = prefix
        self.window = window
        self.batch_records = batch_records
        self.resend_s = resend_s
        self.tick_s = tick_s
        self._mono = monotonic
        self._acks: queue.SimpleQueue[tuple[str, Ack]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sites: dict[str, _Site] = {}
        self._epoch = ""
        self._ahead_logged: set[str] = set()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="downlink-send", daemon=True)

    @property
    def topic(self) -> str:
        return f"{self.prefix}/+/downack"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def wake(self) -> None:
        """Look at the queue now (the owner just connected, or queued something)."""
        self._wake.set()

    def on_message(self, msg: mqtt.MQTTMessage) -> bool:
        """Take ``msg`` if it is a downlink ack (True); called on paho's thread."""
        site = parse_downack_topic(self.prefix, msg.topic)
        if site is None:
            return False
        ack = read_ack(bytes(msg.payload))
        if ack is not None:
            self._acks.put((site, ack))
            self._wake.set()
        return True

    # -- the sender's thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.step(self._mono())
            except StoreUnavailable as exc:
                if not self._failing:
                    log.error("downlink: store unavailable, retrying: %s", exc)
                    self._failing = True
                self._stop.wait(min(5.0, 4 * self.tick_s))
                continue
            except Exception:
                log.exception("downlink: unexpected error; going on")
                self._stop.wait(min(5.0, 4 * self.tick_s))
                continue
            if self._failing:
                log.info("downlink: store available again")
                self._failing = False

    def step(self, now: float) -> None:
        """One pass: read the queue's marks, take the acks that came, publish what the
        windows allow (the sender's thread calls it; tests call it with their clock)."""
        if not self._epoch:
            self._epoch = self.store.down_epoch()
        for row in self.store.down_progress():
            site = row["site"]
            st = self._sites.get(site)
            if st is None:
                acked = int(row["acked_upto"])
                st = self._sites[site] = _Site(acked, acked, noted_sent=int(row["sent_upto"]))
            st.queued = int(row["queued_upto"])
        while True:
            try:
                site, ack = self._acks.get_nowait()
            except queue.Empty:
                break
            self._on_ack(site, ack, now)
        for site, st in self._sites.items():
            self._pump(site, st, now)

    def _on_ack(self, site: str, ack: Ack, now: float) -> None:
        st = self._sites.get(site)
        if st is None:
            return  # nothing was ever queued for it
        if ack.epoch and ack.epoch != self._epoch:
            if st.foreign != ack.epoch:
                log.error(
                    "point %s applied the downlink of another central database (epoch %s, "
                    "this one is %s): nothing more is sent to it until it acknowledges this "
                    "epoch; if this database is the right one, run `edge downlink "
                    "accept-epoch` on that station (docs/mqtt.md)",
                    site,
                    ack.epoch,
                    self._epoch,
                )
            st.foreign = ack.epoch
            return
        came_back = st.foreign is not None
        if came_back:
            log.info("point %s now acknowledges this central's downlink epoch", site)
            st.foreign = None
        if ack.upto > st.queued and site not in self._ahead_logged:
            self._ahead_logged.add(site)
            log.error(
                "point %s acknowledges downlink seq %d, beyond the %d queued here: this "
                "database is older than what the point applied (restored from a backup?); "
                "records queued from now on under seqs it already has would be skipped",
                site,
                ack.upto,
                st.queued,
            )
        self.store.note_down_ack(site, ack.upto)
        before, st.station = st.station, ack.upto
        while st.inflight and st.inflight[0] <= ack.upto:
            st.inflight.popleft()
        if came_back or (not ack.epoch and ack.upto < before):
            # it took this epoch again (accept-epoch) or started over (a new card)
            self._rewind(site, st, "the point starts its downlink over")
        st.sent = max(st.sent, st.station)
        if st.sent <= ack.upto:
            st.stalled_at = None  # all it was sent is applied
        elif ack.upto > before or st.stalled_at is None:
            st.stalled_at = now  # heard; the rest should follow within resend_s

    def _rewind(self, site: str, st: _Site, why: str) -> None:
        log.info("downlink to %s: sending again from seq %d (%s)", site, st.station + 1, why)
        st.sent = st.station
        st.inflight.clear()
        st.stalled_at = None
        st.attempt += 1

    def _pump(self, site: str, st: _Site, now: float) -> None:
        if st.foreign is not None:
            return
        if (
            st.stalled_at is not None
            and st.sent > st.station
            and now - st.stalled_at >= self.resend_s
        ):
            self._rewind(site, st, f"no progress for {self.resend_s:.0f} s")
        while st.sent < st.queued and len(st.inflight) < self.window:
            records = self.store.down_records(site, st.sent, self.batch_records)
            if not records:
                break
            for first, last, payload in pack(site, self._epoch, records, st.attempt):
                self.client.publish(f"{self.prefix}/{site}/down", payload, qos=1)
                st.inflight.append(last)
                st.sent = last
                log.debug("downlink to %s: published %d-%d", site, first, last)
        if st.sent > st.noted_sent:
            self.store.note_down_sent(site, st.sent)
            st.noted_sent = st.sent


# -- one-shot, for the import CLI ------------------------------------------------------------


def send_pending(
    store: CentralStore,
    broker: str,
    *,
    tls: Any = None,
    prefix: str = "edge",
    sites: Iterable[str] | None = None,
    timeout_s: float = 30.0,
    client_id: str | None = None,
) -> dict[str, Any]:
    """Publish every record queued and not yet acknowledged (of ``sites``, or all) to
    the broker at ``broker`` (``mqtt://`` or ``mqtts://`` with ``tls``: anything with
    ``ca_file``, ``cert_file``, ``key_file``, as edge.central.ingest.TlsFiles), then
    wait up to ``timeout_s`` for the points' acknowledgements (0: only for the
    broker's PUBACKs). Returns ``{"published": records, "batches": n, "acknowledged":
    records newly acknowledged, "pending": records still unacknowledged, "sites":
    {site: {"queued_upto", "acked_upto"}}}``. Raises ConnectionError when the broker
    cannot be reached or refuses the connection."""
    address = parse_broker_url(broker)
    wanted = set(sites) if sites is not None else None
    epoch = store.down_epoch()
    rows = [r for r in store.down_progress() if wanted is None or r["site"] in wanted]
    queued = {r["site"]: int(r["queued_upto"]) for r in rows}
    before = {r["site"]: int(r["acked_upto"]) for r in rows}
    heard = dict(before)
    lock = threading.Lock()
    connected = threading.Event()
    subscribed = threading.Event()
    refused: list[str] = []

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or f"edge-central-import-{socket.gethostname()}",
        protocol=mqtt.MQTTv5,
    )
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
        )

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        site = parse_downack_topic(prefix, msg.topic)
        ack = read_ack(bytes(msg.payload)) if site in queued else None
        if site is None or ack is None or (ack.epoch and ack.epoch != epoch):
            return
        with lock:
            heard[site] = max(heard[site], ack.upto)

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    deadline = time.monotonic() + max(timeout_s, 10.0)
    try:
        client.connect(address.host, address.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"cannot reach broker {address.host}:{address.port}: {exc}") from None
    client.loop_start()
    try:
        if not connected.wait(10) or refused:
            why = refused[0] if refused else "no answer in 10 s"
            raise ConnectionError(f"broker {address.host}:{address.port} refused: {why}")
        if timeout_s > 0:
            client.subscribe(f"{prefix}/+/downack", options=SubscribeOptions(qos=1))
            subscribed.wait(10)
        published = batches = 0
        infos: list[mqtt.MQTTMessageInfo] = []
        for site in sorted(queued):
            after = before[site]
            while after < queued[site]:
                records = store.down_records(site, after, 1000)
                if not records:
                    break
                for _first, last, payload in pack(site, epoch, records):
                    infos.append(client.publish(f"{prefix}/{site}/down", payload, qos=1))
                    batches += 1
                    published += last - after
                    after = last
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if timeout_s > 0:
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                with lock:
                    if all(heard[s] >= queued[s] for s in queued):
                        break
                time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        final = dict(heard)
    for site, upto in final.items():
        if upto > before[site]:
            store.note_down_ack(site, upto)
    acked = {s: min(final[s], queued[s]) for s in queued}
    return {
        "published": published,
        "batches": batches,
        "acknowledged": sum(acked[s] - min(before[s], queued[s]) for s in queued),
        "pending": sum(queued[s] - acked[s] for s in queued),
        "sites": {s: {"queued_upto": queued[s], "acked_upto": acked[s]} for s in sorted(queued)},
    }
