"""Taking a still: one small interface, a driver per kind of camera, and a simulator.

A :class:`Camera` has ``capture() -> BGR uint8 array`` (raising :class:`CameraError`
with a code and a message in Vietnamese and English) and a ``state`` the page shows
next to the scale and printer: ``ok``, ``ready`` (not used yet), ``no_device``,
``error`` or ``none`` (no camera configured: uploads only).

- :class:`V4l2Camera`: a USB/V4L2 or Pi camera through ``cv2.VideoCapture``. Opened
  lazily on the first capture and kept open; a failure releases it and the next
  capture opens it again. A missing device node is ``no_device`` without asking OpenCV.
- :class:`SimulatedCamera`: generated tray scenes (:mod:`edge.camera.scenes`), other
  items each shot; it misbehaves on command (:class:`Fault`): unplugged, no frame,
  a black or an overexposed frame, as a real camera does.
- :class:`NoCamera`: ``camera.type = "none"``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera import scenes
from edge.config import CameraConfig
from edge.errors import StaffError
from edge.faults import camera_fault

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]


class CameraStatus(StrEnum):
    OK = "ok"  # the last capture gave a frame
    READY = "ready"  # configured and present, not used yet
    NO_DEVICE = "no_device"  # unplugged / no such device
    ERROR = "error"  # present but the last capture failed
    NONE = "none"  # no camera configured


@dataclass(frozen=True)
class CameraState:
    kind: str  # v4l2, simulated, none
    status: CameraStatus
    device: str | None = None
    message: str | None = None  # Vietnamese, when not ok
    message_en: str | None = None
    code: str | None = None  # the CameraError code, when not ok

    def to_json(self) -> dict[str, Any]:
        fault = None
        if self.message is not None:
            fault = {
                "code": f"camera_{self.code or 'error'}",
                "message": self.message,
                "message_en": self.message_en or self.message,
            }
        return {
            "type": self.kind,
            "status": self.status.value,
            "device": self.device,
            "fault": fault,  # what staff read (edge.faults.camera_fault)
        }


class CameraError(StaffError):
    """A capture that gave no usable frame: ``code`` (no_device, no_frame, open_failed,
    no_camera), ``message`` in Vietnamese for the staff, ``message_en`` in English."""

    default_status = 503


def _camera_error(code: str, device: str) -> CameraError:
    fault = camera_fault(code, device)
    return CameraError(code, fault.message, fault.message_en)


def no_device_error(device: str) -> CameraError:
    return _camera_error("no_device", device)


def _no_device_state(kind: str, device: str | None, which: str) -> CameraState:
    """The state of a camera whose device is gone (``which``: its node, or "simulated")."""
    err = no_device_error(which)
    return CameraState(kind, CameraStatus.NO_DEVICE, device, err.message, err.message_en, err.code)


def no_frame_error(device: str) -> CameraError:
    return _camera_error("no_frame", device)


def open_failed_error(device: str, why: str) -> CameraError:
    """``why`` (OpenCV's words) goes to the log; staff read what to do."""
    log.warning("camera %s cannot be opened: %s", device, why)
    return _camera_error("open_failed", device)


NO_CAMERA = _camera_error("no_camera", "")


class Camera(Protocol):
    """A still camera. ``capture`` blocks until a frame is taken or fails."""

    def capture(self) -> Frame: ...

    @property
    def state(self) -> CameraState: ...

    def close(self) -> None: ...


class _StateHolder:
    """Status bookkeeping shared by the drivers: the last outcome, logged once per change."""

    kind = "camera"

    def __init__(self, device: str | None) -> None:
        self.device = device
        self._status = CameraStatus.READY
        self._error: CameraError | None = None

    def _ok(self) -> None:
        if self._status is not CameraStatus.OK and self._error is not None:
            log.info("camera %s recovered", self.device)
        self._status, self._error = CameraStatus.OK, None

    def _failed(self, exc: CameraError) -> CameraError:
        status = CameraStatus.NO_DEVICE if exc.code == "no_device" else CameraStatus.ERROR
        if self._error is None or self._error.code != exc.code:
            log.warning("camera %s: %s", self.device, exc.message_en)
        self._status, self._error = status, exc
        return exc

    def _state(self) -> CameraState:
        err = self._error
        return CameraState(
            self.kind,
            self._status,
            self.device,
            err.message if err else None,
            err.message_en if err else None,
            err.code if err else None,
        )


class VideoCaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` the driver uses."""

    def isOpened(self) -> bool: ...  # OpenCV's name
    def set(self, prop: int, value: float) -> bool: ...
    def grab(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...


def _open_v4l2(index: int) -> VideoCaptureLike:
    return cast(VideoCaptureLike, cv2.VideoCapture(index, cv2.CAP_V4L2))


def device_node(device: str) -> Path:
    """``/dev/video0`` for ``"0"``, the path itself otherwise."""
    return Path(f"/dev/video{device}") if device.isdigit() else Path(device)


def v4l2_index(device: str) -> int | None:
    """The V4L2 index of ``"2"``, ``/dev/video2`` or a link to it (``/dev/v4l/by-id/...``,
    stable across replugging); ``None`` when the path is not a video device. OpenCV's
    V4L2 back-end opens cameras by index."""
    if device.isdigit():
        return int(device)
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(device))
    return int(match.group(1)) if match else None


class V4l2Camera(_StateHolder):
    """A V4L2 device (USB webcam, Pi camera through libcamera's V4L2 compatibility).

    ``warmup_frames`` are dropped after opening (auto-exposure settles on them) and
    ``flush_frames`` before each still, so the picture is of now, not of a frame
    that waited in the driver's buffer since the previous capture.
    """

    kind = "v4l2"

    def __init__(
        self,
        device: str,
        width: int,
        height: int,
        *,
        warmup_frames: int = 5,
        flush_frames: int = 2,
        opener: Callable[[int], VideoCaptureLike] = _open_v4l2,
    ) -> None:
        super().__init__(device)
        self.width = width
        self.height = height
        self.warmup_frames = warmup_frames
        self.flush_frames = flush_frames
        self._opener = opener
        self._cap: VideoCaptureLike | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> CameraState:
        if not device_node(str(self.device)).exists():  # a cheap stat: unplugged shows at once
            return _no_device_state(self.kind, self.device, str(self.device))
        return self._state()

    def _open(self) -> VideoCaptureLike:
        device = str(self.device)
        if not device_node(device).exists():
            raise no_device_error(device)
        index = v4l2_index(device)
        if index is None:
            raise open_failed_error(device, "not a V4L2 video device (/dev/videoN)")
        cap = self._opener(index)
        if not cap.isOpened():
            cap.release()
            raise open_failed_error(device, "OpenCV could not open it as a V4L2 video device")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        for _ in range(self.warmup_frames):
            cap.grab()
        log.info("camera %s opened", device)
        return cap

    def capture(self) -> Frame:
        with self._lock:
            try:
                if self._cap is None:
                    self._cap = self._open()
                for _ in range(self.flush_frames):
                    self._cap.grab()
                ok, frame = self._cap.read()
                if not ok or frame is None or getattr(frame, "size", 0) == 0:
                    raise no_frame_error(str(self.device))
            except CameraError as exc:
                self._release()
                raise self._failed(exc) from None
            except cv2.error as exc:
                self._release()
                raise self._failed(open_failed_error(str(self.device), str(exc))) from None
            self._ok()
            return _as_bgr(frame)

    def _release(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            finally:
                self._cap = None

    def close(self) -> None:
        with self._lock:
            self._release()


def _as_bgr(frame: npt.NDArray[Any]) -> Frame:
    """Grey or BGRA frames (some drivers) as BGR uint8."""
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame)
    if frame.ndim == 2:
        return cast(Frame, cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    if frame.shape[2] == 4:
        return cast(Frame, cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR))
    return cast(Frame, np.ascontiguousarray(frame))


class Fault(StrEnum):
    """How the simulated camera misbehaves (``NONE``: it does not)."""

    NONE = "none"
    UNPLUGGED = "unplugged"  # the device node is gone
    NO_FRAME = "no_frame"  # opened, but read() gives nothing
    BLACK = "black"  # a frame, lens cap on / no light
    OVEREXPOSED = "overexposed"  # a frame, washed out by the sun


def generated_tray(seed: int, size: tuple[int, int], kind: str | None = None) -> Frame:
    """A tray photo with other items each seed, at the camera's resolution (the tray is
    320 x 240 mm, so 1280 x 960 is 4 px/mm); all items of ``kind`` (a key of
    ``scenes.KIND_BGR``) and shaped like that produce when given, else mixed."""
    rng = np.random.default_rng(seed)
    px_per_mm = min(size[0] / 320.0, size[1] / 240.0)
    items = scenes.random_items(rng, count=int(rng.integers(3, 7)), kind=kind)
    return scenes.make_scene(items, size=size, px_per_mm=px_per_mm, seed=seed).image


class SimulatedCamera(_StateHolder):
    """Generated tray photos; ``frames(n)`` makes shot ``n`` (default: :func:`generated_tray`
    of the current :attr:`subject`, a key of ``scenes.KIND_BGR`` or ``None`` for mixed)."""

    kind = "simulated"

    def __init__(
        self,
        size: tuple[int, int] = (1280, 960),
        *,
        seed: int = 1,
        frames: Callable[[int], Frame] | None = None,
    ) -> None:
        super().__init__("simulated")
        self.size = size
        self._next = seed
        self._frames = frames or (lambda n: generated_tray(n, size, self.subject))
        self.subject: str | None = None
        self._fault = Fault.NONE
        self._lock = threading.Lock()
        self.shots = 0  # frames handed out

    def set_fault(self, fault: Fault) -> None:
        with self._lock:
            self._fault = fault
        log.info("simulated camera: %s", fault.value)

    @property
    def fault(self) -> Fault:
        return self._fault

    @property
    def state(self) -> CameraState:
        if self._fault is Fault.UNPLUGGED:
            return _no_device_state(self.kind, self.device, "simulated")
        return self._state()

    def capture(self) -> Frame:
        with self._lock:
            fault = self._fault
            if fault is Fault.UNPLUGGED:
                raise self._failed(no_device_error("simulated"))
            if fault is Fault.NO_FRAME:
                raise self._failed(no_frame_error("simulated"))
            w, h = self.size
            if fault is Fault.BLACK:
                rng = np.random.default_rng(self._next)
                frame: Frame = rng.integers(0, 6, (h, w, 3)).astype(np.uint8)
            else:
                frame = self._frames(self._next)
                if fault is Fault.OVEREXPOSED:
                    frame = cast(Frame, cv2.convertScaleAbs(frame, alpha=2.2, beta=60))
            self._next += 1
            self.shots += 1
            self._ok()
            return frame

    def close(self) -> None:
        pass


class NoCamera:
    """``camera.type = "none"``: photos come as uploads only."""

    @property
    def state(self) -> CameraState:
        return CameraState("none", CameraStatus.NONE)

    def capture(self) -> Frame:
        raise NO_CAMERA

    def close(self) -> None:
        pass


def open_camera(cfg: CameraConfig) -> Camera:
    """The camera [camera] describes; nothing is opened until the first capture."""
    if cfg.type == "v4l2":
        return V4l2Camera(cfg.device, cfg.width, cfg.height)
    if cfg.type == "simulated":
        return SimulatedCamera((cfg.width, cfg.height))
    return NoCamera()
