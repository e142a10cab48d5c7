"""Settings every service reads from its environment (pydantic-settings, no files)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common knobs; each service subclasses it for its own."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    nats_url: str = "nats://127.0.0.1:4222"
    """`nats://<user>:<password>@host:port`: each service has its own NATS user (deploy/README.md)."""
    nats_tls_ca_file: str | None = None
    """CA bundle that NATS's TLS certificate chains to (the prod overlay mounts it); unset: no TLS
    unless the URL is `tls://` or the server requires it, then the system CAs."""
    data_dir: Path = Path(".data")
    service_instance: str = ""
    log_level: str = "INFO"
    metrics_port: int = 0
    """0: `/metrics` on the service's own port. Otherwise a separate listener, and the main port has no
    `/metrics` (the API gateway's port is public; its metrics are not)."""
    log_format: Literal["json", "text"] = "json"
    """JSON lines for log stores; `text` is the human format (`make run` sets it)."""
    relay_batch_size: int = 500
    relay_in_flight: int = 64
    """Publishes the outbox relay keeps awaiting their stream acks at once."""
    relay_idle_poll_seconds: float = 0.5
    consumer_max_deliver: int = 5
    consumer_ack_wait_seconds: float = 30.0
    migrate_on_start: bool = True
    """Off in Kubernetes, where a migration Job runs `python -m <svc> migrate` before pods start."""

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        """Accept the plain libpq URLs that operators and CloudNativePG secrets hand out."""
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url.removeprefix(scheme)
        return url
