"""The printer worker: takes queued jobs oldest first, renders the label, asks the printer
its status, sends the job, and marks it printed only after the transport took every byte.

* Printer unreachable: the job stays queued, the worker retries with back-off (status
  ``offline``); the queue order is kept.
* Printer out of paper, cover open, in error or off-line (DLE EOT replies): nothing is
  sent, the job stays queued, the worker's state says why ("hết giấy"...) and it asks
  again every ``hold_retry_s``; when the printer is ready the queue drains in order.
* Status unknown (the connection cannot read, or the printer does not answer): the job is
  printed, but the state says "unknown", never "fine".
* Until the printer has answered a status query or taken a job, the worker's status is
  ``unknown`` ("chưa kiểm tra" on the page), never ``ready``. While idle, a printer that
  answers status is asked at the start and every ``check_every_s`` (60 s), so a printer
  that is off or out of paper shows before the first label.
* Cut off mid-job (:class:`PrinterInterrupted`): the job is held; it prints again only
  when staff confirm, so a label is never doubled silently. The printer is asked once
  more: what it says (out of paper, cover open...) is recorded as the cause, else the
  connection failed (``interrupted``).

What staff read is a :class:`edge.faults.Fault` (``fault`` in :meth:`state_json`); the
raw error goes to the log and to the job's ``last_error``.

A job is rendered from its kind: a ``lot`` job without data from its lot row (the lot tag
of :mod:`edge.printer.label`), ``text`` jobs by :mod:`edge.printer.textjob`, every other
kind from its JSON data by the label kinds' ``render_label``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import tzinfo
from enum import StrEnum
from typing import Any

from PIL import Image

from edge.faults import (
    HELD_CONNECTION,
    Fault,
    printer_condition_fault,
    printer_fault_of,
)
from edge.ids import iso, parse_iso, utc_now
from edge.printer.escpos_out import preview_png, raster_to_escpos
from edge.printer.profiles import FALLBACK, PrinterProfile
from edge.printer.status import Condition, StatusReport
from edge.printer.textjob import text_job
from edge.printer.transport import PrinterInterrupted, PrinterUnavailable, Transport
from edge.storage.corrections import Corrections
from edge.storage.print_queue import PrintQueue
from edge.storage.store import NotFound, Store
from edge.worker import Backoff, Worker

log = logging.getLogger(__name__)

Renderer = Callable[[str, dict[str, Any], int], Image.Image]
"""(kind, data, width_dots) -> the label raster, for kinds printed from their data."""


class PrinterStatus(StrEnum):
    UNKNOWN = "unknown"  # not checked yet: no status answer, no job taken since the start
    READY = "ready"
    OFFLINE = "offline"  # unreachable, or the printer says it is off-line
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    ERROR = "error"


_HELD_STATUS = {
    Condition.PAPER_OUT: PrinterStatus.PAPER_OUT,
    Condition.COVER_OPEN: PrinterStatus.COVER_OPEN,
    Condition.ERROR: PrinterStatus.ERROR,
    Condition.OFFLINE: PrinterStatus.OFFLINE,
}


class JobError(Exception):
    """A job that can never be printed as it is (unknown kind, bad data, record gone)."""


def lot_data(store: Store, lot_id: str, site_name: str) -> dict[str, Any]:
    """The lot tag's data (kind ``lot``) from the recorded lot."""
    lot = store.get_lot(lot_id)  # its farmer and product as corrected (issue 12)
    voided = Corrections(store).lot(lot_id).voided
    return {
        "collection_point": site_name,
        "lot_id": lot.id,
        "day_no": lot.day_no,  # the daily number staff see (issue 12), not the site seq
        "farmer": lot.producer_name,
        "product": lot.product_name,
        "net_g": lot.net_g,
        "recorded_at": parse_iso(lot.recorded_at),
        "voided": voided,  # a reprint of a voided lot's label says "ĐÃ HỦY"
    }


def kinds_renderer(signer: Callable[[], Any] | None = None, tz: tzinfo | None = None) -> Renderer:
    """A renderer for the label kinds (:func:`edge.printer.label.render_label`).

    ``signer`` makes the site's payload signer (edge.printer.payload.PayloadSigner) when a
    kind with a signed QR code is first printed; without one, those kinds fail (JobError).
    """
    made: list[Any] = []

    def render(kind: str, data: dict[str, Any], width_dots: int) -> Image.Image:
        from edge.printer.label import render_label

        if signer is not None and not made:
            try:
                made.append(signer())
            except Exception as exc:  # key file unreadable...: this job cannot print now
                raise JobError(f"cannot sign the {kind} label's QR code: {exc}") from exc
        try:
            return render_label(kind, data, width_dots, signer=made[0] if made else None, tz=tz)
        except ValueError as exc:  # unknown kind, data that does not fit, no signer
            raise JobError(str(exc)) from exc

    return render


