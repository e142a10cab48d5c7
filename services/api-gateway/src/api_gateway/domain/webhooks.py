"""Outbound webhooks: which events a shop can subscribe to, how a delivery is signed, and when a
failed one is tried again. Pure: no I/O, the clock is passed in."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from api_gateway.domain.errors import WebhookInvalid

WEBHOOK_EVENTS: tuple[str, ...] = ("order.completed", "job.failed")
"""`order.completed`: every job of an order printed (mark it ready to ship); `job.failed`: a print failed."""

PING = "ping"
SIGNATURE_HEADER = "X-Printfarm-Signature"
TIMESTAMP_HEADER = "X-Printfarm-Timestamp"
EVENT_HEADER = "X-Printfarm-Event"
DELIVERY_HEADER = "X-Printfarm-Delivery"
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 256
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    secret: str
    events: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    description: str = ""

    def wants(self, event_type: str) -> bool:
        return self.enabled and (event_type in self.events or event_type == PING)


@dataclass(frozen=True)
class DeliveryAttempt:
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    body: bytes
    status: str
    """`pending` (waiting for its next attempt), `delivered`, or `failed` (gave up)."""
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    history: tuple[DeliveryAttempt, ...] = field(default=())


def check_url(url: str, allowed_hosts: frozenset[str] = frozenset()) -> str:
    """`allowed_hosts` empty: any host; else only those (e.g. loopback in tests, a shop's domain in production)."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise WebhookInvalid("url", f"at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookInvalid("url", "an http:// or https:// address")
    if not parts.hostname:
        raise WebhookInvalid("url", "the address needs a host")
    if parts.username or parts.password:
        raise WebhookInvalid("url", "put no credentials in the address; the signature authenticates the call")
    if parts.fragment:
        raise WebhookInvalid("url", "an address without a #fragment")
    if allowed_hosts and parts.hostname.lower() not in allowed_hosts:
        raise WebhookInvalid("url", f"this gateway sends webhooks only to {', '.join(sorted(allowed_hosts))}")
    return url


def url_pattern(allowed_hosts: frozenset[str] = frozenset()) -> str:
    """`check_url`'s rule as a regular expression for the OpenAPI document (ECMA and Python alike): an
    http(s) address with a host (one of `allowed_hosts` when set), no credentials and no fragment."""
    host = r"[^\s/?#@:\[\]]+"
    if allowed_hosts:
        host = "(" + "|".join(rf"\[{re.escape(h)}\]" if ":" in h else re.escape(h) for h in sorted(allowed_hosts)) + ")"
    return rf"^\s*https?://{host}(:[0-9]{{1,5}})?([/?][^#\s]*)?\s*$"


def parse_allowed_hosts(text: str) -> frozenset[str]:
    """`WEBHOOK_ALLOWED_HOSTS`: comma-separated host names or addresses."""
    return frozenset(h.strip().strip("[]").lower() for h in text.split(",") if h.strip())


def check_secret(secret: str) -> str:
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise WebhookInvalid("secret", f"between {MIN_SECRET_LENGTH} and {MAX_SECRET_LENGTH} characters")
    return secret


def check_events(events: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise WebhookInvalid("events", f"unknown event {unknown[0]!r}; choose from {', '.join(WEBHOOK_EVENTS)}")
    if not events:
        raise WebhookInvalid("events", "choose at least one event")
    return tuple(e for e in WEBHOOK_EVENTS if e in events)


def webhook_event(subject: str, data: dict[str, Any]) -> str | None:
    """The webhook event a contract message is, if any."""
    if subject == "orders.v1.order.completed":
        return "order.completed"
    if subject == "queue.v1.job.changed" and data.get("status") == "failed":
        return "job.failed"
    return None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed so an old
    delivery cannot be replayed as new."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): constant-time comparison."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def delivery_headers(delivery: Delivery, secret: str, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/cloudevents+json",
        "User-Agent": "printfarm-webhooks/1",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: delivery.id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, delivery.body),
    }


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: `base`, then twice as long each time up to `longest`, for `max_attempts` in all."""

    base: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(hours=1)
    max_attempts: int = 12

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        delay: timedelta = self.base * (2 ** max(attempts - 1, 0))
        return min(delay, self.longest)

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failures; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delay_after(attempts)


@dataclass(frozen=True)
class Outcome:
    """What a finished attempt does to its delivery."""

    status: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def outcome(attempt: DeliveryAttempt, attempts_so_far: int, policy: RetryPolicy, now: datetime) -> Outcome:
    if attempt.ok:
        return Outcome("delivered", None, now)
    retry_at = policy.next_attempt(attempts_so_far + 1, now)
    return Outcome("pending" if retry_at else "failed", retry_at, None)
