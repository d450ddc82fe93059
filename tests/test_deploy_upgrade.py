"""deploy/ansible/roles/station/files/edge-upgrade against a temporary root: real release
venvs installed from wheels with ``pip --no-index``, real ``edge run`` stations started
and stopped by a small service stand-in, the release's own ``edge health`` deciding, and
a release whose health check fails rolled back by itself with the database restored.

Three releases are built from this checkout as wheels (the version changed in a copy):
``1.0.0``, ``1.0.2`` (one more migration: a schema the older release refuses), and
``1.0.1``, broken on purpose (the same extra migration, and every page answers 500, so
its health check fails after it has migrated the database).

What stands in for the Pi, and why: systemd is not PID 1 here, so ``systemctl start|stop``
is a script starting ``current/bin/edge run`` in the background and stopping it with
SIGTERM (what systemd does); the dependency wheels (about 150 MB per architecture,
deploy/build-wheels) are not downloaded by the suite: each release venv gets this
venv's installed dependencies through a path line appended after its own site-packages
(as tests/test_packaging.py does), made by a ``python`` stand-in for ``python -m venv``.
Everything else is the script as the role installs it: pip installs the release's own
wheel into its own venv from a folder with ``--no-index``, the symlink switch, the
database backup and migration, the health check, the restore.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.machinery import SourceFileLoader
from pathlib import Path

import httpx
import pytest

from edge.storage.db import migrations
from edge.sync.telemetry import Sources, collect, read_upgrade_status
from edge.sync.validate import record_problem
from rigs.helpers import free_port, process_client, settle, wait_for

ROOT = Path(__file__).resolve().parents[1]
EDGE_UPGRADE = ROOT / "deploy" / "ansible" / "roles" / "station" / "files" / "edge-upgrade"
SCHEMA = len(migrations())  # this checkout's schema version

SERVICE = '''
"""systemctl start|stop edge-station.service, for a root without systemd."""
import os, signal, subprocess, sys, time
from pathlib import Path
root = Path(sys.argv[1])
pidfile = root / "station.pid"
if sys.argv[2] == "start":
    with (root / "station.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(root / "opt/current/bin/edge"), "run", "--config", str(root / "etc/station.toml")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=root / "data",
            start_new_session=True)
    pidfile.write_text(str(proc.pid))
else:
    try:
        pid = int(pidfile.read_text())
    except FileNotFoundError:
        sys.exit(0)
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, FileNotFoundError):
        pass
    pidfile.unlink()
'''

VENV_PYTHON = """#!/bin/sh
# python -m venv DIR, then this venv's dependencies appended after DIR's own packages
"{python}" "$@" || exit $?
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  echo "{purelib}" > "$3/lib/python{major}.{minor}/site-packages/zz_test_dependencies.pth"
fi
"""

BROKEN = """

# --- broken on purpose (tests/test_deploy_upgrade.py): the station starts and migrates,
# then every page answers 500, so `edge health` fails.
_working_create_app = create_app


def create_app(cfg: StationConfig, station: Station | None = None) -> FastAPI:
    app = _working_create_app(cfg, station)

    @app.middleware("http")
    async def broken(request: Request, call_next: Any) -> Response:
        return Response("broken release", status_code=500)

    return app
