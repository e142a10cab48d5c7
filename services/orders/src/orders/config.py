"""Orders settings: servicekit's common ones plus how long to wait for the SKU catalogue."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 18082
    sku_request_timeout_seconds: float = 5.0
