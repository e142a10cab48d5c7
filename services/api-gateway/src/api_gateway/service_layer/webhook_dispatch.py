"""Sending webhook deliveries: claim what is due, POST each (concurrently), record every attempt. The
claims and the records are handlers (`claim_due_deliveries`, `record_delivery_attempt`); the sending
happens between them, outside any transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from api_gateway.domain import commands
from api_gateway.domain.errors import WebhookInvalid
from api_gateway.domain.webhooks import Delivery, DeliveryAttempt, Webhook, check_url, delivery_headers
from api_gateway.service_layer import handlers
from api_gateway.service_layer.handlers import Deps
from api_gateway.service_layer.ports import Sender
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork

log = logging.getLogger(__name__)


class WebhookDispatcher:
    """Sends due deliveries. Several gateway replicas may run one each: a claim holds a delivery for the
    delivery lease (longer than one attempt can take), so each attempt is made by one of them.

    `wakeup` is what `deps.wake_dispatcher` sets (the bootstrap makes both from one event)."""

    def __init__(
        self,
        uow_factory: Callable[[], GatewayUnitOfWork],
        send: Sender,
        deps: Deps,
        *,
        wakeup: asyncio.Event | None = None,
        batch: int = 20,
        idle_seconds: float = 1.0,
    ) -> None:
        self.uow_factory, self.send, self.deps = uow_factory, send, deps
        self.batch, self.idle_seconds = batch, idle_seconds
        self._wake = wakeup or asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_due(self) -> int:
        """One pass: claim what is due, send it (concurrently), record every attempt. Returns how many."""
        claimed = await handlers.claim_due_deliveries(
            commands.ClaimDueDeliveries(self.batch), self.uow_factory(), self.deps
        )
        await asyncio.gather(*(self._attempt(delivery, webhook) for delivery, webhook in claimed))
        return len(claimed)

    async def _attempt(self, delivery: Delivery, webhook: Webhook) -> None:
        started = self.deps.clock()
        began = time.perf_counter()
        try:
            check_url(webhook.url, self.deps.allowed_hosts)  # the allowed hosts may have narrowed since it was set
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
        result = await handlers.record_delivery_attempt(
            commands.RecordDeliveryAttempt(delivery, attempt), self.uow_factory(), self.deps
        )
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
