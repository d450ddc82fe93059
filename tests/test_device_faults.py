"""Device faults as staff read them: each fault a code and one sentence in Vietnamese and
in English saying what happened and what to do, never the raw error text (edge.faults);
the real scale reader and printer worker record the right fault; GET /api/state with a
real pty scale whose port disappears and a printer port that refuses; the page shows the
sentence and "chưa kiểm tra" until the printer has answered."""

from __future__ import annotations

import errno
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import serial
from playwright.sync_api import Browser, expect

from edge.camera.capture import open_failed_error
from edge.faults import (
    HELD_CONNECTION,
    HELD_RESTART,
    Fault,
    PrinterFault,
    ScaleFault,
    camera_fault,
    held_fault,
    job_fault,
    printer_condition_fault,
    printer_fault,
    printer_fault_of,
    scale_fault,
    scale_open_fault,
)
from edge.printer.profiles import load_profile
from edge.printer.status import Condition, Paper, query, reply_bytes
from edge.printer.transport import (
    Connection,
    FileTransport,
    NetworkTransport,
    PrinterInterrupted,
    PrinterUnavailable,
    Transport,
)
from edge.printer.worker import PrinterStatus, PrinterWorker
from edge.scale.protocols import SimState
from edge.scale.reader import ScaleReader
from edge.scale.simulator import ScaleSimulator
from edge.scale.state import ScaleStatus
from edge.storage.print_queue import PrintQueue
from edge.storage.store import Store
from edge.worker import Backoff
from rigs.helpers import PortHold, StationServer, settle, station_config, wait_for
from rigs.printer_listener import PrinterListener
from tests.browser import by_id, open_page
from tests.test_scale_reader import PtyPeer, wait_state

SLOW = 10.0
VIETNAMESE = re.compile(r"[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]")
RAW = re.compile(r"Errno|errno|Traceback|\bport \S+ not found|Input/output|refused|reset by")


def assert_staff_sentence(fault: Fault | dict[str, Any] | None, code: str) -> None:
    """One fault: its code, a Vietnamese and an English sentence, no raw error text."""
    assert fault is not None, f"no fault, expected {code}"
    data = fault.as_json() if isinstance(fault, Fault) else fault
    assert data["code"] == code
    vi, en = data["message"], data["message_en"]
    assert VIETNAMESE.search(vi), f"not Vietnamese: {vi!r}"
    assert not VIETNAMESE.search(en), f"not English: {en!r}"
    for text in (vi, en):
        assert text.rstrip().endswith("."), f"not a sentence: {text!r}"
        assert not RAW.search(text), f"raw error text shown to staff: {text!r}"


# -- the pure mapping ----------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ScaleFault))
def test_every_scale_fault_is_a_sentence_in_both_languages(code: ScaleFault) -> None:
    assert_staff_sentence(scale_fault(code), code.value)


def test_scale_faults_each_say_something_else() -> None:
    texts = [scale_fault(c) for c in ScaleFault]
    assert len({f.message for f in texts if f}) == len(ScaleFault)
    assert len({f.message_en for f in texts if f}) == len(ScaleFault)
    assert scale_fault(None) is None


def _serial_open_error(err: int, text: str) -> serial.SerialException:
    """What pyserial raises for a port it cannot open (errno set, the path in the text)."""
    return serial.SerialException(err, f"could not open port var/scale-sim: [Errno {err}] {text}")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_serial_open_error(errno.ENOENT, "No such file or directory"), ScaleFault.PORT_MISSING),
        (_serial_open_error(errno.ENODEV, "No such device"), ScaleFault.PORT_MISSING),
        (_serial_open_error(errno.EACCES, "Permission denied"), ScaleFault.PERMISSION),
        (_serial_open_error(errno.EBUSY, "Device or resource busy"), ScaleFault.PORT_BUSY),
        (_serial_open_error(errno.EINVAL, "Invalid argument"), ScaleFault.OPEN_FAILED),
        (ValueError("no errno at all"), ScaleFault.OPEN_FAILED),
    ],
)
def test_errors_opening_the_scale_port_are_sorted(exc: BaseException, code: ScaleFault) -> None:
    assert scale_open_fault(exc) is code
    fault = scale_fault(code)
    assert fault is not None and str(exc) not in fault.message + fault.message_en


