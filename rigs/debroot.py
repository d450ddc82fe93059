"""A Debian bookworm root on this machine, for the deployment tests (``make deploy-test``,
deploy/test/): made once with debootstrap and cached outside the clone, copied fresh into
the project for each run, converged with the station playbook through Ansible's
``community.general.chroot`` connection, and booted with ``systemd-nspawn --boot
--private-network``, then looked into with ``nsenter`` (this machine has no systemd as
PID 1, so no machinectl).

Run as a module it is the HTTP client the tests start inside a root's network namespace
(``nsenter -t LEADER -n python -m rigs.debroot ...``): the root's station is reached on
its own loopback, as a phone on the point's LAN would reach it, never from this machine's
network."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PROJECT = Path(__file__).resolve().parents[1]
ANSIBLE_DIR = PROJECT / "deploy" / "ansible"
CACHE = Path(os.environ.get("EDGE_DEPLOY_CACHE", "/var/cache/edge-deploy"))
"""Where debootstrap's roots (and the wheel sets) are kept between runs, outside the clone."""
WORK = Path(os.environ.get("EDGE_DEPLOY_WORK", str(PROJECT / "var" / "deploy")))
"""The project's own folder for this run's roots (var/ is ignored by git)."""
SUITE = "bookworm"

PACKAGES = (
    # what a Raspberry Pi OS Lite image has and the station role relies on: systemd as
    # init (booted by nspawn), Python 3.11 with venv, the firewall, the clock, udev
    "systemd-sysv",
    "dbus",
    "udev",
    "systemd-timesyncd",
    "nftables",
    "python3",
    "python3-venv",
    "python3-apt",
    "acl",
    "sqlite3",
    "procps",
    "iproute2",
    "ca-certificates",
)
"""Installed by debootstrap into the cached root (the role installs what it needs too:
this only saves downloading them on every run)."""

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
T = TypeVar("T")


def log(msg: str) -> None:
    print(f"[deploy {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_until(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.5) -> T:
    """Call ``check`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
        last = check()
    return last


def run(
    cmd: Sequence[str | Path],
    *,
    timeout: float = 600,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``cmd`` with its output kept (stdout and stderr together); on failure the output
    is in the error, so a failed step says why."""
    args = [str(c) for c in cmd]
    proc = subprocess.run(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        input=input,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"`{' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-6000:]}")
    return proc


# --- debootstrap ------------------------------------------------------------------------


def apt_mirror() -> str:
    """The Debian archive this machine's apt already uses for bookworm (its sources list,
    one-line or deb822), so the root comes from where this machine's packages come from;
    ``EDGE_DEPLOY_MIRROR`` overrides it."""
    if os.environ.get("EDGE_DEPLOY_MIRROR"):
        return os.environ["EDGE_DEPLOY_MIRROR"]
    sources = [Path("/etc/apt/sources.list")]
    folder = Path("/etc/apt/sources.list.d")
    if folder.is_dir():
        sources += sorted(folder.iterdir())
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (
                        line.partition(":")
                        for line in block.splitlines()
                        if ":" in line and not line.lstrip().startswith("#")
                    )
                )
                if SUITE in fields.get("suites", "").split() and fields.get("uris"):
                    return str(fields["uris"]).split()[0]
        elif path.suffix == ".list":
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    raise AssertionError(
        f"no {SUITE} source in this machine's apt sources: set EDGE_DEPLOY_MIRROR to a mirror"
    )


def can_run(arch: str) -> str:
    """Why this machine cannot run ``arch`` binaries, or "" when it can."""
    if arch == host_arch():
        return ""
    machine = {"arm64": "aarch64", "armhf": "arm"}.get(arch, arch)
    entry = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{machine}"
    if not entry.exists():
        return (
            f"no binfmt_misc entry for {arch} ({entry}): `make deploy-deps` installs "
            "qemu-user-static and registers it"
        )
    if "enabled" not in entry.read_text():
        return f"{entry} is disabled"
    return ""


def host_arch() -> str:
    return run(["dpkg", "--print-architecture"]).stdout.strip()