"""


def _run(argv: list[str | Path]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
        cwd="/",  # never the checkout: `python -c` would import its edge/ first
    )


def _wheel(base: Path, version: str, *, extra_migration: bool, broken: bool) -> Path:
    """This checkout as a wheel of ``version``: maybe with one more migration, maybe broken."""
    src, dist = base / f"src-{version}", base / "wheels"
    src.mkdir()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pyproject, n = re.subn(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject, count=1)
    assert n == 1
    (src / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    shutil.copy2(ROOT / "README.md", src / "README.md")
    shutil.copytree(ROOT / "edge", src / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    if extra_migration:
        (src / "edge/storage/migrations" / f"{SCHEMA + 1:04d}_release_probe.sql").write_text(
            "CREATE TABLE release_probe (note TEXT);\n", encoding="utf-8"
        )
    if broken:
        with (src / "edge/web/app.py").open("a", encoding="utf-8") as fh:
            fh.write(BROKEN)
    proc = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "-w", dist, src]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = dist.glob(f"edge_station-{version}-*.whl")
    return wheel


@dataclass
class Point:
    """A temporary root laid out as a point: opt/releases, opt/current, etc/, data/."""

    root: Path
    conf: Path
    url: str

    @property
    def db(self) -> Path:
        return self.root / "data" / "station.db"

    def upgrade(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return _run([sys.executable, EDGE_UPGRADE, "--conf", self.conf, *argv])

    def current(self) -> str:
        return os.readlink(self.root / "opt" / "current").rsplit("/", 1)[-1]

    def status(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(
            (self.root / "data" / "upgrade-status.json").read_text()
        )
        return data

    def answers(self) -> int | None:
        try:
            return httpx.get(self.url + "/", timeout=5).status_code
        except httpx.TransportError:
            return None

    def stop(self) -> None:
        _run([sys.executable, self.root / "service.py", self.root, "stop"])


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of release wheels, as a wheel set (deploy/build-wheels) would be, minus
    the dependencies (see the module's docstring)."""
    base = tmp_path_factory.mktemp("releases")
    with ThreadPoolExecutor(3) as pool:  # pip processes: three at once
        built = [
            pool.submit(_wheel, base, "1.0.0", extra_migration=False, broken=False),
            pool.submit(_wheel, base, "1.0.1", extra_migration=True, broken=True),
            pool.submit(_wheel, base, "1.0.2", extra_migration=True, broken=False),
        ]
        for future in built:
            future.result()
    return base / "wheels"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Path:
    """The three releases installed by ``edge-upgrade install``, shared by the tests."""
    base = tmp_path_factory.mktemp("point-opt")
    point = _point(base, base / "releases")
    versions = ("1.0.0", "1.0.1", "1.0.2")
    with ThreadPoolExecutor(3) as pool:
        done = pool.map(lambda v: point.upgrade("install", v, "--wheels", str(wheels)), versions)
        for version, proc in zip(versions, done, strict=True):
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout) == {
                "changed": True,
                "release": str(base / "releases" / version),
            }
    return base / "releases"