class PrinterWorker(Worker):
    name = "printer"

    def __init__(
        self,
        store: Store,
        transport: Transport,
        site_name: str,
        paper_dots: int,
        tz: tzinfo | None = None,
        idle_s: float = 0.2,
        *,
        profile: PrinterProfile = FALLBACK,
        renderer: Renderer | None = None,
        hold_retry_s: float = 1.0,
        backoff: Backoff | None = None,
        check_every_s: float = 60.0,
    ) -> None:
        super().__init__(backoff or Backoff(base_s=0.5, cap_s=5.0))
        self.store = store
        self.queue = PrintQueue(store)
        self.transport = transport
        self.site_name = site_name
        self.paper_dots = paper_dots
        self.tz = tz
        self.idle_s = idle_s
        self.profile = profile
        self.renderer = renderer or kinds_renderer(tz=tz)
        self.hold_retry_s = hold_retry_s
        self.check_every_s = check_every_s
        self._next_check: float | None = None  # monotonic time of the next idle check
        self.status = PrinterStatus.UNKNOWN
        self.report: StatusReport | None = None  # the last status the printer gave
        self.checked_at: str | None = None
        self.fault: Fault | None = None  # why it is not printing, or a warning, for staff
        self._wake = threading.Event()
        self._last: tuple[str, bytes, bytes] | None = None  # (job id, bytes, png)

    # -- for the station and the page ------------------------------------------------
    def wake(self) -> None:
        """A job was queued: look at the queue now instead of at the next idle poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._wake.set()
        super().stop(timeout)

    def state_json(self) -> dict[str, Any]:
        """The printer part of GET /api/state: status, why, and what the printer said."""
        report = self.report
        return {
            "status": self.status.value,
            "fault": self.fault.as_json() if self.fault else None,  # what staff read
            "condition": report.condition.value if report else "unknown",
            "paper": report.paper.value if report else "unknown",
            "cover_open": report.cover_open if report else None,
            "checked_at": self.checked_at,
            "printer": self.transport.description,
        }

    # -- the loop ---------------------------------------------------------------------
    def step(self) -> None:
        job = self.queue.next_queued()
        if job is None:
            self._idle_check()
            self._wake.wait(self.idle_s)
            self._wake.clear()
            return
        if self._last is not None and self._last[0] == job["id"]:
            _, data, png = self._last  # waiting for paper: not rendered again every retry
        else:
            try:
                data, png = self.render(job)
            except (JobError, NotFound) as exc:
                self.queue.mark_failed(job["id"], str(exc))
                return
            self._last = (job["id"], data, png)
        try:
            conn = self.transport.connect()
        except PrinterUnavailable as exc:
            self._unreachable(job, exc)
            raise
        with conn:
            try:
                asked = self.profile.status and conn.can_read
                report = conn.status() if asked else None
            except PrinterUnavailable as exc:
                self._unreachable(job, exc)
                raise
            if report is not None and not self._may_print(job, report):
                self.wait(self.hold_retry_s)
                return
            self.queue.mark_sending(job["id"])
            cut: PrinterInterrupted | None = None
            try:
                conn.send(job["id"], data, png)
            except PrinterInterrupted as exc:
                cut = exc  # held once this connection is closed
            except PrinterUnavailable as exc:  # nothing delivered: back to the queue
                self.queue.mark_waiting(job["id"], str(exc), "unreachable")
                self._set(PrinterStatus.OFFLINE, printer_fault_of(exc))
                raise
        if cut is not None:
            self._hold(job, cut)
            raise cut
        self.queue.mark_printed(job["id"])
        if self.status not in (PrinterStatus.READY, PrinterStatus.UNKNOWN):
            log.info("printer %s is back", self.transport.description)
        # taken: ready; a printer asked that did not answer, or paper near its end, is said
        warning = (
            None if report is None else printer_condition_fault(report.condition, report.paper)
        )
        self._set(PrinterStatus.READY, warning)

    def _idle_check(self) -> None:
        """With nothing to print, ask a printer that answers status how it is: at the
        start and every ``check_every_s``, so staff see a printer that is off, open or out
        of paper before the first label, not after. A printer that cannot be asked stays
        "unknown" until it takes a job."""
        now = time.monotonic()
        if self._next_check is not None and now < self._next_check:
            return
        self._next_check = now + self.check_every_s
        try:
            report = self._query_status()
        except PrinterUnavailable as exc:
            if self.status is not PrinterStatus.OFFLINE:
                log.warning("%s: %s", self.transport.description, exc)
            self._set(PrinterStatus.OFFLINE, printer_fault_of(exc))
            return
        if report is None or report.condition is Condition.UNKNOWN:
            return  # not asked, or no answer: not known to be fine
        self._heard(report)
        held = _HELD_STATUS.get(report.condition)
        self._set(
            held or PrinterStatus.READY, printer_condition_fault(report.condition, report.paper)
        )

    def _may_print(self, job: dict[str, Any], report: StatusReport) -> bool:
        """Record what the printer said; False (job stays queued) when it cannot print."""
        self._heard(report)
        held = _HELD_STATUS.get(report.condition)
        if held is None:
            return True
        vi, en = report.message()
        if self.status is not held:
            waiting = self.queue.counts()["queued"]
            log.warning("%s: %s; %d job(s) wait", self.transport.description, en, waiting)
        self._note_waiting(job, f"{vi} ({en})", report.condition.value)
        self._set(held, printer_condition_fault(report.condition, report.paper))
        return False

    def _unreachable(self, job: dict[str, Any], exc: PrinterUnavailable) -> None:
        self._note_waiting(job, str(exc), "unreachable")
        self._set(PrinterStatus.OFFLINE, printer_fault_of(exc))

    def _hold(self, job: dict[str, Any], exc: PrinterInterrupted) -> None:
        """A job cut off mid-way: held for staff, with the cause as far as the printer
        tells when asked right after (out of paper, cover open...), else a connection
        that failed."""
        report = self._ask_status()
        held = _HELD_STATUS.get(report.condition) if report is not None else None
        if report is not None and held is not None:
            self._heard(report)
            self.queue.mark_held(job["id"], str(exc), exc.sent, report.condition.value)
            self._set(held, printer_condition_fault(report.condition, report.paper))
        else:
            self.queue.mark_held(job["id"], str(exc), exc.sent, HELD_CONNECTION)
            self._set(PrinterStatus.OFFLINE, printer_fault_of(exc))
        log.warning(
            "%s: job %s cut off (%s); held for staff", self.transport.description, job["id"], exc
        )

    def _heard(self, report: StatusReport) -> None:
        self.report, self.checked_at = report, iso(utc_now())

    def _query_status(self) -> StatusReport | None:
        """The printer's status on a new connection; None when it cannot be asked
        (PrinterUnavailable when it cannot be reached)."""
        if not (self.profile.status and self.transport.can_read):
            return None
        with self.transport.connect() as conn:
            return conn.status() if conn.can_read else None

    def _ask_status(self) -> StatusReport | None:
        """:meth:`_query_status`, None too when the printer cannot be reached."""
        try:
            return self._query_status()
        except PrinterUnavailable as exc:
            log.info("%s: no status after the cut: %s", self.transport.description, exc)
            return None

    def _note_waiting(self, job: dict[str, Any], error: str, printer_status: str) -> None:
        """Keep the job queued with why; written only when the reason changed (no write
        to the SD card every retry while the paper is out)."""
        if job.get("status") != "queued" or (job.get("last_error"), job.get("printer_status")) != (
            error,
            printer_status,
        ):
            self.queue.mark_waiting(job["id"], error, printer_status)

    def _set(self, status: PrinterStatus, fault: Fault | None) -> None:
        self.status, self.fault = status, fault

    def _voided(self, lot_id: str | None) -> bool:
        if not lot_id:
            return False
        try:
            return Corrections(self.store).lot(lot_id).voided
        except NotFound:
            return False

    def render(self, job: dict[str, Any]) -> tuple[bytes, bytes]:
        """(ESC/POS bytes, preview PNG) for a queued job."""
        kind, raw = job["kind"], job.get("data")
        data: dict[str, Any] | None = json.loads(raw) if raw else None
        if kind == "lot" and data is None:
            data = lot_data(self.store, job["record_id"], self.site_name)
        if data is None:
            raise JobError(f"{kind} job {job['id']} has no data to print")
        if kind == "receipt" and not data.get("voided") and self._voided(job.get("record_id")):
            data = {**data, "voided": True}  # a receipt printed again after its lot was voided
        if kind == "text":
            lines = data.get("lines")
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise JobError(f"text job {job['id']}: data.lines must be a list of strings")
            if job.get("copy_of"):
                from edge.printer.label import COPY_MARK  # late, as in kinds_renderer

                lines = [COPY_MARK, *lines]
            return text_job(lines, self.paper_dots, self.profile)
        elif job.get("copy_of"):  # a reprint of a label that had printed: marked as a copy
            image = self.renderer(kind, {**data, "is_copy": True}, self.paper_dots)
        else:
            image = self.renderer(kind, data, self.paper_dots)
        return raster_to_escpos(image), preview_png(image)
