"""The API gateway as outside clients meet it, on the whole stack: auth, health, idempotent creation,
the live event stream with resume, the merged OpenAPI document, and a service going away."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from devstack import Stack

pytestmark = pytest.mark.integration

SERVICE_KEYS = {"skus", "orders", "queue", "printer-gateway", "slicer", "nats", "simulator"}
"""The services, and the parts devstack has the gateway probe besides them."""


@pytest.fixture
def client(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The conftest's client, which carries the stack's bearer token (API_TOKEN)."""
    return api


async def test_health_names_every_service(stack: Stack, wait_until: Callable[..., Awaitable[Any]]) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10, trust_env=False) as anonymous:

        async def healthy() -> dict[str, Any] | None:
            reply = await anonymous.get("/api/v1/health")
            body: dict[str, Any] = reply.json()
            return body if reply.status_code == 200 and body["status"] == "ok" else None

        body = await wait_until(healthy, 60, "every service healthy")
    assert set(body["services"]) == SERVICE_KEYS
    assert set(body["services"].values()) == {"ok"}


async def test_api_needs_a_token(stack: Stack, client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10, trust_env=False) as anonymous:
        refused = await anonymous.get("/api/v1/orders")
        wrong = await anonymous.get("/api/v1/orders", headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert (await client.get("/api/v1/orders")).status_code == 200


async def test_unknown_api_path_is_a_problem(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/no-such-thing")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"


async def test_idempotent_order_creation(client: httpx.AsyncClient) -> None:
    number = "IDEM-" + uuid.uuid4().hex[:8]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/api/v1/orders", json={"order_number": number}, headers=key)
    again = await client.post("/api/v1/orders", json={"order_number": number}, headers=key)
    other = await client.post("/api/v1/orders", json={"order_number": number + "X"}, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    listed = (await client.get("/api/v1/orders", params={"q": number, "include_closed": "true"})).json()["items"]
    assert [o["id"] for o in listed if o["order_number"] == number] == [first.json()["id"]]


async def _events(reply: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    block: dict[str, str] = {}
    async for line in reply.aiter_lines():
        if line == "":
            if "event" in block:
                yield {"id": block["id"], "event": block["event"], "data": json.loads(block["data"])}
            block = {}
        elif not line.startswith(":") and ":" in line:
            name, _, value = line.partition(":")
            block[name] = value.removeprefix(" ")


async def _first_matching(reply: httpx.Response, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def scan() -> dict[str, Any]:
        async for event in _events(reply):
            if predicate(event):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(scan(), timeout=30)


async def test_event_stream_shows_changes_and_resumes_after_a_disconnect(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/api/v1/events", timeout=httpx.Timeout(30, read=40)) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        created = await client.post("/api/v1/orders", json={"order_number": "SSE-" + uuid.uuid4().hex[:6]})
        assert created.status_code == 201, created.text
        order_id = created.json()["id"]
        seen = await _first_matching(reply, lambda e: e["event"] == "order.updated" and e["data"]["id"] == order_id)

    patched = await client.patch(f"/api/v1/orders/{order_id}", json={"notes": "changed while away"})
    assert patched.status_code == 200, patched.text
    headers = {"Last-Event-ID": seen["id"]}
    async with client.stream("GET", "/api/v1/events", headers=headers, timeout=httpx.Timeout(30, read=40)) as again:
        missed = await _first_matching(
            again, lambda e: e["event"] == "order.updated" and e["data"]["id"] == order_id and e["id"] != seen["id"]
        )
    assert missed["data"]["id"] == order_id


async def test_merged_openapi_document(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/openapi.json")
    assert reply.status_code == 200
    paths = reply.json()["paths"]
    for path in ("/api/v1/parts", "/api/v1/skus", "/api/v1/orders", "/api/v1/jobs", "/api/v1/printers"):
        assert path in paths, path
    docs = await client.get("/api/docs")
    assert "/api/openapi.json" in docs.text


async def test_a_stopped_service_is_503_and_the_rest_keeps_working(
    stack: Stack, client: httpx.AsyncClient, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    await stack.stop_service("queue")
    try:
        down = await client.get("/api/v1/jobs")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert "queue" in down.json()["detail"]
        assert (await client.get("/api/v1/orders")).status_code == 200
        health = (await client.get("/api/v1/health")).json()
        assert health["status"] == "degraded"
        assert health["services"]["queue"] != "ok"
    finally:
        await stack.start_service("queue", instance=stack.instance("queue").name)

    async def jobs_back() -> bool:
        return (await client.get("/api/v1/jobs")).status_code == 200

    await wait_until(jobs_back, 60, "the queue service to answer again")