def _point(root: Path, releases: Path) -> Point:
    for sub in ("opt", "etc", "data", "state"):
        (root / sub).mkdir(exist_ok=True)
    port = free_port()
    (root / "etc" / "station.toml").write_text(
        f"""
[site]
id = "upgrade-point"
key_file = "{root / "data" / "site.key"}"
[scale]
type = "simulated"
link = "{root / "data" / "scale"}"
interval_s = 0.05
[printer]
type = "file"
dir = "{root / "data" / "prints"}"
[camera]
type = "none"
[storage]
path = "{root / "data" / "station.db"}"
backup_dir = "{root / "data" / "backups"}"
[web]
port = {port}
""",
        encoding="utf-8",
    )
    (root / "service.py").write_text(SERVICE, encoding="utf-8")
    python = root / "python"
    python.write_text(
        VENV_PYTHON.format(
            python=sys.executable,
            purelib=sysconfig.get_paths()["purelib"],
            major=sys.version_info.major,
            minor=sys.version_info.minor,
        ),
        encoding="utf-8",
    )
    python.chmod(0o755)
    service = [sys.executable, str(root / "service.py"), str(root)]
    conf = {
        "releases_dir": str(releases),
        "current": str(root / "opt" / "current"),
        "station_config": str(root / "etc" / "station.toml"),
        "data_dir": str(root / "data"),
        "state_dir": str(root / "state"),
        "python": str(python),
        "service_user": "",
        "stop": [*service, "stop"],
        "start": [*service, "start"],
        "health_timeout_s": 20,  # a healthy release passes in about 3 s here
        "health_interval_s": 1,
        "keep_releases": 10,
        "lock_wait_s": 1,
        "restarts": [],  # no systemd to count restarts (test_a_crashing_release_fails_fast)
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in conf.items()]
    (root / "etc" / "upgrade.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Point(root=root, conf=root / "etc" / "upgrade.toml", url=f"http://127.0.0.1:{port}")


@pytest.fixture
def point(tmp_path: Path, releases: Path) -> Iterator[Point]:
    p = _point(tmp_path, releases)
    yield p
    p.stop()


def _lot(c: httpx.Client, grams: int) -> str:
    """A lot of ``grams`` for a new farmer and product, through the station's API."""
    farmer = c.post("/api/producers", json={"name": f"Lò Văn Páo {grams}", "village": "Sìn Hồ"})
    product = c.post("/api/products", json={"name": f"Khoai tây {grams}"})
    assert farmer.status_code == product.status_code == 201, (farmer.text, product.text)
    settle(c, grams, timeout=20)
    body = {"producer_id": farmer.json()["id"], "product_id": product.json()["id"]}
    lot = c.post("/api/lots", json=body)
    assert lot.status_code == 201, lot.text
    lot_id: str = lot.json()["id"]
    return lot_id


def _record_lot(point: Point, grams: int) -> str:
    with process_client(point.url, point.db, "upgrade-point", role="lead", timeout=30) as c:
        return _lot(c, grams)


def _outbox(path: Path) -> tuple[int, list[tuple[int, str, str]]]:
    """(records stream's last seq, [(seq, kind, record id)]) of a station database."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (last,) = conn.execute(
            "SELECT last_seq FROM outbox_streams WHERE stream = 'records'"
        ).fetchone()
        rows = conn.execute(
            "SELECT seq, kind, record_id FROM outbox WHERE stream = 'records' ORDER BY seq"
        ).fetchall()
        return int(last), [(int(q), str(k), str(r)) for q, k, r in rows]
    finally:
        conn.close()


def _db(path: Path) -> tuple[int, list[tuple[str, int]]]:
    """(schema version, [(lot id, net grams)]) of a station database, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        lots = conn.execute("SELECT id, net_g FROM lots ORDER BY seq").fetchall()
        return int(version), [(str(i), int(g)) for i, g in lots]
    finally:
        conn.close()


def test_install_makes_a_venv_from_the_wheels_only(releases: Path, wheels: Path, tmp_path):
    release = releases / "1.0.0"
    marker = json.loads((release / ".edge-release.json").read_text())
    assert marker["version"] == "1.0.0"
    where = _run([release / "bin" / "python", "-c", "import edge; print(edge.__file__)"])
    assert Path(where.stdout.strip()).is_relative_to(release)
    metadata = "from importlib.metadata import version; print(version('edge-station'))"
    version = _run([release / "bin" / "python", "-c", metadata])
    assert version.stdout.strip() == "1.0.0"

    point = _point(tmp_path, releases)
    again = point.upgrade("install", "1.0.0", "--wheels", str(wheels))
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False
    # a version the wheel folder does not hold: refused, nothing left behind
    missing = point.upgrade("install", "9.9.9", "--wheels", str(wheels))
    assert missing.returncode == 1
    assert "installing 9.9.9 failed" in missing.stderr
    assert not (releases / "9.9.9").exists()
    # nothing is switched to a release that is not installed
    refused = point.upgrade("upgrade", "9.9.9")
    assert refused.returncode == 1 and "is not installed" in refused.stderr
    assert not (tmp_path / "opt" / "current").exists()


@pytest.mark.real_clock_only
def test_upgrades_a_failed_one_rolled_back_by_itself_and_one_by_hand(point: Point):
    """1.0.0, then the broken 1.0.1 (rolled back by itself, the database restored), then
    1.0.2 (migrated after a backup), then back to 1.0.0 by hand. One point, one story:
    each station start costs seconds."""
    first = point.upgrade("upgrade", "1.0.0")
    assert first.returncode == 0, first.stderr
    assert point.current() == "1.0.0"
    assert point.status()["outcome"] == "upgraded"
    lots = [_record_lot(point, 1200), _record_lot(point, 3400)]
    assert _db(point.db) == (SCHEMA, [(lots[0], 1200), (lots[1], 3400)])

    # -- a release whose health check fails: back to 1.0.0 and its database, by itself
    failed = point.upgrade("upgrade", "1.0.1")
    assert failed.returncode == 3, failed.stderr
    result = json.loads(failed.stdout)
    assert result["outcome"] == "rolled_back"
    assert (result["from"], result["to"], result["version"]) == ("1.0.1", "1.0.0", "1.0.0")
    assert result["database_restored"] is True
    assert "release 1.0.1 failed its health check" in result["detail"]
    assert point.current() == "1.0.0"
    assert point.answers() == 200
    assert _db(point.db) == (SCHEMA, [(lots[0], 1200), (lots[1], 3400)])
    lots.append(_record_lot(point, 5600))  # ...and it keeps recording
    assert [lot for lot, _ in _db(point.db)[1]] == lots
    # the broken release had migrated: its database is kept for a technician
    (kept,) = (point.root / "state" / "backups").glob("*-failed-1.0.1.db")
    assert _db(kept)[0] == SCHEMA + 1
    # what the station reports in its telemetry
    status = point.status()
    assert (status["outcome"], status["version"], status["to"]) == (
        "rolled_back",
        "1.0.0",
        "1.0.0",
    )
    state = json.loads((point.root / "state" / "state.json").read_text())
    assert state["current"] == "1.0.0" and "pending" not in state
    assert (point.root / "state" / "state.json").stat().st_mode & 0o777 == 0o600
    record = collect(datetime.now(UTC), Sources(storage_path=point.db, clock_synced=None))
    assert record["upgrade"] == read_upgrade_status(point.root / "data" / "upgrade-status.json")
    assert {k: record["upgrade"][k] for k in ("outcome", "from", "to", "database_restored")} == {
        "outcome": "rolled_back",
        "from": "1.0.1",
        "to": "1.0.0",
        "database_restored": True,
    }
    assert record_problem({**record, "seq": 1}) is None  # central accepts it

    # -- a good release with a migration: backup first, migrated, switched
    staff = process_client(point.url, point.db, "upgrade-point", role="lead", timeout=30)
    up = point.upgrade("upgrade", "1.0.2")
    assert up.returncode == 0, up.stderr
    result = json.loads(up.stdout)
    assert (result["outcome"], result["from"], result["to"]) == ("upgraded", "1.0.0", "1.0.2")
    assert point.current() == "1.0.2" and point.answers() == 200
    every = [(lots[0], 1200), (lots[1], 3400), (lots[2], 5600)]
    assert _db(point.db) == (SCHEMA + 1, every)
    backup = Path(result["backup"])
    assert backup.parent == point.root / "state" / "backups"
    assert _db(backup) == (SCHEMA, every)
    assert backup.stat().st_mode & 0o777 == 0o600
    assert point.status()["version"] == "1.0.2"
    # a lot recorded on 1.0.2 (by a client signed in before the upgrade: the test's own
    # database code is 1.0.0's and refuses the newer schema)
    on_102 = _lot(staff, 7800)
    before_102, _ = _outbox(backup)
    last_102, rows_102 = _outbox(point.db)
    made_on_102 = [row for row in rows_102 if row[0] > before_102]
    assert [kind for _, kind, _ in made_on_102] == ["producer", "product", "lot"]
    assert made_on_102[-1][2] == on_102
    # the same version again: nothing to do, nothing restarted
    same = point.upgrade("upgrade", "1.0.2")
    assert same.returncode == 0 and json.loads(same.stdout) == {
        "changed": False,
        "current": "1.0.2",
    }

    # -- by hand: back to 1.0.0 and the backup taken when leaving it
    back = point.upgrade("rollback")
    assert back.returncode == 0, back.stderr
    result = json.loads(back.stdout)
    assert (result["outcome"], result["to"], result["database_restored"]) == (
        "rolled_back",
        "1.0.0",
        True,
    )
    assert point.current() == "1.0.0" and point.answers() == 200
    # the tables as before 1.0.2 (its lot is in its kept database) ...
    assert _db(point.db) == (SCHEMA, every)
    (kept,) = (point.root / "state" / "backups").glob("*-failed-1.0.2.db")
    assert _db(kept) == (SCHEMA + 1, [*every, (on_102, 7800)])
    # ... but what 1.0.2 put in the outbox (central may hold it already) is carried over,
    # and new records are numbered after it: no seq central holds is used twice
    last, rows = _outbox(point.db)
    assert last == last_102 and [r for r in rows if r[0] > before_102] == made_on_102
    after = _lot(staff, 9100)
    last, rows = _outbox(point.db)
    assert [(seq, kind) for seq, kind, _ in rows if seq > last_102] == [
        (last_102 + 1, "producer"),
        (last_102 + 2, "product"),
        (last_102 + 3, "lot"),
    ]
    assert rows[-1][2] == after
    again = point.upgrade("rollback")
    assert again.returncode == 1 and "nothing to roll back to" in again.stderr
    staff.close()


def test_an_upgrade_cut_short_is_decided_at_boot(point: Point):
    """The upgrader dies (a power cut) after the switch, while it waits for the health
    check; at boot `edge-upgrade resume` (edge-upgrade-resume.service) decides."""
    assert point.upgrade("upgrade", "1.0.0").returncode == 0
    lot = _record_lot(point, 2200)
    hangs = point.root / "etc" / "upgrade-hangs.toml"
    hangs.write_text(point.conf.read_text() + 'health = ["sleep", "600"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    upgrader = subprocess.Popen(
        [sys.executable, str(EDGE_UPGRADE), "--conf", str(hangs), "upgrade", "1.0.2"],
        cwd="/",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: point.current() == "1.0.2", 60, "the switch to 1.0.2")
        # one edge-upgrade at a time
        busy = point.upgrade("rollback")
        assert busy.returncode == 1 and "another edge-upgrade is running" in busy.stderr
    finally:
        os.killpg(upgrader.pid, signal.SIGKILL)
        upgrader.wait(30)
    state = json.loads((point.root / "state" / "state.json").read_text())
    assert (state["pending"]["from"], state["pending"]["to"]) == ("1.0.0", "1.0.2")

    resumed = point.upgrade("resume")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert (result["outcome"], result["from"], result["to"]) == ("upgraded", "1.0.0", "1.0.2")
    assert "was cut short" in result["detail"]
    assert point.current() == "1.0.2" and point.answers() == 200
    assert _db(point.db) == (SCHEMA + 1, [(lot, 2200)])
    assert json.loads(point.upgrade("resume").stdout) == {"changed": False}
    # and 1.0.0 is the release to go back to, with its backup
    state = json.loads((point.root / "state" / "state.json").read_text())
    assert state["previous"] == "1.0.0" and _db(Path(state["previous_backup"]))[0] == SCHEMA


def test_offline_upgrade_of_a_root_that_is_not_booted(point: Point):
    """What the role does through the chroot connection: no service to stop, start or
    ask; a database already there is still backed up and migrated before the switch."""
    assert point.upgrade("upgrade", "1.0.0", "--offline").returncode == 0
    assert point.current() == "1.0.0" and point.answers() is None
    assert json.loads(point.upgrade("status").stdout)["current"] == "1.0.0"
    # a database made by 1.0.0 (as a restored SD card would bring)
    made = _run([point.root / "opt/current/bin/python", "-c",
                 "import sys; from pathlib import Path; from edge.storage.db import open_database;"
                 "open_database(Path(sys.argv[1])).conn.close()", point.db])  # fmt: skip
    assert made.returncode == 0, made.stderr
    up = point.upgrade("upgrade", "1.0.2", "--offline")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["outcome"] == "switched"
    assert point.current() == "1.0.2" and point.answers() is None
    assert _db(point.db)[0] == SCHEMA + 1
    assert _db(Path(json.loads(up.stdout)["backup"]))[0] == SCHEMA


def test_telemetry_upgrade_field_only_after_an_upgrade(tmp_path: Path):
    db = tmp_path / "station.db"
    now = datetime.now(UTC)
    assert "upgrade" not in collect(now, Sources(storage_path=db, clock_synced=None))
    (tmp_path / "upgrade-status.json").write_text("{not json", encoding="utf-8")
    record = collect(now, Sources(storage_path=db, clock_synced=None))
    assert record["upgrade"] == {"outcome": "unreadable"}
    (tmp_path / "upgrade-status.json").write_text(
        json.dumps({"outcome": "upgraded", "from": "1.0.0", "to": "1.0.2", "at": "x",
                    "database_restored": False, "seconds": 41.5, "detail": "d" * 5000,
                    "backup": "/var/lib/edge-upgrade/backups/a.db"}),
        encoding="utf-8",
    )  # fmt: skip
    record = collect(now, Sources(storage_path=db, clock_synced=None))
    # the outcome, not the detail nor where the backups are
    assert record["upgrade"] == {
        "outcome": "upgraded",
        "from": "1.0.0",
        "to": "1.0.2",
        "at": "x",
        "database_restored": False,
        "seconds": 41.5,
    }
    assert record_problem({**record, "seq": 1}) is None


def test_a_crashing_release_fails_fast(tmp_path: Path):
    """A release that keeps crashing (systemd's NRestarts climbing) fails its check after
    max_restarts restarts, not after the whole health_timeout_s."""
    loader = SourceFileLoader("edge_upgrade", str(EDGE_UPGRADE))
    module = types.ModuleType("edge_upgrade")
    loader.exec_module(module)
    counter = tmp_path / "restarts"
    counter.write_text("0")
    bump = 'n=$(cat "$1"); echo $((n + 1)) > "$1"; echo $n'
    conf = module.Conf(
        {
            "health": ["false"],
            "restarts": ["sh", "-c", bump, "sh", str(counter)],
            "max_restarts": 3,
            "health_timeout_s": 600,
            "health_interval_s": 0.1,
        }
    )
    started = time.monotonic()
    ok, detail = module.healthy(conf, "1.0.1")
    assert ok is False
    assert detail == "the station crashed and was restarted 3 times; exit 1: "
    assert time.monotonic() - started < 60  # not the 600 s time-out
    # and a release that answers is healthy at once
    conf = module.Conf({"health": ["true"], "restarts": ["sh", "-c", bump, "sh", str(counter)]})
    assert module.healthy(conf, "1.0.2") == (True, "")
