"""Durable file writes: a file is either complete at its path or not there at all.

Used wherever the station writes a file that must survive a power cut: photos,
the simulated printer's jobs, certificates. A half-written temporary file is
named ``.<name>.<random>.tmp`` beside its target, so start-up clean-ups can find
what a crash left behind.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (new files, renames) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durably(folder: Path) -> None:
    """``mkdir -p`` whose new folders' entries are fsynced in their parents."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    folder.mkdir(parents=True, exist_ok=True)
    for made in reversed(folder.relative_to(existing).parents):
        fsync_dir(existing / made)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, sync_dir: bool = True) -> None:
    """``data`` at ``path`` or nothing: temporary file (created with ``mode``),
    fsync, rename over ``path``, then fsync the folder unless ``sync_dir`` is False
    (a caller writing several files syncs the folder once). Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)
