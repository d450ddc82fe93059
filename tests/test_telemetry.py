"""Telemetry: pure parsers on fixture text (good and malformed), collect() on a
fixture /proc and /sys tree in tmp files and on this machine's real ones, and
the timer on a fake monotonic clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pytest

import edge
from edge.ids import boot_id
from edge.sync.telemetry import (
    MAX_TEXT,
    MIB,
    DiskUsage,
    Sources,
    TelemetryTimer,
    collect,
    jsonable,
    outbox_summary,
    parse_meminfo,
    parse_thermal_temp,
    parse_uptime,
    pick_cpu_temp,
    read_thermal_zones,
    software_version,
)

NOW = datetime(2026, 11, 23, 10, 38, 12, 123000, tzinfo=UTC)

MEMINFO_PI4 = """\
MemTotal:        3885396 kB
MemFree:         2711744 kB
MemAvailable:    3367944 kB
Buffers:           43424 kB
Cached:           694152 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""

BOOT = "5b1b6f5e-0c52-4a4e-9a8e-0d6f1e0c9e11"


def _fake_proc(root: Path, meminfo: str | None = MEMINFO_PI4, uptime: str | None = None) -> Path:
    proc = root / "proc"
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "sys/kernel/random/boot_id").write_text(BOOT + "\n")
    if meminfo is not None:
        (proc / "meminfo").write_text(meminfo)
    if uptime is not None:
        (proc / "uptime").write_text(uptime)
    return proc


def _fake_thermal(root: Path, zones: list[tuple[str, str | None]]) -> Path:
    thermal = root / "thermal"
    thermal.mkdir()
    for i, (kind, temp) in enumerate(zones):
        zone = thermal / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        if temp is not None:
            (zone / "temp").write_text(temp + "\n")
    return thermal


# -- /proc/meminfo -----------------------------------------------------------------------------


def test_meminfo_fields_in_bytes() -> None:
    mem = parse_meminfo(MEMINFO_PI4)
    assert mem["MemTotal"] == 3885396 * 1024
    assert mem["MemAvailable"] == 3367944 * 1024
    assert mem["HugePages_Total"] == 0  # a count without a unit is kept as is


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage without colon\n",
        "MemTotal:\n",
        "MemTotal: lots kB\n",
        ": 123 kB\n",
        "MemTotal: 12 MB\n",  # a unit the kernel never writes is not guessed
        "\x00\xff\n",
    ],
)
def test_meminfo_malformed_lines_are_skipped(text: str) -> None:
    assert parse_meminfo(text) == {}


def test_meminfo_keeps_good_lines_around_bad_ones() -> None:
    mem = parse_meminfo("MemTotal: 1000 kB\nnonsense\nMemAvailable 7 kB\nMemFree: 10 kB\n")
    assert mem == {"MemTotal": 1_024_000, "MemFree": 10_240}


# -- /proc/uptime ------------------------------------------------------------------------------


def test_uptime_first_field() -> None:
    assert parse_uptime("12345.67 54321.00\n") == 12345.67
    assert parse_uptime("7\n") == 7.0


@pytest.mark.parametrize("text", ["", "\n", "abc 1.0", "-5.0 1.0", "nan 1", "inf 2"])
def test_uptime_malformed_is_none(text: str) -> None:
    assert parse_uptime(text) is None


# -- thermal zones -----------------------------------------------------------------------------


def test_thermal_millidegrees_to_celsius() -> None:
    assert parse_thermal_temp("47236\n") == 47.236
    assert parse_thermal_temp("-5000") == -5.0


@pytest.mark.parametrize("text", ["", "hot", "47.2", "-273150", "2147483647", "200000"])
def test_thermal_implausible_or_malformed_is_none(text: str) -> None:
    assert parse_thermal_temp(text) is None


def test_cpu_zone_of_a_raspberry_pi() -> None:
    assert pick_cpu_temp([("cpu-thermal\n", "51540\n")]) == 51.54


def test_cpu_zone_preferred_over_others_and_others_ignored() -> None:
    zones = [("acpitz", "27800"), ("iwlwifi_1", "40000"), ("x86_pkg_temp", "61000")]
    assert pick_cpu_temp(zones) == 61.0
    assert pick_cpu_temp([("acpitz", "27800"), ("battery", "30000")]) is None
    # a known type wins over one that merely mentions the CPU, whatever the order
    assert pick_cpu_temp([("cpu0-extra", "70000"), ("soc_thermal", "45000")]) == 45.0
    assert pick_cpu_temp([("Package-CPU", "43000")]) == 43.0


