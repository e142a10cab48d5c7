"""Outbound webhooks through the real gateway: admins only, the secret write-only, bad settings a 422
naming the field, and deliveries to a loopback receiver signed, retried with backoff and recorded."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from api_gateway.domain.webhooks import verify

from .webhook_receiver import webhook_receiver

pytestmark = pytest.mark.integration
Wait = Callable[..., Awaitable[Any]]
SECRET = "shop-webhook-secret-0123"
LOCAL = "http://127.0.0.1:9/hooks"
"""The discard port: nothing listens, and devstack lets webhooks go only to loopback."""


async def test_settings_are_checked_and_the_secret_is_never_returned(api: httpx.AsyncClient) -> None:
    bad = await api.post("/api/v1/webhooks", json={"url": "ftp://shop.example/x", "secret": SECRET})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"
    elsewhere = await api.post("/api/v1/webhooks", json={"url": "https://shop.example/x", "secret": SECRET})
    assert elsewhere.status_code == 422 and "only to" in elsewhere.json()["errors"][0]["message"]
    short = await api.post("/api/v1/webhooks", json={"url": LOCAL, "secret": "short"})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "secret"
    unknown = await api.post("/api/v1/webhooks", json={"url": LOCAL, "secret": SECRET, "events": ["order.shipped"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "events"

    created = await api.post("/api/v1/webhooks", json={"url": LOCAL, "secret": SECRET})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["events"] == ["order.completed", "job.failed"] and "secret" not in hook
    assert created.headers["location"] == f"/api/v1/webhooks/{hook['id']}"
    listed = (await api.get("/api/v1/webhooks")).json()["items"]
    assert SECRET not in json.dumps(listed)
    patched = await api.patch(f"/api/v1/webhooks/{hook['id']}", json={"enabled": False, "url": "nope"})
    assert patched.status_code == 422
    unchanged = (await api.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert unchanged["enabled"] is True, "a refused change changes nothing"
    assert (await api.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/webhooks/{hook['id']}")).status_code == 404


async def test_only_admins_manage_webhooks(api: httpx.AsyncClient, stack: Any) -> None:
    operator = await api.post("/api/v1/auth/tokens", json={"name": "webhook-operator", "role": "operator"})
    assert operator.status_code == 201, operator.text
    headers = {"Authorization": f"Bearer {operator.json()['token']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, trust_env=False) as as_operator:
        refused = await as_operator.post("/api/v1/webhooks", json={"url": LOCAL, "secret": SECRET})
        assert refused.status_code == 403 and refused.json()["required_role"] == "admin"
        assert (await as_operator.get("/api/v1/webhooks")).status_code == 403


async def test_a_failing_receiver_gets_the_signed_delivery_again_with_backoff(
    api: httpx.AsyncClient, wait_until: Wait
) -> None:
    with webhook_receiver(answers=[500]) as receiver:
        hook = (await api.post("/api/v1/webhooks", json={"url": receiver.url, "secret": SECRET})).json()
        try:
            ping = await api.post(f"/api/v1/webhooks/{hook['id']}/ping")
            assert ping.status_code == 202, ping.text

            async def delivered() -> dict[str, Any] | None:
                items = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
                return next((d for d in items if d["id"] == ping.json()["id"] and d["status"] == "delivered"), None)

            delivery = await wait_until(delivered, 60, "the ping delivered after one retry")
            assert [a["status_code"] for a in delivery["history"]] == [500, 200]
            first, second = delivery["history"]
            assert first["ok"] is False and second["ok"] is True and first["error"] == "the receiver answered HTTP 500"
            gap = (_at(second["started_at"]) - _at(first["started_at"])).total_seconds()
            assert gap >= 4.5, f"the retry came after {gap:.1f} s, before the 5 s backoff"

            assert len(receiver.received) == 2
            for request in receiver.received:
                assert request.path == "/hooks/printfarm"
                assert request.headers["x-printfarm-event"] == "ping"
                assert request.headers["x-printfarm-delivery"] == delivery["id"]
                assert verify(
                    SECRET,
                    int(request.headers["x-printfarm-timestamp"]),
                    request.body,
                    request.headers["x-printfarm-signature"],
                )
            envelope = json.loads(receiver.received[-1].body)
            assert envelope["specversion"] == "1.0" and envelope["data"]["webhook_id"] == hook["id"]
        finally:
            await api.delete(f"/api/v1/webhooks/{hook['id']}")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
