"""Printer gateway settings, from the environment only."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 18084
    printer_secret_key: str = ""
    """Fernet key that encrypts access codes at rest. Empty: a key is made once under DATA_DIR (dev only)."""
    lease_ttl_seconds: float = 10.0
    supervise_interval_seconds: float = 2.0
    stale_after_seconds: float = 60.0
    dispatch_deadline_seconds: float = 600.0
    bambu_url_template: str = "ftp:///{file}"