@pytest.mark.parametrize("code", list(PrinterFault))
def test_every_printer_fault_is_a_sentence_in_both_languages(code: PrinterFault) -> None:
    assert_staff_sentence(printer_fault(code), code.value)


def _raised(outer: type[Exception], message: str, inner: BaseException) -> BaseException:
    """``outer(message)`` raised from ``inner``, as the transports do."""
    try:
        raise outer(message) from inner
    except outer as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), PrinterFault.REFUSED),
        (TimeoutError("timed out"), PrinterFault.TIMEOUT),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), PrinterFault.TIMEOUT),
        (socket.gaierror(-2, "Name or service not known"), PrinterFault.HOST_UNKNOWN),
        (OSError(errno.EHOSTUNREACH, "No route to host"), PrinterFault.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), PrinterFault.UNREACHABLE),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), PrinterFault.DROPPED),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), PrinterFault.DROPPED),
        (OSError(errno.EIO, "Input/output error"), PrinterFault.DROPPED),
        (_serial_open_error(errno.ENOENT, "No such file"), PrinterFault.DEVICE_MISSING),
        (OSError(errno.EACCES, "Permission denied"), PrinterFault.PERMISSION),
        (OSError(errno.EBUSY, "Device or resource busy"), PrinterFault.BUSY),
        (
            _raised(
                PrinterUnavailable,
                "printer 127.0.0.1:9109 not reachable: connection refused; check the printer",
                ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            ),
            PrinterFault.REFUSED,
        ),
        (PrinterUnavailable("lp is missing", PrinterFault.SETUP), PrinterFault.SETUP),
        (
            PrinterInterrupted("failed after 2000 of 9000 bytes", 2000, 9000),
            PrinterFault.INTERRUPTED,
        ),
        (RuntimeError("something nobody foresaw"), PrinterFault.UNREACHABLE),
    ],
)
def test_transport_errors_are_sorted(exc: BaseException, code: PrinterFault) -> None:
    fault = printer_fault_of(exc)
    assert fault.code == code.value
    assert str(exc) not in fault.message + fault.message_en


def test_a_real_refusing_printer_port_is_refused() -> None:
    with PortHold() as held:  # bound, never listening: connections are refused
        transport = NetworkTransport("127.0.0.1", held.port, timeout_s=2.0)
        with pytest.raises(PrinterUnavailable) as caught:
            transport.connect()
    fault = printer_fault_of(caught.value)
    assert_staff_sentence(fault, "printer_refused")
    assert str(held.port) not in fault.message  # the raw text named the port: log only


@pytest.mark.parametrize(
    ("condition", "paper", "code"),
    [
        (Condition.PAPER_OUT, Paper.OUT, "printer_paper_out"),
        (Condition.COVER_OPEN, Paper.OK, "printer_cover_open"),
        (Condition.ERROR, Paper.OK, "printer_error"),
        (Condition.OFFLINE, Paper.OK, "printer_offline"),
        (Condition.UNKNOWN, Paper.UNKNOWN, "printer_status_unknown"),
        (Condition.READY, Paper.NEAR_END, "printer_paper_near_end"),
        (Condition.READY, Paper.OK, None),
        (Condition.READY, Paper.UNKNOWN, None),
    ],
)
def test_what_the_printer_says_is_a_sentence(
    condition: Condition, paper: Paper, code: str | None
) -> None:
    fault = printer_condition_fault(condition, paper)
    if code is None:
        assert fault is None
    else:
        assert_staff_sentence(fault, code)


def test_esc_pos_status_bytes_give_the_sentence() -> None:
    """From the printer's real reply bytes (DLE EOT) to what staff read."""
    for state, code in [
        ({"paper": Paper.OUT}, "printer_paper_out"),
        ({"cover_open": True}, "printer_cover_open"),
        ({"error": True}, "printer_error"),
        ({"online": False}, "printer_offline"),
    ]:
        replies = reply_bytes(**state)  # type: ignore[arg-type]
        report = query(lambda request, r=replies: r[request[2]])  # type: ignore[misc]
        assert_staff_sentence(printer_condition_fault(report.condition, report.paper), code)


