"""Central's downlink sender step by step, on a real SQLite store, with a client that
records what is published and a clock of the test's own: the window, resending only
when a point is heard without progress, another epoch, a point that starts over, and
a restart from what was acknowledged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.central.downlink import DownlinkSender
from edge.central.store import CentralStore, open_store
from edge.sync.envelope import Ack, decode_batch, encode_ack

SITE = "sin-ho-01"


class Client:
    """What the sender publishes, as (topic, first, last, batch id)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, int, str]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        batch = decode_batch(payload, max_text=8192)
        self.sent.append((topic, batch.first, batch.last, batch.batch_id))

    def take(self) -> list[tuple[int, int]]:
        out = [(first, last) for _, first, last, _ in self.sent]
        self.sent.clear()
        return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CentralStore]:
    s = open_store(f"sqlite:///{tmp_path}/central.db")
    yield s
    s.close()


def products(n: int) -> list[dict[str, Any]]:
    return [{"type": "product", "name": f"Chè {i}", "unit_price_dong": i} for i in range(n)]


def ack(sender: DownlinkSender, upto: int, epoch: str, site: str = SITE) -> None:
    msg = mqtt.MQTTMessage(topic=f"edge/{site}/downack".encode())
    msg.payload = encode_ack(Ack("down", upto, epoch))
    assert sender.on_message(msg)


def make(store: CentralStore, client: Client) -> DownlinkSender:
    return DownlinkSender(store, client, window=3, batch_records=100, resend_s=30)  # type: ignore[arg-type]


def test_a_window_of_batches_then_one_more_per_ack(store: CentralStore) -> None:
    client = Client()
    sender = make(store, client)
    store.queue_down(SITE, products(450))
    sender.step(0.0)
    assert client.take() == [(1, 100), (101, 200), (201, 300)]
    assert client.sent == [] and store.down_progress()[0]["sent_upto"] == 300
    epoch = store.down_epoch()
    ack(sender, 100, epoch)
    sender.step(1.0)
    assert client.take() == [(301, 400)]
    ack(sender, 400, epoch)
    sender.step(2.0)
    assert client.take() == [(401, 450)]
    ack(sender, 450, epoch)
    sender.step(3.0)
    assert client.take() == []
    (row,) = store.down_progress()
    assert (row["acked_upto"], row["sent_upto"]) == (450, 450)


def test_a_silent_point_gets_nothing_again_a_stalled_one_does(store: CentralStore) -> None:
    client = Client()
    sender = make(store, client)
    store.queue_down(SITE, products(250))
    sender.step(0.0)
    assert client.take() == [(1, 100), (101, 200), (201, 250)]
    sender.step(3600.0)  # an hour offline: the broker holds them, nothing is sent again
    assert client.take() == []
    epoch = store.down_epoch()
    ack(sender, 100, epoch)  # it connects: 101-250 were lost on the way
    sender.step(3601.0)
    ack(sender, 100, epoch)  # a gap answered
    sender.step(3620.0)
    assert client.take() == []
    sender.step(3631.5)  # heard without progress for 30 s
    sent = list(client.sent)
    assert [(f, last) for _, f, last, _ in sent] == [(101, 200), (201, 250)]
    assert all(batch_id.endswith(":2") for *_, batch_id in sent)


def test_another_epoch_stops_the_sending_until_the_point_starts_over(
    store: CentralStore,
) -> None:
    client = Client()
    sender = make(store, client)
    store.queue_down(SITE, products(150))
    sender.step(0.0)
    client.take()
    ack(sender, 900, "fedcba9876543210")  # a point holding another central's downlink
    store.queue_down(SITE, products(300))
    sender.step(1.0)
    sender.step(100.0)
    assert client.take() == []
    assert store.down_progress()[0]["acked_upto"] == 0
    ack(sender, 0, "")  # `edge downlink accept-epoch` there, and a restart
    sender.step(101.0)
    assert client.take() == [(1, 100), (101, 200), (201, 300)]


def test_a_restarted_sender_starts_after_what_was_acknowledged(store: CentralStore) -> None:
    first = Client()
    sender = make(store, first)
    store.queue_down(SITE, products(400))
    sender.step(0.0)
    ack(sender, 200, store.down_epoch())
    sender.step(1.0)
    again = Client()
    make(store, again).step(0.0)
    assert again.take() == [(201, 300), (301, 400)]


def test_acks_on_other_topics_or_malformed_are_not_taken(store: CentralStore) -> None:
    sender = make(store, Client())
    msg = mqtt.MQTTMessage(topic=b"edge/sin-ho-01/records")
    assert not sender.on_message(msg)
    bad = mqtt.MQTTMessage(topic=b"edge/sin-ho-01/downack")
    bad.payload = b"\xff\x00garbage"
    assert sender.on_message(bad)  # ours, ignored (logged)
    sender.step(0.0)
    assert store.down_progress() == []
