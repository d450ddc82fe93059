"""Photos as bytes: checking an upload, and encoding a frame as the JPEG and thumbnail
the station keeps. Pure functions (bytes or arrays in, values out); the files and
their database rows are :mod:`edge.storage.photos`.

An upload is refused with a :class:`PhotoRejected` naming what was wrong and what
to do: empty (422), larger than the limit (413), not JPEG or PNG (415), not
decodable (422), or more pixels than the limit (413). A phone's picture is turned
upright by its EXIF orientation (OpenCV does that on decoding) and made no larger
than the station camera's resolution, so every stored photo is graded at the size
the rules were made for, and a 12-megapixel upload does not fill the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from edge.camera.capture import Frame
from edge.errors import StaffError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ACCEPTED_TYPES = ("image/jpeg", "image/png", "application/octet-stream")


class PhotoRejected(StaffError):
    """An upload the station will not keep: ``code``, Vietnamese ``message``,
    English ``message_en`` and the HTTP ``status`` to answer with."""


@dataclass(frozen=True)
class UploadLimits:
    """What an upload may be (``camera.max_upload_mb``, ``camera.max_upload_megapixels``).

    The pixel cap is checked from the file's header before anything is decoded (it refuses
    a "decompression bomb") and is sized for a 2 GB Pi: 16 MP takes any phone's usual
    photo (12-16 MP); a 48-50 MP "full resolution" shot is refused with what to do. A
    baseline JPEG is decoded already reduced (:func:`reduction`): about 20 MB at its peak
    for 12 MP, where a whole decode takes 70 MB. A PNG or a progressive JPEG still passes
    through its whole size, about 4 bytes a pixel at the peak (about 60 MB at 16 MP):
    that is what the cap bounds."""

    max_bytes: int = 15 * 1024 * 1024  # a phone JPEG is 2-6 MB
    max_pixels: int = 16_000_000


def _mb(size: float) -> str:
    mb = size / (1024 * 1024)
    return f"{mb:.0f}" if mb >= 10 else f"{mb:.1f}".rstrip("0").rstrip(".") or "0"


def too_large(size: int, limits: UploadLimits) -> PhotoRejected:
    got, most = _mb(size), _mb(limits.max_bytes)
    return PhotoRejected(
        "photo_too_large",
        f"Ảnh quá lớn ({got} MB, tối đa {most} MB). Chụp lại với độ phân giải thấp hơn hoặc "
        "gửi ảnh nhỏ hơn.",
        f"The photo is too large ({got} MB, at most {most} MB). Take it at a lower resolution "
        "or send a smaller picture.",
        413,
    )


EMPTY = PhotoRejected(
    "empty_photo",
    "Không nhận được ảnh (dữ liệu trống). Chọn lại ảnh rồi gửi lại.",
    "No photo received (the body is empty). Choose the picture again and resend.",
    422,
)

NOT_AN_IMAGE = PhotoRejected(
    "not_an_image",
    "Tệp gửi lên không phải ảnh JPEG hoặc PNG đọc được. Chụp lại hoặc chọn ảnh khác.",
    "The upload is not a readable JPEG or PNG picture. Retake it or choose another one.",
    422,
)


def _unsupported(content_type: str) -> PhotoRejected:
    return PhotoRejected(
        "unsupported_media_type",
        f"Loại tệp {content_type!r} không được nhận. Gửi ảnh JPEG hoặc PNG.",
        f"Content type {content_type!r} is not accepted. Send a JPEG or PNG picture "
        "(Content-Type: image/jpeg or image/png).",
        415,
    )


def check_upload(data: bytes | bytearray, content_type: str | None, limits: UploadLimits) -> None:
    """Refuse, before decoding, what cannot be a photo we keep."""
    media = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise _unsupported(media)
    if not data:
        raise EMPTY
    if len(data) > limits.max_bytes:
        raise too_large(len(data), limits)
    if not (data.startswith(JPEG_MAGIC) or data.startswith(PNG_MAGIC)):
        raise NOT_AN_IMAGE


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: no length field


def image_size(data: bytes | bytearray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's frame header, without decoding;
    ``None`` when the header is not there."""
    if data.startswith(PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    i = 2  # after SOI
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return w, h
        if length < 2:
            return None
        i += 2 + length
    return None


REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
REDUCED[8] = cv2.IMREAD_REDUCED_COLOR_8


def reduction(size: tuple[int, int], fit: tuple[int, int] | None) -> int:
    """The largest factor (1, 2, 4 or 8) an image of ``size`` can be shrunk by while
    decoding and still cover ``fit`` (in either orientation), so that scaling it down to
    ``fit`` afterwards loses nothing. A 4000 x 3000 phone photo for a 1280 x 960 camera
    is decoded at 2000 x 1500: a quarter of the memory, and faster."""
    if fit is None:
        return 1
    long_side, short_side = max(size), min(size)
    fit_long, fit_short = max(fit), min(fit)
    factor = 1
    while (
        factor < 8
        and long_side // (factor * 2) >= fit_long
        and short_side // (factor * 2) >= fit_short
    ):
        factor *= 2
    return factor


def decode_upload(
    data: bytes | bytearray,
    content_type: str | None,
    limits: UploadLimits,
    fit: tuple[int, int] | None = None,
) -> Frame:
    """An uploaded JPEG or PNG as an upright BGR frame, or :class:`PhotoRejected`.
    With ``fit`` (the size it will be scaled down to) a large JPEG is decoded already
    shrunk by :func:`reduction` (libjpeg scales while decoding; a PNG is shrunk right
    after; the result is at least ``fit``). ``data`` is read in place, never copied."""
    check_upload(data, content_type, limits)
    size = image_size(data)
    if size is None or size[0] == 0 or size[1] == 0:
        raise NOT_AN_IMAGE
    pixels = size[0] * size[1]
    if pixels > limits.max_pixels:
        raise PhotoRejected(
            "photo_too_large",
            f"Ảnh có quá nhiều điểm ảnh ({pixels / 1e6:.0f} triệu, tối đa "
            f"{limits.max_pixels / 1e6:.0f} triệu). Chụp lại ở chế độ thường của điện thoại "
            "(12 MP) hoặc độ phân giải thấp hơn.",
            f"The photo has too many pixels ({pixels / 1e6:.0f} megapixels, at most "
            f"{limits.max_pixels / 1e6:.0f}). Take it in the phone's normal mode (12 MP) or at "
            "a lower resolution.",
            413,
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[reduction(size, fit)])
    if image is None or image.size == 0:
        raise NOT_AN_IMAGE
    return cast(Frame, image)


def fit_within(frame: Frame, max_w: int, max_h: int) -> Frame:
    """Scaled down (never up) to fit ``max_w`` x ``max_h`` in either orientation."""
    h, w = frame.shape[:2]
    long_side, short_side = max(w, h), min(w, h)
    scale = min(1.0, max(max_w, max_h) / long_side, min(max_w, max_h) / short_side)
    if scale >= 1.0:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cast(Frame, cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def encode_jpeg(frame: Frame, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def thumbnail(frame: Frame, long_side: int) -> Frame:
    h, w = frame.shape[:2]
    scale = min(1.0, long_side / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cast(Frame, cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


@dataclass(frozen=True)
class EncodedPhoto:
    """What is stored for one photo: the JPEG, its thumbnail, and their sizes."""

    jpeg: bytes
    width: int
    height: int
    thumb: bytes
    thumb_width: int
    thumb_height: int


def encode_photo(frame: Frame, quality: int, thumb_px: int) -> EncodedPhoto:
    small = thumbnail(frame, thumb_px)
    return EncodedPhoto(
        jpeg=encode_jpeg(frame, quality),
        width=int(frame.shape[1]),
        height=int(frame.shape[0]),
        thumb=encode_jpeg(small, min(quality, 85)),
        thumb_width=int(small.shape[1]),
        thumb_height=int(small.shape[0]),
    )


def decode_stored(data: bytes) -> Frame:
    """A stored JPEG back as BGR (``ValueError`` when the file is damaged)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("stored photo is not a decodable JPEG")
    return cast(Frame, image)


def encode_png(frame: Frame) -> bytes:
    ok, buf = cv2.imencode(".png", frame)
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(buf.tobytes())
