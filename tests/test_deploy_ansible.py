"""deploy/ansible: both playbooks pass ``ansible-playbook --syntax-check`` on the example
and production inventories, and the station role's templates, rendered by Ansible itself
from the example point's host variables (and a production point's), give a station file
that the station's own ``edge config check`` accepts, an edge-upgrade file that
edge-upgrade reads, and the firewall of issue 16 item 6.

Ansible comes from Debian (``ansible-core``, installed by ``make system-deps``, the
version the deployment tests converge with); without it these tests are skipped here
and fail under CI=true."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rigs.need import need

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE = ROOT / "deploy" / "ansible"
ROLE = ANSIBLE / "roles" / "station"
EXAMPLE = ANSIBLE / "inventory" / "example"
PRODUCTION = ANSIBLE / "inventory" / "production"
VAULT_PASSWORD = EXAMPLE / "vault-password-example"


def _ansible(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        need(f"`{tool}` is not installed (Debian's ansible-core: make system-deps)")
    return found


def _run(argv: list[str | Path], cwd: Path = ANSIBLE) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": "/tmp/.ansible-edge-tests",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("playbook", ["station.yml", "central.yml"])
@pytest.mark.parametrize("inventory", [EXAMPLE, PRODUCTION], ids=["example", "production"])
def test_syntax_check(playbook: str, inventory: Path):
    proc = _run(
        [_ansible("ansible-playbook"), "--syntax-check", "-i", inventory, playbook,
         "--vault-password-file", VAULT_PASSWORD]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"playbook: {playbook}" in proc.stdout


RENDER = """
- name: Render the station role's templates as the role would
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: {vars_files}
  vars:
    vault_edge_tls_ca_pem: "-----BEGIN CERTIFICATE-----\\nCA\\n-----END CERTIFICATE-----\\n"
    vault_edge_tls_cert_pem: "-----BEGIN CERTIFICATE-----\\nSITE\\n-----END CERTIFICATE-----\\n"
    vault_edge_tls_key_pem: "-----BEGIN PRIVATE KEY-----\\nKEY\\n-----END PRIVATE KEY-----\\n"
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item }}}}"
        mode: "0644"
      loop: [station.toml, upgrade.toml, nftables.conf, timesyncd.conf,
             edge-upgrade-resume.service]
"""


def _render(tmp: Path, inventory: Path, host: str, groups: list[str]) -> Path:
    out = tmp / host
    out.mkdir()
    files = [ROLE / "defaults" / "main.yml"]
    files += [inventory / "group_vars" / f"{g}.yml" for g in ("all", "stations", *groups)]
    files.append(inventory / "host_vars" / host / "vars.yml")
    playbook = tmp / f"render-{host}.yml"
    playbook.write_text(
        RENDER.format(
            vars_files=json.dumps([str(f) for f in files if f.is_file()]), role=ROLE, out=out
        ),
        encoding="utf-8",
    )
    proc = _run([_ansible("ansible-playbook"), "-i", "localhost,", playbook], cwd=tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _config_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_point_renders_a_station_file_edge_accepts(tmp_path: Path):
    out = _render(tmp_path, EXAMPLE, "example-point-01", ["lai_chau"])
    station = out / "station.toml"
    check = _config_check(station)
    assert check.returncode == 0, check.stderr
    assert (
        check.stdout.strip()
        == f"{station}: OK (site example-point-01, scale simulated, printer file)"
    )
    cfg = tomllib.loads(station.read_text(encoding="utf-8"))
    assert cfg["site"] == {
        "id": "example-point-01",
        "name": "Điểm thu gom mẫu Sìn Hồ",
        "timezone": "Asia/Ho_Chi_Minh",
        "key_file": "/var/lib/edge/site.key",
    }
    # the link schedule and budget from the host vars, TLS files where the role puts them
    assert cfg["mqtt"] == {
        "enabled": True,
        "host": "broker.example.invalid",
        "port": 8883,
        "prefix": "edge",
        "connect_every_min": 30,
        "monthly_budget_mb": 200,
        "telemetry_every_s": 3600,
        "keepalive_s": 1800,
        "tls": {
            "ca_file": "/etc/edge/tls/ca.pem",
            "cert_file": "/etc/edge/tls/example-point-01.pem",
            "key_file": "/etc/edge/tls/example-point-01.key",
        },
    }
    assert cfg["storage"] == {
        "path": "/var/lib/edge/station.db",
        "backup_dir": "/var/lib/edge/backups",
        "min_free_mb": 200,
    }
    assert cfg["web"] == {"host": "0.0.0.0", "port": 8080, "allowed_hosts": []}
    assert cfg["camera"] == {"type": "simulated", "photos_dir": "/var/lib/edge/photos"}

    upgrade = tomllib.loads((out / "upgrade.toml").read_text(encoding="utf-8"))
    assert upgrade["current"] == "/opt/edge/current"
    assert upgrade["health"] == ["{current}/bin/edge", "health", "--config", "{config}"]
    status = subprocess.run(
        [sys.executable, ROOT / "deploy/ansible/roles/station/files/edge-upgrade",
         "--conf", out / "upgrade.toml", "status"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr  # every key is one edge-upgrade knows

    nft = (out / "nftables.conf").read_text(encoding="utf-8")
    assert "policy drop;" in nft
    assert 'ip saddr { 192.168.50.0/24 } tcp dport 8080 accept comment "the station page"' in nft
    assert 'ip saddr { 10.200.0.0/16 } tcp dport 22 accept comment "SSH from operations"' in nft
    assert "1883" not in nft and "8883" not in nft  # no broker on a point
    resume = (out / "edge-upgrade-resume.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/local/sbin/edge-upgrade resume" in resume
    assert "ConditionPathExists=/var/lib/edge-upgrade/state.json" in resume
    timesync = (out / "timesyncd.conf").read_text(encoding="utf-8")
    assert "NTP=0.vn.pool.ntp.org 1.vn.pool.ntp.org 2.asia.pool.ntp.org" in timesync


def test_a_production_point_renders_real_hardware(tmp_path: Path):
    out = _render(tmp_path, PRODUCTION, "lai-chau-sin-ho-01", ["lai_chau"])
    station = out / "station.toml"
    check = _config_check(station)
    assert check.returncode == 0, check.stderr
    assert "(site lai-chau-sin-ho-01, scale serial, printer uri)" in check.stdout
    cfg = tomllib.loads(station.read_text(encoding="utf-8"))
    assert cfg["scale"] == {
        "type": "serial",
        "port": "/dev/edge-scale",
        "protocol": "stgs",
        "baudrate": 9600,
    }
    assert cfg["printer"] == {"uri": "file:///dev/edge-printer", "profile": "xprinter-xp58"}
    assert cfg["camera"]["device"] == "/dev/edge-camera"
    # the point's own schedule wins over its province's
    assert (cfg["mqtt"]["connect_every_min"], cfg["mqtt"]["monthly_budget_mb"]) == (60, 150)


CENTRAL_RENDER = """
- name: Render the central role's templates as the role would
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: {vars_files}
  vars:
    vault_edge_central_db_password: "pa:ss\\\\word"
    vault_edge_broker_cert_pem: ""
    vault_edge_broker_key_pem: ""
    vault_edge_central_client_tls: {{}}
    vault_edge_console_metrics_token: "token"
  tasks:
    - name: Render the ingest units
      ansible.builtin.template:
        src: "{role}/templates/edge-ingest.service.j2"
        dest: "{out}/edge-ingest-{{{{ item.name }}}}.service"
        mode: "0644"
      loop: "{{{{ edge_central_ingests }}}}"
    - name: Render the console unit and the pgpass file
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item }}}}"
        mode: "0644"
      loop: [edge-console.service, pgpass]
