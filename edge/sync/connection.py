"""What the link says on connecting: topics, the retained status message, the
configuration hash, and the mutual-TLS context (pure or nearly: no network)."""

from __future__ import annotations

import hashlib
import json
import ssl
from typing import Any

from edge.config import MqttConfig, StationConfig, TlsConfig


def topic_for(cfg: MqttConfig, site_id: str, suffix: str) -> str:
    return f"{cfg.prefix}/{site_id}/{suffix}"


def config_hash(cfg: StationConfig) -> str:
    """First 12 hex digits of the SHA-256 of the effective configuration as JSON
    (sorted keys), as ``edge config show`` prints it: which settings a station runs."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def status_payload(state: str, version: str | None = None, cfg_hash: str | None = None) -> bytes:
    body: dict[str, Any] = {"state": state}
    if state == "online":
        body.update(version=version, config_hash=cfg_hash)
    return json.dumps(body, separators=(",", ":")).encode()


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho drops such a socket unclosed (a
    ResourceWarning, and a file descriptor held until the garbage collector runs)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class _HostnameContext(ssl.SSLContext):
    """Checks the broker's certificate for ``expected`` instead of the host dialled."""

    expected: str

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.expected
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """Mutual TLS: the broker verified against ``ca_file``, this site's certificate shown."""
    ctx: ssl.SSLContext
    if tls.server_hostname:
        ctx = _HostnameContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.expected = tls.server_hostname
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.sslsocket_class = _ClosingSSLSocket
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(tls.ca_file))
    ctx.load_cert_chain(certfile=str(tls.cert_file), keyfile=str(tls.key_file))
    return ctx
