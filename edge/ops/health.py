"""``edge health``: is the station on this machine fit to keep running? Used by upgrades
(the new release stays only when this says yes) and by technicians.

Healthy means all of:

* the page answers: ``GET /`` is a 200 (the web server and its static files);
* the scale state is known: the reader runs and has decided what the scale is doing
  (``GET /api/health``, edge.web.health_api: not "starting", "waiting for the first
  frame" or "reader failed"; an unplugged scale is a known state);
* the outbox is writable: the station database takes the write lock and the disk is not
  full.

One JSON object on stdout; exit 0 healthy, 1 not (each reason in ``problems`` and on
stderr), 2 for a configuration that does not load. ``--wait S`` asks again every second
until healthy or ``S`` seconds have passed (a station just started needs a few).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge.config import ConfigError, StationConfig, load_config

ASK_TIMEOUT_S = 10.0


def station_url(cfg: StationConfig) -> str:
    """Where this machine reaches its own station: the web port on loopback when the
    station listens on every address, else on the address it listens on."""
    host = cfg.web.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{cfg.web.port}"


def _get(url: str) -> tuple[int | None, bytes, str | None]:
    """(status, body, None) for any HTTP answer, (None, b"", why) when none came."""
    try:
        with urllib.request.urlopen(url, timeout=ASK_TIMEOUT_S) as resp:
            return int(resp.status), resp.read(), None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, b"", f"{type(exc).__name__}: {reason}"


def check(url: str) -> dict[str, Any]:
    """Ask the station at ``url`` once."""
    problems: list[str] = []
    status, _body, error = _get(url + "/")
    page = {"answers": status == 200, "status": status, "error": error}
    if status != 200:
        problems.append(f"the page does not answer at {url}/: {error or f'HTTP {status}'}")
    station: dict[str, Any] | None = None
    if status is not None:
        h_status, h_body, h_error = _get(url + "/api/health")
        try:
            station = json.loads(h_body) if h_body else None
        except ValueError:
            station = None
        if isinstance(station, dict) and "healthy" in station:
            problems.extend(str(p) for p in station.get("problems", []))
        else:
            why = h_error or f"HTTP {h_status}: {h_body[:200]!r}"
            problems.append(f"the station's health is not readable at {url}/api/health: {why}")
            station = None
    return {
        "healthy": not problems,
        "url": url,
        "page": page,
        "station": station,
        "problems": problems,
    }


def cmd_health(args: argparse.Namespace) -> int:
    if args.url:
        url = args.url.rstrip("/")
    else:
        try:
            url = station_url(load_config(args.config))
        except ConfigError as exc:
            print(f"configuration error:\n{exc}", file=sys.stderr)
            return 2
    started = time.monotonic()
    while True:
        result = check(url)
        waited = time.monotonic() - started
        if result["healthy"] or waited >= args.wait:
            break
        time.sleep(min(1.0, args.wait - waited))
    result["waited_s"] = round(waited, 1)
    print(json.dumps(result, ensure_ascii=False))
    for problem in result["problems"]:
        print(f"not healthy: {problem}", file=sys.stderr)
    return 0 if result["healthy"] else 1


def add_health_command(sub: Any) -> None:
    p = sub.add_parser(
        "health",
        help="is the station on this machine healthy? JSON; exit 0 yes, 1 no",
        description="Check the running station on this machine: the page answers, the "
        "scale state is known, the outbox is writable. Prints JSON; exit 0 healthy, 1 not "
        "(reasons in 'problems' and on stderr), 2 configuration error.",
    )
    p.add_argument("--config", type=Path, help="station TOML file (default: embedded default)")
    p.add_argument("--url", help="the station's address (default: from [web] in the config)")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="ask again every second until healthy or this long has passed",
    )
    p.set_defaults(func=cmd_health)