@pytest.mark.parametrize(
    ("printer_status", "code", "words"),
    [
        (HELD_RESTART, "held_restart", "mất điện"),
        (None, "held_restart", "mất điện"),  # held at start by an older version
        (HELD_CONNECTION, "held_connection", "Mất kết nối với máy in"),
        ("paper_out", "held_paper_out", "hết giấy"),
        ("cover_open", "held_cover_open", "Nắp máy in"),
        ("error", "held_printer_error", "báo lỗi"),
        ("offline", "held_printer_offline", "tạm dừng"),
        ("something-new", "held_connection", "Mất kết nối với máy in"),
    ],
)
def test_a_held_label_says_what_cut_it_off(
    printer_status: str | None, code: str, words: str
) -> None:
    fault = held_fault(printer_status)
    assert_staff_sentence(fault, code)
    assert words in fault.message and "“In lại”" in fault.message
    assert "Print again" in fault.message_en


def test_only_a_restart_blames_a_power_cut() -> None:
    blamed = [s for s in (HELD_CONNECTION, "paper_out", "cover_open", "error", "offline")]
    assert all("mất điện" not in held_fault(s).message for s in blamed)
    assert "power" in held_fault(HELD_RESTART).message_en


def test_job_faults() -> None:
    assert job_fault("printed", None) is None
    assert job_fault("queued", None) is None  # next in line: nothing wrong
    assert_staff_sentence(job_fault("queued", "unreachable"), "printer_unreachable")
    assert_staff_sentence(job_fault("queued", "paper_out"), "printer_paper_out")
    assert_staff_sentence(job_fault("held", "restart"), "held_restart")
    assert_staff_sentence(job_fault("failed", None), "printer_job_broken")


@pytest.mark.parametrize("code", ["no_device", "no_frame", "open_failed", "no_camera"])
def test_camera_faults(code: str) -> None:
    assert_staff_sentence(camera_fault(code, "0"), f"camera_{code}")


def test_opencv_words_stay_out_of_the_camera_sentence() -> None:
    raw = "OpenCV(4.9.0) /io/opencv/modules/videoio/src/cap_v4l.cpp:999: error: (-215)"
    err = open_failed_error("/dev/video0", raw)
    assert raw not in err.message and raw not in err.message_en
    assert "máy ảnh" in err.message and err.code == "open_failed"


# -- the real scale reader records the fault -----------------------------------------------


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-scale-if00"


def test_reader_missing_port(tmp_path: Path) -> None:
    reader = ScaleReader(str(tmp_path / "no-such-port"), stale_after_s=0.5)
    assert reader.state.fault is ScaleFault.STOPPED  # not started yet
    reader.start()
    try:
        state = wait_state(reader, lambda s: s.fault is ScaleFault.PORT_MISSING, "missing", SLOW)
        assert state.status is ScaleStatus.OFFLINE
        assert state.error is not None and "not found" in state.error  # raw: for the log
    finally:
        reader.stop()


def test_reader_unplugged_silent_and_garbled(link: Path) -> None:
    sim = ScaleSimulator(link, weight_g=1234, interval_s=0.02, settle_frames=10)
    sim.start()
    reader = ScaleReader(str(link), stale_after_s=0.5)
    reader.start()
    try:
        wait_state(reader, lambda s: s.status is ScaleStatus.STABLE, "stable", SLOW)
        assert reader.state.fault is None
        sim.silence(True)
        wait_state(reader, lambda s: s.fault is ScaleFault.SILENT, "silent", SLOW)

        def noise() -> bool:
            sim.send_noise(b"\x00\xff wrong baud rate garbage\r\n")
            return reader.state.fault is ScaleFault.GARBLED

        wait_for(noise, SLOW, "garbled")
        sim.silence(False)
        wait_state(reader, lambda s: s.fault is None, "reading again", SLOW)
        sim.unplug()  # the cable pulled: the hang-up, then the port gone
        wait_state(reader, lambda s: s.fault is ScaleFault.DISCONNECTED, "pulled", SLOW)
        wait_state(reader, lambda s: s.fault is ScaleFault.PORT_MISSING, "gone", SLOW)
    finally:
        reader.stop()
        sim.stop()
    assert reader.state.fault is ScaleFault.STOPPED


