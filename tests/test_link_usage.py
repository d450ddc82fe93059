"""Link usage: monthly byte totals in a real SQLite file (migration 0006 on an
existing station database), and the byte meter on real TCP sockets and a real
paho client talking to a real mosquitto."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.storage import db as dbmod
from edge.storage.store import Store
from edge.sync.usage import (
    HEADER_BYTES_IPV4,
    PUBACK_SIZE,
    LinkMeter,
    LinkUsage,
    MonthUsage,
    TcpCounts,
    month_of,
    parse_tcp_info,
    publish_packet_size,
    read_tcp_counts,
)
from rigs.helpers import Broker, wait_for

MIGRATION_SUFFIX = "_link_usage.sql"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", "site-a")
    yield s
    s.close()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- months ------------------------------------------------------------------------------------


def test_month_is_the_utc_calendar_month() -> None:
    assert month_of(_at("2026-11-23T10:00:00+00:00")) == "2026-11"
    # 06:30 on 1 February in Vietnam is still January in UTC
    assert month_of(_at("2026-02-01T06:30:00+07:00")) == "2026-01"
    assert month_of(_at("2026-12-31T23:59:59.999+00:00")) == "2026-12"
    assert month_of(_at("2027-01-01T00:00:00+00:00")) == "2027-01"


def test_month_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        month_of(datetime(2026, 11, 23))


# -- persisted totals --------------------------------------------------------------------------


def test_add_accumulates_within_a_month(store: Store) -> None:
    usage = LinkUsage(store)
    now = _at("2026-11-23T10:00:00+00:00")
    assert usage.month(now) == MonthUsage("2026-11", 0, 0)
    usage.add(1000, 200, now)
    usage.add(24, 0, now + timedelta(hours=5))
    usage.add(0, 0, now)  # nothing: no write
    assert usage.month(now) == MonthUsage("2026-11", 1024, 200)
    assert usage.used_this_month(now) == 1224
    [row] = store.rows("SELECT * FROM link_usage")
    assert row["updated_at"] == "2026-11-23T15:00:00.000Z"


def test_a_new_month_starts_at_zero(store: Store) -> None:
    usage = LinkUsage(store)
    usage.add(5_000_000, 300_000, _at("2026-11-30T23:59:59+00:00"))
    december = _at("2026-12-01T00:00:00+00:00")
    assert usage.used_this_month(december) == 0
    usage.add(10, 20, december)
    usage.add(1, 2, _at("2027-01-15T08:00:00+07:00"))
    assert usage.history() == [
        MonthUsage("2027-01", 1, 2),
        MonthUsage("2026-12", 10, 20),
        MonthUsage("2026-11", 5_000_000, 300_000),
    ]
    assert usage.history(months=1) == [MonthUsage("2027-01", 1, 2)]
    assert usage.month(_at("2026-11-02T00:00:00+00:00")).total == 5_300_000


def test_an_unsynchronised_clock_never_goes_back_a_month(store: Store) -> None:
    usage = LinkUsage(store)
    usage.add(100, 10, _at("2026-12-02T08:00:00+00:00"))
    # power cut, no network: the clock restarts from a saved time in November
    stale = _at("2026-11-29T21:00:00+00:00")
    assert usage.month(stale, clock_synced=False) == MonthUsage("2026-12", 100, 10)
    usage.add(5, 1, stale, clock_synced=False)
    assert usage.history() == [MonthUsage("2026-12", 105, 11)], "November is not charged"
    # unsynchronised but ahead of the latest month: that month
    usage.add(7, 0, _at("2027-01-01T00:10:00+00:00"), clock_synced=False)
    assert usage.used_this_month(_at("2027-01-05T00:00:00+00:00")) == 7
    # a synchronised clock is believed
    assert usage.used_this_month(stale) == 0


def test_an_unsynchronised_clock_on_a_new_database_uses_its_month(store: Store) -> None:
    usage = LinkUsage(store)
    usage.add(3, 4, _at("2026-11-29T21:00:00+00:00"), clock_synced=False)
    assert usage.history() == [MonthUsage("2026-11", 3, 4)]


@pytest.mark.parametrize(
    ("out", "in_", "what"), [(-1, 0, "bytes_out"), (0, -5, "bytes_in"), (1.5, 0, "bytes_out")]
)
def test_add_refuses_bad_counts_and_writes_nothing(
    store: Store, out: int, in_: int, what: str
) -> None:
    usage = LinkUsage(store)
    with pytest.raises(ValueError, match=what):
        usage.add(out, in_, _at("2026-11-23T10:00:00+00:00"))
    with pytest.raises(ValueError, match="bytes_out"):
        usage.add(True, 0, _at("2026-11-23T10:00:00+00:00"))
    with pytest.raises(ValueError, match="time zone"):
        usage.add(1, 1, datetime(2026, 11, 23))
    assert store.rows("SELECT count(*) AS n FROM link_usage")[0]["n"] == 0


def test_totals_survive_a_restart_and_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "station.db"
    now = _at("2026-11-23T10:00:00+00:00")
    stores = [Store.open(path, "site-a") for _ in range(3)]
    try:

        def writer(s: Store) -> None:
            usage = LinkUsage(s)
            for _ in range(50):
                usage.add(7, 3, now)

        threads = [threading.Thread(target=writer, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    reopened = Store.open(path, "site-a")
    try:
        assert LinkUsage(reopened).month(now) == MonthUsage("2026-11", 3 * 50 * 7, 3 * 50 * 3)
    finally:
        reopened.close()


def test_migration_applies_to_an_existing_station_database(tmp_path: Path) -> None:
    path = tmp_path / "station.db"
    [(mine, _, _)] = [m for m in dbmod.migrations() if m[1].endswith(MIGRATION_SUFFIX)]
    old = dbmod.connect(path)
    for number, _name, sql in dbmod.migrations():
        if number < mine:
            old.conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    old.conn.execute(
        "INSERT INTO producers(id, seq, site_id, name, created_at) "
        "VALUES ('p1', 1, 'site-a', 'Giàng Thị Mỷ', '2026-11-01T00:00:00.000Z')"
    )
    old.close()

    db = dbmod.open_database(path)
    try:
        assert dbmod.schema_version(db) >= mine
        assert [r["name"] for r in db.query("SELECT name FROM producers")] == ["Giàng Thị Mỷ"]
        columns = {c.name: c.type for c in db.table("link_usage").columns}
        assert columns == {
            "month": "TEXT",
            "bytes_out": "INTEGER",
            "bytes_in": "INTEGER",
            "updated_at": "TEXT",
        }
        backups = list(tmp_path.glob(f"station.db.v{mine - 1}-*.bak"))
        assert len(backups) == 1, "a copy is taken before migrating"
        store = Store(db, "site-a")
        LinkUsage(store).add(10, 20, _at("2026-11-23T10:00:00+00:00"))
        assert LinkUsage(store).history() == [MonthUsage("2026-11", 10, 20)]
        with pytest.raises(Exception, match="CHECK"):
            db.execute("INSERT INTO link_usage(month, bytes_out, bytes_in) VALUES ('Nov', 1, 1)")
        with pytest.raises(Exception, match="CHECK"):
            db.execute(
                "INSERT INTO link_usage(month, bytes_out, bytes_in) VALUES ('2026-10', -1, 1)"
            )
    finally:
        db.close()


# -- MQTT packet sizes (the fallback estimate) ------------------------------------------------


def test_publish_packet_sizes() -> None:
    # fixed header 1 + remaining length 1 + topic length 2 + "a/b" 3 + packet id 2 + 10
    assert publish_packet_size("a/b", 10, qos=1) == 19
    assert publish_packet_size("a/b", 10, qos=0) == 17
    assert publish_packet_size("a/b", 10, qos=1, mqtt_v5=True) == 20
    # remaining length 127 fits one byte, 128 needs two, 16384 three
    assert publish_packet_size("t", 127 - 5, qos=1) == 1 + 1 + 127
    assert publish_packet_size("t", 128 - 5, qos=1) == 1 + 2 + 128
    assert publish_packet_size("t", 16384 - 5, qos=1) == 1 + 3 + 16384
    assert publish_packet_size("điểm/thu", 0, qos=0) == 1 + 1 + 2 + len("điểm/thu".encode())
    with pytest.raises(ValueError, match="qos"):
        publish_packet_size("t", 1, qos=3)


# -- TCP_INFO ----------------------------------------------------------------------------------


def test_tcp_info_from_an_old_kernel() -> None:
    """Before Linux 4.19 the struct ends before bytes_sent: bytes_acked (minus the SYN)."""
    raw = bytearray(160)
    struct.pack_into("=QQII", raw, 120, 1001, 333, 9, 8)
    assert parse_tcp_info(bytes(raw)) == TcpCounts(1000, 333, 9, 8)
    assert parse_tcp_info(bytes(100)) is None, "too old to count: unknown, not zero"


def test_tcp_info_leaves_out_the_peers_fin() -> None:
    raw = bytearray(232)
    struct.pack_into("=QQII", raw, 120, 501, 334, 9, 8)
    struct.pack_into("=Q", raw, 200, 500)
    raw[0] = 1  # ESTABLISHED
    assert parse_tcp_info(bytes(raw)) == TcpCounts(500, 334, 9, 8)
    raw[0] = 8  # CLOSE_WAIT: the peer's FIN arrived and counts one
    assert parse_tcp_info(bytes(raw)) == TcpCounts(500, 333, 9, 8)


def _pair() -> tuple[socket.socket, socket.socket, socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    return server, client, peer


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "peer closed early"
        data += chunk
    return data


def test_meter_counts_the_bytes_of_a_real_connection_exactly() -> None:
    server, client, peer = _pair()
    try:
        meter = LinkMeter(header_bytes=0)
        meter.opened(client)
        client.sendall(b"x" * 5000)
        _recv_exactly(peer, 5000)
        peer.sendall(b"y" * 777)
        _recv_exactly(client, 777)
        meter.sample()
        assert meter.take() == (5000, 777)
        assert meter.take() == (0, 0), "take resets"
        client.sendall(b"z" * 100)
        _recv_exactly(peer, 100)
        meter.closed(client)
        assert not meter.tracking
        assert meter.take() == (100, 0), "the final reading before close"
        meter.sample()  # nothing open: nothing counted
        assert meter.take() == (0, 0) and meter.exact
    finally:
        for s in (client, peer, server):
            s.close()


def test_meter_adds_ip_and_tcp_headers_per_segment() -> None:
    server, client, peer = _pair()
    try:
        meter = LinkMeter()  # IPv4: 52 bytes a segment
        meter.opened(client)
        client.sendall(b"x" * 3000)
        _recv_exactly(peer, 3000)
        peer.sendall(b"y" * 10)
        _recv_exactly(client, 10)
        meter.closed(client)
        out, in_ = meter.take()
    finally:
        for s in (client, peer, server):
            s.close()
    # payload plus a whole number of segments (>= 2 each way: handshake and data)
    segs_out, rest_out = divmod(out - 3000, HEADER_BYTES_IPV4)
    segs_in, rest_in = divmod(in_ - 10, HEADER_BYTES_IPV4)
    assert (rest_out, rest_in) == (0, 0)
    assert segs_out >= 2 and segs_in >= 2


def test_meter_without_readable_counters_says_so() -> None:
    meter = LinkMeter()
    meter.opened(object())  # e.g. a websocket wrapper: no TCP_INFO
    assert not meter.exact
    meter.add_estimate(publish_packet_size("edge/a/records", 100), PUBACK_SIZE)
    assert meter.take() == (120, 4)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        assert read_tcp_counts(unix) is None


def test_meter_on_a_paho_client_counts_every_mqtt_byte(broker: Broker) -> None:
    """CONNECT + PUBLISH + DISCONNECT out, CONNACK + PUBACK in: computed by hand."""
    meter = LinkMeter(header_bytes=0)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="meter-test",
        protocol=mqtt.MQTTv311,
    )
    meter.attach(client)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", broker.port, keepalive=600)
    client.loop_start()
    try:
        assert connected.wait(10), "no CONNACK"
        assert meter.tracking
        payload = bytes(range(256)) * 12  # 3072 bytes
        client.publish("edge/site-a/records", payload, qos=1).wait_for_publish(10)
        meter.sample()
        mid_out, mid_in = meter.take()
        client.disconnect()
        wait_for(lambda: not meter.tracking, 10, "the socket to close")
    finally:
        client.loop_stop()
    end_out, end_in = meter.take()
    connect = 2 + 10 + 2 + len("meter-test")  # header, variable header, client id
    publish = publish_packet_size("edge/site-a/records", len(payload), qos=1)
    assert publish == 1 + 2 + 2 + 19 + 2 + 3072
    disconnect = 2
    connack = 4
    assert (mid_out, mid_in) == (connect + publish, connack + PUBACK_SIZE)
    # The broker closes on DISCONNECT; whether its FIN (one sequence number, no data) is
    # already in the kernel's count when paho reads it at close is a race the meter
    # cannot always see from tcpi_state: at most that one byte.
    assert end_out == disconnect and end_in in (0, 1)


def test_usage_and_meter_together_over_a_month_boundary(store: Store) -> None:
    """What the link worker does: sample, take, add at the wall time of the flush."""
    server, client, peer = _pair()
    usage = LinkUsage(store)
    vn = timezone(timedelta(hours=7))
    try:
        meter = LinkMeter(header_bytes=0)
        meter.opened(client)
        client.sendall(b"a" * 400)
        _recv_exactly(peer, 400)
        meter.sample()
        usage.add(*meter.take(), datetime(2026, 12, 1, 6, 59, tzinfo=vn))  # 30 Nov UTC
        client.sendall(b"b" * 600)
        _recv_exactly(peer, 600)
        meter.closed(client)
        usage.add(*meter.take(), datetime(2026, 12, 1, 7, 1, tzinfo=vn))
    finally:
        for s in (client, peer, server):
            s.close()
    assert usage.month(datetime(2026, 11, 30, tzinfo=UTC)) == MonthUsage("2026-11", 400, 0)
    assert usage.month(datetime(2026, 12, 1, tzinfo=UTC)) == MonthUsage("2026-12", 600, 0)
