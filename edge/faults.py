"""What staff read when a device fails: a fault code and one sentence in Vietnamese and
one in English, each saying what happened and what to do.

Pure: codes (and exceptions, only inspected, never printed) in, :class:`Fault` out. The
raw text of an exception (``[Errno 5] Input/output error``, ``port var/scale-sim not
found``) goes to the log where it happened; it is never part of a sentence here, so it
never reaches the page or the API.

* Scale: the reader records a :class:`ScaleFault` with every offline reason
  (:func:`scale_open_fault` sorts the errors of opening the port).
* Printer: :func:`printer_fault_of` sorts what the transport raised (connection refused,
  time-out, unreachable, device missing...), :func:`printer_condition_fault` what the
  printer said to DLE EOT (paper out, cover open...), :func:`held_fault` why a label
  was cut off, from what the worker recorded in ``print_jobs.printer_status``.
* Camera: :func:`camera_fault` for the codes of :class:`edge.camera.capture.CameraError`.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from enum import StrEnum

from edge.printer.status import Condition, Paper


@dataclass(frozen=True)
class Fault:
    """One device fault for staff: ``message`` Vietnamese, ``message_en`` English."""

    code: str
    message: str
    message_en: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


# -- the scale ------------------------------------------------------------------------------


class ScaleFault(StrEnum):
    PORT_MISSING = "scale_port_missing"
    PERMISSION = "scale_permission"
    PORT_BUSY = "scale_port_busy"
    OPEN_FAILED = "scale_open_failed"
    DISCONNECTED = "scale_disconnected"
    WAITING = "scale_waiting"
    SILENT = "scale_silent"
    GARBLED = "scale_garbled"
    REPORTS_ERROR = "scale_reports_error"
    READER_FAILED = "scale_reader_failed"
    STOPPED = "scale_stopped"


_SCALE: dict[ScaleFault, tuple[str, str]] = {
    ScaleFault.PORT_MISSING: (
        "Trạm không thấy cân: cáp nối cân với trạm chưa cắm hoặc đã tuột. "
        "Cắm lại cáp; số cân sẽ tự hiện lại.",
        "The station cannot find the scale: its cable to the station is unplugged. "
        "Plug it back in; the weight comes back by itself.",
    ),
    ScaleFault.PERMISSION: (
        "Trạm không được phép mở cổng nối với cân. Báo kỹ thuật để cấp quyền cổng (nhóm dialout).",
        "The station is not allowed to open the scale's port. Call support to grant "
        "access to the port (dialout group).",
    ),
    ScaleFault.PORT_BUSY: (
        "Cổng nối với cân đang bị chương trình khác dùng. Khởi động lại trạm; nếu vẫn "
        "lỗi, báo kỹ thuật.",
        "Another program is using the scale's port. Restart the station; if it "
        "persists, call support.",
    ),
    ScaleFault.OPEN_FAILED: (
        "Trạm không mở được cổng nối với cân. Rút cáp của cân ra rồi cắm lại; nếu vẫn "
        "lỗi, báo kỹ thuật.",
        "The station cannot open the scale's port. Unplug the scale's cable and plug it "
        "in again; if it persists, call support.",
    ),
    ScaleFault.DISCONNECTED: (
        "Mất kết nối với cân: cáp bị rút hoặc lỏng. Kiểm tra cáp nối cân với trạm; số "
        "cân sẽ tự hiện lại khi cắm chặt.",
        "The connection to the scale was lost: its cable was pulled or is loose. Check "
        "the cable between the scale and the station; the weight comes back once it is "
        "plugged in firmly.",
    ),
    ScaleFault.WAITING: (
        "Đã nối với cân, đang chờ số liệu đầu tiên. Chờ vài giây.",
        "Connected to the scale, waiting for its first reading. Wait a few seconds.",
    ),
    ScaleFault.SILENT: (
        "Cân không gửi số liệu. Kiểm tra cân đã bật và cáp nối cân với trạm đã cắm chặt.",
        "The scale sends nothing. Check that the scale is switched on and that its cable "
        "to the station is firmly plugged in.",
    ),
    ScaleFault.GARBLED: (
        "Cân có gửi dữ liệu nhưng trạm không đọc được (cài đặt sai loại cân hoặc tốc độ "
        "truyền). Báo kỹ thuật kiểm tra cài đặt cân.",
        "Data comes from the scale but the station cannot read it (wrong scale type or "
        "baud rate in the settings). Call support to check the scale settings.",
    ),
    ScaleFault.REPORTS_ERROR: (
        "Đầu cân báo lỗi. Nhấc hàng khỏi cân, tắt đầu cân rồi bật lại.",
        "The scale's indicator reports an error. Take the load off, switch the "
        "indicator off and on again.",
    ),
    ScaleFault.READER_FAILED: (
        "Trạm gặp lỗi khi đọc cân và đang tự thử lại. Nếu quá một phút vẫn vậy, khởi "
        "động lại trạm và báo kỹ thuật.",
        "The station hit an error reading the scale and keeps retrying. If it lasts "
        "more than a minute, restart the station and call support.",
    ),
    ScaleFault.STOPPED: (
        "Chương trình đọc cân đang khởi động hoặc đã dừng. Chờ một chút; nếu vẫn vậy, "
        "khởi động lại trạm.",
        "The scale reader is starting or has stopped. Wait a moment; if it stays so, "
        "restart the station.",
    ),
}


def scale_fault(code: ScaleFault | str | None) -> Fault | None:
    """The sentence for a scale fault code; None for None (the scale is fine)."""
    if code is None:
        return None
    fault = ScaleFault(code)
    vi, en = _SCALE[fault]
    return Fault(fault.value, vi, en)


_MISSING = (errno.ENOENT, errno.ENODEV, errno.ENXIO)
_DENIED = (errno.EACCES, errno.EPERM)
_BUSY = (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK)


def scale_open_fault(exc: BaseException) -> ScaleFault:
    """Why the scale's port could not be opened, from the error's errno."""
    code = _errno(exc)
    if code in _MISSING:
        return ScaleFault.PORT_MISSING
    if code in _DENIED:
        return ScaleFault.PERMISSION
    if code in _BUSY:
        return ScaleFault.PORT_BUSY
    return ScaleFault.OPEN_FAILED


def _errno(exc: BaseException) -> int | None:
    """The errno of ``exc`` or of the first error in its chain that has one."""
    for e in _chain(exc):
        code = getattr(e, "errno", None)
        if isinstance(code, int):
            return code
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, then its causes (explicit first), at most eight deep, no cycles."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


# -- the printer ----------------------------------------------------------------------------


class PrinterFault(StrEnum):
    REFUSED = "printer_refused"
    TIMEOUT = "printer_timeout"
    UNREACHABLE = "printer_unreachable"
    HOST_UNKNOWN = "printer_host_unknown"
    DROPPED = "printer_dropped"
    DEVICE_MISSING = "printer_device_missing"
    PERMISSION = "printer_permission"
    BUSY = "printer_busy"
    SETUP = "printer_setup"
    FOLDER = "printer_folder"
    INTERRUPTED = "printer_interrupted"
    PAPER_OUT = "printer_paper_out"
    COVER_OPEN = "printer_cover_open"
    ERROR = "printer_error"
    OFFLINE = "printer_offline"
    STATUS_UNKNOWN = "printer_status_unknown"
    PAPER_NEAR_END = "printer_paper_near_end"
    JOB_BROKEN = "printer_job_broken"


_WAITING_VI = " Nhãn đang chờ sẽ tự in khi máy in sẵn sàng."
_WAITING_EN = " Waiting labels print by themselves once the printer is ready."

_PRINTER: dict[PrinterFault, tuple[str, str]] = {
    PrinterFault.REFUSED: (
        "Máy in không nhận kết nối (đang khởi động, hoặc sai máy in). Chờ máy in khởi "
        "động xong; nếu vẫn vậy, tắt máy in rồi bật lại." + _WAITING_VI,
        "The printer refuses the connection (still starting, or not the right printer). "
        "Wait until it has started; if it persists, switch it off and on again." + _WAITING_EN,
    ),
    PrinterFault.TIMEOUT: (
        "Máy in không trả lời. Kiểm tra máy in đã bật và dây mạng (hoặc cáp) của máy in."
        + _WAITING_VI,
        "The printer does not answer. Check that it is switched on and its network cable "
        "(or its cable) is plugged in." + _WAITING_EN,
    ),
    PrinterFault.UNREACHABLE: (
        "Không liên lạc được với máy in. Kiểm tra nguồn điện và dây mạng (hoặc cáp) của "
        "máy in." + _WAITING_VI,
        "The printer cannot be reached. Check its power and its network cable (or its "
        "cable)." + _WAITING_EN,
    ),
    PrinterFault.HOST_UNKNOWN: (
        "Không tìm thấy máy in theo tên trong cài đặt. Báo kỹ thuật kiểm tra địa chỉ máy in."
        + _WAITING_VI,
        "The printer's name in the settings is not found. Call support to check the "
        "printer's address." + _WAITING_EN,
    ),
    PrinterFault.DROPPED: (
        "Máy in ngắt kết nối. Kiểm tra nguồn điện và dây của máy in." + _WAITING_VI,
        "The printer dropped the connection. Check its power and its cable." + _WAITING_EN,
    ),
    PrinterFault.DEVICE_MISSING: (
        "Trạm không thấy máy in: cáp của máy in chưa cắm hoặc đã tuột. Cắm lại cáp và "
        "bật máy in." + _WAITING_VI,
        "The station cannot find the printer: its cable is unplugged. Plug it back in "
        "and switch the printer on." + _WAITING_EN,
    ),
    PrinterFault.PERMISSION: (
        "Trạm không được phép dùng máy in. Báo kỹ thuật để cấp quyền thiết bị.",
        "The station is not allowed to use the printer. Call support to grant access to "
        "the device.",
    ),
    PrinterFault.BUSY: (
        "Máy in đang bị chương trình khác dùng. Khởi động lại trạm; nếu vẫn vậy, báo kỹ "
        "thuật." + _WAITING_VI,
        "Another program is using the printer. Restart the station; if it persists, call "
        "support." + _WAITING_EN,
    ),
    PrinterFault.SETUP: (
        "Máy in chưa được cài đặt đủ trên trạm (thiếu phần mềm). Báo kỹ thuật.",
        "The printer is not fully set up on the station (software missing). Call support.",
    ),
    PrinterFault.FOLDER: (
        "Không ghi được nhãn của máy in mô phỏng (đĩa đầy hoặc không có quyền). Báo kỹ thuật.",
        "The simulated printer cannot store labels (disk full or no permission). Call support.",
    ),
    PrinterFault.INTERRUPTED: (
        "Máy in bị ngắt khi đang in; nhãn có thể chỉ in được một phần. Xem máy in và mục "
        "“Nhãn bị gián đoạn”.",
        "The printer was cut off while printing; the label may be partly printed. Check "
        "the printer and the “interrupted labels” list.",
    ),
    PrinterFault.PAPER_OUT: (
        "Máy in hết giấy. Lắp cuộn giấy mới." + _WAITING_VI,
        "The printer is out of paper. Load a new roll." + _WAITING_EN,
    ),
    PrinterFault.COVER_OPEN: (
        "Nắp máy in đang mở. Đóng nắp lại." + _WAITING_VI,
        "The printer cover is open. Close it." + _WAITING_EN,
    ),
    PrinterFault.ERROR: (
        "Máy in báo lỗi (kẹt giấy, dao cắt hoặc đầu in quá nóng). Tắt máy in, kiểm tra "
        "rồi bật lại." + _WAITING_VI,
        "The printer reports an error (paper jam, cutter or head too hot). Switch it off, "
        "check it, switch it on again." + _WAITING_EN,
    ),
    PrinterFault.OFFLINE: (
        "Máy in đang tạm dừng (offline). Kiểm tra đèn báo và nút FEED trên máy in." + _WAITING_VI,
        "The printer is off-line. Check its lights and its FEED button." + _WAITING_EN,
    ),
    PrinterFault.STATUS_UNKNOWN: (
        "Máy in nhận nhãn nhưng không trả lời câu hỏi trạng thái: không biết còn giấy hay "
        "không. Xem nhãn có ra đủ không.",
        "The printer takes labels but does not answer status queries: paper and cover are "
        "unknown. Check that the labels come out.",
    ),
    PrinterFault.PAPER_NEAR_END: (
        "Máy in sẵn sàng, nhưng giấy sắp hết: chuẩn bị cuộn mới.",
        "The printer is ready, but the paper is near its end: have a new roll ready.",
    ),
    PrinterFault.JOB_BROKEN: (
        "Nhãn này không in được (dữ liệu của nhãn bị lỗi). Báo kỹ thuật.",
        "This label cannot be printed (its data is broken). Call support.",
    ),
}


def printer_fault(code: PrinterFault | str) -> Fault:
    fault = PrinterFault(code)
    vi, en = _PRINTER[fault]
    return Fault(fault.value, vi, en)


_CONDITIONS = {
    Condition.PAPER_OUT: PrinterFault.PAPER_OUT,
    Condition.COVER_OPEN: PrinterFault.COVER_OPEN,
    Condition.ERROR: PrinterFault.ERROR,
    Condition.OFFLINE: PrinterFault.OFFLINE,
    Condition.UNKNOWN: PrinterFault.STATUS_UNKNOWN,
}


def printer_condition_fault(condition: Condition, paper: Paper = Paper.UNKNOWN) -> Fault | None:
    """What the printer's DLE EOT replies say; None when it is ready with paper."""
    code = _CONDITIONS.get(condition)
    if code is None and paper is Paper.NEAR_END:
        code = PrinterFault.PAPER_NEAR_END
    return None if code is None else printer_fault(code)


