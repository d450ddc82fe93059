"""The whole chain with real parts: simulated scale on a pseudo-terminal, the
HTTP API, a TCP listener where the printer would be, a mosquitto broker."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import zxingcpp

from edge.cli import main
from edge.printer.payload import load_site_key, verify
from rigs.escpos_decode import decode
from rigs.helpers import (
    Broker,
    PortHold,
    StationServer,
    process_client,
    settle,
    station_config,
    wait_for,
)
from rigs.printer_listener import PrinterListener
from rigs.sync_central import TestCentral


def _lot_ids(central: TestCentral) -> list[str]:
    """Lots central has stored (each once: it stores by site, stream and seq)."""
    return [r["id"] for r in central.records("test-site") if r["type"] == "lot"]


def _setup(c: httpx.Client, grams: int) -> tuple[str, str]:
    producer = c.post("/api/producers", json={"name": "Lò Văn Sáng"}).json()["id"]
    product = c.post("/api/products", json={"name": "Mật ong bạc hà"}).json()["id"]
    settle(c, grams)
    return producer, product


def _weigh_and_record(c: httpx.Client, producer: str, product: str, grams: int) -> dict[str, Any]:
    """One weighing, one lot (the station refuses a second lot from the same weighing)."""
    settle(c, grams)
    r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
    assert r.status_code == 201, r.text
    lot: dict[str, Any] = r.json()
    return lot


def test_lot_label_reaches_a_tcp_printer_with_the_lot_id_in_its_qr(tmp_path: Path) -> None:
    with PrinterListener() as printer:
        cfg = station_config(
            tmp_path, printer={"type": "network", "host": "127.0.0.1", "port": printer.port}
        )
        with StationServer(cfg) as server, server.client() as c:
            producer, product = _setup(c, 3120)
            lot = c.post("/api/lots", json={"producer_id": producer, "product_id": product}).json()
            printer.wait_for_jobs(1, timeout=10)
    decoded = decode(printer.jobs[0])
    assert decoded.cuts == 1
    [image] = decoded.images
    [code] = zxingcpp.read_barcodes(image.convert("L"))
    key = load_site_key(cfg.site.key_file)
    assert verify(code.text, key, site="test-site").ref == lot["id"]
    assert main(["label", "verify", code.text, "--key-file", str(cfg.site.key_file)]) == 0
    forged = code.text[:-1] + ("A" if code.text[-1] != "A" else "B")
    assert main(["label", "verify", forged, "--key-file", str(cfg.site.key_file)]) != 0


def test_printer_unreachable_then_back_prints_each_job_once(tmp_path: Path) -> None:
    printer = PrinterListener().reserve()  # its port held, not listening: the printer is off
    cfg = station_config(
        tmp_path,
        printer={"type": "network", "host": "127.0.0.1", "port": printer.port, "timeout_s": 1.0},
    )
    with StationServer(cfg) as server, server.client() as c:
        producer, product = _setup(c, 900)
        lots = [_weigh_and_record(c, producer, product, 900 + i) for i in range(3)]
        wait_for(
            lambda: server.station.printer and server.station.printer.status.value == "offline",
            10,
            "printer offline",
        )
        assert all(j["status"] == "queued" for j in c.get("/api/print-jobs").json())
        printer.start()
        try:
            printer.wait_for_jobs(3, timeout=20)
            wait_for(
                lambda: all(j["status"] == "printed" for j in c.get("/api/print-jobs").json()),
                10,
                "all jobs printed",
            )
        finally:
            printer.close()
    key = load_site_key(cfg.site.key_file)
    printed = [
        verify(zxingcpp.read_barcodes(decode(job).images[0].convert("L"))[0].text, key).ref
        for job in printer.jobs
    ]
    assert sorted(printed) == sorted(lot["id"] for lot in lots)
    assert len(printer.jobs) == 3, "each job printed exactly once"


def test_broker_outage_then_all_lots_delivered_once(tmp_path: Path, broker: Broker) -> None:
    # back-off capped at 2 s: the broker is back within the test's patience
    mqtt = {"enabled": True, "port": broker.port, "reconnect_min_s": 0.2, "reconnect_max_s": 2}
    mqtt["batch_max_age_s"] = 0.2  # the test's lots leave at once, not after the shipped 15 min
    cfg = station_config(tmp_path, mqtt=mqtt)
    central = TestCentral(broker.port)
    try:
        with StationServer(cfg) as server, server.client() as c:
            producer, product = _setup(c, 1500)
            wait_for(lambda: c.get("/api/state").json()["link"] == "online", 10, "station online")
            wait_for(
                lambda: c.get("/api/state").json()["outbox"]["pending"] == 0,
                10,
                "the farmer and the product confirmed",
            )
            broker.stop()
            wait_for(lambda: c.get("/api/state").json()["link"] == "offline", 10, "station offline")
            ids = []
            for i in range(50):
                ids.append(_weigh_and_record(c, producer, product, 1500 + i)["id"])
            assert c.get("/api/state").json()["outbox"]["pending"] == 50
            broker.start()
            wait_for(lambda: len(_lot_ids(central)) == 50, 30, "all 50 lots at central")
            wait_for(
                lambda: c.get("/api/state").json()["outbox"]["pending"] == 0, 10, "outbox drained"
            )
    finally:
        central.close()
    assert sorted(_lot_ids(central)) == sorted(ids)
    assert [r["seq"] for r in central.records("test-site")] == list(range(1, 53)), "no gap"


def _write_toml(path: Path, tmp: Path, web_port: int, printer_port: int, broker_port: int) -> None:
    path.write_text(
        f"""