def test_cpu_zone_with_a_broken_sensor_falls_back_to_the_next() -> None:
    assert pick_cpu_temp([("cpu-thermal", "-273150"), ("soc-thermal", "48000")]) == 48.0
    assert pick_cpu_temp([("cpu-thermal", "n/a")]) is None
    assert pick_cpu_temp([]) is None


def test_thermal_zones_read_from_files(tmp_path: Path) -> None:
    thermal = _fake_thermal(
        tmp_path, [("acpitz", "27800"), ("cpu-thermal", "49012"), ("cpu-thermal", None)]
    )
    (thermal / "cooling_device0").mkdir()  # not a zone
    zones = read_thermal_zones(thermal)
    assert zones == [("acpitz\n", "27800\n"), ("cpu-thermal\n", "49012\n")]
    assert read_thermal_zones(tmp_path / "missing") == []


# -- outbox and device summaries --------------------------------------------------------------


def test_outbox_summary_ages_from_times_and_ages() -> None:
    status = {
        "records": {
            "depth": 12,
            "oldest_at": "2026-11-23T10:28:12.123Z",
            "ack_conflict_upto": 4000,
        },
        "telemetry": {
            "pending": 1,
            "oldest_at": NOW - timedelta(seconds=30.4),
            "ack_conflict_upto": None,
        },
        "bulk": {"depth": 0, "oldest_at": None},
        "later": {"depth": 3, "oldest_age_s": 99.6},
    }
    assert outbox_summary(status, NOW) == {
        "records": {"depth": 12, "oldest_age_s": 600, "ack_conflict_upto": 4000},
        "telemetry": {"depth": 1, "oldest_age_s": 30},
        "bulk": {"depth": 0, "oldest_age_s": None},
        "later": {"depth": 3, "oldest_age_s": 100},
    }


def test_outbox_summary_tolerates_malformed_status() -> None:
    status = {
        "records": {"depth": "many", "oldest_at": "yesterday"},
        "naive": {"depth": True, "oldest_at": datetime(2026, 1, 1)},  # no zone: unknown
        "future": {"depth": 2, "oldest_at": NOW + timedelta(hours=3)},  # clock went back
        "junk": 5,
    }
    assert outbox_summary(status, NOW) == {
        "records": {"depth": None, "oldest_age_s": None},
        "naive": {"depth": None, "oldest_age_s": None},
        "future": {"depth": 2, "oldest_age_s": 0},
    }


class _Status(StrEnum):
    ONLINE = "online"


@dataclass(frozen=True)
class _Printer:
    status: _Status
    paper: str | None
    queued: int
    since: datetime


def test_jsonable_converts_device_states() -> None:
    state = {
        "printer": _Printer(_Status.ONLINE, None, 2, NOW),
        "scale": {"status": _Status.ONLINE, "frames": ("ST,GS,+001.250kg",), "port": Path("/x")},
        "camera": {"error": "Không mở được máy ảnh " + "x" * 500, "fps": float("nan")},
    }
    out = jsonable(state)
    assert out["printer"] == {
        "status": "online",
        "paper": None,
        "queued": 2,
        "since": "2026-11-23T10:38:12.123Z",
    }
    assert out["scale"] == {"status": "online", "frames": ["ST,GS,+001.250kg"], "port": "/x"}
    assert out["camera"]["error"].startswith("Không mở được máy ảnh x")
    assert len(out["camera"]["error"]) == MAX_TEXT
    assert out["camera"]["fps"] is None
    deep: dict[str, object] = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    assert jsonable(deep) == {"a": {"b": {"c": {"d": {"e": None}}}}}
    json.dumps(out)  # JSON-ready


# -- collect -----------------------------------------------------------------------------------


def _devices() -> dict[str, object]:
    return {
        "scale": {"status": "stable", "error": None},
        "printer": {"status": "online", "paper": "near_end"},
        "camera": {"status": "offline", "error": "không tìm thấy /dev/video0"},
    }


