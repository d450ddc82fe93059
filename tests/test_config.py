from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edge.cli import build_parser, main
from edge.config import ConfigError, SerialScaleConfig, load_config

EXAMPLE = Path(__file__).parent.parent / "firmware-config" / "station.example.toml"


def test_default_needs_no_hardware() -> None:
    cfg = load_config(None)
    assert cfg.scale.type == "simulated"
    assert cfg.printer.type == "file"
    assert cfg.mqtt.enabled is False
    assert (cfg.web.host, cfg.web.port) == ("127.0.0.1", 8080)


def test_example_file_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg.scale, SerialScaleConfig)
    assert cfg.site.name == "Điểm thu gom Sìn Hồ"


def test_misspelt_key_is_refused_by_config_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("baudrate =", "baudrte ="), encoding="utf-8"
    )
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: scale.baudrte: unknown key; did you mean 'baudrate'?" in err


def test_good_file_passes_config_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[mqtt]\nport = 70000\n", "mqtt.port", "less than or equal to 65535"),
        ('[site]\nid = "Bad Id"\n', "site.id", "should match pattern"),
        ('[site]\ntimezone = "Mars/Olympus"\n', "site.timezone", "unknown time zone"),
        ('[scale]\ntype = "serial"\n', "scale.port", "required key is missing"),
        ('[printer]\ntype = "laser"\n', "printer", "does not match any of the expected tags"),
        ('[storag]\npath = "x.db"\n', "storag", "did you mean 'storage'"),
        ("[web\nport = 1\n", "(syntax)", "not valid TOML"),
    ],
)
def test_errors_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    message = str(info.value)
    assert message.startswith(f"{f}: {key}: "), message
    assert reason in message


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[site]\nname = "Sìn Hồ"\n'.encode("utf-16"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin)


def _command_paths(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, [*prefix, name])
    return paths


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _command_paths(build_parser(), [])
    assert (
        ["scale", "probe"] in paths
        and ["label", "verify"] in paths
        and ["printer", "status"] in paths
    )
    for path in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: edge {' '.join(path)}".rstrip()), (path, out[:80])
