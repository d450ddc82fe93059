"""Capture: the V4L2 driver as far as a machine without a camera allows (a missing or
wrong device gives a clear state and error), the simulated camera end to end (its
trays go through the real grading checks), and its faults on command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.camera.capture import (
    CameraError,
    CameraStatus,
    Fault,
    NoCamera,
    SimulatedCamera,
    V4l2Camera,
    open_camera,
    v4l2_index,
)
from edge.camera.grading.measure import TrayMeasurement
from edge.camera.grading.quality import Declined, Reason, assess
from edge.config import CameraConfig


def status(cam: SimulatedCamera | V4l2Camera) -> CameraStatus:
    return cam.state.status


def _missing_video_node() -> str:
    n = 57
    while Path(f"/dev/video{n}").exists():
        n += 1
    return f"/dev/video{n}"


def test_v4l2_without_the_device_is_no_device_with_a_clear_message() -> None:
    device = _missing_video_node()
    cam = V4l2Camera(device, 1280, 960)
    assert cam.state.status is CameraStatus.NO_DEVICE  # shown before anyone captures
    assert device in (cam.state.message_en or "")
    with pytest.raises(CameraError) as exc:
        cam.capture()
    assert exc.value.code == "no_device"
    assert f"Không thấy máy ảnh ({device})" in exc.value.message
    assert "Tải ảnh lên" in exc.value.message  # what to do instead
    assert cam.state.to_json()["status"] == "no_device"
    cam.close()


def test_v4l2_index_names_its_device_node() -> None:
    n = _missing_video_node().removeprefix("/dev/video")
    cam = V4l2Camera(n, 640, 480)
    with pytest.raises(CameraError) as exc:
        cam.capture()
    assert exc.value.code == "no_device"
    assert f"/dev/video{n}" in exc.value.message_en


def test_v4l2_on_something_that_is_not_a_camera_is_an_error_state() -> None:
    cam = V4l2Camera("/dev/null", 640, 480)
    assert cam.state.status is CameraStatus.READY  # the node exists: not tried yet
    with pytest.raises(CameraError) as exc:
        cam.capture()
    assert exc.value.code == "open_failed"
    assert "camera.device" in exc.value.message_en
    state = cam.state
    assert state.status is CameraStatus.ERROR
    assert state.message is not None and "Không mở được máy ảnh" in state.message


def test_v4l2_index_of_paths_and_links(tmp_path: Path) -> None:
    assert v4l2_index("2") == 2
    assert v4l2_index("/dev/video3") == 3
    link = tmp_path / "usb-camera-video-index0"
    link.symlink_to("/dev/video7")  # as /dev/v4l/by-id/... links are
    assert v4l2_index(str(link)) == 7
    assert v4l2_index("/dev/null") is None


def test_simulated_camera_gives_a_different_gradable_tray_each_shot() -> None:
    cam = SimulatedCamera((1280, 960))
    assert status(cam) is CameraStatus.READY
    first, second = cam.capture(), cam.capture()
    assert first.shape == second.shape == (960, 1280, 3)
    assert first.dtype == np.uint8
    assert not np.array_equal(first, second)
    assert status(cam) is CameraStatus.OK and cam.shots == 2
    for frame in (first, second):
        m = assess(frame)
        assert isinstance(m, TrayMeasurement), m
        assert m.scale_source == "aruco" and 3 <= len(m.items) <= 6


def test_simulated_camera_follows_its_subject() -> None:
    cam = SimulatedCamera((1280, 960))
    cam.subject = "yellow"
    m = assess(cam.capture())
    assert isinstance(m, TrayMeasurement)
    assert {item.colour_class for item in m.items} == {"yellow"}


def test_simulated_camera_size_follows_the_configuration() -> None:
    cam = open_camera(CameraConfig(type="simulated", width=640, height=480))
    assert isinstance(cam, SimulatedCamera)
    frame = cam.capture()
    assert frame.shape == (480, 640, 3)
    assert isinstance(assess(frame), TrayMeasurement)


def test_unplugged_simulated_camera_reports_and_refuses_then_recovers() -> None:
    cam = SimulatedCamera((640, 480))
    cam.set_fault(Fault.UNPLUGGED)
    assert cam.state.status is CameraStatus.NO_DEVICE
    with pytest.raises(CameraError) as exc:
        cam.capture()
    assert exc.value.code == "no_device"
    cam.set_fault(Fault.NO_FRAME)
    with pytest.raises(CameraError) as exc:
        cam.capture()
    assert exc.value.code == "no_frame"
    assert status(cam) is CameraStatus.ERROR
    assert "không trả về ảnh" in (cam.state.message or "")
    cam.set_fault(Fault.NONE)
    cam.capture()
    assert status(cam) is CameraStatus.OK and cam.state.message is None
    assert cam.shots == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(Fault.BLACK, Reason.UNDEREXPOSED), (Fault.OVEREXPOSED, Reason.OVEREXPOSED)],
)
def test_bad_frames_are_declined_by_the_grading_checks(fault: Fault, reason: Reason) -> None:
    cam = SimulatedCamera((640, 480))
    cam.set_fault(fault)
    frame = cam.capture()  # the camera does not know its picture is useless
    assert frame.shape == (480, 640, 3)
    result = assess(frame)
    assert isinstance(result, Declined)
    assert result.reason is reason


def test_no_camera_configured() -> None:
    cam = open_camera(CameraConfig(type="none"))
    assert isinstance(cam, NoCamera)
    assert cam.state.to_json()["status"] == "none"
    with pytest.raises(CameraError) as exc:
        cam.capture()
    assert exc.value.code == "no_camera"
    assert isinstance(open_camera(CameraConfig(type="v4l2", device="/dev/video0")), V4l2Camera)