def test_collect_full_record(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, uptime="86461.53 170000.1\n")
    thermal = _fake_thermal(tmp_path, [("cpu-thermal", "47236")])
    seen_paths: list[Path] = []

    def disk(path: Path) -> DiskUsage:
        seen_paths.append(path)
        return DiskUsage(total=31_000 * MIB, used=30_850 * MIB, free=150 * MIB)

    sources = Sources(
        storage_path=tmp_path / "var" / "station.db",  # not there yet: its parent is measured
        min_free_mb=200,
        proc=proc,
        thermal=thermal,
        version=lambda: "0.5.0",
        clock_synced=lambda: False,
        outbox=lambda: {"records": {"depth": 4, "oldest_at": "2026-11-23T10:37:12.123Z"}},
        last_confirmed=lambda: "2026-11-23T09:00:00.000Z",
        devices=_devices,
        disk_usage=disk,
    )
    record = collect(NOW, sources)
    assert record == {
        "type": "telemetry",
        "recorded_at": "2026-11-23T10:38:12.123Z",
        "boot_id": BOOT,
        "uptime_s": 86461.5,
        "clock_synced": False,
        "version": "0.5.0",
        "disk_free_mb": 150,
        "disk_total_mb": 31_000,
        "disk_low": True,
        "mem_avail_mb": 3289,  # 3367944 kB
        "mem_total_mb": 3794,  # 3885396 kB
        "cpu_temp_c": 47.2,
        "outbox": {"records": {"depth": 4, "oldest_age_s": 60}},
        "last_confirmed_at": "2026-11-23T09:00:00.000Z",
        "devices": _devices(),
    }
    assert seen_paths == [tmp_path]
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    assert len(text.encode()) < 700, "telemetry is small: it travels on a metered link"


