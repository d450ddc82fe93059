"""Whether a host name or address is this machine's loopback (pure, no DNS)."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (also bracketed, or IPv4-mapped): MQTT
    without TLS to such a broker never leaves the machine. Any other name is taken as
    another machine, without asking DNS (which may be anyone's answer)."""
    text = host.strip().rstrip(".").lower()
    if text == "localhost":
        return True
    text = text.removeprefix("[").removesuffix("]")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
