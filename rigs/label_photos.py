"""Seeded, deterministic "camera photos" of the station's own printed labels.

A label is rendered by :func:`edge.printer.label.render_label` (lot, shipping, manifest,
with a signed QR), "printed" (thermal dot gain, grey ink on off-white paper), and
"photographed": scaled so that the QR (or the Code 128) has the asked pixels per module,
rotated, warped in perspective, laid on a textured table, lit unevenly, blurred, noised and
JPEG-compressed, as a BGR array the way OpenCV loads a camera frame.

Each *family* stresses one condition hard (blur, noise, rotation 0-360, perspective, JPEG
quality 40-90, low contrast, uneven lighting) with the others mild; ``mixed`` combines them
all at moderate strength. The same (kind, seed, family, ...) always gives the same pixels.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
import qrcode
import zxingcpp

from edge.printer.label import render_label
from edge.printer.layout import code128_modules
from edge.printer.payload import PayloadSigner

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "labels"
SITE = "sin-ho"
KEY = bytes(range(32))
SIGNER = PayloadSigner(SITE, KEY)
KINDS = ("lot", "shipping", "manifest")
FAMILIES = (
    "blur",
    "noise",
    "rotation",
    "perspective",
    "jpeg",
    "low_contrast",
    "lighting",
    "mixed",
)
Target = Literal["qr", "code128"]
Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Conditions:
    px_per_module: float  # of the target code (QR or Code 128)
    rotation_deg: float
    perspective: float  # corner displacement, a fraction of the label's shorter side
    blur_sigma: float  # Gaussian, in photo pixels
    noise_sigma: float  # Gaussian, in grey levels (0-255)
    jpeg_quality: int  # 100 = no JPEG step
    ink: float  # grey level of printed dots
    paper: float  # grey level of the paper
    lighting: float  # 0 = even; 0.5 = the dark side gets half the light


@dataclass(frozen=True)
class Printed:
    """A rendered label (0 = dot, 255 = paper) and what it carries."""

    pixels: Array
    qr_text: str
    qr_dots_per_module: float
    code128_text: str | None
    code128_dots_per_module: float | None
    code128_bottom: int | None = None  # the bars' last row


@dataclass(frozen=True)
class LabelPhoto:
    image: Array  # BGR uint8
    kind: str
    printed: Printed
    conditions: Conditions


def label_data(kind: str, seed: int) -> dict[str, Any]:
    """The example label of ``kind`` with its id (and tracking codes) varied by ``seed``."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))
    rid = str(uuid.UUID(int=(0x019AB3C2_7C1E_7D33_9A0B_2F1E5C9D8A11 + seed * 0x9E3779B97F4A7C15)))
    if kind == "lot":
        data["lot_id"] = rid
    elif kind == "shipping":
        data["lot_id"] = rid
        data["tracking_code"] = f"VTP26{1_000_000 + seed * 7919:08d}"
    else:
        data["batch_id"] = rid
        for i, parcel in enumerate(data["parcels"]):
            parcel["tracking_code"] = f"VTP26{seed:06d}{i:02d}"
    return data


def _qr_modules(text: str) -> int:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(text)
    qr.make(fit=True)
    modules: int = qr.modules_count
    return modules


@lru_cache(maxsize=64)
def printed_label(kind: str, seed: int = 0, width_dots: int = 576) -> Printed:
    image = render_label(kind, label_data(kind, seed), width_dots, signer=SIGNER)
    pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    qr, c128 = None, None
    for found in zxingcpp.read_barcodes(pixels, is_pure=False):
        if found.format == zxingcpp.BarcodeFormat.QRCode:
            qr = found
        elif found.format == zxingcpp.BarcodeFormat.Code128:
            c128 = found
    assert qr is not None, f"the rendered {kind} label has no readable QR code"
    qr_width = qr.position.top_right.x - qr.position.top_left.x + 1
    c128_dpm, c128_bottom = None, None
    if c128 is not None:
        bars = c128.position.top_right.x - c128.position.top_left.x + 1
        c128_dpm = bars / len(code128_modules(c128.text))
        c128_bottom = c128.position.bottom_left.y
    return Printed(
        pixels,
        qr.text,
        qr_width / _qr_modules(qr.text),
        None if c128 is None else c128.text,
        c128_dpm,
        c128_bottom,
    )


def close_up(printed: Printed) -> Printed:
    """The top of a shipping label down to a little below its barcode (and its caption),
    as a camera held close to read the barcode frames it; the QR is out of the picture."""
    assert printed.code128_bottom is not None, "this label has no Code 128"
    bottom = min(printed.code128_bottom + 90, printed.pixels.shape[0])
    return replace(printed, pixels=printed.pixels[:bottom], qr_text="")


