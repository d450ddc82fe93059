"""What a test does when the machine lacks a part it needs (Chromium, PostgreSQL, a
private mount namespace for a small filesystem to fill): on a developer machine it is
skipped with the reason; under CI (``CI=true``) it fails, so CI never passes without
having tested that part. One rule, in :func:`need`, for every such test."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """True under CI: the environment variable ``CI`` is ``true``."""
    return os.environ.get("CI") == "true"


def need(reason: str) -> NoReturn:
    """The test cannot run here because of ``reason`` (what is missing, what needs it,
    how to get it): skip on a developer machine, fail under ``CI=true``. Call it inside
    a test or a fixture."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: CI must run this test, so a missing part fails it)")
    pytest.skip(reason)


TMPFS_PROBE = 'mount -t tmpfs -o size=64k tmpfs "$1" && touch "$1/probe"'


@functools.cache
def _mount_namespace() -> tuple[list[str], str]:
    """The ``unshare`` command prefix that gives a private mount namespace in which a
    tmpfs can be mounted, tried for real, and why none works when the list is empty."""
    if shutil.which("unshare") is None:
        return [], "`unshare` (util-linux) is not installed"
    ways = [["unshare", "--user", "--map-root-user", "--mount"]]
    if os.geteuid() == 0:  # root with CAP_SYS_ADMIN needs no user namespace
        ways.insert(0, ["unshare", "--mount"])
    errors = []
    with tempfile.TemporaryDirectory() as folder:
        for way in ways:
            probe = subprocess.run(
                [*way, "sh", "-c", TMPFS_PROBE, "sh", folder],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if probe.returncode == 0:
                return way, ""
            errors.append(f"`{' '.join(way)}`: {probe.stderr.strip() or probe.returncode}")
    return [], "; ".join(errors)


def mount_namespace() -> list[str]:
    """The command prefix (``unshare ...``) that runs a command in a private mount
    namespace where it may mount a small tmpfs (a disk to fill), nothing of it seen
    outside. :func:`need` when this machine allows none: not root with CAP_SYS_ADMIN,
    and unprivileged user namespaces are off (sysctl kernel.unprivileged_userns_clone,
    user.max_user_namespaces) or blocked by a container's seccomp/AppArmor profile."""
    way, why = _mount_namespace()
    if not way:
        need(f"a private mount namespace with a small tmpfs cannot be made here ({why})")
    return list(way)
