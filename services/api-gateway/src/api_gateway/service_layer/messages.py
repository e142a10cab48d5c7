"""Contract messages → the gateway's domain: which farm events become webhook deliveries, and the body
each delivery POSTs (the CloudEvents envelope as published)."""

from __future__ import annotations

from api_gateway.domain.commands import EnqueueWebhookEvent
from api_gateway.domain.webhooks import webhook_event
from contracts.envelope import Envelope
from contracts.orders.v1 import OrderCompleted
from contracts.queue.v1 import JobChanged


def envelope_body(envelope: Envelope) -> bytes:
    """The body POSTed: the CloudEvents envelope as published, its data inline."""
    return envelope.model_dump_json(exclude={"dataref"}, exclude_none=True).encode()


def order_completed_event(_: OrderCompleted, envelope: Envelope) -> EnqueueWebhookEvent:
    return EnqueueWebhookEvent("order.completed", envelope, envelope_body(envelope))


def job_changed_event(message: JobChanged, envelope: Envelope) -> EnqueueWebhookEvent | None:
    """Only a failed job is a webhook event (`job.failed`)."""
    event = webhook_event(JobChanged.SUBJECT, {"status": message.status})
    return EnqueueWebhookEvent(event, envelope, envelope_body(envelope)) if event else None
