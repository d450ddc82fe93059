"""Parser throughput of every scale protocol family (pure parsing, no I/O).

Each family encodes ``FRAMES`` frames with varied weights (some unstable, some net),
the bytes are fed in 64-byte chunks, as a serial read delivers them, and the readings
are counted. The headline figure is the slowest family's.
"""

from __future__ import annotations

import time

from edge.scale.protocols import PROTOCOLS, ProtocolSpec, SimState

FRAMES = 20_000
CHUNK = 64


def _capture(spec: ProtocolSpec, frames: int) -> bytes:
    return b"".join(
        spec.encode(SimState(100 + (i * 37) % 60_000, stable=i % 7 != 0, net=i % 11 == 0))
        for i in range(frames)
    )


def frames_per_s(spec: ProtocolSpec, frames: int = FRAMES) -> float:
    """Readings decoded per second of parsing."""
    data = _capture(spec, frames)
    parser = spec.parser()
    count = 0
    t0 = time.perf_counter()
    for i in range(0, len(data), CHUNK):
        count += len(parser.feed(data[i : i + CHUNK]))
    elapsed = time.perf_counter() - t0
    if count < frames * 0.99:  # a frame or two may wait for the next one to end
        raise AssertionError(f"{spec.name}: {count} readings from {frames} frames")
    return count / elapsed


def bench_parse(frames: int = FRAMES) -> None:
    rates = {name: frames_per_s(spec, frames) for name, spec in PROTOCOLS.items()}
    slowest = min(rates, key=rates.__getitem__)
    print(f"scale_parse_frames_per_s: {rates[slowest]:.0f}")
    print(f"scale_parse_slowest_family: {slowest}")
    for name, rate in rates.items():
        print(f"scale_parse_frames_per_s[{name}]: {rate:.0f}")


if __name__ == "__main__":
    bench_parse()
