"""systemd's notify protocol in a few lines, no dependency: datagrams on ``$NOTIFY_SOCKET``.

Under ``Type=notify`` with ``WatchdogSec=`` (deploy/ansible/roles/station/templates/
edge-station.service.j2) the station says:

* ``READY=1`` once the web server listens (:func:`ready`, from ``edge.web.events.Server``);
* ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from a task on the web app's own event loop
  (:meth:`Notifier.watchdog`, started in the app's lifespan): a loop that hangs (a
  deadlock, a blocking call, SIGSTOP) stops the pings and systemd restarts the station,
  not only when it dies;
* ``STOPPING=1`` when the lifespan ends, before the station's workers stop (the link then
  publishes the retained ``offline`` status).

Without ``$NOTIFY_SOCKET`` (``make run``, the tests' in-process stations) nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class Notifier:
    """One service's channel to systemd: the socket address and the watchdog period."""

    def __init__(self, address: str, watchdog_s: float | None = None) -> None:
        # "@name" is a socket in the abstract namespace (a leading NUL byte)
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = watchdog_s
        self.sent = 0

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, pid: int | None = None
    ) -> Notifier | None:
        """The notifier systemd's environment describes, or None when there is none.
        ``WATCHDOG_USEC`` counts only when ``WATCHDOG_PID`` is unset or this process."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if not address or not (address.startswith(("/", "@"))):
            return None
        watchdog_s = None
        usec = env.get("WATCHDOG_USEC", "")
        owner = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not owner or owner == str(pid or os.getpid())):
            watchdog_s = int(usec) / 1_000_000
        return cls(address, watchdog_s)

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False (logged once at debug) when
        systemd is not listening. Never blocks: a full socket drops the message."""
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.setblocking(False)
                s.sendto(message, self.address)
        except OSError as exc:
            log.debug("sd_notify %r not sent: %s", assignments, exc)
            return False
        self.sent += 1
        return True

    @property
    def ping_every_s(self) -> float | None:
        """Half the watchdog period, as systemd recommends; None: no watchdog."""
        return None if self.watchdog_s is None else self.watchdog_s / 2

    async def watchdog(self) -> None:
        """``WATCHDOG=1`` every :attr:`ping_every_s`, for as long as the loop runs it."""
        every = self.ping_every_s
        if every is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(every)


def of_app(app: Any) -> Notifier | None:
    """The notifier the app's lifespan put on ``app.state`` (None: not under systemd)."""
    state = getattr(app, "state", None)
    found = getattr(state, "systemd", None)
    return found if isinstance(found, Notifier) else None


def ready(app: Any, status: str) -> None:
    """``READY=1`` (and a ``STATUS=`` line for ``systemctl status``) once the app serves."""
    notifier = of_app(app)
    if notifier is not None:
        notifier.send("READY=1", f"STATUS={status}")
