"""The durable print queue against a real TCP printer listener: every job printed exactly
once across an outage, a printer out of paper holds the queue and it drains in order when
the paper is back, a job cut off mid-way is held until staff confirm, and a printer that
does not answer status queries is "unknown", never "fine"."""

from __future__ import annotations

import os
import pty
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp

from edge.ids import utc_now
from edge.printer.payload import PayloadSigner, ensure_site_key, verify
from edge.printer.profiles import PrinterProfile, load_profile, with_native_text
from edge.printer.status import Condition, Paper, reply_bytes
from edge.printer.transport import (
    Connection,
    NetworkTransport,
    PrinterUnavailable,
    Transport,
    transport_for,
)
from edge.printer.uri import parse_printer_uri
from edge.printer.worker import PrinterStatus, PrinterWorker, kinds_renderer
from edge.storage.print_queue import PrintQueue
from edge.storage.store import Store
from edge.worker import Backoff
from rigs.escpos_decode import decode
from rigs.helpers import StationServer, settle, station_config, wait_for
from rigs.printer_listener import PrinterListener

SITE = "Điểm thu gom Sìn Hồ"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", "test-site")
    yield s
    s.close()


def _lots(store: Store, n: int) -> list[str]:
    producer = store.add_producer("Giàng Thị Mỷ")["id"]
    product = store.add_product("Sâm Lai Châu")["id"]
    return [store.record_lot(producer, product, 1000 + i, "ST,GS,+1.000kg").id for i in range(n)]


ANSWER_S = 10.0
"""Status time-out where the fake printer answers: it answers at once, but a reply late
on a loaded machine must not read as "no answer" (unknown, and the job printed)."""


def _worker(
    store: Store,
    tmp_path: Path,
    port: int,
    profile: PrinterProfile | None = None,
    status_timeout_s: float = ANSWER_S,
) -> PrinterWorker:
    """A worker on its own connection to the same database, as the station runs it."""
    own = Store.open(tmp_path / "station.db", "test-site")
    transport = NetworkTransport(
        "127.0.0.1", port, timeout_s=1.0, status_timeout_s=status_timeout_s
    )
    worker = PrinterWorker(
        own,
        transport,
        SITE,
        384,
        idle_s=0.05,
        hold_retry_s=0.05,
        backoff=Backoff(base_s=0.05, cap_s=0.3),
        profile=profile or load_profile("generic-58mm"),
        renderer=kinds_renderer(signer=lambda: PayloadSigner("test-site", _key(tmp_path))),
    )
    worker.start()
    return worker


def _stop(worker: PrinterWorker) -> None:
    worker.stop()
    worker.store.close()


def _key(tmp_path: Path) -> bytes:
    return ensure_site_key(tmp_path / "site.key")


def _qr(job: bytes, tmp_path: Path) -> str:
    """The lot id in a printed lot tag's signed QR code (checked against the site key)."""
    (image,) = decode(job).images
    (code,) = zxingcpp.read_barcodes(image.convert("L"))
    return verify(str(code.text), _key(tmp_path), site="test-site").ref


def _statuses(store: Store) -> dict[str, str]:
    return {j["record_id"]: j["status"] for j in PrintQueue(store).jobs()}


def test_printer_unreachable_then_back_prints_each_job_exactly_once(
    store: Store, tmp_path: Path
) -> None:
    printer = PrinterListener().reserve()  # its port held, not listening: switched off
    lots = _lots(store, 3)
    worker = _worker(store, tmp_path, printer.port)
    try:
        wait_for(lambda: worker.status is PrinterStatus.OFFLINE, 10, "printer offline")
        assert set(_statuses(store).values()) == {"queued"}
        oldest = min(PrintQueue(store).jobs(), key=lambda j: (j["created_at"], j["id"]))
        assert oldest["record_id"] == lots[0]
        assert oldest["printer_status"] == "unreachable"
        assert "connection refused" in oldest["last_error"]
        fault = worker.state_json()["fault"]  # what staff read: a sentence, not the raw error
        assert fault["code"] == "printer_refused" and "connection refused" not in str(fault)
        assert "Máy in không nhận kết nối" in fault["message"]
        printer.start()
        printer.wait_for_jobs(3, timeout=15)
        wait_for(lambda: set(_statuses(store).values()) == {"printed"}, 10, "all printed")
        wait_for(lambda: worker.status is PrinterStatus.READY, 5, "printer ready")
        assert worker.state_json()["fault"] is None
    finally:
        _stop(worker)
        printer.close()
    assert [_qr(job, tmp_path) for job in printer.jobs] == lots, "each lot once, oldest first"
    assert printer.aborted == []


