"""Webhook use cases: admins configure them; events become deliveries in the same transaction as the
inbox mark; a dispatcher sends what is due, records each attempt and schedules the next one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from api_gateway.adapters.webhook_store import WebhookRepository
from api_gateway.domain.webhooks import (
    PING,
    WEBHOOK_EVENTS,
    Delivery,
    DeliveryAttempt,
    RetryPolicy,
    Webhook,
    WebhookInvalid,
    WebhookNotFound,
    check_events,
    check_secret,
    check_url,
    delivery_headers,
    outcome,
)
from servicekit.ids import Clock, IdFactory

log = logging.getLogger(__name__)


class WebhookUnitOfWork(Protocol):
    @property
    def webhooks(self) -> WebhookRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class Sender(Protocol):
    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """POSTs once: (status code, None) when the receiver answered, (None, reason) when it did not."""
        ...


@dataclass(frozen=True)
class WebhookChange:
    url: str | None = None
    secret: str | None = None
    events: list[str] | None = None
    enabled: bool | None = None
    description: str | None = None


async def seal_secrets(uow: WebhookUnitOfWork) -> int:
    """At start, before anything is sent: secrets stored in the clear (before migration 0004) or under a
    retired key are encrypted under the newest key. Safe with several replicas (rows are locked)."""
    async with uow:
        sealed = await uow.webhooks.seal_secrets()
        await uow.commit()
    return sealed


async def enqueue_event(
    uow: WebhookUnitOfWork, event_type: str, event_id: str, body: bytes, now: datetime, ids: IdFactory
) -> int:
    """One pending delivery per enabled webhook that wants `event_type`; a redelivered event adds none."""
    added = 0
    for webhook in await uow.webhooks.all_webhooks():
        if webhook.wants(event_type):
            delivery = Delivery(
                id=ids(),
                webhook_id=webhook.id,
                event_id=event_id,
                event_type=event_type,
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            added += int(await uow.webhooks.add_delivery(delivery))
    return added


class Webhooks:
    def __init__(
        self,
        uow_factory: Callable[[], WebhookUnitOfWork],
        *,
        clock: Clock,
        ids: IdFactory,
        wake: Callable[[], None] = lambda: None,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.uow_factory, self.clock, self.ids, self.wake = uow_factory, clock, ids, wake
        self.allowed_hosts = allowed_hosts

    async def list_webhooks(self) -> list[Webhook]:
        async with self.uow_factory() as uow:
            return await uow.webhooks.all_webhooks()

    async def get(self, webhook_id: str) -> Webhook:
        async with self.uow_factory() as uow:
            webhook = await uow.webhooks.get(webhook_id)
        if webhook is None:
            raise WebhookNotFound(webhook_id)
        return webhook

    async def create(self, url: str, secret: str, events: list[str] | None, enabled: bool, description: str) -> Webhook:
        now = self.clock()
        webhook = Webhook(
            id=self.ids(),
            url=check_url(url, self.allowed_hosts),
            secret=check_secret(secret),
            events=check_events(list(WEBHOOK_EVENTS) if events is None else events),
            enabled=enabled,
            created_at=now,
            updated_at=now,
            description=description.strip(),
        )
        async with self.uow_factory() as uow:
            await uow.webhooks.add(webhook)
            await uow.commit()
        return webhook

    async def update(self, webhook_id: str, change: WebhookChange) -> Webhook:
        async with self.uow_factory() as uow:
            webhook = await uow.webhooks.get(webhook_id)
            if webhook is None:
                raise WebhookNotFound(webhook_id)
            changed = replace(
                webhook,
                url=webhook.url if change.url is None else check_url(change.url, self.allowed_hosts),
                secret=webhook.secret if change.secret is None else check_secret(change.secret),
                events=webhook.events if change.events is None else check_events(change.events),
                enabled=webhook.enabled if change.enabled is None else change.enabled,
                description=webhook.description if change.description is None else change.description.strip(),
                updated_at=self.clock(),
            )
            await uow.webhooks.update(changed)
            await uow.commit()
        if changed.enabled and not webhook.enabled:
            self.wake()
        return changed

    async def delete(self, webhook_id: str) -> None:
        async with self.uow_factory() as uow:
            if not await uow.webhooks.delete(webhook_id):
                raise WebhookNotFound(webhook_id)
            await uow.commit()

    async def deliveries(self, webhook_id: str, limit: int, before: tuple[datetime, str] | None) -> list[Delivery]:
        async with self.uow_factory() as uow:
            if await uow.webhooks.get(webhook_id) is None:
                raise WebhookNotFound(webhook_id)
            return await uow.webhooks.deliveries(webhook_id, limit, before)

    async def ping(self, webhook_id: str) -> Delivery:
        """A test delivery (`ping`, a CloudEvents envelope like the others) sent through the same path."""
        now, delivery_id, event_id = self.clock(), self.ids(), self.ids()
        body = json.dumps(
            {
                "specversion": "1.0",
                "id": event_id,
                "type": "printfarm.webhook.ping",
                "source": "/services/api-gateway",
                "time": now.isoformat(),
                "subject": webhook_id,
                "datacontenttype": "application/json",
                "data": {"webhook_id": webhook_id, "events": list(WEBHOOK_EVENTS)},
            },
            separators=(",", ":"),
        ).encode()
        delivery = Delivery(delivery_id, webhook_id, event_id, PING, body, "pending", 0, now, now)
        async with self.uow_factory() as uow:
            if await uow.webhooks.get(webhook_id) is None:
                raise WebhookNotFound(webhook_id)
            await uow.webhooks.add_delivery(delivery)
            await uow.commit()
        self.wake()
        return delivery


class WebhookDispatcher:
    """Sends due deliveries. Several gateway replicas may run one each: a claim holds a delivery for
    `lease` (longer than one attempt can take), so each attempt is made by one of them."""

    def __init__(
        self,
        uow_factory: Callable[[], WebhookUnitOfWork],
        send: Sender,
        *,
        clock: Clock,
        policy: RetryPolicy,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 20,
        idle_seconds: float = 1.0,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.allowed_hosts = allowed_hosts
        self.uow_factory, self.send, self.clock, self.policy = uow_factory, send, clock, policy
        self.lease, self.batch, self.idle_seconds = lease, batch, idle_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_due(self) -> int:
        """One pass: claim what is due, send it (concurrently), record every attempt. Returns how many."""
        now = self.clock()
        async with self.uow_factory() as uow:
            claimed = await uow.webhooks.claim_due(now, now + self.lease, self.batch)
            await uow.commit()
        await asyncio.gather(*(self._attempt(delivery, webhook) for delivery, webhook in claimed))
        return len(claimed)

    async def _attempt(self, delivery: Delivery, webhook: Webhook) -> None:
        started = self.clock()
        began = time.perf_counter()
        try:
            check_url(webhook.url, self.allowed_hosts)  # the allowed hosts may have narrowed since it was set
            status, error = await self.send(
                webhook.url, delivery.body, delivery_headers(delivery, webhook.secret, started)
            )
        except WebhookInvalid as refused:
            status, error = None, f"not sent: {refused.message}"
        except Exception as exc:  # a sender bug must not stop the dispatcher; it is recorded as the attempt's error
            log.exception("webhook %s: sending delivery %s failed", webhook.id, delivery.id)
            status, error = None, f"{type(exc).__name__}: {exc}"
        attempt = DeliveryAttempt(
            attempt=delivery.attempts + 1,
            started_at=started,
            duration_ms=int((time.perf_counter() - began) * 1000),
            status_code=status,
            error=error if status is None else _status_error(status),
        )
        result = outcome(attempt, delivery.attempts, self.policy, self.clock())
        async with self.uow_factory() as uow:
            await uow.webhooks.record_attempt(delivery, attempt, result)
            await uow.commit()
        if result.status == "failed":
            log.warning(
                "webhook %s: gave up on delivery %s after %s attempts", webhook.id, delivery.id, attempt.attempt
            )

    async def run_forever(self) -> None:
        while True:
            try:
                sent = await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a webhook dispatch pass failed; trying again")
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_seconds)


def _status_error(status: int | None) -> str | None:
    if status is None or 200 <= status < 300:
        return None
    return f"the receiver answered HTTP {status}"


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
