"""The station: storage, devices and sync wired together from a configuration.

``Station.start()`` opens the database (migrating it), holds print jobs cut
off by a power cut, cleans up photo files a crash left without a row and
applies the photo retention policy (:class:`edge.camera.intake.Intake`, on
``station.photos``), and starts one supervised worker per device plus the
sync worker. Handlers call :meth:`Station.record_lot`, which refuses with a
:class:`Refused` (a code and a message in Vietnamese and English) when the
scale cannot give a weight worth recording.

Tare and zero (:meth:`Station.tare`, :meth:`Station.zero`,
:meth:`Station.clear_tare`): where the scale's family has the command, it is sent
to the indicator through the reader thread and the result shows in the next
frames (net weight, tare). Otherwise a tare is taken in software: the current
stable gross weight is subtracted from every reading until cleared, and each lot
records it (``tare_g``, ``tare_source = "software"``). The software tare is kept in the
database (:class:`edge.storage.tare.SoftwareTare`, audited), so a restart keeps it in
force; it is dropped there too when the indicator takes over the tare (net frames).
There is no software zero: zeroing in software is not legal for trade, so staff use
the indicator's key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from edge.camera.capture import Camera
from edge.camera.intake import Intake
from edge.camera.photos import UploadLimits
from edge.config import SimulatedScaleConfig, StationConfig
from edge.errors import StaffError
from edge.handover.service import Handovers
from edge.ids import Now, utc_now
from edge.orders.apply import HANDLERS
from edge.orders.packing import Orders
from edge.printer.payload import PayloadSigner, ensure_site_key
from edge.printer.transport import Transport, transport_for
from edge.printer.worker import PrinterWorker, kinds_renderer
from edge.scale.reader import CommandError, ScaleReader
from edge.scale.simulator import ScaleSimulator
from edge.scale.state import ScaleState, ScaleStatus
from edge.storage.db import StorageError
from edge.storage.orders import claim_site
from edge.storage.print_queue import PrintQueue
from edge.storage.store import Lot, Store
from edge.storage.tare import SoftwareTare
from edge.sync.link_setup import build_link, station_outbox
from edge.sync.mqtt import LinkStatus, MqttSync

log = logging.getLogger(__name__)


class Refused(StaffError):
    """A request the station will not carry out, with what to do about it.
    ``message`` is Vietnamese (shown to staff first), ``message_en`` English."""


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
    ScaleStatus.SETTLING: (
        "scale_settling",
        "Cân sắp ổn định. Chờ thêm một chút rồi bấm lại.",
        "The weight is settling. Wait a moment, then press again.",
    ),
    ScaleStatus.UNDERLOAD: (
        "scale_underload",
        "Cân báo dưới mức 0. Nhấc hết hàng khỏi cân, bấm nút về 0 (ZERO) trên đầu cân rồi thử lại.",
        "The scale reads below zero (underload). Clear the platform, press ZERO on the "
        "indicator, then try again.",
    ),
}

_TARE_NOTHING = (
    "tare_nothing",
    "Không có gì trên cân để trừ bì. Đặt bao bì hoặc thùng rỗng lên cân rồi bấm “Trừ bì”.",
    "There is nothing on the scale to tare. Put the empty sack or crate on it, then press Tare.",
)

_TARE_ON_SCALE = (
    "tare_on_scale",
    "Cân đang tự trừ bì (khối lượng tịnh trên đầu cân). Bỏ trừ bì trên đầu cân trước.",
    "The indicator already subtracts a tare (it shows a net weight). Clear it on the "
    "indicator first.",
)

_CLEAR_ON_SCALE = (
    "tare_on_scale",
    "Bì đang được trừ trên đầu cân: bỏ trừ bì bằng nút trên đầu cân "
    "(hoặc bấm “Trừ bì” khi bàn cân trống).",
    "The tare is held by the indicator: clear it with the indicator's key (or press Tare "
    "with the platform empty).",
)

_SCALE_MOVED = (
    "scale_moved",
    "Số cân vừa thay đổi. Chờ cân ổn định rồi bấm lại.",
    "The weight just changed. Wait until it is stable, then press again.",
)

_NO_ZERO = (
    "zero_unsupported",
    "Cân này không nhận lệnh về 0 từ trạm. Nhấc hết hàng rồi bấm nút ZERO (→0←) trên đầu "
    "cân. Trạm không tự về 0 bằng phần mềm vì như vậy không hợp lệ cho cân thương mại.",
    "This scale takes no zero command from the station. Clear the platform and press ZERO "
    "on the indicator. The station does not zero in software: that is not legal for trade.",
)


def _not_sent(what_vi: str, what_en: str, exc: CommandError) -> Refused:
    log.warning("%s command not sent to the scale: %s", what_en, exc)  # the raw why: log only
    return Refused(
        "command_not_sent",
        f"Không gửi được lệnh {what_vi} tới cân. Kiểm tra cáp của cân rồi thử lại.",
        f"The {what_en} command did not reach the scale. Check its cable and try again.",
    )


_SAME_WEIGHING = (
    "already_recorded",
    "Lần cân này đã được ghi thành một lô. Nhấc hàng khỏi cân rồi đặt lô mới lên.",
    "This weighing is already recorded as a lot. Take the produce off, then weigh the next lot.",
)

_SAME_PARCEL_WEIGHING = (
    "already_recorded",
    "Lần cân này đã được ghi rồi. Nhấc kiện khỏi cân rồi đặt kiện cần cân lên.",
    "This weighing is already recorded. Take the parcel off, then weigh the next one.",
)

_NOT_POSITIVE = (
    "weight_not_positive",
    "Khối lượng bằng 0 hoặc âm. Đặt hàng lên cân (trừ bì nếu cần) rồi thử lại.",
    "The weight is zero or negative. Put the produce on the scale, then try again.",
)


def make_transport(cfg: StationConfig) -> Transport:
    """The printer's transport from [printer]: type file/network, or a ``uri``."""
    p = cfg.printer
    return transport_for(p.printer_uri(), status_timeout_s=p.status_timeout_s)


