"""GET /api/health: what ``edge health`` (edge.ops.health) asks the running station.

Answered without a session, but only to this machine (a loopback address, or the
station's own address when it listens on one): the health check of an upgrade runs on
the point itself, and the LAN learns nothing from it (403 ``local_only``). The route is
left out of the API document on purpose: tests/test_auth.py walks that document, where
every route needs a person. 200 when healthy, 503 when not; the body says why either way.
"""

from __future__ import annotations

import ipaddress
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from edge import __version__
from edge.faults import ScaleFault
from edge.station import Station

router = APIRouter()

MIB = 1 << 20
LOCK_TIMEOUT_S = 5.0

SCALE_NOT_KNOWN = frozenset({ScaleFault.STOPPED, ScaleFault.WAITING, ScaleFault.READER_FAILED})
"""Faults that say the software has not decided what the scale is doing (starting, waiting
for the first frame, the reader failing). Offline for a hardware reason (unplugged, silent,
garbled) is a known state: a health check judges the software, not the cable."""


def from_this_machine(client: str, server: str) -> bool:
    """True when the request comes from this machine: a loopback address, or the very
    address the server answered on (a machine talking to its own LAN address)."""
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or client == server


def write_lock_problem(path: Path) -> str | None:
    """None when the station database takes the write lock now (not read-only, not held
    by someone else beyond :data:`LOCK_TIMEOUT_S`), else why not. Nothing is written."""
    try:
        uri = path.resolve().as_uri() + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        return f"the database {path} takes no write: {exc}"
    return None


def station_health(st: Station) -> dict[str, Any]:
    """The health body: scale state known, outbox writable, free disk, version."""
    problems: list[str] = []
    scale = st.scale_state()
    known = scale.fault not in SCALE_NOT_KNOWN
    if not known:
        problems.append(f"scale state not known: {scale.fault} ({scale.error})")
    db_path = st.cfg.storage.path
    lock = write_lock_problem(db_path)
    if lock is not None:
        problems.append(lock)
    free_mb = shutil.disk_usage(db_path.parent).free // MIB
    if free_mb < 1:
        problems.append(f"no free space left beside {db_path}: nothing more can be recorded")
    return {
        "healthy": not problems,
        "problems": problems,
        "version": __version__,
        "site": st.cfg.site.id,
        "scale": {
            "known": known,
            "status": scale.status.value,
            "fault": scale.fault.value if scale.fault else None,
        },
        "outbox": {
            "writable": lock is None and free_mb >= 1,
            "disk_free_mb": free_mb,
            "disk_nearly_full": free_mb < st.cfg.storage.min_free_mb,
        },
    }


@router.get("/health", include_in_schema=False)
def health(request: Request) -> JSONResponse:
    client = request.client.host if request.client else ""
    server = request.scope.get("server") or ("", 0)
    if not from_this_machine(client, str(server[0])):
        error = {
            "code": "local_only",
            "message": "Chỉ kiểm tra được từ chính trạm.",
            "message_en": "The health check answers only on the station itself.",
        }
        return JSONResponse({"error": error}, 403)
    station: Station = request.app.state.station
    body = station_health(station)
    return JSONResponse(body, 200 if body["healthy"] else 503)
