"""The station's systemd units, journald caps and udev rules as the station role installs
them: rendered with Jinja2 (as Ansible's template module does: trim_blocks, every
variable defined) from the role's defaults and the example inventory's host variables,
then checked by systemd itself: ``systemd-analyze verify`` accepts the units and
``systemd-analyze security --offline=true`` scores the station at most 4.0 ("OK").
The udev rules name the scale, printer and camera from the point's USB ids."""

from __future__ import annotations

import configparser
import contextlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with python-escpos; no stubs

from rigs.need import mount_namespace, need

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE = ROOT / "deploy" / "ansible"
TEMPLATES = ANSIBLE / "roles" / "station" / "templates"
EXAMPLE = ANSIBLE / "inventory" / "example"
HOST = "example-point-01"
UNITS = ("edge-station.service", "edge-backup.service", "edge-backup.timer")


def _environment() -> jinja2.Environment:
    """Jinja2 set up as Ansible's template module sets it up."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def host_vars(**overrides: Any) -> dict[str, Any]:
    """The example point's variables in Ansible's order of precedence (role defaults,
    group_vars all, its groups, host_vars), strings naming other variables resolved."""
    merged: dict[str, Any] = {}
    for path in (
        ANSIBLE / "roles" / "station" / "defaults" / "main.yml",
        EXAMPLE / "group_vars" / "all.yml",
        EXAMPLE / "group_vars" / "stations.yml",
        EXAMPLE / "group_vars" / "lai_chau.yml",
        *sorted((EXAMPLE / "host_vars" / HOST).glob("*.yml")),
    ):
        if path.exists() and "vault" not in path.name:
            merged.update(_yaml(path))
    merged.update(overrides)
    env = _environment()
    for _ in range(5):  # "{{ edge_opt_dir }}/current" and the like, nested a few deep
        for key, value in merged.items():
            if isinstance(value, str) and "{{" in value:
                # a Vault variable or an Ansible fact stays as it is: these templates
                # do not use them
                with contextlib.suppress(jinja2.UndefinedError):
                    merged[key] = env.from_string(value).render(merged)
    return merged


def render(name: str, **overrides: Any) -> str:
    return _environment().get_template(name + ".j2").render(host_vars(**overrides))


def _unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        need("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return found


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """A root holding the rendered units, the release's `edge` they start, and this
    machine's systemd units they name (sysinit.target, timers.target...)."""
    root = tmp_path / "root"
    system_units = next(
        (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
        None,
    )
    if system_units is None:
        need("systemd's units are not installed (Debian: apt-get install systemd)")
    shutil.copytree(system_units, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for name in UNITS:
        (units / name).write_text(render(name), encoding="utf-8")
    edge = root / "opt" / "edge" / "current" / "bin" / "edge"
    edge.parent.mkdir(parents=True)
    edge.write_text("#!/bin/sh\nexit 0\n")
    edge.chmod(0o755)
    return root


def test_the_station_unit_says_what_the_issue_asks() -> None:
    unit = _unit(render("edge-station.service"))
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30" and service["Restart"] == "always"
    assert service["ExecStart"] == "/opt/edge/current/bin/edge run --config /etc/edge/station.toml"
    assert service["User"] == "edge" and service["Group"] == "edge"
    assert service["WorkingDirectory"] == "/var/lib/edge"
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/edge"
    assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes"
    assert "PrivateDevices" not in service and "PrivateUsers" not in service  # the devices
    assert "ProcSubset" not in service  # telemetry reads /proc/meminfo, the boot id
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # from the host's variables
    other = _unit(render("edge-station.service", edge_watchdog_sec=45, edge_data_dir="/srv/e"))
    assert other["Service"]["WatchdogSec"] == "45"
    assert other["Service"]["ReadWritePaths"] == "/srv/e"


def test_systemd_accepts_the_units(unit_root: Path) -> None:
    analyze = _systemd_analyze()
    units = unit_root / "etc" / "systemd" / "system"
    done = subprocess.run(
        [analyze, "verify", f"--root={unit_root}", *(str(units / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    mine = [line for line in done.stderr.splitlines() if any(n in line for n in UNITS)]
    assert done.returncode == 0 and mine == [], done.stderr


def test_the_station_unit_scores_ok_in_systemd_analyze_security(unit_root: Path) -> None:
    analyze = _systemd_analyze()
    unit = unit_root / "etc" / "systemd" / "system" / "edge-station.service"
    done = subprocess.run(
        [analyze, "security", "--offline=true", f"--root={unit_root}", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for edge-station\.service: (\d+\.\d+) (\w+)",
                      done.stdout)  # fmt: skip
    assert found is not None, (done.returncode, done.stdout, done.stderr)
    score, verdict = float(found.group(1)), found.group(2)
    assert score <= 4.0 and verdict == "OK", done.stdout


def test_the_backup_timer_and_journald_caps() -> None:
    timer = _unit(render("edge-backup.timer"))["Timer"]
    assert timer["OnCalendar"] == "*-*-* 02:30:00" and timer["Persistent"] == "true"
    backup = _unit(render("edge-backup.service"))["Service"]
    assert backup["Type"] == "oneshot" and backup["User"] == "edge"
    assert backup["ExecStart"] == (
        "/opt/edge/current/bin/edge backup --config /etc/edge/station.toml --keep-days 7"
    )
    journal = _unit(render("journald-edge.conf"))["Journal"]
    assert journal["SystemMaxUse"] == "64M" and journal["SystemMaxFileSize"] == "8M"
    assert journal["SystemKeepFree"] == "512M" and journal["RuntimeMaxUse"] == "16M"
    assert journal["Storage"] == "persistent" and journal["MaxRetentionSec"] == "1month"
    smaller = _unit(render("journald-edge.conf", edge_journal_max_use="32M"))["Journal"]
    assert smaller["SystemMaxUse"] == "32M"


def _rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_udev_rules_from_the_example_host_vars() -> None:
    assert _rules(render("99-edge-devices.rules")) == [
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="1a86", ATTRS{idProduct}=="7523", '
        'SYMLINK+="edge-scale", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1"',
        'SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", ATTRS{idVendor}=="0416", '
        'ATTRS{idProduct}=="5011", SYMLINK+="edge-printer", GROUP="lp", MODE="0660"',
        'SUBSYSTEM=="video4linux", ATTR{index}=="0", ATTRS{idVendor}=="046d", '
        'ATTRS{idProduct}=="0825", ATTRS{serial}=="A1B2C3D4", SYMLINK+="edge-camera", '
        'GROUP="video", MODE="0660"',
    ]


def test_udev_rules_follow_other_host_vars() -> None:
    devices = {
        "scale": {"vendor_id": "067B", "product_id": "2303", "serial": "", "usb_port": "1-1.3"},
        "printer": {"kind": "usb", "vendor_id": "04b8", "product_id": "0e15"},
    }
    assert _rules(render("99-edge-devices.rules", edge_devices=devices)) == [
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="067b", ATTRS{idProduct}=="2303", '
        'KERNELS=="1-1.3", SYMLINK+="edge-scale", GROUP="dialout", MODE="0660", '
        'ENV{ID_MM_DEVICE_IGNORE}="1"',
        'SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTRS{idVendor}=="04b8", '
        'ATTRS{idProduct}=="0e15", SYMLINK+="edge-printer", GROUP="lp", MODE="0660"',
    ]
    serial_printer = {"printer": {"kind": "serial", "vendor_id": "1a86", "product_id": "7523",
                                  "serial": "PRN-01"}}  # fmt: skip
    assert _rules(render("99-edge-devices.rules", edge_devices=serial_printer)) == [
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="1a86", ATTRS{idProduct}=="7523", '
        'ATTRS{serial}=="PRN-01", SYMLINK+="edge-printer", GROUP="dialout", MODE="0660", '
        'ENV{ID_MM_DEVICE_IGNORE}="1"',
    ]
    assert _rules(render("99-edge-devices.rules", edge_devices={})) == []


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ({"scale": {"vendor_id": "1a8", "product_id": "7523"}},
         'edge_devices.scale.vendor_id must be 4 hex digits, not "1a8"'),
        ({"camera": {"vendor_id": "046d", "product_id": "08g5"}},
         "edge_devices.camera.product_id: 08g5 has a character udev rules cannot take (g)"),
        ({"scale": {"vendor_id": "1a86", "product_id": "7523", "serial": 'x", RUN+="sh'}},
         "edge_devices.scale.serial"),
        ({"printer": {"kind": "lpd", "vendor_id": "0416", "product_id": "5011"}},
         'edge_devices.printer.kind must be usblp, usb or serial, not "lpd"'),
    ],
)  # fmt: skip
def test_udev_rules_refuse_bad_ids(devices: dict[str, Any], message: str) -> None:
    with pytest.raises(jinja2.UndefinedError, match=re.escape(message)):
        render("99-edge-devices.rules", edge_devices=devices)


UDEV_TEST = (
    'mount --make-rprivate / && mount --bind "$1" /etc/udev/rules.d'
    # udevadm test writes links and a database for the device it tests: into tmpfs here
    " && mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /dev"
    " && udevadm test --action=add /sys/devices/virtual/mem/null"
)


def test_udev_parses_the_rules(tmp_path: Path) -> None:
    """udev's own parser reads every variant of the rules and finds nothing to refuse
    (``udevadm test``, in a private mount namespace where the rules folder is ours and
    /dev and /run are empty tmpfs: nothing of it reaches this machine). A rule udev
    cannot read is reported ("FILE:LINE Invalid key ..."), as the planted one shows."""
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        need("udevadm is not installed (Debian: apt-get install udev)")
    prefix = mount_namespace()
    rules = tmp_path / "rules.d"
    rules.mkdir()
    variants = {
        "99-edge-devices.rules": render("99-edge-devices.rules"),
        "97-edge-usb.rules": render(
            "99-edge-devices.rules",
            edge_devices={
                "scale": {"vendor_id": "067b", "product_id": "2303", "usb_port": "1-1.3"},
                "printer": {"kind": "usb", "vendor_id": "04b8", "product_id": "0e15"},
            },
        ),
        "96-edge-serial.rules": render(
            "99-edge-devices.rules",
            edge_devices={
                "printer": {
                    "kind": "serial",
                    "vendor_id": "1a86",
                    "product_id": "7523",
                    "serial": "PRN-01",
                }
            },
        ),
    }
    for name, text in variants.items():
        (rules / name).write_text(text, encoding="utf-8")
    (rules / "90-planted.rules").write_text('SUBSYSTEM=="tty", FOO=="1", SYMLINK+="x"\n')
    done = subprocess.run(
        [*prefix, "sh", "-c", UDEV_TEST, "sh", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout + done.stderr
    if "Reading rules file: /etc/udev/rules.d/90-planted.rules" not in out:
        need(f"udevadm test cannot run here ({done.returncode}): {out[-500:]}")
    assert "/etc/udev/rules.d/90-planted.rules:1 Invalid key 'FOO'" in out
    for name in variants:
        assert f"Reading rules file: /etc/udev/rules.d/{name}" in out
        assert f"/etc/udev/rules.d/{name}:" not in out, out