_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN)


def printer_fault_of(exc: BaseException) -> Fault:
    """Sort what a transport raised: the code a :class:`PrinterUnavailable` carries
    (``fault``), else the first OS error of its chain."""
    for e in _chain(exc):
        code = getattr(e, "fault", None)
        if isinstance(code, str) and code in PrinterFault._value2member_map_:
            return printer_fault(code)
    for e in _chain(exc):
        found = _os_printer_fault(e)
        if found is not None:
            return printer_fault(found)
    return printer_fault(PrinterFault.UNREACHABLE)


def _os_printer_fault(e: BaseException) -> PrinterFault | None:
    if isinstance(e, ConnectionRefusedError):
        return PrinterFault.REFUSED
    if isinstance(e, TimeoutError):
        return PrinterFault.TIMEOUT
    if isinstance(e, socket.gaierror):
        return PrinterFault.HOST_UNKNOWN
    if isinstance(e, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return PrinterFault.DROPPED
    code = getattr(e, "errno", None)
    if not isinstance(code, int):
        return None
    if code in _UNREACHABLE:
        return PrinterFault.UNREACHABLE
    if code == errno.ETIMEDOUT:
        return PrinterFault.TIMEOUT
    if code in _MISSING:
        return PrinterFault.DEVICE_MISSING
    if code in _DENIED:
        return PrinterFault.PERMISSION
    if code in _BUSY:
        return PrinterFault.BUSY
    if code == errno.EIO:
        return PrinterFault.DROPPED  # a USB or serial printer pulled out
    return None


# -- labels cut off while printing ------------------------------------------------------------

HELD_RESTART = "restart"
"""``print_jobs.printer_status`` of a job the station found 'sending' at start: the
station stopped (restart, power cut) while sending it."""
HELD_CONNECTION = "interrupted"
"""The connection to the printer failed mid-job, and the printer did not say why."""

_HELD: dict[str, tuple[str, str, str]] = {
    HELD_RESTART: (
        "held_restart",
        "Trạm bị tắt hoặc mất điện khi đang in nhãn này.",
        "The station was switched off or lost power while printing this label.",
    ),
    HELD_CONNECTION: (
        "held_connection",
        "Mất kết nối với máy in khi đang in nhãn này (máy in bị tắt hoặc tuột dây).",
        "The connection to the printer was lost while printing this label (printer "
        "switched off or cable pulled).",
    ),
    Condition.PAPER_OUT.value: (
        "held_paper_out",
        "Máy in hết giấy khi đang in nhãn này. Lắp cuộn giấy mới trước.",
        "The printer ran out of paper while printing this label. Load a new roll first.",
    ),
    Condition.COVER_OPEN.value: (
        "held_cover_open",
        "Nắp máy in bị mở khi đang in nhãn này. Đóng nắp trước.",
        "The printer cover was opened while printing this label. Close it first.",
    ),
    Condition.ERROR.value: (
        "held_printer_error",
        "Máy in báo lỗi khi đang in nhãn này (kẹt giấy, dao cắt hoặc đầu in quá nóng). "
        "Gỡ lỗi trên máy in trước.",
        "The printer reported an error while printing this label (paper jam, cutter or "
        "head too hot). Clear it on the printer first.",
    ),
    Condition.OFFLINE.value: (
        "held_printer_offline",
        "Máy in chuyển sang tạm dừng (offline) khi đang in nhãn này. Kiểm tra đèn báo "
        "trên máy in trước.",
        "The printer went off-line while printing this label. Check its lights first.",
    ),
}

_HELD_THEN = (
    " Xem máy in: nếu không có nhãn nguyên vẹn, bấm “In lại”.",
    " Check the printer: if no whole label came out, press “Print again”.",
)


def held_fault(printer_status: str | None) -> Fault:
    """Why a held label was cut off, from ``print_jobs.printer_status``: a restart or
    power cut (also ``None``: jobs held by older versions at start), a dropped
    connection, or the condition the printer reported right after."""
    code, vi, en = _HELD.get(printer_status or HELD_RESTART, _HELD[HELD_CONNECTION])
    return Fault(code, vi + _HELD_THEN[0], en + _HELD_THEN[1])


def job_fault(status: str, printer_status: str | None) -> Fault | None:
    """What staff read about one print job: why it is held, why it waits, why it failed;
    None for a job that is printed or simply next in line."""
    if status == "held":
        return held_fault(printer_status)
    if status == "failed":
        return printer_fault(PrinterFault.JOB_BROKEN)
    if status == "queued" and printer_status:
        if printer_status == "unreachable":
            return printer_fault(PrinterFault.UNREACHABLE)
        try:
            return printer_condition_fault(Condition(printer_status))
        except ValueError:
            return printer_fault(PrinterFault.UNREACHABLE)
    return None


# -- the camera -----------------------------------------------------------------------------


def camera_fault(code: str, device: str) -> Fault:
    """The camera's faults (the codes of CameraError): ``camera_`` + code."""
    shown = f"/dev/video{device}" if device.isdigit() else device
    texts = {
        "no_device": (
            f"Không thấy máy ảnh ({shown}). Kiểm tra cáp máy ảnh rồi thử lại, hoặc bấm "
            "“Tải ảnh lên” để dùng ảnh chụp bằng điện thoại.",
            f"No camera found at {shown}. Check the camera's cable and try again, or use "
            "“Upload photo” with a phone picture.",
        ),
        "no_frame": (
            f"Máy ảnh ({shown}) không trả về ảnh. Thử chụp lại; nếu vẫn lỗi, rút cáp máy ảnh "
            "ra cắm lại.",
            f"The camera ({shown}) returned no picture. Try again; if it persists, unplug "
            "and replug the camera.",
        ),
        "open_failed": (
            f"Không mở được máy ảnh ({shown}). Rút cáp máy ảnh ra cắm lại; nếu vẫn lỗi, báo "
            "kỹ thuật kiểm tra cài đặt máy ảnh (camera.device). Trong lúc chờ, bấm “Tải ảnh "
            "lên” để dùng ảnh chụp bằng điện thoại.",
            f"Cannot open the camera ({shown}). Unplug and replug it; if it persists, call "
            "support to check the camera settings (camera.device). Meanwhile use “Upload "
            "photo” with a phone picture.",
        ),
        "no_camera": (
            "Trạm không có máy ảnh. Bấm “Tải ảnh lên” để dùng ảnh chụp bằng điện thoại.",
            "This station has no camera. Use “Upload photo” with a phone picture.",
        ),
    }
    vi, en = texts.get(code, texts["open_failed"])
    return Fault(f"camera_{code}", vi, en)