class Station:
    def __init__(
        self, cfg: StationConfig, now: Now = utc_now, camera: Camera | None = None
    ) -> None:
        self.cfg = cfg
        self.now = now
        self._camera = camera  # None: the one [camera] describes
        self.intake: Intake | None = None
        self.tz = ZoneInfo(cfg.site.timezone)
        self.simulator: ScaleSimulator | None = None
        self.store: Store | None = None
        self._workers_stores: list[Store] = []
        self.scale: ScaleReader | None = None
        self.printer: PrinterWorker | None = None
        self.sync: MqttSync | None = None
        self._orders: Orders | None = None
        self._handover: Handovers | None = None
        self._record_lock = threading.Lock()
        self._last_weighing = -1  # one lot per weighing: a double tap is refused
        self._tare_lock = threading.Lock()  # the reader's software tare and its saved copy

    def _open_store(self) -> Store:
        s = self.cfg.storage
        store = Store.open(s.path, self.cfg.site.id, s.backup_dir, self.now, self.tz)
        self._workers_stores.append(store)
        return store

    def start(self) -> None:
        self.store = self._open_store()
        self.store.number_lot_days()  # lots from before migration 0015 get their day's number
        claim_site(self.store)  # products central sends down take this site's seqs
        held = PrintQueue(self.store).hold_interrupted()
        if held:
            log.warning(
                "%d print job(s) were cut off by a stop; staff must confirm a reprint", held
            )
        # Photos: files without a row (a crash) removed, retention applied, camera ready.
        cam = self.cfg.camera
        limits = UploadLimits(cam.max_upload_mb << 20, cam.max_upload_megapixels * 1_000_000)
        self.intake = Intake(
            self.store, self.cfg.camera, self.cfg.grading, camera=self._camera, limits=limits
        )
        self.intake.start()
        self.scale = self._start_scale()
        profile = self.cfg.printer.printer_profile()
        self.printer = PrinterWorker(
            self._open_store(),
            make_transport(self.cfg),
            self.cfg.site.name,
            self.cfg.printer.paper_dots or profile.paper_dots,
            self.tz,
            profile=profile,
            renderer=kinds_renderer(signer=self._signer, tz=self.tz),
        )
        self.printer.start()
        self._orders = Orders(self.store, self.cfg.site.name, self.weighing, self._print_now)
        self._handover = Handovers(
            self.store, self.cfg.site.name, self._signer, self.tz, self._print_now
        )
        if self.cfg.mqtt.enabled:
            self.sync = build_link(
                self.cfg, self._open_store(), devices=self.device_states, handlers=HANDLERS
            )
            self.sync.start()
        log.info("station %s started", self.cfg.site.id)

    def _start_scale(self) -> ScaleReader:
        scale_cfg = self.cfg.scale
        settings = scale_cfg.driver_settings()
        if isinstance(scale_cfg, SimulatedScaleConfig):
            self.simulator = ScaleSimulator(
                scale_cfg.link,
                protocol=settings.protocol.name,
                weight_g=scale_cfg.initial_weight_g,
                interval_s=scale_cfg.interval_s,
            )
            self.simulator.start()
            port = str(scale_cfg.link)
        else:
            port = scale_cfg.port
        line = settings.line
        reader = ScaleReader(
            port,
            on_software_tare_dropped=self._software_tare_dropped,
            protocol=settings.protocol,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
            stale_after_s=settings.stale_after_s,
            window=settings.window,
            poll_interval_s=settings.poll_interval_s,
            poll_command=settings.poll_command,
            silent_when_unchanged=settings.silent_when_unchanged,
            overload_above_g=settings.overload_above_g,
            unit=settings.unit,
            wire_log=scale_cfg.wire_log,
        )
        log.info(
            "scale on %s: %s, %d %d%s%d, profile %s",
            port,
            settings.protocol.name,
            line.baudrate,
            line.bytesize,
            line.parity,
            line.stopbits,
            settings.profile or "(built-in defaults)",
        )
        self._restore_software_tare(reader)
        reader.start()
        return reader

    def _restore_software_tare(self, reader: ScaleReader) -> None:
        """The software tare saved before a restart is in force again (before the first
        reading); a scale that now takes its own tare command gets none."""
        tares = SoftwareTare(self.db)
        saved = tares.current()
        if saved is None:
            return
        if reader.protocol.tare_command is not None:
            tares.clear(actor="station", reason="the scale now takes its own tare command")
            log.warning("saved software tare of %d g dropped: the scale tares itself", saved)
            return
        reader.set_software_tare(saved)
        log.info("software tare of %d g restored from the database", saved)

    def _software_tare_dropped(self, tare_g: int) -> None:
        """The reader dropped the software tare (the indicator shows net): so does the
        database. Called from the reader thread; a storage error is logged, not raised."""
        with self._tare_lock:
            if self.scale is not None and self.scale.software_tare_g is not None:
                return  # staff set a new one meanwhile
            try:
                SoftwareTare(self.db).clear(
                    actor="station", reason="the indicator reports a net weight"
                )
            except StorageError as exc:
                log.error("could not drop the saved software tare of %d g: %s", tare_g, exc)

    def _signer(self) -> PayloadSigner:
        """The site's QR signer; the key file is created on first use."""
        return PayloadSigner(self.cfg.site.id, ensure_site_key(self.cfg.site.key_file))

    def stop(self) -> None:
        for worker in (self.sync, self.printer, self.scale):
            if worker is not None:
                worker.stop()
        if self.simulator is not None:
            self.simulator.stop()
        if self.intake is not None:
            self.intake.stop()
        for store in self._workers_stores:
            store.close()
        self._workers_stores.clear()

    @property
    def db(self) -> Store:
        if self.store is None:
            raise RuntimeError("station not started")
        return self.store

    @property
    def orders(self) -> Orders:
        """Orders, the pick list and packing (issue 13)."""
        if self._orders is None:
            raise RuntimeError("station not started")
        return self._orders

    @property
    def handover(self) -> Handovers:
        """Courier handovers: scans, reconciliation, the manifest, returns (issue 14)."""
        if self._handover is None:
            raise RuntimeError("station not started")
        return self._handover

    @property
    def photos(self) -> Intake:
        """Photos and grades of lots (camera, uploads, grading)."""
        if self.intake is None:
            raise RuntimeError("station not started")
        return self.intake

    def scale_state(self) -> ScaleState:
        if self.scale is None:
            raise RuntimeError("station not started")
        return self.scale.state

    def link_status(self) -> LinkStatus:
        return self.sync.status if self.sync else LinkStatus.DISABLED

    def outbox_status(self) -> dict[str, object]:
        return station_outbox(self.cfg, self.db).status()

    def device_states(self) -> dict[str, Any]:
        """Scale, printer and camera states for telemetry (called from the link's thread)."""
        scale = self.scale.state if self.scale else None
        return {
            "scale": (
                {"status": scale.status.value, "fault": scale.fault, "error": scale.error}
                if scale
                else None
            ),
            "printer": self.printer.state_json() if self.printer else None,
            "camera": self.intake.state_json() if self.intake else None,
        }

    def _reader(self) -> ScaleReader:
        if self.scale is None:
            raise RuntimeError("station not started")
        return self.scale

    @contextmanager
    def weighing(self, what: str = "lot") -> Iterator[ScaleState]:
        """The scale's reading for one record (``what``: a lot, a parcel): refused
        (Refused) unless stable and positive, or when this weighing already made a record.
        The weighing counts as used when the block ends without an exception."""
        state = self.scale_state()
        refusal = _REFUSALS.get(state.status)
        if refusal is not None:
            raise Refused(*refusal)
        if state.weight_g is None or state.weight_g <= 0:
            raise Refused(*_NOT_POSITIVE)
        with self._record_lock:
            if state.weighing == self._last_weighing:
                raise Refused(*(_SAME_PARCEL_WEIGHING if what == "parcel" else _SAME_WEIGHING))
            yield state
            self._last_weighing = state.weighing

    def _print_now(self) -> None:
        if self.printer is not None:
            self.printer.wake()  # print now, not at the worker's next idle poll

    def record_lot(self, producer_id: str, product_id: str, actor: str = "staff") -> Lot:
        with self.weighing() as state:
            lot = self.db.record_lot(
                producer_id,
                product_id,
                state.weight_g or 0,
                state.frame or "",
                tare_g=state.tare_g,
                tare_source=state.tare_source,
                actor=actor,
            )
        self._print_now()
        return lot

    # -- tare and zero ------------------------------------------------------------------

    def tare_mode(self) -> str:
        """``scale`` when the indicator takes a tare command, ``software`` otherwise."""
        return "scale" if self._reader().protocol.tare_command else "software"

    def can_zero(self) -> bool:
        return self._reader().protocol.zero_command is not None

    def tare(self, actor: str = "staff") -> str:
        """Tare now; returns where (``scale`` or ``software``). Refused when it cannot."""
        reader = self._reader()
        state = reader.state
        command = reader.protocol.tare_command
        if command is not None:
            if state.status is ScaleStatus.OFFLINE:
                raise Refused(*_REFUSALS[ScaleStatus.OFFLINE])
            try:
                reader.send_command(command)
            except CommandError as exc:
                raise _not_sent("trừ bì", "tare", exc) from None
            log.info("tare command sent to the scale")
            return "scale"
        refusal = _REFUSALS.get(state.status)
        if refusal is not None:
            raise Refused(*refusal)
        if state.tare_source == "scale":
            raise Refused(*_TARE_ON_SCALE)
        gross = (state.weight_g or 0) + (state.tare_g or 0)
        if gross <= 0:
            raise Refused(*_TARE_NOTHING)
        with self._tare_lock:
            previous = reader.software_tare_g
            if not reader.set_software_tare(gross, if_weighing=state.weighing):
                raise Refused(*_SCALE_MOVED)
            try:
                SoftwareTare(self.db).set(gross, actor=actor)  # kept across a restart, audited
            except StorageError:
                reader.set_software_tare(previous)  # not saved: not in force either
                raise
        return "software"

    def clear_tare(self, actor: str = "staff") -> None:
        """Drop the software tare; nothing to do when there is none."""
        reader = self._reader()
        with self._tare_lock:
            if reader.software_tare_g is not None:
                # first: a tare that stays saved stays shown
                SoftwareTare(self.db).clear(actor=actor)
                reader.set_software_tare(None)
                return
        if reader.state.tare_source == "scale":
            raise Refused(*_CLEAR_ON_SCALE)

    def zero(self) -> None:
        """Send the zero command; refused where the family has none (no software zero)."""
        reader = self._reader()
        command = reader.protocol.zero_command
        if command is None:
            raise Refused(*_NO_ZERO)
        if reader.state.status is ScaleStatus.OFFLINE:
            raise Refused(*_REFUSALS[ScaleStatus.OFFLINE])
        try:
            reader.send_command(command)
        except CommandError as exc:
            raise _not_sent("về 0", "zero", exc) from None
        reader.forget_scale_tare()  # zeroing clears an indicator's tare
        log.info("zero command sent to the scale")

    def today(self) -> date:
        """The station-local date now: the day lots count in."""
        return self.now().astimezone(self.tz).date()
