"""The station: storage, devices and sync wired together from a configuration.

``Station.start()`` opens the database (migrating it), holds print jobs cut
off by a power cut, and starts one supervised worker per device plus the
sync worker. Handlers call :meth:`Station.record_lot`, which refuses with a
:class:`Refused` (a code and a message in Vietnamese and English) when the
scale cannot give a weight worth recording.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, time
from zoneinfo import ZoneInfo

from edge.config import FilePrinterConfig, SimulatedScaleConfig, StationConfig
from edge.ids import Now, iso, utc_now
from edge.printer.transport import FileTransport, NetworkTransport, Transport
from edge.printer.worker import PrinterWorker
from edge.scale.reader import ScaleReader
from edge.scale.simulator import ScaleSimulator
from edge.scale.state import ScaleState, ScaleStatus
from edge.storage.outbox import Outbox
from edge.storage.print_queue import PrintQueue
from edge.storage.store import Lot, Store
from edge.sync.mqtt import LinkStatus, MqttSync

log = logging.getLogger(__name__)


class Refused(Exception):
    """A request the station will not carry out, with what to do about it.
    ``message`` is Vietnamese (shown to staff first), ``message_en`` English."""

    def __init__(self, code: str, message: str, message_en: str, status: int = 409) -> None:
        super().__init__(message_en)
        self.code = code
        self.message = message
        self.message_en = message_en
        self.status = status


_REFUSALS = {
    ScaleStatus.OFFLINE: (
        "scale_offline",
        "Cân không kết nối. Kiểm tra dây cáp và nguồn của cân.",
        "The scale is offline. Check the scale's cable and power.",
    ),
    ScaleStatus.OVERLOAD: (
        "scale_overload",
        "Cân quá tải. Bớt hàng trên cân rồi thử lại.",
        "The scale is overloaded. Take some weight off and try again.",
    ),
    ScaleStatus.UNSTABLE: (
        "scale_unstable",
        "Cân chưa ổn định. Chờ số cân đứng yên rồi bấm lại.",
        "The weight is not stable. Wait until it settles, then press again.",
    ),
}

_SAME_WEIGHING = (
    "already_recorded",
    "Lần cân này đã được ghi thành một lô. Nhấc hàng khỏi cân rồi đặt lô mới lên.",
    "This weighing is already recorded as a lot. Take the produce off, then weigh the next lot.",
)

_NOT_POSITIVE = (
    "weight_not_positive",
    "Khối lượng bằng 0 hoặc âm. Đặt hàng lên cân (trừ bì nếu cần) rồi thử lại.",
    "The weight is zero or negative. Put the produce on the scale, then try again.",
)


def make_transport(cfg: StationConfig) -> Transport:
    p = cfg.printer
    if isinstance(p, FilePrinterConfig):
        return FileTransport(p.dir)
    return NetworkTransport(p.host, p.port, p.timeout_s)


class Station:
    def __init__(self, cfg: StationConfig, now: Now = utc_now) -> None:
        self.cfg = cfg
        self.now = now
        self.tz = ZoneInfo(cfg.site.timezone)
        self.simulator: ScaleSimulator | None = None
        self.store: Store | None = None
        self._workers_stores: list[Store] = []
        self.scale: ScaleReader | None = None
        self.printer: PrinterWorker | None = None
        self.sync: MqttSync | None = None
        self._record_lock = threading.Lock()
        self._last_weighing = -1  # one lot per weighing: a double tap is refused

    def _open_store(self) -> Store:
        s = self.cfg.storage
        store = Store.open(s.path, self.cfg.site.id, s.backup_dir, self.now)
        self._workers_stores.append(store)
        return store

    def start(self) -> None:
        self.store = self._open_store()
        held = PrintQueue(self.store).hold_interrupted()
        if held:
            log.warning(
                "%d print job(s) were cut off by a stop; staff must confirm a reprint", held
            )
        scale_cfg = self.cfg.scale
        if isinstance(scale_cfg, SimulatedScaleConfig):
            self.simulator = ScaleSimulator(
                scale_cfg.link, weight_g=scale_cfg.initial_weight_g, interval_s=scale_cfg.interval_s
            )
            self.simulator.start()
            self.scale = ScaleReader(str(scale_cfg.link), stale_after_s=scale_cfg.stale_after_s)
        else:
            self.scale = ScaleReader(
                scale_cfg.port,
                baudrate=scale_cfg.baudrate,
                bytesize=scale_cfg.bytesize,
                parity=scale_cfg.parity,
                stopbits=scale_cfg.stopbits,
                stale_after_s=scale_cfg.stale_after_s,
            )
        self.scale.start()
        self.printer = PrinterWorker(
            self._open_store(),
            make_transport(self.cfg),
            self.cfg.site.name,
            self.cfg.printer.paper_dots,
            self.tz,
        )
        self.printer.start()
        if self.cfg.mqtt.enabled:
            self.sync = MqttSync(self.cfg.mqtt, self.cfg.site.id, Outbox(self._open_store()))
            self.sync.start()
        log.info("station %s started", self.cfg.site.id)

    def stop(self) -> None:
        for worker in (self.sync, self.printer, self.scale):
            if worker is not None:
                worker.stop()
        if self.simulator is not None:
            self.simulator.stop()
        for store in self._workers_stores:
            store.close()
        self._workers_stores.clear()

    @property
    def db(self) -> Store:
        if self.store is None:
            raise RuntimeError("station not started")
        return self.store

    def scale_state(self) -> ScaleState:
        if self.scale is None:
            raise RuntimeError("station not started")
        return self.scale.state

    def link_status(self) -> LinkStatus:
        return self.sync.status if self.sync else LinkStatus.DISABLED

    def outbox_status(self) -> dict[str, object]:
        return Outbox(self.db).status()

    def record_lot(self, producer_id: str, product_id: str) -> Lot:
        state = self.scale_state()
        refusal = _REFUSALS.get(state.status)
        if refusal is not None:
            raise Refused(*refusal)
        if state.weight_g is None or state.weight_g <= 0:
            raise Refused(*_NOT_POSITIVE)
        with self._record_lock:
            if state.weighing == self._last_weighing:
                raise Refused(*_SAME_WEIGHING)
            lot = self.db.record_lot(producer_id, product_id, state.weight_g, state.frame or "")
            self._last_weighing = state.weighing
        return lot

    def start_of_today(self) -> str:
        local_midnight = datetime.combine(self.now().astimezone(self.tz).date(), time(), self.tz)
        return iso(local_midnight)
