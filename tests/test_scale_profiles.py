"""Scale profiles (edge/defaults/scales/*.toml) and the [scale] keys that pick and
override them: every error names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, SerialScaleConfig, SimulatedScaleConfig, load_config
from edge.scale.profiles import (
    PACKAGE_PROFILES,
    ProfileError,
    driver_settings,
    load_profile,
)
from edge.scale.protocols import LineSettings, protocol_names
from edge.scale.stability import StabilityWindow

GOOD = """\
title = "Test scale"
protocol = "toledo-8217"
capacity_g = 15000
division_g = 5

[poll]
rate_hz = 10

[stability]
readings = 4
tolerance_g = 5
settle_s = 0.5
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def station(tmp_path: Path, scale: str) -> Path:
    return write(tmp_path / "station.toml", f"[scale]\n{scale}")


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_one_profile_per_family_and_all_load() -> None:
    names = sorted(p.stem for p in PACKAGE_PROFILES.glob("*.toml"))
    assert names == sorted(protocol_names())
    for name in names:
        profile = load_profile(name)
        assert profile.protocol == name
        settings = driver_settings(profile=name)
        assert (settings.poll_interval_s is not None) == (settings.protocol.mode == "poll")
        assert settings.profile == str(PACKAGE_PROFILES / f"{name}.toml")
    adam = driver_settings(profile="adam")
    assert adam.silent_when_unchanged is True
    assert (adam.poll_command, adam.line.baudrate) == (b"P", 4800)
    xk = driver_settings(profile="xk3190-eq")  # no overload status: Max + 9 d is overload
    assert xk.overload_above_g == 300_000 + 9 * 100
    assert driver_settings(profile="stgs").overload_above_g is None  # it says OL itself


def test_serial_scale_profile_with_overrides(tmp_path: Path) -> None:
    write(tmp_path / "scales" / "ariva.toml", GOOD)
    cfg = load_config(
        station(
            tmp_path,
            'type = "serial"\nport = "/dev/ttyUSB0"\n'
            f'profiles_dir = "{tmp_path / "scales"}"\nprofile = "ariva"\n'
            "baudrate = 4800\nstale_after_s = 3.5\n",
        )
    )
    assert isinstance(cfg.scale, SerialScaleConfig)
    s = cfg.scale.driver_settings()
    assert s.protocol.name == "toledo-8217"
    assert s.line == LineSettings(4800, 7, "E", 1)  # the override, then the family's 7E1
    assert s.poll_interval_s == pytest.approx(0.1)
    assert s.poll_command == b"W"
    assert s.window == StabilityWindow(4, 5, 0.5)
    assert s.stale_after_s == 3.5


def test_family_profile_is_used_without_a_profile_key(tmp_path: Path) -> None:
    cfg = load_config(station(tmp_path, 'type = "serial"\nport = "/dev/ttyUSB0"\n'))
    s = cfg.scale.driver_settings()
    assert s.protocol.name == "stgs" and s.profile == str(PACKAGE_PROFILES / "stgs.toml")
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = load_config(
        station(tmp_path, f'type = "simulated"\nprotocol = "adam"\nprofiles_dir = "{empty}"\n')
    )
    assert isinstance(cfg.scale, SimulatedScaleConfig)
    s = cfg.scale.driver_settings()
    assert s.profile is None  # no adam.toml there: the family's built-in defaults
    assert (s.line.baudrate, s.poll_command, s.window) == (4800, b"P", StabilityWindow())
    assert s.silent_when_unchanged is True  # the family sends only on change


def test_the_indicator_unit_comes_from_the_profile_or_the_station(tmp_path: Path) -> None:
    sbi = 'type = "simulated"\nprotocol = "sbi"\n'
    assert load_config(station(tmp_path, sbi)).scale.driver_settings().unit == "kg"
    cfg = load_config(station(tmp_path, sbi + 'unit = "g"\n'))
    assert cfg.scale.driver_settings().unit == "g"
    assert driver_settings(profile="stgs").unit is None  # its frames always say
    bad = write(
        tmp_path / "scales" / "bad.toml",
        'title = "x"\nprotocol = "sbi"\ncapacity_g = 1\ndivision_g = 1\nunit = "pcs"\n',
    )
    with pytest.raises(ProfileError, match=r"unit: .*unknown unit 'pcs'"):
        load_profile(str(bad))


@pytest.mark.parametrize(
    ("scale", "key", "reason"),
    [
        ('type = "simulated"\nprotocol = "sbi"\nunit = "pcs"\n', "scale.unit", "unknown unit"),
        ('type = "serial"\nport = "x"\nprofile = "xk3190-v"\n', "scale.profile", "no such profile"),
        ('type = "serial"\nport = "x"\nprofile = "xk3190-v"\n', "scale.profile", "'xk3190-w'"),
        ('type = "serial"\nport = "x"\nprotocol = "tole"\n', "scale.protocol", "unknown protocol"),
        (
            'type = "serial"\nport = "x"\nprofile = "adam"\nprotocol = "stgs"\n',
            "scale.profile",
            "adam.toml is for protocol 'adam', not 'stgs'",
        ),
        ('type = "serial"\nport = "x"\nparity = "X"\n', "scale.parity", "'N', 'E' or 'O'"),
        ('type = "simulated"\npoll_rate_hz = 0\n', "scale.poll_rate_hz", "greater than 0"),
        ('type = "simulated"\nprofil = "adam"\n', "scale.profil", "did you mean 'profile'"),
    ],
)
def test_scale_key_errors(tmp_path: Path, scale: str, key: str, reason: str) -> None:
    path = station(tmp_path, scale)
    message = config_error(path)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (("readings = 4", "readngs = 4"), "stability.readngs", "did you mean 'readings'"),
        (("rate_hz = 10", "rate_hz = 500"), "poll.rate_hz", "less than or equal to 50"),
        (('protocol = "toledo-8217"', 'protocol = "nope"'), "protocol", "unknown protocol"),
        (("capacity_g = 15000\n", ""), "capacity_g", "required key is missing"),
        (('protocol = "toledo-8217"', 'protocol = "stgs"'), "poll", "streams by itself"),
        (("[poll]", "[pol]"), "pol", "unknown key"),
        (("division_g = 5", "division_g = 5\ndivision_g = 6"), "(syntax)", "not valid TOML"),
    ],
)
def test_profile_errors_name_file_key_and_reason(
    tmp_path: Path, change: tuple[str, str], key: str, reason: str
) -> None:
    bad = write(tmp_path / "scales" / "bad.toml", GOOD.replace(*change))
    with pytest.raises(ProfileError) as info:
        load_profile("bad", tmp_path / "scales")
    assert str(info.value).startswith(f"{bad}: {key}: "), str(info.value)
    assert reason in str(info.value)
    # the station file that names it says so too, under scale.profile
    path = station(tmp_path, f'type = "serial"\nport = "x"\nprofile = "{bad}"\n')
    message = config_error(path)
    assert message.startswith(f"{path}: scale.profile: "), message
    assert f"{bad}: {key}: " in message


def test_profile_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(str(tmp_path / "missing.toml"))
    latin = tmp_path / "latin.toml"
    latin.write_bytes('title = "Cân"\n'.encode("utf-16"))
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(str(latin))
