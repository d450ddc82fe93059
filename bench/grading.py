"""Grading latency: decode a 1280x960 JPEG and grade it (checks + measurement).

Scenes come from the project's own generator (edge/camera/scenes.py), so the figure is
reproducible. The target is a median of at most 40 ms on the station. A second figure
times photos taken at an angle (15-30 degrees), which are rectified before measuring.
"""

from __future__ import annotations

import statistics
import time

from edge.camera.grading import Declined, TrayMeasurement, assess, decode_jpeg
from edge.camera.scenes import jpeg, make_scene

RUNS = 100
SCENES = 5


def _time(photos: list[bytes], runs: int, *, rectified: bool) -> list[float]:
    for data in photos:  # warm-up, and a check that the scenes are gradeable
        result = assess(decode_jpeg(data), require_marker=True)
        if isinstance(result, Declined):
            raise AssertionError(f"bench scene declined: {result.reason}")
        assert isinstance(result, TrayMeasurement)
        if result.rectified != rectified:
            raise AssertionError(f"bench scene rectified={result.rectified}, not {rectified}")
    samples = []
    for i in range(runs):
        data = photos[i % len(photos)]
        t0 = time.perf_counter()
        assess(decode_jpeg(data), require_marker=True)
        samples.append(time.perf_counter() - t0)
    return sorted(samples)


def bench_grading(runs: int = RUNS) -> None:
    photos = [jpeg(make_scene(seed=seed, noise=2.5 + seed).image) for seed in range(SCENES)]
    ordered = _time(photos, runs, rectified=False)
    median = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    print(f"grade_ms_median: {median:.2f}")
    print(f"grade_ms_p95: {p95:.2f}")
    oblique = [
        jpeg(
            make_scene(
                seed=seed,
                tilt_deg=15.0 + 15.0 * seed / (SCENES - 1),
                tilt_dir_deg=72.0 * seed,
                rotate_deg=10.0 * seed - 20.0,
            ).image
        )
        for seed in range(SCENES)
    ]
    ordered = _time(oblique, runs, rectified=True)
    median = statistics.median(ordered) * 1000
    print(f"grade_oblique_ms_median: {median:.2f}   (15-30 degree tilt, rectified first)")


if __name__ == "__main__":
    bench_grading()
