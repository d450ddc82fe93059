"""Limits a Pi can live with (issue 12, part 8): request bodies capped before they are
parsed, photos decoded a few at a time and reduced while decoding, a clear 503 when the
station is too busy. The station's memory under ten uploads: tests/test_station_rss.py."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image as PilImage

from edge.camera.capture import generated_tray
from edge.camera.limiter import Limiter
from edge.camera.photos import PhotoRejected, UploadLimits, decode_upload, reduction
from edge.config import ConfigError, parse_config
from edge.web.limits import release_freed_memory
from rigs.helpers import StationServer, settle, station_config

BUSY_VI = "Trạm đang bận xử lý ảnh, thử lại sau ít giây."


def _jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(buf.tobytes())


def _tray(size: tuple[int, int] = (1280, 960)) -> np.ndarray:
    frame = generated_tray(3, (1280, 960), "yellow")
    return frame if size == (1280, 960) else cv2.resize(frame, size)


# -- the limiter ---------------------------------------------------------------------------


def test_limiter_grants_in_arrival_order_and_a_large_request_is_not_overtaken() -> None:
    lim = Limiter(10)
    assert lim.acquire(6)
    order: list[str] = []

    def want(name: str, amount: int) -> None:
        assert lim.acquire(amount, timeout=10)
        order.append(name)

    big = threading.Thread(target=want, args=("big", 8))
    big.start()
    while lim.waiting < 1:
        time.sleep(0.001)
    small = threading.Thread(target=want, args=("small", 2))  # 4 are free: it would fit
    small.start()
    while lim.waiting < 2:
        time.sleep(0.001)
    assert order == [] and lim.in_use == 6  # the small one waits behind the big one
    lim.release(3)  # 7 free: the small one would fit, the big one not; nobody is served
    time.sleep(0.05)
    assert order == [] and lim.waiting == 2 and lim.in_use == 3
    lim.release(1)  # 8 free: the big one, at the head, gets them all
    big.join(5)
    assert order == ["big"] and lim.waiting == 1 and lim.in_use == 10
    lim.release(2)  # the last of the first 6: now the small one
    small.join(5)
    assert order == ["big", "small"] and lim.in_use == 10
    lim.release(8)
    lim.release(2)
    assert lim.in_use == 0 and lim.waiting == 0


def test_limiter_timeout_holds_nothing_and_oversize_takes_the_whole() -> None:
    lim = Limiter(3)
    assert lim.acquire(100)  # more than the capacity: the whole, alone
    assert lim.in_use == 3
    t0 = time.monotonic()
    assert not lim.acquire(1, timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    assert lim.waiting == 0
    lim.release(100)
    assert lim.in_use == 0
    with pytest.raises(RuntimeError):
        lim.release(1)
    with pytest.raises(ValueError):
        Limiter(0)


def test_limiter_on_the_event_loop_times_out_and_gives_back_a_cancelled_grant() -> None:
    async def scenario() -> None:
        lim = Limiter(1)
        assert await lim.acquire_async(1, 1)
        assert not await lim.acquire_async(1, 0.05)  # busy: answered, not queued forever
        assert lim.waiting == 0

        waiter = asyncio.ensure_future(lim.acquire_async(1, 10))
        await asyncio.sleep(0.01)
        assert lim.waiting == 1
        threading.Thread(target=lim.release).start()  # released by a worker thread
        assert await asyncio.wait_for(waiter, 5)
        assert lim.in_use == 1

        cancelled = asyncio.ensure_future(lim.acquire_async(1, 10))
        await asyncio.sleep(0.01)
        lim.release()  # granted to the waiter...
        cancelled.cancel()  # ...which is cancelled before it runs: the grant comes back
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert lim.in_use == 0 and lim.waiting == 0
        assert await lim.acquire_async(1, 0.1)

    asyncio.run(scenario())


# -- decoding ------------------------------------------------------------------------------


def test_reduction_keeps_at_least_the_camera_size_in_either_orientation() -> None:
    cam = (1280, 960)
    assert reduction((4000, 3000), cam) == 2
    assert reduction((3000, 4000), cam) == 2  # a phone held upright
    assert reduction((8000, 6000), cam) == 4
    assert reduction((12000, 9000), cam) == 8
    assert reduction((20000, 15000), cam) == 8  # libjpeg goes no further
    assert reduction((2559, 1919), cam) == 1  # halved would be smaller than the camera
    assert reduction((2560, 1920), cam) == 2
    assert reduction((640, 480), cam) == 1
    assert reduction((4000, 3000), None) == 1


def test_a_large_jpeg_is_decoded_reduced_and_still_upright() -> None:
    big = _tray((4000, 3000))
    frame = decode_upload(_jpeg(big), "image/jpeg", UploadLimits(), fit=(1280, 960))
    assert frame.shape == (1500, 2000, 3)
    expected = cv2.resize(big, (2000, 1500), interpolation=cv2.INTER_AREA)
    assert float(np.abs(frame.astype(np.int16) - expected.astype(np.int16)).mean()) < 3
    full = decode_upload(_jpeg(big), "image/jpeg", UploadLimits())  # no fit: whole
    assert full.shape == (3000, 4000, 3)

    pil = PilImage.fromarray(big[..., ::-1].copy())
    exif = PilImage.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display", as a phone held upright saves it
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif, quality=90)
    upright = decode_upload(buf.getvalue(), "image/jpeg", UploadLimits(), fit=(1280, 960))
    assert upright.shape == (2000, 1500, 3)
    turned = cv2.resize(cv2.rotate(big, cv2.ROTATE_90_CLOCKWISE), (1500, 2000))
    assert float(np.abs(upright.astype(np.int16) - turned.astype(np.int16)).mean()) < 3


def test_more_megapixels_than_the_cap_are_refused_before_decoding() -> None:
    data = _jpeg(_tray((4000, 3000)))  # 12 MP
    limits = UploadLimits(max_pixels=10_000_000)
    with pytest.raises(PhotoRejected) as exc:
        decode_upload(data, "image/jpeg", limits, fit=(1280, 960))
    assert exc.value.status == 413 and exc.value.code == "photo_too_large"
    assert "12 triệu, tối đa 10 triệu" in exc.value.message
    assert "(12 megapixels, at most 10)" in exc.value.message_en
    assert UploadLimits().max_pixels == 16_000_000  # the default takes a 12-16 MP phone photo
    decode_upload(bytearray(data), "image/jpeg", UploadLimits(), fit=(1280, 960))  # in place


def test_decode_settings_are_validated() -> None:
    cfg = parse_config({})
    assert cfg.camera.decode_concurrency == 2 and cfg.camera.max_upload_megapixels == 16
    assert cfg.web.max_body_kb == 64 and cfg.camera.upload_buffer_mb == 64
    for bad in ({"decode_concurrency": 0}, {"decode_concurrency": 5}, {"busy_wait_s": 0}):
        with pytest.raises(ConfigError) as exc:
            parse_config({"camera": bad})
        assert f"camera.{next(iter(bad))}" in str(exc.value)


def test_freed_photo_memory_is_given_back() -> None:
    assert release_freed_memory()  # glibc on the station's Pi OS and here


# -- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StationServer]:
    cfg = station_config(
        tmp_path,
        camera={"max_upload_mb": 1, "busy_wait_s": 0.5, "decode_concurrency": 1},
        web={"max_body_kb": 4},
    )
    with StationServer(cfg) as s:
        yield s


@pytest.fixture
def client(server: StationServer) -> Iterator[httpx.Client]:
    with server.client(role="lead", timeout=60) as c:
        yield c


def _lot(c: httpx.Client, grams: int) -> str:
    producer = c.post("/api/producers", json={"name": f"Lò Thị Xuân {grams}"})
    product = c.post("/api/products", json={"name": f"Chuối {grams}", "grading": "banana"})
    assert producer.status_code == product.status_code == 201, product.text
    settle(c, grams)
    ids = {"producer_id": producer.json()["id"], "product_id": product.json()["id"]}
    lot = c.post("/api/lots", json=ids)
    assert lot.status_code == 201, lot.text
    lot_id: str = lot.json()["id"]
    return lot_id


def _error(r: httpx.Response) -> dict[str, Any]:
    err: dict[str, Any] = r.json()["error"]
    assert err["message"] and err["message_en"], err
    return err


def _chunks(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _names(c: httpx.Client) -> list[str]:
    return [p["name"] for p in c.get("/api/producers").json()]


def test_a_json_body_over_the_cap_is_refused_unread(client: httpx.Client) -> None:
    before = _names(client)
    big = {"name": "Giàng Thị Mỷ", "village": "x" * 5000}  # over web.max_body_kb = 4
    r = client.post("/api/producers", json=big)
    assert r.status_code == 413 and r.headers["connection"] == "close"
    err = _error(r)
    assert err["code"] == "body_too_large"
    assert "tối đa 4 KB" in err["message"] and "at most 4 KiB" in err["message_en"]
    # Chunked, with no length to refuse it by: counted, cut off at the cap, still a 413.
    payload = httpx.Request("POST", "/", json=big).content
    with httpx.Client(base_url=str(client.base_url), cookies=client.cookies) as c:
        r = c.post(
            "/api/producers",
            content=_chunks(payload, 1024),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 413, r.text
    assert _error(r)["code"] == "body_too_large" and "hơn 4 KB" in _error(r)["message"]
    assert _names(client) == before  # nothing was created
    small = httpx.Request("POST", "/", json={"name": "Giàng Thị Mỷ"}).content
    r = client.post(
        "/api/producers", content=_chunks(small, 8), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text  # under the cap, chunked or not, it goes through


def test_photo_uploads_have_the_photo_cap_declared_or_counted(client: httpx.Client) -> None:
    lot = _lot(client, 1700)
    photo = _jpeg(_tray(), quality=80)
    assert 4 * 1024 < len(photo) < 1024 * 1024  # over the JSON cap, under the photo cap
    r = client.post(  # chunked: read into one buffer as it comes
        f"/api/lots/{lot}/photos", content=_chunks(photo), headers={"Content-Type": "image/jpeg"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["photo"]["grading"]["status"] == "graded"
    noisy = np.random.default_rng(1).integers(0, 256, (960, 1280, 3), dtype=np.uint8)
    large = _jpeg(noisy, quality=95)
    assert len(large) > 1024 * 1024  # over camera.max_upload_mb = 1
    declared = client.post(
        f"/api/lots/{lot}/photos", content=large, headers={"Content-Type": "image/jpeg"}
    )
    assert declared.status_code == 413 and _error(declared)["code"] == "photo_too_large"
    assert "tối đa 1 MB" in _error(declared)["message"]
    counted = client.post(
        f"/api/lots/{lot}/photos", content=_chunks(large), headers={"Content-Type": "image/jpeg"}
    )
    assert counted.status_code == 413 and _error(counted)["code"] == "photo_too_large"
    assert "more than 1 MB" in _error(counted)["message_en"]
    assert len(client.get(f"/api/lots/{lot}/photos").json()["photos"]) == 1


def test_a_busy_station_answers_503_and_then_takes_the_photo(
    server: StationServer, client: httpx.Client
) -> None:
    intake = server.station.photos
    lot = _lot(client, 2100)
    photo = _jpeg(_tray((2560, 1920)))
    assert intake.decoding.acquire(1)  # the only decode turn taken (decode_concurrency = 1)
    try:
        t0 = time.monotonic()
        r = client.post(
            f"/api/lots/{lot}/photos", content=photo, headers={"Content-Type": "image/jpeg"}
        )
        waited = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert _error(r)["code"] == "photo_busy" and _error(r)["message"] == BUSY_VI
        assert 0.4 < waited < 10  # camera.busy_wait_s = 0.5, not forever
        capture = client.post(f"/api/lots/{lot}/capture")
        assert capture.status_code == 503 and _error(capture)["code"] == "photo_busy"
    finally:
        intake.decoding.release(1)
    assert intake.buffering.in_use == 0  # the refused upload's allowance went back
    # No room to hold the body: the same answer, after the body was read and dropped.
    assert intake.buffering.acquire(intake.buffering.capacity)
    try:
        r = client.post(
            f"/api/lots/{lot}/photos", content=photo, headers={"Content-Type": "image/jpeg"}
        )
        assert r.status_code == 503 and _error(r)["code"] == "photo_busy"
    finally:
        intake.buffering.release(intake.buffering.capacity)
    assert client.get(f"/api/lots/{lot}/photos").json()["photos"] == []
    ok = client.post(
        f"/api/lots/{lot}/photos", content=photo, headers={"Content-Type": "image/jpeg"}
    )
    assert ok.status_code == 201, ok.text
    assert (ok.json()["photo"]["width"], ok.json()["photo"]["height"]) == (1280, 960)
    assert intake.decoding.in_use == 0 and intake.buffering.in_use == 0
