"""``station_rss_mb_10_uploads``: the station's peak resident memory while ten phones
upload 12-megapixel JPEGs (about 7 MB each) to ten lots at once. The station runs as
its own process (``python -m edge run``, the shipped defaults but for its folders);
the figure is that process's VmHWM, the kernel's record of its peak (rigs.photo_load)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rigs.photo_load import phone_jpegs, station_process, upload_at_once

PHONES = 10


def bench_station_rss() -> None:
    photos = phone_jpegs(PHONES)
    with tempfile.TemporaryDirectory() as tmp, station_process(Path(tmp)) as station:
        result = upload_at_once(station, photos)
    print(
        f"station_rss_mb_10_uploads: {result.peak_mb:.0f}  (peak VmHWM of the station process, "
        f"ten clients uploading 12 MP JPEGs at once; target <= 300; idle {result.idle_mb:.0f} "
        f"MB, photos {result.photo_mb:.1f} MB each; answers: {result.tally()} in "
        f"{result.seconds:.1f} s)"
    )


if __name__ == "__main__":
    bench_station_rss()