@pytest.mark.parametrize(
    ("state", "status", "words"),
    [
        ({"paper": Paper.OUT}, PrinterStatus.PAPER_OUT, "hết giấy"),
        ({"cover_open": True}, PrinterStatus.COVER_OPEN, "Nắp máy in đang mở"),
        ({"error": True}, PrinterStatus.ERROR, "báo lỗi"),
    ],
)
def test_printer_that_cannot_print_holds_the_queue_then_it_drains_in_order(
    store: Store, tmp_path: Path, state: dict[str, object], status: PrinterStatus, words: str
) -> None:
    lots = _lots(store, 3)
    with PrinterListener() as printer:
        printer.set_state(**state)  # type: ignore[arg-type]
        worker = _worker(store, tmp_path, printer.port)
        try:
            wait_for(lambda: worker.status is status, 10, f"worker reports {status}")
            printer.wait_for_queries(6)  # asked again while it waits
            assert printer.jobs == [] and printer.aborted == []
            jobs = PrintQueue(store).jobs()
            assert {j["status"] for j in jobs} == {"queued"}, "waiting, not failed"
            oldest = min(jobs, key=lambda j: (j["created_at"], j["id"]))
            assert oldest["printer_status"] == Condition(status.value).value
            assert oldest["attempts"] == 0, "nothing was sent"
            state_json = worker.state_json()
            assert state_json["status"] == status.value
            assert words in state_json["fault"]["message"]

            printer.set_state(paper=Paper.OK, cover_open=False, error=False)
            printer.wait_for_jobs(3, timeout=10)
            wait_for(lambda: set(_statuses(store).values()) == {"printed"}, 10, "all printed")
            wait_for(lambda: worker.status is PrinterStatus.READY, 5, "ready again")
        finally:
            _stop(worker)
    assert [_qr(job, tmp_path) for job in printer.jobs] == lots, "in order, each once"


def test_paper_near_end_prints_and_warns(store: Store, tmp_path: Path) -> None:
    _lots(store, 1)
    with PrinterListener() as printer:
        printer.set_state(paper=Paper.NEAR_END)
        worker = _worker(store, tmp_path, printer.port)
        try:
            printer.wait_for_jobs(1)
            wait_for(lambda: "sắp hết" in str(worker.state_json()["fault"]), 5, "a warning")
            assert worker.state_json()["fault"]["code"] == "printer_paper_near_end"
            assert worker.status is PrinterStatus.READY
            assert worker.state_json()["paper"] == "near_end"
        finally:
            _stop(worker)


