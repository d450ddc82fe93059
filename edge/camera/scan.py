"""Read the QR and Code 128 codes in one camera frame: pure, an image array in, codes out.

zxing-cpp reads first (both formats, local-average binariser). Its Code 128 reader scans
rows and columns, so a barcode tilted more than about 10 degrees from them is missed: when
no Code 128 was read, the frame is turned upright and read again, by the angle of the QR
code found (on the station's labels the barcode is square with the QR) or, with no QR in
sight, by each of 22.5, 45 and 67.5 degrees; then the same once more on a slightly
blurred copy, which joins the bars that sensor noise broke. OpenCV is the fallback for what
zxing still missed: its QR detector runs only when zxing read no QR code, its barcode
detector only when no Code 128 was read. A frame zxing reads fully costs one zxing pass; a
code read twice (same format and text) is listed once, with its corners in the frame.

Nothing here checks what a payload means: a station QR is verified with
:func:`edge.printer.payload.verify` by whoever uses it (courier handover).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

zxingcpp: Any
try:  # a runtime dependency of the station; without it OpenCV alone reads the codes
    import zxingcpp
except ImportError:  # pragma: no cover - exercised only on an install without zxing-cpp
    zxingcpp = None

log = logging.getLogger(__name__)

Format = Literal["QRCode", "Code128"]
Point = tuple[int, int]
Image = npt.NDArray[np.uint8]


class ScanError(ValueError):
    """The file or array is not an image this module can read; the message says why."""


@dataclass(frozen=True)
class Code:
    """One code read in a frame. ``corners``: top-left, top-right, bottom-right, bottom-left
    of the symbol as the decoder saw it, in pixels of the frame (x, y)."""

    format: Format
    text: str
    corners: tuple[Point, Point, Point, Point]
    decoder: Literal["zxing", "opencv"]

    @property
    def center(self) -> Point:
        xs, ys = zip(*self.corners, strict=True)
        return (round(sum(xs) / 4), round(sum(ys) / 4))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "text": self.text,
            "corners": [list(p) for p in self.corners],
            "decoder": self.decoder,
        }


def _as_image(image: object) -> Image:
    """A uint8 grayscale or BGR array; BGRA loses its alpha. Anything else is refused."""
    if not isinstance(image, np.ndarray):
        raise ScanError(f"expected an image array (numpy), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ScanError(f"expected 8-bit pixels (uint8), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ScanError(f"expected a grayscale or BGR image, got an array of shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ScanError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small")
    return np.ascontiguousarray(image)


SWEEP_DEG = (22.5, 45.0, 67.5)  # with zxing's own 90-degree turns: every 22.5 degrees


def _zxing(image: Image, code128_only: bool = False) -> list[tuple[Code, float]]:
    """(code, its orientation in degrees) for each code zxing reads."""
    if zxingcpp is None:  # pragma: no cover
        return []
    wanted = [zxingcpp.BarcodeFormat.Code128]
    if not code128_only:
        wanted.append(zxingcpp.BarcodeFormat.QRCode)
    formats = zxingcpp.BarcodeFormats(wanted)
    codes = []
    for found in zxingcpp.read_barcodes(image, formats=formats):
        p = found.position
        corners = tuple(
            (int(q.x), int(q.y)) for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
        )
        fmt: Format = "QRCode" if found.format == zxingcpp.BarcodeFormat.QRCode else "Code128"
        code = Code(fmt, found.text, corners, "zxing")  # type: ignore[arg-type]
        codes.append((code, float(found.orientation)))
    return codes


def _turned(image: Image, degrees: float) -> tuple[Image, npt.NDArray[np.float64]]:
    """``image`` turned by ``degrees`` (the canvas grown to hold it all, its new corners
    filled with the nearest edge pixels) and the affine matrix taking its pixels back to
    ``image``'s."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(h * sin + w * cos) + 1, int(h * cos + w * sin) + 1)
    matrix[0, 2] += size[0] / 2 - w / 2
    matrix[1, 2] += size[1] / 2 - h / 2
    turned = cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    back = np.asarray(cv2.invertAffineTransform(matrix), dtype=np.float64)
    return np.asarray(turned, dtype=np.uint8), back


