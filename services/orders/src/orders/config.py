"""Orders settings: servicekit's common ones plus how long to wait for the SKU catalogue."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 18082
    sku_request_timeout_seconds: float = 5.0
    order_max_jobs: int = 100_000
    """Print jobs one order may make (quantity x the SKU's parts, over every line item)."""
    order_max_line_items: int = 5_000
    line_item_max_quantity: int = 100_000