# -- the printer worker: "unknown" until answered, and why a label was held ----------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", "test-site")
    yield s
    s.close()


def _stop(worker: PrinterWorker) -> None:
    worker.stop()


def test_printer_is_unknown_until_it_has_taken_a_job(store: Store, tmp_path: Path) -> None:
    worker = PrinterWorker(store, FileTransport(tmp_path / "prints"), "Sìn Hồ", 384, idle_s=0.02)
    assert worker.state_json()["status"] == "unknown" and worker.state_json()["fault"] is None
    worker.start()
    try:
        worker.wait(0.3)  # idle, no job: nothing has answered, so still not "ready"
        assert worker.status is PrinterStatus.UNKNOWN
        job = PrintQueue(store).enqueue("text", {"lines": ["Sâm Lai Châu"]})
        worker.wake()
        wait_for(lambda: PrintQueue(store).get(job)["status"] == "printed", SLOW, "printed")
        wait_for(lambda: worker.status is PrinterStatus.READY, SLOW, "ready once it took one")
    finally:
        _stop(worker)


def _tcp_worker(store: Store, port: int, check_every_s: float = 60.0) -> PrinterWorker:
    """A printer worker on a network printer at ``port`` (a PrinterListener's)."""
    transport = NetworkTransport("127.0.0.1", port, timeout_s=5.0, status_timeout_s=5.0)
    return PrinterWorker(store, transport, "Sìn Hồ", 384, idle_s=0.02, check_every_s=check_every_s)


def test_printer_answering_a_status_query_is_checked(store: Store, tmp_path: Path) -> None:
    with PrinterListener() as printer:
        worker = _tcp_worker(store, printer.port)
        assert worker.status is PrinterStatus.UNKNOWN
        worker.start()
        try:
            # idle: asked once at the start, before any label
            wait_for(lambda: worker.status is PrinterStatus.READY, SLOW, "ready, asked idle")
            assert worker.state_json()["condition"] == "ready" and worker.checked_at
            assert printer.jobs == [] and printer.status_queries
            PrintQueue(store).enqueue("text", {"lines": ["x"]})
            worker.wake()
            printer.wait_for_jobs(1, timeout=SLOW)
            wait_for(lambda: worker.status is PrinterStatus.READY, SLOW, "ready")
        finally:
            _stop(worker)


def test_an_idle_printer_that_is_off_or_out_of_paper_shows_before_any_label(
    store: Store,
) -> None:
    printer = PrinterListener().reserve()  # switched off: its port refuses connections
    try:
        worker = _tcp_worker(store, printer.port, check_every_s=0.2)
        worker.start()
        try:
            wait_for(lambda: worker.status is PrinterStatus.OFFLINE, SLOW, "offline, idle")
            fault = worker.state_json()["fault"]
            assert fault["code"] == "printer_refused" and "Errno" not in fault["message"]
            printer.set_state(paper=Paper.OUT)
            printer.start()  # switched on, without paper
            wait_for(lambda: worker.status is PrinterStatus.PAPER_OUT, SLOW, "paper out, idle")
            assert worker.state_json()["fault"]["code"] == "printer_paper_out"
            printer.set_state(paper=Paper.OK)
            wait_for(lambda: worker.status is PrinterStatus.READY, SLOW, "paper back")
            assert printer.jobs == [] and PrintQueue(store).counts()["queued"] == 0
        finally:
            _stop(worker)
    finally:
        printer.close()


class _CutConnection(Connection):
    """A printer that answers status from ``state`` and cuts the job off after 100 bytes."""

    can_read = True

    def __init__(self, owner: _CutOffPrinter) -> None:
        self.owner = owner

    def exchange(self, request: bytes) -> int | None:
        return reply_bytes(**self.owner.state)[request[2]]

    def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
        self.owner.state = self.owner.after_cut
        raise PrinterInterrupted(
            f"printer failed after 100 of {len(data)} bytes were sent: [Errno 104] reset",
            100,
            len(data),
        )


class _CutOffPrinter(Transport):
    can_read = True
    description = "test printer"

    def __init__(self, after_cut: dict[str, Any]) -> None:
        self.state: dict[str, Any] = {}
        self.after_cut = after_cut

    def connect(self) -> Connection:
        return _CutConnection(self)