def test_job_cut_off_mid_way_is_held_until_staff_confirm(store: Store, tmp_path: Path) -> None:
    first, second = _lots(store, 2)
    queue = PrintQueue(store)
    with PrinterListener(cut_after=2000) as printer:  # switched off after 2000 bytes
        worker = _worker(store, tmp_path, printer.port)
        try:
            wait_for(lambda: _statuses(store)[first] == "held", 10, "the cut job held")
            (partial,) = printer.wait_for_aborted(1)
            assert len(partial) == 2000 and printer.jobs == []
            held = next(j for j in queue.jobs() if j["record_id"] == first)
            assert held["printer_status"] == "interrupted" and held["bytes_sent"] > 0
            assert "may be partly printed" in held["last_error"]
            history = queue.history(held["id"])
            assert history[-1]["action"] == "print.held" and history[-1]["actor"] == "station"

            printer.cut_after = None  # printer back on, working
            (job,) = printer.wait_for_jobs(1, timeout=10)
            assert _qr(job, tmp_path) == second, "the queue moves on; the cut job is not sent again"
            wait_for(lambda: _statuses(store)[second] == "printed", 5, "second printed")
            assert _statuses(store)[first] == "held" and len(printer.aborted) == 1

            queue.requeue(held["id"], actor="Lò Văn Sơn", reason="nhãn bị cắt ngang")
            worker.wake()
            jobs = printer.wait_for_jobs(2, timeout=10)
            assert _qr(jobs[1], tmp_path) == first
            wait_for(lambda: _statuses(store)[first] == "printed", 5, "reprinted")
        finally:
            _stop(worker)
    actions = [h["action"] for h in queue.history(held["id"])]
    assert actions == ["print.held", "print.requeued"]
    entry = queue.history(held["id"])[-1]
    assert entry["actor"] == "Lò Văn Sơn"
    assert entry["detail"] == {"reason": "nhãn bị cắt ngang", "was": "held"}
    assert entry["at"]


def test_any_printed_label_can_be_reprinted_with_who_when_why(store: Store, tmp_path: Path) -> None:
    """A printed label printed again is a new job, a copy: its label says BẢN SAO on top
    (the original's never does), and the audit log keeps who, when and why."""
    (lot,) = _lots(store, 1)
    queue = PrintQueue(store)
    with PrinterListener() as printer:
        worker = _worker(store, tmp_path, printer.port)
        try:
            printer.wait_for_jobs(1)
            wait_for(lambda: _statuses(store)[lot] == "printed", 5, "printed")
            (job,) = queue.jobs()
            with pytest.raises(ValueError, match="who asks for it and why"):
                queue.requeue(job["id"], actor="lan", reason="  ")
            copy = queue.requeue(job["id"], actor="lan", reason="nhãn bị ướt")
            assert copy != job["id"]
            worker.wake()
            jobs = printer.wait_for_jobs(2)
            wait_for(lambda: queue.get(copy)["status"] == "printed", 5, "the copy printed")
        finally:
            _stop(worker)
    assert [_qr(j, tmp_path) for j in jobs] == [lot, lot]
    assert queue.get(copy)["copy_of"] == job["id"] and queue.get(job["id"])["copy_of"] is None
    assert [c["id"] for c in queue.copies(job["id"])] == [copy]
    original, again = (decode(j).images[0] for j in jobs)
    assert again.height > original.height  # the BẢN SAO heading on top, the rest the same
    assert again.crop((0, again.height - original.height, again.width, again.height)).tobytes() == (
        original.tobytes()
    )
    (entry,) = [h for h in queue.history(job["id"]) if h["action"] == "print.copied"]
    assert (entry["actor"], entry["detail"]) == ("lan", {"reason": "nhãn bị ướt", "copy": copy})
    assert entry["at"]
    (queued,) = queue.history(copy)
    assert queued["detail"]["copy_of"] == job["id"] and queued["actor"] == "lan"
    with pytest.raises(ValueError, match="only held, failed or printed"):
        queue.requeue(queue.enqueue("text", {"lines": ["x"]}), actor="lan", reason="again")