def _upright_code128(gray: Image, angles: list[float]) -> list[Code]:
    """Code 128 read in ``gray`` turned by each angle in turn, then in a slightly blurred
    copy (sensor noise breaks thin bars) as it is and turned, until one reads any."""
    smooth = np.asarray(cv2.GaussianBlur(gray, (0, 0), 0.7), dtype=np.uint8)
    tries = [(gray, a) for a in angles] + [(smooth, 0.0)] + [(smooth, a) for a in angles]
    for image, angle in tries:
        if angle == 0.0:
            found = [code for code, _ in _zxing(image, code128_only=True)]
            if found:
                return found
            continue
        turned, back = _turned(image, angle)
        found = [code for code, _ in _zxing(turned, code128_only=True)]
        if found:
            return [_moved(code, back) for code in found]
    return []


def _moved(code: Code, matrix: npt.NDArray[np.float64]) -> Code:
    points = np.asarray(code.corners, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return Code(code.format, code.text, _corners(points), code.decoder)


def _angles(qr_orientations: list[float]) -> list[float]:
    """Turns worth a second Code 128 read: the QR's tilt (unless zxing's own 0/90/180/270
    scans already cover it), else the sweep."""
    if not qr_orientations:
        return list(SWEEP_DEG)
    angles = []
    for orientation in qr_orientations:
        off = (orientation + 45) % 90 - 45  # -45 .. 45 from the nearest right angle
        if abs(off) > 8 and off not in angles:
            angles.append(off)
    return angles


def _corners(points: npt.NDArray[Any]) -> tuple[Point, Point, Point, Point]:
    p = [(round(float(x)), round(float(y))) for x, y in np.asarray(points).reshape(-1, 2)[:4]]
    return (p[0], p[1], p[2], p[3])


def _opencv_qr(gray: Image) -> list[Code]:
    try:
        ok, texts, points, _ = cv2.QRCodeDetector().detectAndDecodeMulti(gray)
    except cv2.error as exc:  # OpenCV raises on some degenerate detections
        log.debug("OpenCV QR detector failed: %s", exc)
        return []
    if not ok or points is None:
        return []
    return [
        Code("QRCode", text, _corners(quad), "opencv")
        for text, quad in zip(texts, points, strict=True)
        if text
    ]


def _opencv_code128(gray: Image) -> list[Code]:
    try:
        ok, texts, types, points = cv2.barcode.BarcodeDetector().detectAndDecodeWithType(gray)
    except cv2.error as exc:
        log.debug("OpenCV barcode detector failed: %s", exc)
        return []
    if not ok or points is None:
        return []
    return [
        Code("Code128", text, _corners(quad), "opencv")
        for text, kind, quad in zip(texts, types, points, strict=True)
        if text and kind.upper().replace("_", "") == "CODE128"
    ]


def _gray(frame: Image) -> Image:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _tilt(code: Code) -> float:
    """The angle of a code's top edge, in zxing's convention (degrees, clockwise)."""
    (x0, y0), (x1, y1) = code.corners[0], code.corners[1]
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def scan(image: object) -> list[Code]:
    """Every QR and Code 128 code read in ``image`` (a uint8 numpy array, grayscale or BGR,
    as OpenCV loads it), in the order found; an empty list when there is none. Raises
    :class:`ScanError` for anything that is not such an array."""
    frame = _as_image(image)
    read = _zxing(frame)
    codes = [code for code, _ in read]
    found = {c.format for c in codes}
    if found == {"QRCode", "Code128"}:
        return codes
    gray = frame if frame.ndim == 2 else _gray(frame)
    seen = {(c.format, c.text) for c in codes}
    extra = [] if "QRCode" in found else _opencv_qr(gray)
    if "Code128" not in found:
        qr_tilts = [angle for code, angle in read if code.format == "QRCode"]
        qr_tilts += [_tilt(code) for code in extra]
        upright = _upright_code128(gray, _angles(qr_tilts))
        extra += upright or _opencv_code128(gray)
    for code in extra:
        if (code.format, code.text) not in seen:
            seen.add((code.format, code.text))
            codes.append(code)
    return codes


def load_image(path: Path | str) -> Image:
    """A picture file as a BGR array. Raises :class:`ScanError` saying why it cannot be
    read: missing, unreadable, or not a picture OpenCV decodes (PNG, JPEG, BMP, TIFF, WebP)."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ScanError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScanError(f"{path}: is a directory, not an image file") from None
    except OSError as exc:
        raise ScanError(f"{path}: cannot read: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ScanError(f"{path}: not an image file (PNG, JPEG, BMP, TIFF or WebP expected)")
    return np.asarray(image, dtype=np.uint8)


def scan_file(path: Path | str) -> list[Code]:
    """:func:`scan` of a picture file; :class:`ScanError` if it is not one."""
    return scan(load_image(path))
