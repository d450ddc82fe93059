"""The printer worker: takes queued jobs oldest first, renders the label,
sends it, and marks it printed only after the transport took every byte.
While the printer is unreachable the job goes back to the queue and the
worker retries with back-off; the queue order is kept."""

from __future__ import annotations

import logging
from datetime import tzinfo
from enum import StrEnum

from edge.ids import parse_iso
from edge.printer.escpos_out import preview_png, raster_to_escpos
from edge.printer.label import LotLabel, render_lot_label
from edge.printer.transport import PrinterUnavailable, Transport
from edge.storage.print_queue import PrintQueue
from edge.storage.store import NotFound, Store
from edge.worker import Backoff, Worker

log = logging.getLogger(__name__)


class PrinterStatus(StrEnum):
    READY = "ready"
    OFFLINE = "offline"


def lot_label(store: Store, lot_id: str, site_name: str) -> LotLabel:
    lot = store.get_lot(lot_id)
    return LotLabel(
        site_name=site_name,
        producer_name=lot.producer_name,
        product_name=lot.product_name,
        net_g=lot.net_g,
        recorded_at=parse_iso(lot.recorded_at),
        lot_id=lot.id,
        seq=lot.seq,
        qr_payload=lot.id,
    )


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
    ) -> None:
        super().__init__(Backoff(base_s=0.5, cap_s=5.0))
        self.store = store
        self.queue = PrintQueue(store)
        self.transport = transport
        self.site_name = site_name
        self.paper_dots = paper_dots
        self.tz = tz
        self.idle_s = idle_s
        self.status = PrinterStatus.READY

    def step(self) -> None:
        job = self.queue.next_queued()
        if job is None:
            self.wait(self.idle_s)
            return
        try:
            label = lot_label(self.store, job["record_id"], self.site_name)
        except NotFound as exc:
            self.queue.mark_failed(job["id"], str(exc))
            return
        image = render_lot_label(label, self.paper_dots, tz=self.tz)
        data, png = raster_to_escpos(image), preview_png(image)
        self.queue.mark_sending(job["id"])
        try:
            self.transport.send(job["id"], data, png)
        except PrinterUnavailable as exc:
            self.queue.mark_waiting(job["id"], str(exc))
            self.status = PrinterStatus.OFFLINE
            raise
        self.queue.mark_printed(job["id"])
        if self.status is not PrinterStatus.READY:
            log.info("printer %s is back", self.transport.description)
        self.status = PrinterStatus.READY
