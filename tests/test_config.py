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


def plain_to(host: str, extra: str = "") -> str:
    """An [mqtt] section: enabled, no [mqtt.tls], broker ``host``."""
    return f'[mqtt]\nenabled = true\nhost = "{host}"\n{extra}'


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
        ('[site]\nname = "Sìn\u200bHồ"\n', "site.name", "invisible character U+200B"),
        (
            plain_to("broker.example.org"),
            "mqtt.insecure_plaintext",
            "set insecure_plaintext = true",
        ),
        (plain_to("192.0.2.10"), "mqtt.insecure_plaintext", "is not on this machine"),
        (plain_to("0.0.0.0"), "mqtt.insecure_plaintext", "Add [mqtt.tls]"),
        (plain_to("localhost.example.org"), "mqtt.insecure_plaintext", "unencrypted"),
        (plain_to("::ffff:10.0.0.1"), "mqtt.insecure_plaintext", "'::ffff:10.0.0.1'"),
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


@pytest.mark.parametrize(
    ("text", "off_host"),
    [
        (plain_to("localhost"), False),
        (plain_to("127.0.0.1"), False),
        (plain_to("127.3.2.1"), False),
        (plain_to("::1"), False),
        (plain_to("broker.example.org", "insecure_plaintext = true\n"), True),
        (plain_to("192.0.2.10", "insecure_plaintext = true\n"), True),
        ('[mqtt]\nhost = "broker.example.org"\n', False),  # not enabled: never connects
        (
            plain_to("broker.example.org")
            + '[mqtt.tls]\nca_file = "ca.pem"\ncert_file = "s.pem"\nkey_file = "s.key"\n',
            False,
        ),
    ],
)
def test_plain_mqtt_only_to_this_machine_or_when_the_file_says_so(
    tmp_path: Path, text: str, off_host: bool
) -> None:
    f = tmp_path / "s.toml"
    f.write_text(text, encoding="utf-8")
    assert load_config(f).mqtt.plaintext_off_host is off_host


def test_plain_mqtt_to_another_machine_is_refused_by_config_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "station.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    tls = text.index("\n[mqtt.tls]")
    bad.write_text(text[:tls] + text[text.index("\n[storage]") :], encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: mqtt.insecure_plaintext: no [mqtt.tls] section" in err
    assert "'broker.example.invalid' is not on this machine" in err
    said = bad.read_text(encoding="utf-8").replace(
        "[mqtt]\n", "[mqtt]\ninsecure_plaintext = true\n"
    )
    bad.write_text(said, encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 0