def test_collect_with_everything_missing_gives_nulls(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    def no_disk(path: Path) -> DiskUsage:
        raise FileNotFoundError(2, "No such file or directory", str(path))

    record = collect(
        NOW,
        Sources(
            storage_path=empty / "db",
            proc=empty,
            thermal=empty,
            version=lambda: "1",
            clock_synced=None,
            disk_usage=no_disk,
        ),
    )
    for key in (
        "boot_id",
        "uptime_s",
        "clock_synced",
        "disk_free_mb",
        "disk_total_mb",
        "disk_low",
        "mem_avail_mb",
        "mem_total_mb",
        "cpu_temp_c",
        "outbox",
        "last_confirmed_at",
        "devices",
    ):
        assert record[key] is None, key
    # the database is not there yet: its folder was measured
    assert record["errors"] == {
        "disk": f"FileNotFoundError: [Errno 2] No such file or directory: '{empty}'"
    }


def test_collect_with_malformed_files_and_failing_sources(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, meminfo="MemTotal: 2048000 kB\nMemAvailable: ??? kB\n", uptime="up")
    thermal = _fake_thermal(tmp_path, [("cpu-thermal", "warm")])

    def broken() -> dict[str, object]:
        raise RuntimeError("outbox locked")

    record = collect(
        NOW,
        Sources(
            storage_path=tmp_path,
            proc=proc,
            thermal=thermal,
            version=lambda: "1",
            clock_synced=lambda: "yes",  # type: ignore[arg-type, return-value]
            outbox=broken,
            last_confirmed=lambda: "not a time",
            devices=lambda: ["scale"],  # type: ignore[arg-type, return-value]
            disk_usage=lambda p: DiskUsage(10_000 * MIB, 1, 200 * MIB),
        ),
    )
    assert (record["mem_total_mb"], record["mem_avail_mb"]) == (2000, None)
    assert record["uptime_s"] is None and record["cpu_temp_c"] is None
    assert record["clock_synced"] is None, "only a real bool is a clock status"
    assert record["outbox"] is None and record["devices"] is None
    assert record["last_confirmed_at"] is None
    assert record["errors"] == {"outbox": "RuntimeError: outbox locked"}
    assert record["disk_low"] is False and record["disk_free_mb"] == 200, "200 is not below 200"


def test_collect_on_this_machine() -> None:
    """The real /proc, /sys and file system of the machine the tests run on."""
    record = collect(datetime.now(UTC), Sources(storage_path=Path.cwd() / "var" / "station.db"))
    assert record["boot_id"] == boot_id()
    assert isinstance(record["uptime_s"], float) and record["uptime_s"] > 0
    assert record["version"] == software_version() == edge.__version__
    assert record["disk_total_mb"] > 0 and 0 <= record["disk_free_mb"] <= record["disk_total_mb"]
    assert 0 < record["mem_avail_mb"] <= record["mem_total_mb"]
    temp = record["cpu_temp_c"]
    assert temp is None or -40 <= temp <= 150
    assert isinstance(record["clock_synced"], bool), "the kernel's view (adjtimex)"
    assert "errors" not in record
    json.dumps(record)


# -- timer -------------------------------------------------------------------------------------


def test_timer_first_at_once_then_every_interval() -> None:
    timer = TelemetryTimer(300)
    assert timer.due(1000.0) and timer.seconds_left(1000.0) == 0
    timer.taken(1000.0)
    assert not timer.due(1000.0)
    assert not timer.due(1299.9)
    assert timer.seconds_left(1200.0) == 100.0
    assert timer.due(1300.0)
    timer.taken(1302.0)
    assert timer.next_due() == 1602.0


def test_timer_takes_a_longer_interval_from_the_budget() -> None:
    timer = TelemetryTimer(300)
    timer.taken(0.0)
    assert timer.due(300.0)
    assert not timer.due(300.0, every_s=86_400)
    assert timer.due(86_400.0, every_s=86_400)
    assert timer.due(300.0, every_s=60), "a shorter interval never makes it more frequent"
    assert not timer.due(299.0, every_s=60)


def test_timer_refuses_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        TelemetryTimer(0)


def test_a_record_travels_in_a_batch_envelope(tmp_path: Path) -> None:
    """The contract's envelope (edge.sync.envelope) carries it unchanged, in few bytes."""
    from edge.sync.envelope import Batch, decode_batch, encode_batch

    record = collect(
        NOW,
        Sources(
            storage_path=tmp_path,
            proc=_fake_proc(tmp_path, uptime="86461.53 1\n"),
            thermal=_fake_thermal(tmp_path, [("cpu-thermal", "47236")]),
            clock_synced=lambda: True,
            outbox=lambda: {"records": {"depth": 0, "oldest_at": None}},
            devices=_devices,
        ),
    )
    row = {**record, "seq": 17, "id": "0190f3c2-8b1e-7cc4-9a51-1b2c3d4e5f60"}
    data = encode_batch(Batch("site-a", "telemetry", "telemetry:17-17:1", 17, 17, (row,)))
    assert decode_batch(data).records == (row,)
    assert len(data) < 500


def test_collect_from_the_real_outbox(tmp_path: Path) -> None:
    """The outbox's own per-stream status (a real SQLite file) and, without a
    ``last_confirmed`` source, the newest confirmation it holds."""
    from edge.storage.outbox import Outbox
    from edge.storage.store import Store

    store = Store.open(tmp_path / "station.db", "site-a", now=lambda: NOW)
    try:
        outbox = Outbox(store)
        sources = Sources(
            storage_path=tmp_path / "station.db",
            proc=_fake_proc(tmp_path),
            thermal=tmp_path,
            outbox=outbox.stream_status,
            devices=_devices,
        )
        first = collect(NOW - timedelta(minutes=10), sources)
        outbox.put_telemetry(first, now=NOW - timedelta(minutes=10))
        record = collect(NOW, sources)
        assert record["outbox"]["telemetry"] == {"depth": 1, "oldest_age_s": 600}
        assert record["outbox"]["records"] == {"depth": 0, "oldest_age_s": None}
        assert record["last_confirmed_at"] is None
        outbox.confirm("telemetry", 1, now=NOW + timedelta(seconds=5))
        later = collect(NOW + timedelta(seconds=6), sources)
        assert later["outbox"]["telemetry"] == {"depth": 0, "oldest_age_s": None}
        assert later["last_confirmed_at"] == "2026-11-23T10:38:17.123Z"
    finally:
        store.close()


def test_link_usage_of_the_month_against_the_budget(tmp_path: Path) -> None:
    """``link``: the month's bytes as the station's LinkUsage counts them (out plus in,
    the current UTC month only) and the budget; a failing source gives null and an error."""
    from dataclasses import replace

    from edge.storage.store import Store
    from edge.sync.usage import LinkUsage

    store = Store.open(tmp_path / "station.db", "site-a", now=lambda: NOW)
    try:
        usage = LinkUsage(store)
        last_month = NOW.replace(day=1) - timedelta(days=1)
        usage.add(5_000_000, 1_000_000, last_month)  # not this month's
        usage.add(700_000, 300_000, NOW)
        usage.add(20_000, 4_000, NOW)

        def link(now: datetime) -> dict[str, object]:
            month = usage.month(now)
            return {"month": month.month, "bytes": month.total, "budget_bytes": 100_000_000}

        base = Sources(storage_path=tmp_path, proc=tmp_path, thermal=tmp_path)
        record = collect(NOW, replace(base, link=link))
        assert record["link"] == {
            "month": NOW.strftime("%Y-%m"),
            "bytes": 1_024_000,
            "budget_bytes": 100_000_000,
        }
        assert "errors" not in record or "link" not in record["errors"]

        def broken(now: datetime) -> dict[str, object]:
            raise OSError("database is locked")

        failed = collect(NOW, replace(base, link=broken))
        assert failed["link"] is None
        assert failed["errors"]["link"] == "OSError: database is locked"
        assert "link" not in collect(NOW, base)  # a station without the source says nothing
    finally:
        store.close()
