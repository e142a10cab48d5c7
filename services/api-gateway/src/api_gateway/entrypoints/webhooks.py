"""Admins' /api/v1/webhooks: where farm events are POSTed, their deliveries and a test ping."""

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import AwareDatetime, BaseModel, Field

from api_gateway.domain import commands
from api_gateway.domain.auth import Principal
from api_gateway.domain.webhooks import (
    MAX_SECRET_LENGTH,
    MIN_SECRET_LENGTH,
    WEBHOOK_EVENTS,
    Delivery,
    Webhook,
    url_pattern,
)
from api_gateway.entrypoints.auth import Authenticate, UowFactory
from api_gateway.service_layer import handlers, views
from api_gateway.service_layer.handlers import Deps
from servicekit.documented import documented
from servicekit.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from servicekit.problems import Problem


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


# The domain's checks (`check_url`, `check_secret`, `check_events`) as the OpenAPI document states them.
URL = documented(pattern=url_pattern())
SECRET = documented(minLength=MIN_SECRET_LENGTH)


def _events(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option.update(minItems=1, items={"enum": list(WEBHOOK_EVENTS)})


def state_allowed_hosts(document: dict[str, Any], allowed_hosts: frozenset[str]) -> None:
    """With `WEBHOOK_ALLOWED_HOSTS` set, the document's webhook addresses name those hosts only."""
    if not allowed_hosts:
        return
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("NewWebhook", "WebhookPatch"):
        url = schemas.get(name, {}).get("properties", {}).get("url", {})
        for option in url.get("anyOf", [url]):
            if "pattern" in option:
                option["pattern"] = url_pattern(allowed_hosts)


class NewWebhook(BaseModel):
    url: str = Field(max_length=2000, json_schema_extra=URL)
    secret: str = Field(
        max_length=MAX_SECRET_LENGTH, description="Write-only: never returned.", json_schema_extra=SECRET
    )
    events: list[str] | None = Field(
        default=None,
        description=f"Any of {', '.join(WEBHOOK_EVENTS)}; all by default.",
        json_schema_extra=_events,
    )
    enabled: bool = True
    description: str = Field(default="", max_length=500)


class WebhookPatch(BaseModel):
    url: str | None = Field(default=None, max_length=2000, json_schema_extra=URL)
    secret: str | None = Field(default=None, max_length=MAX_SECRET_LENGTH, json_schema_extra=SECRET)
    events: list[str] | None = Field(default=None, json_schema_extra=_events)
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=500)


class AttemptOut(BaseModel):
    attempt: int
    started_at: AwareDatetime
    duration_ms: int
    status_code: int | None
    error: str | None
    ok: bool


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: AwareDatetime | None
    created_at: AwareDatetime
    delivered_at: AwareDatetime | None
    last_status_code: int | None
    last_error: str | None
    envelope: dict[str, Any] | None
    history: list[AttemptOut]


def _out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        events=list(webhook.events),
        enabled=webhook.enabled,
        description=webhook.description,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def public_delivery(delivery: Delivery) -> dict[str, Any]:
    """What the API shows of a delivery: everything but the body's bytes (the envelope, parsed)."""
    try:
        envelope: Any = json.loads(delivery.body)
    except ValueError:
        envelope = None
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "envelope": envelope,
        "history": [
            {
                "attempt": a.attempt,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
                "ok": a.ok,
            }
            for a in delivery.history
        ],
    }


def router(uow_factory: UowFactory, deps: Deps, authenticate: Authenticate) -> APIRouter:
    api = APIRouter(prefix="/api/v1/webhooks", tags=["gateway: webhooks"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.get("", response_model=Page[WebhookOut])
    async def list_webhooks(_: Caller) -> Page[WebhookOut]:
        """Admins only, like every /webhooks route. The secret is never shown."""
        return Page(items=[_out(w) for w in await views.webhooks(uow_factory())])

    @api.post("", status_code=201, response_model=WebhookOut)
    async def create_webhook(body: NewWebhook, _: Caller, response: Response) -> WebhookOut:
        """Events are POSTed to `url` as CloudEvents envelopes, signed with `secret` (HMAC-SHA256)."""
        cmd = commands.CreateWebhook(body.url, body.secret, body.events, body.enabled, body.description)
        created = await handlers.create_webhook(cmd, uow_factory(), deps)
        response.headers["Location"] = f"/api/v1/webhooks/{created.id}"
        return _out(created)

    @api.get("/{webhook_id}", response_model=WebhookOut)
    async def get_webhook(webhook_id: str, _: Caller) -> WebhookOut:
        return _out(await views.webhook(webhook_id, uow_factory()))

    @api.patch("/{webhook_id}", response_model=WebhookOut)
    async def update_webhook(webhook_id: str, body: WebhookPatch, _: Caller) -> WebhookOut:
        """Only the fields sent change; a new `secret` signs every later attempt."""
        cmd = commands.UpdateWebhook(webhook_id, body.url, body.secret, body.events, body.enabled, body.description)
        return _out(await handlers.update_webhook(cmd, uow_factory(), deps))

    @api.delete("/{webhook_id}", status_code=204)
    async def delete_webhook(webhook_id: str, _: Caller) -> Response:
        await handlers.delete_webhook(commands.DeleteWebhook(webhook_id), uow_factory(), deps)
        return Response(status_code=204)

    @api.get("/{webhook_id}/deliveries", response_model=Page[DeliveryOut])
    async def list_deliveries(
        webhook_id: str, _: Caller, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[DeliveryOut]:
        """Newest first, each with every attempt (status code or error, duration)."""
        position = decode_cursor(cursor)
        before = None
        if position is not None:
            try:
                before = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
            except (KeyError, ValueError) as exc:
                raise Problem.field("cursor", "not a cursor returned by this API") from exc
        items = await views.deliveries(webhook_id, limit, before, uow_factory())
        next_cursor = None
        if len(items) == limit:
            last = items[-1]
            next_cursor = encode_cursor({"t": last.created_at.isoformat(), "id": last.id})
        return Page(items=[DeliveryOut.model_validate(public_delivery(d)) for d in items], next_cursor=next_cursor)

    @api.post("/{webhook_id}/ping", status_code=202, response_model=DeliveryOut)
    async def ping_webhook(webhook_id: str, _: Caller) -> DeliveryOut:
        """Queues a `ping` delivery, sent and retried like any other: checks the receiver and its signature check."""
        delivery = await handlers.ping_webhook(commands.PingWebhook(webhook_id), uow_factory(), deps)
        return DeliveryOut.model_validate(public_delivery(delivery))

    return api