@pytest.mark.parametrize(
    ("after_cut", "printer_status", "held_code", "status", "state_code"),
    [
        ({"paper": Paper.OUT}, "paper_out", "held_paper_out", "paper_out", "printer_paper_out"),
        ({"cover_open": True}, "cover_open", "held_cover_open", "cover_open", "printer_cover_open"),
        ({}, "interrupted", "held_connection", "offline", "printer_interrupted"),
    ],
)
def test_a_cut_off_label_records_what_the_printer_said(
    store: Store,
    after_cut: dict[str, Any],
    printer_status: str,
    held_code: str,
    status: str,
    state_code: str,
) -> None:
    queue = PrintQueue(store)
    job = queue.enqueue("text", {"lines": ["Sâm Lai Châu"]})
    worker = PrinterWorker(
        store,
        _CutOffPrinter(after_cut),
        "Sìn Hồ",
        384,
        idle_s=0.02,
        profile=load_profile("generic-58mm"),
        hold_retry_s=0.05,
        backoff=Backoff(base_s=0.05, cap_s=0.1),
    )
    worker.start()
    try:
        wait_for(lambda: queue.get(job)["status"] == "held", SLOW, "held")
        wait_for(lambda: worker.status.value == status, SLOW, f"worker {status}")
    finally:
        _stop(worker)
    row = queue.get(job)
    assert row["printer_status"] == printer_status and row["bytes_sent"] == 100
    assert "[Errno 104]" in row["last_error"]  # the raw text is kept for the record...
    assert_staff_sentence(job_fault(row["status"], row["printer_status"]), held_code)
    assert_staff_sentence(worker.state_json()["fault"], state_code)  # ...staff read this
    entry = queue.history(job)[-1]
    assert entry["action"] == "print.held" and entry["detail"]["cause"] == printer_status


def test_a_label_cut_off_by_a_restart_says_so(store: Store) -> None:
    queue = PrintQueue(store)
    job = queue.enqueue("text", {"lines": ["x"]})
    queue.mark_sending(job)
    assert queue.hold_interrupted() == 1  # what Station.start() does
    row = queue.get(job)
    assert (row["status"], row["printer_status"]) == ("held", "restart")
    assert_staff_sentence(job_fault(row["status"], row["printer_status"]), "held_restart")


# -- the API and the page against a real station -------------------------------------------