def cached_root(arch: str) -> Path:
    """A bookworm root for ``arch`` made by debootstrap, kept in :data:`CACHE` under a
    name that changes with the package list; made when missing (a few minutes for the
    machine's own architecture, more under qemu for arm64)."""
    key = hashlib.sha256(" ".join([SUITE, arch, *PACKAGES]).encode()).hexdigest()[:10]
    done = CACHE / f"{SUITE}-{arch}-{key}"
    if (done / ".edge-complete").exists():
        return done
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = CACHE / f".{done.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    mirror = apt_mirror()
    log(f"debootstrap {SUITE} {arch} into {partial} (cached afterwards)")
    started = time.monotonic()
    run(
        [
            "debootstrap",
            f"--arch={arch}",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            partial,
            mirror,
        ],
        timeout=3600,
    )
    # the machine's apt settings (e.g. how it treats the archive's Valid-Until), so the
    # role's apt tasks inside the root reach the same archive the same way
    for conf in Path("/etc/apt/apt.conf.d").glob("99*"):
        shutil.copy2(conf, partial / "etc" / "apt" / "apt.conf.d" / conf.name)
    if not (partial / "etc" / "resolv.conf").exists():  # the role's apt tasks resolve names
        shutil.copy2("/etc/resolv.conf", partial / "etc" / "resolv.conf")
    (partial / "etc" / "apt" / "sources.list").write_text(
        f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\n", encoding="utf-8"
    )
    run(["chroot", partial, "apt-get", "clean"])
    (partial / ".edge-complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    partial.rename(done)
    log(f"debootstrap {arch}: {time.monotonic() - started:.0f} s")
    return done


def fresh_root(arch: str, name: str | None = None) -> Path:
    """A fresh copy of the cached root in the project (``var/deploy/<name>``)."""
    source = cached_root(arch)
    dest = WORK / (name or f"root-{arch}")
    remove_root(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "-a", "--reflink=auto", source, dest], timeout=1200)
    (dest / ".edge-complete").unlink()
    return dest


def remove_root(root: Path) -> None:
    """Remove a root left by an earlier run, unmounting anything still mounted in it."""
    if not root.exists():
        return
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(root) + "/")
    ]
    for point in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", point], check=False)
    shutil.rmtree(root)


# --- Ansible through the chroot connection ---------------------------------------------


@dataclass
class PlaybookRun:
    args: list[str]
    output: str
    seconds: float
    recap: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return self.recap.get("changed", -1)

    @property
    def failed(self) -> int:
        return self.recap.get("failed", 0) + self.recap.get("unreachable", 0)

    def changed_tasks(self) -> list[str]:
        """The tasks reported ``changed`` (with their host), in order."""
        tasks, current = [], ""
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                current = line[6 : line.rfind("]")]
            elif line.startswith("changed:"):
                tasks.append(current)
        return tasks

    def diffs(self) -> list[str]:
        """Diff blocks printed by ``--diff`` (a ``--- before`` / ``+++ after`` pair)."""
        return re.findall(r"^--- before.*?(?=^\S|\Z)", self.output, re.M | re.S)


def ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "PYTHONUNBUFFERED": "1",
    }


def playbook(
    playbook: Path,
    inventory: Path,
    host: str,
    root: Path,
    *extra: str,
    timeout: float = 3600,
) -> PlaybookRun:
    """``ansible-playbook`` on ``host`` of ``inventory`` with the chroot connection into
    ``root`` (the host's own variables kept, only how Ansible reaches it changed)."""
    args = [
        "ansible-playbook",
        "-i",
        str(inventory),
        str(playbook),
        "--limit",
        host,
        "-e",
        "ansible_connection=community.general.chroot",
        "-e",
        f"ansible_host={root}",
        "-e",
        "ansible_python_interpreter=/usr/bin/python3",
        *extra,
    ]
    log(" ".join(args))
    started = time.monotonic()
    proc = run(args, timeout=timeout, check=False, env=ansible_env(), cwd=ANSIBLE_DIR)
    seconds = time.monotonic() - started
    recap: dict[str, int] = {}
    for m in re.finditer(rf"^{re.escape(host)}\s*:\s*(.*)$", proc.stdout, re.M):
        recap = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}
    result = PlaybookRun(args, proc.stdout, seconds, recap)
    out = WORK / "logs"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    (out / f"playbook-{root.name}-{stamp}.log").write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0 or not recap:
        raise AssertionError(
            f"ansible-playbook exited {proc.returncode} (recap {recap}):\n{proc.stdout[-8000:]}"
        )
    return result


# --- a booted root ----------------------------------------------------------------------


