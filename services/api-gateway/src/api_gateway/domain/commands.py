"""What the gateway is asked to do: one frozen dataclass per write use case (accounts, tokens and sessions;
webhooks and their deliveries; dead letters), with the inputs it needs. A command made by a caller
carries the caller's `Principal`: what it may do is the use case's rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api_gateway.domain.auth import Principal, Role
from api_gateway.domain.webhooks import Delivery, DeliveryAttempt
from contracts.envelope import Envelope

# --- accounts, sessions, tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class EnsureFirstAdmin:
    """At start: create the first account (an admin) and its token when there is no account at all."""

    username: str
    password: str = ""
    """Generated when empty."""


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    address: str | None = None
    """The client's address, for the per-address throttle."""


@dataclass(frozen=True)
class Logout:
    session_secret: str


@dataclass(frozen=True)
class ChangeOwnPassword:
    principal: Principal
    current_password: str
    new_password: str


@dataclass(frozen=True)
class CreateUser:
    principal: Principal
    username: str
    role: Role
    password: str | None
    """Generated (and returned once) when None."""


@dataclass(frozen=True)
class UpdateUser:
    principal: Principal
    user_id: str
    role: Role | None = None
    disabled: bool | None = None


@dataclass(frozen=True)
class SetUserPassword:
    principal: Principal
    user_id: str
    password: str


@dataclass(frozen=True)
class CreateToken:
    principal: Principal
    name: str
    role: Role | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class RevokeToken:
    principal: Principal
    token_id: str


# --- webhooks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateWebhook:
    url: str
    secret: str
    events: list[str] | None
    """All events when None."""
    enabled: bool
    description: str


@dataclass(frozen=True)
class UpdateWebhook:
    """Only the fields given (not None) change."""

    webhook_id: str
    url: str | None = None
    secret: str | None = None
    events: list[str] | None = None
    enabled: bool | None = None
    description: str | None = None


@dataclass(frozen=True)
class DeleteWebhook:
    webhook_id: str


@dataclass(frozen=True)
class PingWebhook:
    webhook_id: str


@dataclass(frozen=True)
class SealWebhookSecrets:
    """At start: encrypt secrets stored in the clear or under a retired key under the newest key."""


@dataclass(frozen=True)
class EnqueueWebhookEvent:
    """A farm event becomes one pending delivery per enabled webhook that wants it (the envelope's id is
    the deliveries' event id)."""

    event_type: str
    envelope: Envelope
    body: bytes


@dataclass(frozen=True)
class ClaimDueDeliveries:
    """Hold up to `limit` due deliveries for one replica's dispatcher for the delivery lease."""

    limit: int


@dataclass(frozen=True)
class RecordDeliveryAttempt:
    delivery: Delivery
    attempt: DeliveryAttempt


# --- dead letters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayDeadLetter:
    message_id: str
    by: str
    """Who asked (logged)."""
