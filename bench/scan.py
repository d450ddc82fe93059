"""Label code reading: generated camera photos of printed labels through ``edge.camera.scan``.

QR photos: lot, shipping and manifest labels under every condition family of
``rigs/label_photos.py`` (blur, noise, rotation 0-360, perspective, JPEG 40-90, low
contrast, uneven light, all mixed), the QR at 3 to 5 pixels per module; a QR counts as read
when its payload is the printed one and passes ``verify`` with the site key. Code 128
photos: close-ups of shipping labels, 2.5 to 3.5 pixels per bar module; read = the tracking
code. Seeds differ from the tests'. The time is one ``scan`` call per photo.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

from edge.camera.scan import scan
from edge.printer.payload import PayloadError, verify
from rigs.label_photos import FAMILIES, KEY, KINDS, LabelPhoto, label_photo

SEEDS = range(100, 109)  # 3 kinds x 8 families x 9 = 216 QR photos
CODE128_SEEDS = range(100, 110)  # 8 families x 10 = 80 close-ups


def _qr_read(photo: LabelPhoto, texts: list[str]) -> bool:
    if photo.printed.qr_text not in texts:
        return False
    try:
        verify(photo.printed.qr_text, KEY)
    except PayloadError:
        return False
    return True


def bench_scan() -> None:
    seconds: list[float] = []
    read: Counter[str] = Counter()
    total: Counter[str] = Counter()
    missed: list[str] = []
    jobs = [("qr", kind, family, seed) for kind in KINDS for family in FAMILIES for seed in SEEDS]
    jobs += [("code128", "shipping", family, seed) for family in FAMILIES for seed in CODE128_SEEDS]
    for target, kind, family, seed in jobs:
        if target == "qr":
            photo = label_photo(kind, seed, family)
        else:
            photo = label_photo(kind, seed, family, target="code128", px_per_module=(2.5, 3.5))
        t0 = time.perf_counter()
        codes = scan(photo.image)
        seconds.append(time.perf_counter() - t0)
        if target == "qr":
            ok = _qr_read(photo, [c.text for c in codes if c.format == "QRCode"])
        else:
            ok = any(c.format == "Code128" and c.text == photo.printed.code128_text for c in codes)
        total[target] += 1
        read[target] += ok
        if not ok:
            missed.append(f"{target}/{kind}/{family}/{seed}")
    n, hits = sum(total.values()), sum(read.values())
    print(f"scan_read_rate: {hits / n:.3f}  ({hits}/{n} photos, target >= 0.99)")
    for target, label in (("qr", "QR, 3-5 px/module"), ("code128", "Code 128, 2.5-3.5 px/module")):
        print(
            f"scan_read_rate_{target}: {read[target] / total[target]:.3f}  "
            f"({read[target]}/{total[target]}, {label})"
        )
    print(
        f"scan_ms_median: {statistics.median(seconds) * 1000:.1f}  (one frame, zxing + fallbacks)"
    )
    if missed:
        print(f"scan_missed: {', '.join(missed)}")


if __name__ == "__main__":
    bench_scan()
