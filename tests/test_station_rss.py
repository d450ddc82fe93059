"""The station's resident memory while ten phones upload 12-megapixel photos at once
(issue 12, part 8): the station runs as its own process (``python -m edge run``), so
its memory is its own, not pytest's; VmHWM is the kernel's record of its peak."""

from __future__ import annotations

from pathlib import Path

from rigs.photo_load import phone_jpegs, station_process, upload_at_once

PEAK_MB = 300


def test_ten_phones_uploading_12_mp_photos_keep_the_station_under_300_mb(tmp_path: Path) -> None:
    photos = phone_jpegs(10)
    assert all(len(p) > 5 * 2**20 for p in photos), [len(p) for p in photos]  # phone-sized
    with station_process(tmp_path) as station:
        result = upload_at_once(station, photos)
        log = station.log.read_text(errors="replace")
    assert not result.failures, result.failures
    assert sum(result.statuses.values()) == 10, result.tally()
    # Each phone is answered: stored and graded (201), or told the station is busy (503).
    assert set(result.statuses) <= {201, 503}, result.tally()
    assert set(result.codes) <= {"photo_busy"}, result.tally()
    assert result.statuses[201] >= 2, result.tally()  # at least one round of decode turns
    assert result.peak_mb <= PEAK_MB, (
        f"station peak resident memory {result.peak_mb:.0f} MB (idle {result.idle_mb:.0f} MB, "
        f"sampled peak {result.sampled_peak_mb:.0f} MB; {result.tally()})\n{log[-3000:]}"
    )
    assert result.sampled_peak_mb > result.idle_mb + 20  # the photos were really held and decoded
