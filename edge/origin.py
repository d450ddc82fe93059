"""Same-origin checks shared by the station's web app and central's console (pure, but for
the machine's own host name): a ``Host`` must be this machine (no DNS rebinding) and a
state-changing request must come from this origin (no cross-site writes)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_names(extra: list[str]) -> frozenset[str]:
    """Names this station answers to besides IP literals: localhost, its host name (and
    ``<name>.local`` for mDNS), and ``web.allowed_hosts``."""
    name = socket.gethostname().lower()
    return frozenset({"localhost", name, f"{name}.local", *(h.lower() for h in extra)})


def _hostname(host: str) -> str:
    return urlsplit(f"//{host}").hostname or ""


def host_allowed(host: str, names: frozenset[str]) -> bool:
    """An IP literal (a rebinding attack comes with the attacker's own name), or a
    name of this station."""
    hostname = _hostname(host)
    if not hostname:
        return False
    try:
        ipaddress.ip_address(hostname)
        return True
    except ValueError:
        return hostname in names


def origin_allowed(method: str, headers: dict[str, str]) -> bool:
    """A state-changing request must come from the station's own page: its Origin (when
    the browser sends one) is this Host; without one, Sec-Fetch-Site must not say
    another site. Programs that send neither (curl, the tests) carry no ambient cookie
    risk."""
    if method in SAFE_METHODS:
        return True
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == headers.get("host", "")
    return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


class SameOrigin:
    """ASGI middleware, before anything is parsed: a request whose ``Host`` is not this
    machine is answered 400 with ``unknown_host``, a state-changing request from another
    origin 403 with ``foreign_origin`` (each app words its own error bodies)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: list[str],
        unknown_host: dict[str, Any],
        foreign_origin: dict[str, Any],
    ) -> None:
        self.app = app
        self.names = host_names(allowed_hosts)
        self.unknown_host = unknown_host
        self.foreign_origin = foreign_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if not host_allowed(headers.get("host", ""), self.names):
            await JSONResponse(self.unknown_host, 400)(scope, receive, send)
            return
        if not origin_allowed(scope["method"], headers):
            await JSONResponse(self.foreign_origin, 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