def _state(c: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = c.get("/api/state").json()
    return body


def _no_raw_text(body: object) -> None:
    text = json.dumps(body, ensure_ascii=False)
    for raw in ("Errno", "Input/output", "not found", "connection refused", "not reachable"):
        assert raw not in text, f"raw error text {raw!r} in {text}"


def test_state_explains_a_vanished_scale_and_a_refusing_printer(tmp_path: Path) -> None:
    link = tmp_path / "serial" / "by-id" / "usb-scale-if00"
    printer = PrinterListener().reserve()  # its port held, not listening: refused
    scale = {
        "type": "serial",
        "port": str(link),
        "protocol": "toledo-8217",
        "poll_rate_hz": 20,
        "stale_after_s": 1.0,
    }
    uri = f"tcp://127.0.0.1:{printer.port}?timeout=2"
    cfg = station_config(tmp_path, scale=scale, printer={"uri": uri})
    try:
        with (
            PtyPeer(link, "toledo-8217", SimState(800)) as peer,
            StationServer(cfg) as server,
            server.client(role="lead") as c,
        ):
            # asked while idle, before any label: the printer refuses, and staff read why
            wait_for(lambda: _state(c)["printer"]["status"] == "offline", SLOW, "offline")
            p = _state(c)["printer"]
            assert p["fault"]["code"] == "printer_refused"
            assert "error" not in p and "error_en" not in p
            wait_for(lambda: _state(c)["scale"]["status"] == "stable", SLOW, "stable")
            assert _state(c)["scale"]["fault"] is None

            producer = c.post("/api/producers", json={"name": "Lò Văn Pọm"}).json()["id"]
            product = c.post("/api/products", json={"name": "Chè búp tươi"}).json()["id"]
            body = {"producer_id": producer, "product_id": product}
            assert c.post("/api/lots", json=body).status_code == 201
            wait_for(lambda: _state(c)["printer"]["status"] == "offline", SLOW, "printer off")
            p = _state(c)["printer"]
            assert_staff_sentence(p["fault"], "printer_refused")
            assert str(printer.port) not in p["fault"]["message"]
            # the printer was already known offline: the job's own try may come after
            (job,) = wait_for(
                lambda: [j for j in c.get("/api/print-jobs").json() if j["fault"]], SLOW, "a try"
            )
            assert job["status"] == "queued" and "last_error" not in job
            assert_staff_sentence(job["fault"], "printer_unreachable")

            peer.unplug()  # the scale's USB adapter pulled out: the port is gone
            wait_for(
                lambda: (_state(c)["scale"]["fault"] or {}).get("code") == "scale_port_missing",
                SLOW,
                "the scale's port missing",
            )
            state = _state(c)
            assert state["scale"]["status"] == "offline" and "error" not in state["scale"]
            assert_staff_sentence(state["scale"]["fault"], "scale_port_missing")
            assert str(link) not in json.dumps(state["scale"]["fault"], ensure_ascii=False)
            _no_raw_text(state)
            _no_raw_text(c.get("/api/print-jobs").json())

            peer.replug()
            wait_for(lambda: _state(c)["scale"]["status"] == "stable", SLOW, "back")
            assert _state(c)["scale"]["fault"] is None
    finally:
        printer.close()


def test_page_shows_the_sentence_and_not_checked_yet(tmp_path: Path, browser: Browser) -> None:
    with StationServer(station_config(tmp_path)) as server:
        page = open_page(browser, server, 1024, 600, role="lead")
        printer = by_id(page, "printer-status")
        expect(printer).to_have_attribute("data-status", "unknown")
        expect(printer).to_have_text("Chưa kiểm tra")  # not "Sẵn sàng" before any answer
        expect(by_id(page, "printer-error")).to_be_hidden()

        with server.client(role="lead") as c:  # the simulated scale's cable pulled
            assert c.post("/api/simulator", json={"connected": False}).status_code == 200
        detail = by_id(page, "scale-detail")
        expect(detail).to_have_attribute(
            "data-fault", re.compile(r"scale_(port_missing|disconnected)")
        )
        expect(detail).to_contain_text("Cắm lại cáp")
        expect(detail).not_to_contain_text("not found")
        expect(detail).not_to_contain_text("Errno")
        expect(detail).not_to_contain_text(str(tmp_path))

        by_id(page, "lang-toggle").click()  # English mode: the same fault in English
        expect(printer).to_have_text("Not checked yet")
        expect(detail).to_contain_text("Plug it back in")
        by_id(page, "lang-toggle").click()
        with server.client(role="lead") as c:
            assert c.post("/api/simulator", json={"connected": True}).status_code == 200
        expect(detail).to_be_hidden()

        with server.client(role="lead") as c:  # a lot whose label prints: the printer answered
            producer = c.post("/api/producers", json={"name": "Lò Văn Pọm"}).json()["id"]
            product = c.post("/api/products", json={"name": "Chè búp tươi"}).json()["id"]
            settle(c, 2500)
            body = {"producer_id": producer, "product_id": product}
            assert c.post("/api/lots", json=body).status_code == 201
            wait_for(lambda: c.get("/api/print-jobs").json()[0]["status"] == "printed", SLOW, "")
        expect(printer).to_have_text("Sẵn sàng")

        # A label the printer cut off when it ran out of paper says so, not "power cut".
        job_id = server.station.db.rows("SELECT id FROM print_jobs")[0]["id"]
        with server.station.db.write() as db:
            db.execute(
                "UPDATE print_jobs SET status = 'held', printer_status = 'paper_out' WHERE id = ?",
                [job_id],
            )
        why = by_id(page, "held-why")
        expect(why).to_have_attribute("data-fault", "held_paper_out")
        expect(why).to_contain_text("Máy in hết giấy khi đang in nhãn này")
        expect(why).not_to_contain_text("mất điện")
        assert page.errors == []  # type: ignore[attr-defined]
