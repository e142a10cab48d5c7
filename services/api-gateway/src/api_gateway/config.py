"""The gateway's environment: where each service listens, auth switches, limits and timeouts."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8080
    skus_url: str = "http://127.0.0.1:18081"
    orders_url: str = "http://127.0.0.1:18082"
    queue_url: str = "http://127.0.0.1:18083"
    printer_gateway_url: str = "http://127.0.0.1:18084"

    api_token: str = ""
    """A bearer token accepted besides the stored ones, so launchers and tests can use a known token."""
    auth_disabled: bool = False
    first_admin_username: str = "admin"
    first_admin_password: str = ""
    """Optional: the first admin's password (e.g. from a Kubernetes secret) instead of a random one."""
    session_ttl_hours: float = 12.0
    cookie_secure: bool = False

    max_json_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    upstream_timeout_seconds: float = 30.0
    upload_timeout_seconds: float = 600.0
    health_timeout_seconds: float = 2.0
    openapi_timeout_seconds: float = 3.0

    idempotency_ttl_hours: float = 24.0
    idempotency_wait_seconds: float = 10.0
    idempotency_stale_seconds: float = 900.0

    sse_heartbeat_seconds: float = 15.0
    sse_client_queue: int = 1000
    sse_max_replay: int = 10_000

    def upstreams(self) -> dict[str, str]:
        """Service name (as in the health document) → base URL."""
        return {
            "skus": self.skus_url.rstrip("/"),
            "orders": self.orders_url.rstrip("/"),
            "queue": self.queue_url.rstrip("/"),
            "printer-gateway": self.printer_gateway_url.rstrip("/"),
        }
