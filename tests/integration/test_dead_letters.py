"""Dead letters through the API gateway on the whole stack: a message no consumer can read is listed
with its error, replaying it publishes it again (and, still unreadable, it comes back counted twice)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderCancelled
from devstack import Stack

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
CONSUMER = "queue__order_cancelled"


async def publish_unreadable(stack: Stack) -> str:
    """An `orders.v1.order.cancelled` envelope whose data is not an OrderCancelled: poison for the queue."""
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=OrderCancelled.SUBJECT,
        source="/tests/dead-letters",
        time=datetime.now(UTC),
        data={"not_an_order": True},
    )
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().publish(
            OrderCancelled.SUBJECT, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id}
        )
    finally:
        await nc.close()
    return envelope.id


async def listed(api: httpx.AsyncClient, message_id: str) -> list[dict[str, Any]]:
    reply = await api.get("/api/v1/dead-letters")
    assert reply.status_code == 200, reply.text
    return [i for i in reply.json()["items"] if i["message_id"] == message_id]


async def test_an_unreadable_message_is_listed_replayed_and_counted_again(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait
) -> None:
    message_id = await publish_unreadable(stack)

    items = await wait_until(lambda: listed(api, message_id), 30, "the dead letter to be listed")
    assert len(items) == 1
    item = items[0]
    assert item["consumer"] == CONSUMER
    assert item["subject"] == OrderCancelled.SUBJECT
    assert item["count"] == 1
    assert "undecodable" in item["error"] and "order_id" in item["error"]
    assert datetime.fromisoformat(item["last_at"]) <= datetime.now(UTC)

    reply = await api.post(f"/api/v1/dead-letters/{message_id}/replay")
    assert reply.status_code == 202, reply.text
    assert reply.json() == {"message_id": message_id, "subject": OrderCancelled.SUBJECT, "consumers": [CONSUMER]}

    async def counted_twice() -> list[dict[str, Any]]:
        found = await listed(api, message_id)
        return found if found and found[0]["count"] == 2 else []

    again = await wait_until(counted_twice, 30, "the replay, still unreadable, to be dead-lettered again")
    assert len(again) == 1
    assert again[0]["last_at"] > item["last_at"]


async def test_replaying_an_unknown_message_is_a_404_problem(api: httpx.AsyncClient) -> None:
    reply = await api.post(f"/api/v1/dead-letters/{uuid.uuid4()}/replay")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"


async def test_dead_letters_are_not_shown_without_credentials(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, trust_env=False) as anonymous:
        assert (await anonymous.get("/api/v1/dead-letters")).status_code == 401
        assert (await anonymous.post(f"/api/v1/dead-letters/{uuid.uuid4()}/replay")).status_code == 401