[site]
id = "test-site"
name = "Điểm thu gom Sìn Hồ"
key_file = "{tmp / "site.key"}"
[scale]
type = "simulated"
link = "{tmp / "scale"}"
initial_weight_g = 4200
interval_s = 0.05
[printer]
type = "network"
host = "127.0.0.1"
port = {printer_port}
timeout_s = 1.0
[mqtt]
enabled = true
port = {broker_port}
batch_max_age_s = 0.2
reconnect_min_s = 0.2
reconnect_max_s = 2
[storage]
path = "{tmp / "station.db"}"
[web]
port = {web_port}
""",
        encoding="utf-8",
    )


def _start_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_power_cut_after_confirm_loses_nothing(tmp_path: Path, broker: Broker) -> None:
    web = PortHold()  # held by this process while the station's processes bind it beside
    web_port = web.port
    printer = PrinterListener().reserve()  # its port held, not listening: the printer is off
    config = tmp_path / "station.toml"
    _write_toml(config, tmp_path, web_port, printer.port, broker.port)
    url = f"http://127.0.0.1:{web_port}"
    central = TestCentral(broker.port)
    broker.stop()  # the village link is down too
    proc = _start_process(config, tmp_path / "station.log")
    try:
        with _signed_in(url, tmp_path, "the station process") as c:
            producer, product = _setup(c, 4200)
            r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
            assert r.status_code == 201, r.text
            lot_id = r.json()["id"]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        db = sqlite3.connect(tmp_path / "station.db")
        assert db.execute("SELECT net_g FROM lots WHERE id = ?", [lot_id]).fetchone() == (4200,)
        assert db.execute("SELECT status FROM outbox WHERE record_id = ?", [lot_id]).fetchone() == (
            "pending",
        )
        job_status = db.execute(
            "SELECT status FROM print_jobs WHERE record_id = ?", [lot_id]
        ).fetchone()[0]
        assert job_status in ("queued", "sending")
        db.close()

        broker.start()
        printer.start()
        proc = _start_process(config, tmp_path / "station.log")
        with _signed_in(url, tmp_path, "the restarted station") as c:
            wait_for(lambda: lot_id in _lot_ids(central), 20, "the lot at central")
            wait_for(
                lambda: c.get("/api/state").json()["outbox"]["pending"] == 0, 10, "outbox drained"
            )
            jobs = c.get("/api/print-jobs").json()
            [job] = [j for j in jobs if j["record_id"] == lot_id]
            if job_status == "sending":  # cut off mid-send: held until staff confirm, never lost
                assert job["status"] == "held"
            else:
                printer.wait_for_jobs(1, timeout=10)
                wait_for(
                    lambda: c.get("/api/print-jobs").json()[0]["status"] == "printed", 10, "printed"
                )
    finally:
        proc.kill()
        proc.wait(10)
        printer.close()
        web.close()
        central.close()
    assert _lot_ids(central) == [lot_id]
    assert max(central.deliveries.values()) == 1, "the restarted station sent it once"


def _up(c: httpx.Client) -> bool:
    try:
        return c.get("/").status_code == 200
    except httpx.TransportError:
        return False


def _signed_in(url: str, tmp: Path, what: str) -> httpx.Client:
    """A client signed in on the station process at ``url`` once it serves its page."""
    with httpx.Client(base_url=url) as c:
        wait_for(lambda: _up(c), 20, what)
    return process_client(url, tmp / "station.db", "test-site")


def test_scale_port_disappears_and_comes_back(tmp_path: Path) -> None:
    with StationServer(station_config(tmp_path)) as server, server.client() as c:
        producer, product = _setup(c, 700)
        c.post("/api/simulator", json={"connected": False})
        wait_for(lambda: c.get("/api/state").json()["scale"]["status"] == "offline", 20, "offline")
        r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
        assert r.json()["error"]["code"] == "scale_offline"
        c.post("/api/simulator", json={"connected": True})
        wait_for(  # about 1 s on an idle machine; the bound is for a loaded one
            lambda: c.get("/api/state").json()["scale"]["status"] == "stable",
            20,
            "readings to resume",
        )
        r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
        assert r.status_code == 201 and r.json()["net_g"] == 700
