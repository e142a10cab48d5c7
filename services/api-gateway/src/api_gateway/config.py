"""The gateway's environment: where each service listens, auth switches, limits and timeouts."""

from __future__ import annotations

import ipaddress

from servicekit.settings import ServiceSettings

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


class Settings(ServiceSettings):
    port: int = 8080
    skus_url: str = "http://127.0.0.1:18081"
    orders_url: str = "http://127.0.0.1:18082"
    queue_url: str = "http://127.0.0.1:18083"
    printer_gateway_url: str = "http://127.0.0.1:18084"
    slicer_url: str = "http://127.0.0.1:18086"
    """Health only: the slicer has no public routes."""

    api_token: str = ""
    """A bearer token accepted besides the stored ones, so launchers and tests can use a known token."""
    auth_disabled: bool = False
    first_admin_username: str = "admin"
    first_admin_password: str = ""
    """Optional: the first admin's password (e.g. from a Kubernetes secret) instead of a random one."""
    session_ttl_hours: float = 12.0
    cookie_secure: bool | None = None
    """Session cookies only over HTTPS. Unset: on, unless the gateway listens on loopback only (`make run`)."""
    behind_tls: bool = False
    """Clients reach the gateway over HTTPS (a TLS ingress): send HSTS. Also sent for https requests."""
    hsts_seconds: int = 31_536_000
    token_default_days: float = 90.0
    token_max_days: float = 365.0
    login_max_failures_per_user: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_seconds: float = 900.0
    password_hash_concurrency: int = 2
    """Argon2 hashes at once; each takes 64 MiB."""
    password_hash_queue: int = 32
    """Logins that may wait for a hashing slot; more are refused with 503."""

    max_json_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 200 * 1024 * 1024
    """Part uploads (`POST /api/v1/parts`); every other body is held to MAX_JSON_BYTES."""
    upstream_timeout_seconds: float = 30.0
    upstream_restart_grace_seconds: float = 5.0
    """How long a request waits for a service that refuses connections (restarting) before it is a 503."""
    upload_timeout_seconds: float = 600.0
    health_timeout_seconds: float = 2.0
    health_probes: dict[str, str] = {}
    """Further parts `/api/v1/health` includes, name → URL that answers 200 while they are well (JSON in
    HEALTH_PROBES; devstack names NATS and the printer simulator), so their outage shows as degraded."""
    openapi_timeout_seconds: float = 3.0

    idempotency_ttl_hours: float = 24.0
    idempotency_wait_seconds: float = 10.0
    idempotency_stale_seconds: float = 900.0

    sse_heartbeat_seconds: float = 15.0
    sse_client_queue: int = 1000
    sse_max_replay: int = 10_000
    sse_recheck_seconds: float = 30.0
    webhook_secret_key: str = ""
    """Fernet keys that encrypt webhook signing secrets at rest, comma-separated, newest first (the first
    encrypts, any decrypts; stored secrets are re-encrypted under the first at start). Empty: a key is made
    once under DATA_DIR (dev only)."""
    webhook_allowed_hosts: str = ""
    """Comma-separated hosts webhooks may be sent to; empty: any (devstack sets loopback only)."""
    webhook_timeout_seconds: float = 10.0
    """How long one webhook POST may take before it counts as failed."""
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_max_attempts: int = 12
    """Then the delivery is `failed`: 5 s, 10 s, 20 s … doubling up to an hour, about 2.5 hours in all."""
    """How often an open event stream's credential is checked again (revocation through another replica)."""

    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return not _loopback(self.host)

    def upstreams(self) -> dict[str, str]:
        """Service name (as in the health document) → base URL."""
        return {
            "skus": self.skus_url.rstrip("/"),
            "orders": self.orders_url.rstrip("/"),
            "queue": self.queue_url.rstrip("/"),
            "printer-gateway": self.printer_gateway_url.rstrip("/"),
            "slicer": self.slicer_url.rstrip("/"),
        }


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