def test_status_is_unknown_when_the_printer_does_not_answer(store: Store, tmp_path: Path) -> None:
    with PrinterListener(answer_status=False) as printer:
        transport = NetworkTransport("127.0.0.1", printer.port, timeout_s=1.0, status_timeout_s=0.3)
        report = transport.status()
        assert report.condition is Condition.UNKNOWN and report.paper is Paper.UNKNOWN
        # one time-out, not one per query: DLE EOT 1 went unanswered, so nothing else was
        # asked (counted once the printer has seen that connection end, not after a time)
        wait_for(lambda: printer.ended >= 1, 10, "the status connection to end")
        assert printer.status_queries == [1]

        _lots(store, 1)
        worker = _worker(store, tmp_path, printer.port, status_timeout_s=0.3)
        try:
            printer.wait_for_jobs(1)  # unknown does not stop printing...
            wait_for(lambda: "không biết" in str(worker.state_json()["fault"]), 5, "unknown said")
            assert worker.state_json()["fault"]["code"] == "printer_status_unknown"
            state = worker.state_json()  # ... but is never reported as fine
            assert state["condition"] == "unknown" and state["paper"] == "unknown"
            assert state["cover_open"] is None
        finally:
            _stop(worker)
    assert printer.jobs[0].startswith(b"\x1b@"), "the status queries are not part of the job"


def test_jobs_of_any_kind_print_from_their_data(store: Store, tmp_path: Path) -> None:
    queue = PrintQueue(store)
    native = queue.enqueue("text", {"lines": ["Sâm Lai Châu", "ĐIỂM THU GOM"]})
    broken = queue.enqueue("text", {"lines": "not a list"})
    unknown = queue.enqueue("parcel-sticker", {"x": 1})
    profile = with_native_text(load_profile("generic-58mm"), "tcvn3")
    with PrinterListener() as printer:
        worker = _worker(store, tmp_path, printer.port, profile)
        try:
            (job,) = printer.wait_for_jobs(1)
            wait_for(lambda: queue.get(unknown)["status"] == "failed", 5, "unknown kind failed")
        finally:
            _stop(worker)
    assert queue.get(native)["status"] == "printed"
    assert queue.get(broken)["status"] == "failed" and "list of strings" in str(
        queue.get(broken)["last_error"]
    )
    assert "parcel-sticker" in str(queue.get(unknown)["last_error"])
    decoded = decode(job)
    assert decoded.images == [] and "ESC t" in decoded.commands
    assert b"S\xa9m Lai Ch\xa9u" in decoded.text  # â = A9 in TCVN-3


def test_station_state_says_het_giay_and_prints_when_paper_is_back(tmp_path: Path) -> None:
    with PrinterListener() as printer:
        printer.set_state(paper=Paper.OUT)
        uri = f"tcp://127.0.0.1:{printer.port}?timeout=1"
        cfg = station_config(tmp_path, printer={"uri": uri, "status_timeout_s": ANSWER_S})
        with StationServer(cfg) as server, server.client() as c:
            producer = c.post("/api/producers", json={"name": "Giàng Thị Mỷ"}).json()["id"]
            product = c.post("/api/products", json={"name": "Sâm Lai Châu"}).json()["id"]
            settle(c, 2500)
            lot = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
            assert lot.status_code == 201

            def paper_out() -> bool:
                p = c.get("/api/state").json()["printer"]
                fault = p["fault"] or {}
                return bool(p["status"] == "paper_out" and "hết giấy" in fault.get("message", ""))

            wait_for(paper_out, 10, "the page told: hết giấy")
            state = c.get("/api/state").json()["printer"]
            assert state["paper"] == "out" and state["jobs"]["queued"] == 1
            printer.set_state(paper=Paper.OK)
            (job,) = printer.wait_for_jobs(1, timeout=10)
            wait_for(
                lambda: c.get("/api/state").json()["printer"]["status"] == "ready", 10, "ready"
            )
    assert _qr(job, tmp_path) == lot.json()["id"]


class PtyPrinter:
    """A serial printer on a real pseudo-terminal: answers DLE EOT, collects the job."""

    def __init__(self, tmp_path: Path, paper: Paper = Paper.OK) -> None:
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.link = tmp_path / "printer-tty"
        self.link.symlink_to(os.ttyname(slave))
        self._slave = slave
        self.paper = paper
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        pending = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                continue
            try:
                pending += os.read(self.master, 4096)
            except OSError:
                return
            while pending[:2] == b"\x10\x04" and len(pending) >= 3:
                os.write(self.master, bytes([reply_bytes(paper=self.paper)[pending[2]]]))
                del pending[:3]
            if pending and not b"\x10\x04".startswith(bytes(pending)):
                self.received += pending
                pending.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)


