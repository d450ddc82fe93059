"""What ``edge central serve`` runs with (validated; unknown keys refused)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    db_url: str = Field(description="central's PostgreSQL database")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="host names the console answers to besides IPs"
    )
    secure_cookie: bool = Field(False, description="the session cookie only over https")
    alerts_file: Path | None = Field(None, description="alert rules (TOML); None: defaults")
    alerts_every_s: float = Field(60.0, gt=0, le=3600, description="alert evaluation period")
    site_keys_dir: Path | None = Field(
        None, description="<site>.key files: the console checks signed QR payloads with them"
    )
    metrics_token_file: Path | None = Field(
        None, description="a bearer token /metrics requires (Prometheus bearer_token_file)"
    )
    broker_url: str | None = Field(None, description="publish catalogue changes at once")
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