def _status(pid: str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _descends_from(pid: str, ancestor: int) -> bool:
    seen = 0
    while pid not in ("0", "1", "") and seen < 64:
        if pid == str(ancestor):
            return True
        pid = _status(pid).get("PPid", "0").strip()
        seen += 1
    return False


def _leader_of(root: Path, ancestor: int | None = None) -> int | None:
    """The PID (on this machine) of the init of the container whose root is ``root``:
    a process that is PID 1 in its own PID namespace and lives in ``root`` (or, where
    its root is not visible from here, descends from ``ancestor``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        nspid = _status(entry.name).get("NSpid", "").split()
        if len(nspid) < 2 or nspid[-1] != "1":
            continue
        try:
            where = os.readlink(entry / "root")
        except OSError:
            continue
        if Path(where) == root or (ancestor and _descends_from(entry.name, ancestor)):
            return int(entry.name)
    return None


class Booted:
    """``systemd-nspawn --boot --private-network`` on ``root``; :meth:`sh` runs a command
    inside (all its namespaces and its root, through nsenter); :meth:`client` runs this
    module's HTTP client in its network namespace."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name
        self.console = WORK / "logs" / f"console-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def __enter__(self) -> Booted:
        self.console.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SYSTEMD_NSPAWN_TMPFS_TMP": "1"}
        cmd = [
            "systemd-nspawn",
            "--boot",
            "--private-network",
            "--register=no",  # no systemd-machined on this machine
            "--keep-unit",  # no systemd as PID 1 here to make a scope
            "--console=read-only",
            f"--machine={self.name}",
            f"--directory={self.root}",
        ]
        log(" ".join(cmd))
        with self.console.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )

        def leader() -> int | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"systemd-nspawn exited {self.proc.returncode}:\n{self.console_tail()}"
                )
            return _leader_of(self.root, self.proc.pid if self.proc else None)

        self.leader = wait_until(leader, 60, "the container's init")
        state = wait_until(
            lambda: (
                self.sh("systemctl is-system-running", check=False).stdout.strip()
                in ("running", "degraded")
            ),
            240,
            "the booted root to finish starting (systemctl is-system-running)",
            every=1,
        )
        assert state
        return self

    def console_tail(self, chars: int = 4000) -> str:
        try:
            return self.console.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def sh(
        self, script: str, *, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``sh -c script`` inside the booted root, as its root user."""
        return run(
            [
                "nsenter",
                f"--target={self.leader}",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "--pid",
                "--cgroup",
                "--root",
                "--wd",
                "/usr/bin/env",
                "-i",
                f"PATH={PATH}",
                "LANG=C.UTF-8",
                "SYSTEMD_COLORS=0",
                "/bin/sh",
                "-c",
                script,
            ],
            check=check,
            timeout=timeout,
            input=input,
        )

    def client(self, *args: str, timeout: float = 120) -> Any:
        """This module's HTTP client (``python -m rigs.debroot ARGS``) in the booted
        root's network namespace; its JSON answer."""
        proc = run(
            [
                "nsenter",
                f"--target={self.leader}",
                "--net",
                sys.executable,
                "-m",
                "rigs.debroot",
                *args,
            ],
            cwd=PROJECT,
            timeout=timeout,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def unit(self, name: str, *props: str) -> dict[str, str]:
        out = self.sh(f"systemctl show {name} " + " ".join(f"-p {p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's init to halt
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.proc = None


# --- the chroot as a process of its own (arm64 under qemu: no boot needed) -------------


class Chrooted:
    """A command run in ``root`` under chroot, in private mount, PID and network
    namespaces (its own loopback, /proc and /dev/pts); :meth:`client` as in
    :class:`Booted`."""

    def __init__(self, root: Path, command: str, log_name: str) -> None:
        self.root, self.command = root, command
        self.log = WORK / "logs" / log_name
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def __enter__(self) -> Chrooted:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        r = self.root
        script = (
            "set -e; ip link set lo up; "
            f"mount -t proc proc {r}/proc; mount -t sysfs sysfs {r}/sys; "
            f"mount --rbind /dev {r}/dev; "
            f"mount -t tmpfs tmpfs {r}/tmp; mount -t tmpfs tmpfs {r}/run; "
            f'exec chroot {r} /usr/bin/env -i PATH={PATH} LANG=C.UTF-8 /bin/sh -c "$0"'
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--net",
                    "--pid",
                    "--fork",
                    "sh",
                    "-c",
                    script,
                    self.command,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def leader() -> int | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the chrooted command exited {self.proc.returncode}")
            return _leader_of(self.root)

        self.leader = wait_until(leader, 60, "the chrooted command")
        return self

    def client(self, *args: str, timeout: float = 300) -> Any:
        proc = run(
            [
                "nsenter",
                f"--target={self.leader}",
                "--net",
                sys.executable,
                "-m",
                "rigs.debroot",
                *args,
            ],
            cwd=PROJECT,
            timeout=timeout,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        if self.leader:
            os.kill(self.leader, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(self.leader, signal.SIGKILL)  # PID 1 of its namespace: all of it ends
            self.proc.wait(30)
        self.proc = None


# --- the HTTP client run inside a root's network namespace -----------------------------


def _page(url: str, wait_s: float) -> dict[str, Any]:
    import httpx

    def get() -> httpx.Response | None:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            return None

    r = wait_until(get, wait_s, f"{url} to answer")
    return {"status": r.status_code, "bytes": len(r.content), "title": _title(r.text)}


def _title(html: str) -> str:
    m = re.search(r"<title>(.*?)</title>", html, re.S | re.I)
    return m.group(1).strip() if m else ""


def _record_lot(url: str, name: str, pin: str, grams: int) -> dict[str, Any]:
    """Sign in, add a farmer and a product, put ``grams`` on the simulated scale, wait for
    a new stable weighing, record the lot; the lot as the API answered, and the lots of
    its day as listed afterwards."""
    import httpx

    with httpx.Client(base_url=url, timeout=30) as c:
        wait_until(lambda: _up(c), 120, "the station's page")
        r = c.post("/api/login", json={"name": name, "pin": pin})
        assert r.status_code == 200, r.text
        c.cookies.set("edge_session", r.cookies["edge_session"])
        producer = c.post("/api/producers", json={"name": "Lò Văn Sáng"}).json()["id"]
        product = c.post("/api/products", json={"name": "Mật ong bạc hà"}).json()["id"]
        before = c.get("/api/state").json()["scale"]["weighing"]
        r = c.post("/api/simulator", json={"weight_g": grams})
        assert r.status_code == 200, r.text

        def settled() -> bool:
            scale = c.get("/api/state").json()["scale"]
            return bool(
                scale["status"] == "stable"
                and scale["weight_g"] == grams
                and scale["weighing"] > before
            )

        wait_until(settled, 60, f"a stable weighing of {grams} g", every=0.1)
        r = c.post("/api/lots", json={"producer_id": producer, "product_id": product})
        assert r.status_code == 201, r.text
        lot: dict[str, Any] = r.json()
        lots = c.get("/api/lots", params={"day": lot["day"]}).json()
    return {"lot": lot, "lots_of_day": lots}


def _lots(url: str, name: str, pin: str, day: str) -> list[dict[str, Any]]:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as c:
        wait_until(lambda: _up(c), 120, "the station's page")
        r = c.post("/api/login", json={"name": name, "pin": pin})
        assert r.status_code == 200, r.text
        c.cookies.set("edge_session", r.cookies["edge_session"])
        lots: list[dict[str, Any]] = c.get("/api/lots", params={"day": day}).json()
    return lots


def _up(c: Any) -> bool:
    import httpx

    try:
        return bool(c.get("/").status_code == 200)
    except httpx.TransportError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rigs.debroot")
    sub = parser.add_subparsers(dest="cmd", required=True)
    page = sub.add_parser("page")
    page.add_argument("url")
    page.add_argument("--wait", type=float, default=60)
    lot = sub.add_parser("record-lot")
    lot.add_argument("url")
    lot.add_argument("--name", required=True)
    lot.add_argument("--pin", required=True)
    lot.add_argument("--grams", type=int, default=2500)
    lots = sub.add_parser("lots")
    lots.add_argument("url")
    lots.add_argument("--name", required=True)
    lots.add_argument("--pin", required=True)
    lots.add_argument("--day", required=True)
    args = parser.parse_args(argv)
    answer: Any
    if args.cmd == "page":
        answer = _page(args.url, args.wait)
    elif args.cmd == "record-lot":
        answer = _record_lot(args.url, args.name, args.pin, args.grams)
    else:
        answer = _lots(args.url, args.name, args.pin, args.day)
    print(json.dumps(answer, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