def test_serial_printer_on_a_pseudo_terminal_status_then_job(tmp_path: Path) -> None:
    printer = PtyPrinter(tmp_path, paper=Paper.OUT)
    try:
        transport = transport_for(
            parse_printer_uri(f"serial://{printer.link}?baud=115200&timeout=2"),
            status_timeout_s=0.5,
        )
        assert transport.status().condition is Condition.PAPER_OUT
        printer.paper = Paper.OK
        with transport.connect() as conn:
            assert conn.status().condition is Condition.READY
            conn.send("job-1", b"\x1b@" + b"label " * 500 + b"\x1dV\x00", b"")
        wait_for(lambda: len(printer.received) == 3005, 5, "the job at the printer")
        assert bytes(printer.received).startswith(b"\x1b@label")
    finally:
        printer.close()


class _DropsBeforeTheJob(Transport):
    """Connects and answers "ready", then loses the connection before any job byte."""

    description = "flaky printer"
    can_read = True

    def __init__(self) -> None:
        self.sends = 0

    def connect(self) -> Connection:
        outer = self

        class _Conn(Connection):
            can_read = True

            def exchange(self, request: bytes) -> int | None:
                return reply_bytes()[request[2]]

            def send(self, job_id: str, data: bytes, preview_png: bytes) -> None:
                outer.sends += 1
                raise PrinterUnavailable("flaky printer dropped the connection before the job")

        return _Conn()


def test_send_failing_before_any_byte_puts_the_job_back_in_the_queue(
    store: Store, tmp_path: Path
) -> None:
    _lots(store, 1)
    transport = _DropsBeforeTheJob()
    worker = PrinterWorker(
        Store.open(tmp_path / "station.db", "test-site"),
        transport,
        SITE,
        384,
        idle_s=0.05,
        backoff=Backoff(base_s=0.05, cap_s=0.1),
        renderer=kinds_renderer(signer=lambda: PayloadSigner("test-site", _key(tmp_path))),
    )
    worker.start()
    try:
        wait_for(lambda: transport.sends >= 3, 5, "three attempts")
    finally:
        _stop(worker)
    (job,) = PrintQueue(store).jobs()
    assert job["status"] == "queued", "not stuck in 'sending', not held: nothing was sent"
    assert job["printer_status"] == "unreachable" and job["attempts"] >= 3
    assert worker.status is PrinterStatus.OFFLINE


def test_jobs_queued_within_one_millisecond_print_in_the_order_queued(tmp_path: Path) -> None:
    """Record times have millisecond precision and job ids are random within a
    millisecond: jobs queued at the same instant (two tablets at once, a frozen clock) print
    in the order they were queued, and a lot's newest label is the copy printed last."""
    instant = utc_now()
    store = Store.open(tmp_path / "station.db", "test-site", now=lambda: instant)
    try:
        lots = _lots(store, 30)
        queue = PrintQueue(store)
        printed = []
        while (job := queue.next_queued()) is not None:
            queue.mark_sending(job["id"])
            queue.mark_printed(job["id"])
            printed.append(job["record_id"])
        assert printed == lots
        first = store.get_lot(lots[0])
        copies = [queue.requeue(first.print_job_id, actor="lan", reason="nhãn bị ướt")]
        for _ in range(9):
            copies.append(queue.requeue(first.print_job_id, actor="lan", reason="lại"))
        assert [c["id"] for c in queue.copies(first.print_job_id)] == copies
        assert store.get_lot(lots[0]).print_job_id == copies[-1]
        assert [j["id"] for j in queue.jobs(("queued",))] == copies[::-1]  # newest first
    finally:
        store.close()
