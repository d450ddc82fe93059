"""The station's deployment on a real Debian bookworm root, no Docker (``make deploy-test``;
docs/deploy.md, "Testing the deployment"). Not in ``make test`` (its testpaths are
tests/): debootstrap, three playbook runs, a boot, an upgrade and an arm64 root under qemu
take longer than the suite's 20 minutes allow.

The tests run in file order and share their stages through module fixtures: the fresh
root converged once (``converged``), that root booted (``booted``), the arm64 root
(``arm64_root``). Each stage's work is in rigs/debroot.py; the logs of every playbook
run and the booted root's console are kept in var/deploy/logs/.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rigs import debroot
from rigs.debroot import ANSIBLE_DIR, PROJECT, Booted, Chrooted, PlaybookRun, run
from rigs.need import need

INVENTORY = ANSIBLE_DIR / "inventory" / "example"
HOST = "example-point-01"
PLAYBOOK = ANSIBLE_DIR / "station.yml"
VAULT_PASSWORD = INVENTORY / "vault-password-example"
UNIT = "edge-station.service"
CONFIG = "/etc/edge/station.toml"
EDGE = "/opt/edge/current/bin/edge"
DB = "/var/lib/edge/station.db"
URL = "http://127.0.0.1:8080"
LEAD, PIN = "Kỹ thuật Thử", "2468"
ARCH = debroot.host_arch()
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
AS_EDGE = f"runuser -u edge -- {EDGE}"


def vault_args() -> list[str]:
    return ["--vault-password-file", str(VAULT_PASSWORD)] if VAULT_PASSWORD.exists() else []


def version() -> str:
    m = re.search(r'^version = "([^"]+)"', (PROJECT / "pyproject.toml").read_text(), re.M)
    assert m
    return m.group(1)


@functools.cache
def wheelhouse(arch: str) -> Path:
    """The release's wheel set for ``arch`` as deploy/build-wheels makes it, where the
    role looks for it (dist/wheelhouse/<version>/<machine>/)."""
    out = PROJECT / "dist" / "wheelhouse" / version() / MACHINE[arch]
    run(  # with the project's venv (its pip and setuptools build the station's wheel)
        [sys.executable, PROJECT / "deploy" / "build-wheels", "--arch", MACHINE[arch]],
        timeout=1800,
        cwd=PROJECT,
    )
    wheels = sorted(out.glob("*.whl"))
    assert any(w.name.startswith("edge_station-") for w in wheels), f"no station wheel in {out}"
    return out


def edge_groups(root: Path) -> set[str]:
    """The groups the user ``edge`` is a member of in ``root`` (besides its own)."""
    groups = set()
    for line in (root / "etc" / "group").read_text().splitlines():
        name, _, _, members = line.split(":")
        if "edge" in members.split(","):
            groups.add(name)
    return groups


@pytest.fixture(scope="module")
def tools() -> None:
    if os.geteuid() != 0:
        need("root is needed (debootstrap, chroot, systemd-nspawn): run `make deploy-test` as root")
    missing = [
        t
        for t in ("debootstrap", "ansible-playbook", "systemd-nspawn", "nsenter", "unshare")
        if shutil.which(t) is None
    ]
    if missing:
        need(f"{', '.join(missing)} not installed: `make deploy-deps` installs them")


@dataclass
class Converged:
    root: Path
    first: PlaybookRun


def converge(root: Path, *extra: str) -> PlaybookRun:
    return debroot.playbook(PLAYBOOK, INVENTORY, HOST, root, *vault_args(), *extra)


@pytest.fixture(scope="module")
def converged(tools: None) -> Converged:
    wheelhouse(ARCH)
    root = debroot.fresh_root(ARCH)
    first = converge(root)
    print(
        f"\ndeploy_converge_s: {first.seconds:.1f}  (station.yml, first run on a fresh "
        f"debootstrap'd bookworm {ARCH} root through the chroot connection, "
        f"{first.changed} tasks changed; the wheel set built beforehand)",
        flush=True,
    )
    return Converged(root, first)


# --- converging -------------------------------------------------------------------------


def test_the_first_run_changes_things(converged: Converged) -> None:
    first, root = converged.first, converged.root
    assert first.failed == 0
    assert first.changed > 0
    current = root / "opt" / "edge" / "current"
    assert current.is_symlink()
    assert os.readlink(current).rstrip("/").endswith(f"releases/{version()}")
    assert (root / "opt" / "edge" / "releases" / version() / "bin" / "edge").exists()
    assert (root / CONFIG.lstrip("/")).is_file()
    # its own system user, in the groups for serial, video and printer devices only
    assert edge_groups(root) == {"dialout", "video", "lp"}
    passwd = {
        ln.split(":")[0]: ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines()
    }
    assert int(passwd["edge"][2]) < 1000  # a system user
    assert passwd["edge"][6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    check = run(["chroot", "--userspec=edge:edge", root, EDGE, "config", "check", CONFIG])
    assert f"site {HOST}" in check.stdout


def test_the_second_run_changes_nothing(converged: Converged) -> None:
    second = converge(converged.root)
    assert second.failed == 0
    assert second.changed == 0, f"changed on the second run: {second.changed_tasks()}"


def test_check_diff_on_the_converged_root_reports_nothing(converged: Converged) -> None:
    check = converge(converged.root, "--check", "--diff")
    assert check.failed == 0
    assert check.changed == 0, f"--check would change: {check.changed_tasks()}"
    assert check.diffs() == []


# --- booted -----------------------------------------------------------------------------


RUNNING: list[Booted] = []
"""The booted root while it runs: the arm64 stage halts it first (both at once would
share this machine's 2 cores for nothing)."""


@pytest.fixture(scope="module")
def booted(converged: Converged) -> Iterator[Booted]:
    with Booted(converged.root, "edge-point") as b:
        RUNNING.append(b)
        yield b
        RUNNING.remove(b)


def active(b: Booted) -> dict[str, str]:
    return b.unit(UNIT, "ActiveState", "SubState", "MainPID", "NRestarts")


def test_the_booted_root_starts_the_station_and_the_page_answers(booted: Booted) -> None:
    def running() -> dict[str, str] | None:
        s = active(booted)
        return s if s["SubState"] == "running" else None

    state = debroot.wait_until(running, 120, f"{UNIT} running")
    assert state["ActiveState"] == "active"
    unit = booted.unit(UNIT, "User", "Type", "Restart", "WatchdogUSec", "NoNewPrivileges")
    assert unit["User"] == "edge"
    assert unit["Type"] == "notify"
    assert unit["Restart"] == "always"
    assert unit["WatchdogUSec"] not in ("0", "infinity", "")
    assert unit["NoNewPrivileges"] == "yes"
    page = booted.client("page", f"{URL}/")
    assert page["status"] == 200
    assert page["bytes"] > 500
    health = booted.sh(f"{AS_EDGE} health --config {CONFIG}", check=False)
    assert health.returncode == 0, health.stdout
    failed = booted.sh("systemctl --failed --no-legend --plain", check=False).stdout
    print(f"\nunits failed in the booted root: {failed.strip() or 'none'}")
    assert "edge-" not in failed
    assert "nftables" not in failed


def test_the_firewall_is_loaded_in_the_booted_root(booted: Booted) -> None:
    assert booted.unit("nftables.service", "ActiveState")["ActiveState"] == "active"
    rules = booted.sh("nft list chain inet edge input").stdout
    assert "policy drop" in rules
    assert re.search(r'iif "lo" accept', rules)
    page = re.search(r"ip saddr (\S+) tcp dport 8080 accept", rules)
    ssh = re.search(r"ip saddr (\S+) tcp dport 22 accept", rules)
    assert page and ssh, rules
    assert page.group(1) == "192.168.50.0/24"  # the example point's LAN
    assert ssh.group(1) == "10.200.0.0/16"  # the operations network
    assert "1883" not in rules and "8883" not in rules  # no broker on a point


def test_systemd_accepts_the_units_and_scores_the_station_ok(booted: Booted) -> None:
    units = booted.sh("ls /etc/systemd/system/edge-*.service /etc/systemd/system/edge-*.timer")
    paths = units.stdout.split()
    assert f"/etc/systemd/system/{UNIT}" in paths
    verify = booted.sh("systemd-analyze verify " + " ".join(paths), check=False)
    assert verify.returncode == 0, verify.stdout
    edge_lines = [ln for ln in verify.stdout.splitlines() if "edge-" in ln]
    assert edge_lines == [], verify.stdout
    security = booted.sh(f"systemd-analyze security --no-pager {UNIT}", check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", security.stdout)
    assert m, security.stdout
    print(f"\nsystemd-analyze security {UNIT}: {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= 4.0, security.stdout


def seconds(span: str) -> float:
    """A systemd time span as ``systemctl show`` prints it ("30s", "1min 30s", "500ms")."""
    units = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|min|ms|us|s)", span))


def test_the_watchdog_restarts_a_sigstopped_station(booted: Booted) -> None:
    before = active(booted)
    assert before["SubState"] == "running"
    watchdog_s = seconds(booted.unit(UNIT, "WatchdogUSec")["WatchdogUSec"])
    pid = before["MainPID"]
    booted.sh(f"kill -STOP {pid}")
    started = time.monotonic()

    def restarted() -> bool:
        now = active(booted)
        return bool(
            now["MainPID"] not in ("0", pid)
            and now["SubState"] == "running"
            and int(now["NRestarts"]) > int(before["NRestarts"])
        )

    debroot.wait_until(restarted, 3 * max(watchdog_s, 30) + 120, "the watchdog's restart")
    took = time.monotonic() - started
    journal = booted.sh(f"journalctl -u {UNIT} --no-pager -o cat", check=False).stdout
    assert "Watchdog timeout" in journal, journal[-3000:]
    print(f"\nwatchdog restart of a SIGSTOPped station: {took:.0f} s (WatchdogSec={watchdog_s})")
    assert booted.client("page", f"{URL}/")["status"] == 200


def broken_release(good: Path, work: Path) -> tuple[str, Path]:
    """A release whose health check fails: a copy of this checkout as version
    ``<version>.post1`` with one more migration (a marker table: that the failed
    release ran on the database) and a station that exits right after it started (its
    database opened and migrated), so its page never answers. Its wheel set: the good
    one's dependencies with this wheel. Returns the version and the wheel set."""
    new = f"{version()}.post1"
    src = work / "src"
    files = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT
    ).stdout.split("\0")
    for name in filter(None, files):
        if (PROJECT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, src / name)
    for name in ("edge/__init__.py", "pyproject.toml"):
        text = (src / name).read_text()
        (src / name).write_text(text.replace(f'"{version()}"', f'"{new}"', 1))
    migrations = src / "edge" / "storage" / "migrations"
    last = max(int(p.name[:4]) for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    (migrations / f"{last + 1:04d}_rollback_test.sql").write_text(
        "CREATE TABLE rollback_test_marker (note TEXT NOT NULL);\n"
        "INSERT INTO rollback_test_marker VALUES ('the failed release migrated this database');\n"
    )
    app = src / "edge" / "web" / "app.py"
    text = app.read_text()
    assert text.count("        st.start()\n") == 1
    app.write_text(
        text.replace(
            "        st.start()\n",
            "        st.start()\n        __import__('os')._exit(70)  # broken on purpose\n",
        )
    )
    out = work / "wheels"
    shutil.copytree(good, out, ignore=shutil.ignore_patterns("edge_station-*"))
    run(
        [
            PROJECT / ".venv/bin/pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            out,
            src,
        ],
        timeout=600,
    )
    assert len(list(out.glob(f"edge_station-{new}-*.whl"))) == 1
    return new, out


def sqlite(b: Booted, sql: str) -> str:
    return b.sh(f'sqlite3 -readonly {DB} "{sql}"').stdout.strip()


def test_a_failed_upgrade_rolls_back_by_itself_with_the_data_intact(
    booted: Booted, tmp_path: Path
) -> None:
    booted.sh(f"{AS_EDGE} users add '{LEAD}' --role lead --config {CONFIG}", input=f"{PIN}\n")
    recorded = booted.client("record-lot", URL, "--name", LEAD, "--pin", PIN, "--grams", "2750")
    lot = recorded["lot"]
    assert lot["net_g"] == 2750
    schema_before = sqlite(booted, "PRAGMA user_version")
    lots_before = sqlite(booted, "SELECT count(*) FROM lots")
    new, wheels = broken_release(wheelhouse(ARCH), tmp_path)
    target = f"/opt/edge/wheels/{new}"
    shutil.copytree(wheels, booted.root / target.lstrip("/"))
    started = time.monotonic()
    install = booted.sh(f"edge-upgrade install {new} --wheels {target}", check=False, timeout=900)
    assert install.returncode == 0, install.stdout
    upgrade = booted.sh(f"edge-upgrade upgrade {new}", check=False, timeout=900)
    health = booted.sh(f"{AS_EDGE} health --config {CONFIG}", check=False)
    took = time.monotonic() - started
    assert upgrade.returncode == 3, upgrade.stdout  # rolled back ...
    assert health.returncode == 0, health.stdout  # ... and the old release is healthy
    print(
        f"\ndeploy_upgrade_rollback_s: {took:.1f}  (edge-upgrade {version()} -> {new}, a "
        f"release whose station exits after its migration: installed, switched, health "
        f"check failed, rolled back to {version()} and its database, healthy; booted "
        f"{ARCH} root)\n{upgrade.stdout[-3000:]}",
        flush=True,
    )
    # what the point reports in telemetry: the version it runs and the outcome
    status = json.loads((booted.root / "var/lib/edge/upgrade-status.json").read_text())
    assert status["outcome"] == "rolled_back"
    assert (status["from"], status["to"], status["version"]) == (new, version(), version())
    assert status["database_restored"] is True
    current = booted.sh("readlink /opt/edge/current").stdout.strip().rstrip("/")
    assert current.endswith(f"releases/{version()}")
    assert active(booted)["SubState"] == "running"
    # the data intact: the lot recorded before, the schema of before, nothing of the
    # failed release's migration
    assert sqlite(booted, "PRAGMA user_version") == schema_before
    assert sqlite(booted, "SELECT count(*) FROM lots") == lots_before
    tables = sqlite(booted, "SELECT name FROM sqlite_master WHERE type='table'")
    assert "rollback_test_marker" not in tables.split()
    lots = booted.client("lots", URL, "--name", LEAD, "--pin", PIN, "--day", lot["day"])
    assert [x["id"] for x in lots] == [lot["id"]]
    assert booted.client("page", f"{URL}/")["status"] == 200


# --- arm64 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arm64_root(tools: None) -> Path:
    for b in RUNNING:
        b.__exit__(None, None, None)  # halted now; its fixture's exit then finds it done
    why = debroot.can_run("arm64")
    if why:
        need(f"the arm64 root cannot run here: {why}")
    wheelhouse("arm64")
    root = debroot.fresh_root("arm64")
    first = converge(root)
    print(f"\narm64 converge (under qemu): {first.seconds:.0f} s, {first.changed} changed")
    return root


def elf_machine(path: Path) -> int:
    with path.open("rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


def test_the_arm64_root_installs_from_wheels_only_and_records_a_lot(arm64_root: Path) -> None:
    release = arm64_root / "opt" / "edge" / "releases" / version()
    # the wheel set holds wheels only (edge-upgrade installs with --no-index
    # --only-binary=:all: from it), every compiled one for aarch64 or any platform
    names = [p.name for p in wheelhouse("arm64").iterdir()]
    assert [n for n in names if n.endswith(".whl")]
    assert not [n for n in names if n.endswith((".tar.gz", ".zip", ".tar.bz2"))]  # no sdist
    assert not [n for n in names if any(k in n for k in ("x86_64", "win32", "win_amd64", "macosx"))]
    # every compiled module of the release is arm64 (EM_AARCH64 = 183): from arm64 wheels
    compiled = list(release.glob("lib/python3*/site-packages/**/*.so"))
    assert len(compiled) > 20
    assert {elf_machine(p) for p in compiled} == {183}
    machine = run(
        [
            "chroot",
            arm64_root,
            f"/opt/edge/releases/{version()}/bin/python",
            "-c",
            "import platform, cv2, numpy, zxingcpp; print(platform.machine())",
        ],
        timeout=300,
    )
    assert machine.stdout.split()[-1] == "aarch64"
    run(
        [
            "chroot",
            "--userspec=edge:edge",
            arm64_root,
            EDGE,
            "users",
            "add",
            LEAD,
            "--role",
            "lead",
            "--config",
            CONFIG,
        ],
        input=f"{PIN}\n",
        timeout=300,
    )
    with Chrooted(arm64_root, f"exec {AS_EDGE} run --config {CONFIG}", "station-arm64.log") as st:
        recorded: dict[str, Any] = st.client(
            "record-lot", URL, "--name", LEAD, "--pin", PIN, "--grams", "1800", timeout=600
        )
    lot = recorded["lot"]
    assert lot["net_g"] == 1800
    assert [x["id"] for x in recorded["lots_of_day"]] == [lot["id"]]
    print(f"\narm64 root: lot {lot['id']} recorded through the API ({json.dumps(lot)[:200]})")


# --- lint -------------------------------------------------------------------------------


def test_ansible_lint_passes_on_the_production_profile(tools: None) -> None:
    if shutil.which("ansible-lint") is None:
        need("ansible-lint is not installed: `make deploy-deps` installs it")
    lint = subprocess.run(
        ["ansible-lint", "--offline", "--profile", "production"],
        cwd=ANSIBLE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg")},
        check=False,
    )
    assert lint.returncode == 0, lint.stdout[-6000:]
