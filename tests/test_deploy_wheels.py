"""deploy/build-wheels --check: every dependency of the station, direct and transitive,
has a binary wheel for CPython 3.11 on 64-bit ARM Linux that Debian bookworm's glibc
(2.36) runs, so a Raspberry Pi installs from wheels only and compiles nothing. The proof
asks PyPI (pip's resolver with --dry-run and the index's metadata files: the wheels
themselves are not downloaded); without PyPI this test is skipped here and fails under
CI=true."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

from rigs.need import need

ROOT = Path(__file__).resolve().parents[1]
BUILD_WHEELS = ROOT / "deploy" / "build-wheels"
# name-version-python-abi-platform.whl; the platform may be several tags joined by '.'
WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-(?P<plat>[^-]+)\.whl$"
)


def _pypi_reachable() -> None:
    try:
        socket.create_connection(("pypi.org", 443), timeout=10).close()
    except OSError as exc:
        need(f"PyPI (pypi.org:443) is not reachable from here ({exc}): the aarch64 wheel proof")


def _runs_on_bookworm_arm64(platforms: str) -> bool:
    for tag in platforms.split("."):
        if tag == "any" or tag == "manylinux2014_aarch64":
            return True
        m = re.fullmatch(r"manylinux_2_(\d+)_aarch64", tag)
        if m and int(m.group(1)) <= 36:
            return True
    return False


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_has_an_aarch64_wheel_for_python_311():
    _pypi_reachable()
    proc = subprocess.run(
        [sys.executable, BUILD_WHEELS, "--check", "--arch", "aarch64"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["arch"], report["python"]) == ("aarch64", "3.11")
    found = {_key(p["name"]): p for p in report["packages"]}

    # every pinned dependency, at its pinned version
    with (ROOT / "pyproject.toml").open("rb") as fh:
        pinned = tomllib.load(fh)["project"]["dependencies"]
    for requirement in pinned:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]+\])?==(\S+)", requirement)
        assert m is not None, requirement
        name, version = m.groups()
        assert found[_key(name)]["version"] == version, requirement

    # and every package (transitive ones too) as a wheel a bookworm arm64 Pi runs
    for package in report["packages"]:
        m = WHEEL.match(package["wheel"])
        assert m is not None, package
        assert _runs_on_bookworm_arm64(m.group("plat")), package
    # the compiled ones are really arm64 builds for CPython 3.11 (or the stable ABI)
    compiled = ["opencv-python-headless", "numpy", "cryptography", "pydantic-core", "pillow"]
    compiled += ["psycopg-binary", "zxing-cpp", "orjson", "zstandard", "cbor2"]
    for name in compiled:
        wheel = found[name]["wheel"]
        assert wheel.endswith("aarch64.whl") and ("-cp311-" in wheel or "-abi3-" in wheel), wheel
        assert float(found[name]["glibc"]) <= 2.36, found[name]