"""


def _exec_start(unit: str) -> list[str]:
    """The ExecStart= command line of a unit file, continuation lines joined."""
    text = unit.replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


def test_central_units_call_the_edge_commands_that_exist(tmp_path: Path):
    """The ingest and console units' command lines are parsed by the real `edge` CLI's
    parser (every flag exists, every required one is there); the database password is
    only in the pgpass file, in libpq's format."""
    from edge.cli import build_parser

    role = ANSIBLE / "roles" / "central"
    out = tmp_path / "central"
    out.mkdir()
    files = [role / "defaults" / "main.yml", PRODUCTION / "host_vars" / "central-1" / "vars.yml"]
    playbook = tmp_path / "render-central.yml"
    playbook.write_text(
        CENTRAL_RENDER.format(vars_files=json.dumps([str(f) for f in files]), role=role, out=out),
        encoding="utf-8",
    )
    proc = _run([_ansible("ansible-playbook"), "-i", "localhost,", playbook], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    parser = build_parser()
    units = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.service")}
    assert sorted(units) == [
        "edge-console.service",
        "edge-ingest-ingest-1.service",
        "edge-ingest-ingest-2.service",
    ]
    args = {}
    for name, unit in units.items():
        argv = _exec_start(unit)
        assert argv[0] == "/opt/edge-central/current/bin/edge"
        args[name] = parser.parse_args(argv[1:])
        assert args[name].db == "postgresql://edge@db.internal.example.vn:5432/edge"
        assert "pa:ss" not in unit
        assert "Environment=PGPASSFILE=/etc/edge-central/pgpass" in unit
    one, two = args["edge-ingest-ingest-1.service"], args["edge-ingest-ingest-2.service"]
    assert (one.broker, one.group, one.tls_cert) == (
        "mqtts://mqtt.example.vn:8883",
        "central",
        "/etc/edge-central/tls/central-ingest-1.pem",
    )
    assert (one.downlink, two.downlink) == (True, False)  # exactly one sends the downlink
    assert (one.status_port, two.status_port) == (8201, 8202)
    console = args["edge-console.service"]
    assert (console.host, console.port, console.secure_cookie) == ("127.0.0.1", 8100, True)
    assert console.allow_host == ["console.example.vn"]
    assert str(console.metrics_token_file) == "/etc/edge-central/metrics-token"
    pgpass = (out / "pgpass").read_text(encoding="utf-8")
    assert pgpass == "db.internal.example.vn:5432:edge:edge:pa\\:ss\\\\word\n"