def conditions(
    rng: np.random.Generator, family: str, px_per_module: tuple[float, float] = (3.0, 5.0)
) -> Conditions:
    """Random conditions of one family: its own condition strong, the others mild."""
    u = rng.uniform
    c: dict[str, Any] = {
        "px_per_module": u(*px_per_module),
        "rotation_deg": u(-12, 12),
        "perspective": u(0.0, 0.04),
        "blur_sigma": u(0.3, 0.6),
        "noise_sigma": u(1.0, 4.0),
        "jpeg_quality": int(rng.integers(80, 96)),
        "ink": u(25, 60),
        "paper": u(200, 240),
        "lighting": u(0.0, 0.15),
    }
    strong: dict[str, dict[str, Any]] = {
        "blur": {"blur_sigma": u(0.8, 1.1)},
        "noise": {"noise_sigma": u(8.0, 16.0)},
        "rotation": {"rotation_deg": u(0, 360)},
        "perspective": {"perspective": u(0.10, 0.20)},
        "jpeg": {"jpeg_quality": int(rng.integers(40, 91))},
        "low_contrast": {"ink": u(95, 120), "paper": u(165, 185)},
        "lighting": {"lighting": u(0.4, 0.6)},
        "mixed": {
            "rotation_deg": u(0, 360),
            "perspective": u(0.05, 0.10),
            "blur_sigma": u(0.5, 0.8),
            "noise_sigma": u(4.0, 8.0),
            "jpeg_quality": int(rng.integers(50, 91)),
            "ink": u(40, 80),
            "paper": u(180, 225),
            "lighting": u(0.15, 0.35),
        },
    }
    if family not in strong:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    c.update(strong[family])
    return Conditions(**c)


def _table(rng: np.random.Generator, shape: tuple[int, int]) -> Array:
    """A textured table top: a base grey with smooth blotches and wood-like streaks."""
    h, w = shape
    low = cv2.resize(rng.uniform(-1, 1, (4, 4)), (w, h), interpolation=cv2.INTER_CUBIC)
    streaks = cv2.resize(rng.uniform(-1, 1, (h // 8 + 1, 1)), (w, h))
    base = rng.uniform(60, 150)
    return np.asarray(base + 25 * low + 10 * streaks, dtype=np.float32)


def photograph(
    printed: Printed, cond: Conditions, rng: np.random.Generator, target: Target
) -> Array:
    """The BGR photo of one printed label under ``cond``."""
    dpm = printed.qr_dots_per_module if target == "qr" else printed.code128_dots_per_module
    assert dpm is not None, "this label has no Code 128"
    scale = cond.px_per_module / dpm
    # print: dot gain, then ink and paper tones
    paper = cv2.GaussianBlur(printed.pixels.astype(np.float32) / 255, (0, 0), 0.35)
    tones = cond.ink + (cond.paper - cond.ink) * paper
    label: Array = cv2.resize(tones, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = label.shape
    # camera pose: rotation about the centre and each corner pulled by up to `perspective`
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    a = math.radians(cond.rotation_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pull = rng.uniform(-1, 1, (4, 2)) * cond.perspective * min(w, h)
    dst = (src - np.array([w / 2, h / 2]) + pull) @ rot.T
    margin = 0.15 * max(w, h) + 16
    dst = dst - dst.min(axis=0) + margin
    size = (int(dst[:, 0].max() + margin), int(dst[:, 1].max() + margin))
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    photo = cv2.warpPerspective(label, matrix, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones_like(label), matrix, size, flags=cv2.INTER_LINEAR)
    photo = mask * photo + (1 - mask) * _table(rng, (size[1], size[0]))
    # light: a linear gradient in a random direction plus a soft vignette
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    d = rng.uniform(0, 2 * math.pi)
    ramp = xs * math.cos(d) + ys * math.sin(d)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    r2 = ((xs / size[0] - 0.5) ** 2 + (ys / size[1] - 0.5) ** 2) * 2
    photo = photo * (1 - cond.lighting * ramp) * (1 - 0.15 * r2)
    # lens and sensor: blur, a colour cast, noise, JPEG
    photo = cv2.GaussianBlur(photo, (0, 0), cond.blur_sigma)
    tint = rng.uniform(0.85, 1.05, 3)
    bgr: Array = photo[:, :, None] * tint + rng.normal(0, cond.noise_sigma, (size[1], size[0], 3))
    out: Array = np.clip(bgr, 0, 255).astype(np.uint8)
    if cond.jpeg_quality < 100:
        ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, cond.jpeg_quality])
        assert ok
        out = np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), dtype=np.uint8)
    return out


def label_photo(
    kind: str,
    seed: int,
    family: str = "mixed",
    *,
    target: Target = "qr",
    px_per_module: tuple[float, float] = (3.0, 5.0),
    width_dots: int | None = None,
) -> LabelPhoto:
    """One photo: ``kind``'s label (its data varied by ``seed``, 58 or 80 mm paper unless
    ``width_dots`` says), under random conditions of ``family``, the ``target`` code at
    ``px_per_module`` (a range drawn from). A ``code128`` photo is a close-up of the top
    of a shipping label (:func:`close_up`): its QR is not in the picture."""
    rng = np.random.default_rng([seed, FAMILIES.index(family), KINDS.index(kind)])
    width = width_dots or (384, 576)[seed % 2]
    printed = printed_label(kind, seed, width)
    if target == "code128":
        printed = close_up(printed)
    cond = conditions(rng, family, px_per_module)
    return LabelPhoto(photograph(printed, cond, rng, target), kind, printed, cond)


def blank_photo(seed: int = 0) -> Array:
    """A table top with a sheet of paper and no code on it, same camera as the labels."""
    rng = np.random.default_rng(seed)
    printed = printed_label("lot")
    blank = Printed(np.full_like(printed.pixels, 255), "", printed.qr_dots_per_module, None, None)
    cond = conditions(rng, "mixed")
    return photograph(blank, cond, rng, "qr")
