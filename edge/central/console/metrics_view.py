"""GET /metrics: the fleet's gauges and the alert states in the Prometheus text format
(edge/central/metrics.py), for Prometheus with a bearer token or for a signed-in operator.

:data:`Reader` is the access both /metrics and /api/alerts take: ``Authorization: Bearer
<token>`` where the token is the content of ``--metrics-token-file`` (compared in
constant time), or an operator's session. Anonymous, or a wrong token: 401.
"""

from __future__ import annotations

import hmac
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from edge.central.console.auth import COOKIE, NotSignedIn, console_db
from edge.central.console.operators import session_operator
from edge.central.metrics import fleet_registry, scrape

router = APIRouter()
_registry_lock = threading.Lock()


def _token(path: Path | None) -> bytes | None:
    """The token the file holds (read on each request, so a new one applies at once);
    None without a file or with an empty one (an empty token never admits anyone)."""
    if path is None:
        return None
    try:
        token = path.read_bytes().strip()
    except OSError:
        return None
    return token or None


def reader(request: Request) -> str:
    """Who reads: ``"token"`` (the metrics bearer token) or the operator's username."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer":
        expected = _token(request.app.state.settings.metrics_token_file)
        if expected is not None and hmac.compare_digest(given.strip().encode(), expected):
            return "token"
        raise HTTPException(401, "wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
    operator = session_operator(console_db(request), request.cookies.get(COOKIE, ""))
    if operator is None:
        raise NotSignedIn
    request.state.operator = operator
    return operator.username


Reader = Annotated[str, Depends(reader)]


def registry_of(request: Request) -> CollectorRegistry:
    """The app's own registry (made on first use), never prometheus_client's global one."""
    state = request.app.state
    with _registry_lock:
        registry: CollectorRegistry | None = getattr(state, "metrics_registry", None)
        if registry is None:
            registry = fleet_registry(console_db(request), state.alert_rules)
            state.metrics_registry = registry
    return registry


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, _who: Reader) -> Response:
    return Response(scrape(registry_of(request)), media_type=CONTENT_TYPE_LATEST)
