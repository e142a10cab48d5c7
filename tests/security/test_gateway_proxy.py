"""The API gateway's forwarding (issue 13): paths that mean something else upstream are refused,
hop-by-hop headers stop at the gateway, and clients' forwarding claims are replaced, not passed on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack import Stack

from .gateway_harness import ENV_TOKEN, echo_service, own_gateway, raw_request

pytestmark = pytest.mark.integration

TRAVERSALS = [
    "/api/v1/parts/../../../openapi.json",
    "/api/v1/parts/..%2f..%2f..%2fopenapi.json",
    "/api/v1/parts/%2e%2e/%2e%2e/%2e%2e/openapi.json",
    "/api/v1/parts/%2E%2e/%2e%2E/..%2F/openapi.json",
    "/api/v1/parts/.%2e/.%2e/.%2e/openapi.json",
    "/api/v1/parts/%252e%252e/%252e%252e/%252e%252e/openapi.json",
    "/api/v1/orders/x/../../../health",
    "/api/v1/parts//../../openapi.json",
    "/api/v1/parts/..\\..\\..\\openapi.json",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_dot_segments_never_reach_a_service(stack: Stack, path: str) -> None:
    status, body = await raw_request(stack.api_url, "GET", path, stack.api_headers)
    assert status == 400, (status, body[:200])
    problem = json.loads(body)
    assert problem["status"] == 400 and "openapi" not in problem


async def test_ordinary_paths_still_work(stack: Stack) -> None:
    status, body = await raw_request(stack.api_url, "GET", "/api/v1/parts?q=a%20b", stack.api_headers)
    assert status == 200 and "items" in json.loads(body)


async def test_hop_by_hop_and_forwarding_claims_stop_at_the_gateway(stack: Stack, tmp_path: Path) -> None:
    async with echo_service() as echo, own_gateway(stack, tmp_path, orders_url=echo.url) as gw:
        async with gw.client(ENV_TOKEN) as client:
            reply = await client.get(
                "/api/v1/orders",
                headers={
                    "Connection": "keep-alive, X-Secret-Hop",
                    "X-Secret-Hop": "internal",
                    "X-Forwarded-For": "6.6.6.6",
                    "X-Forwarded-Host": "evil.example",
                    "X-Forwarded-Proto": "https",
                    "Forwarded": "for=6.6.6.6;host=evil.example",
                    "X-Real-IP": "6.6.6.6",
                    "If-None-Match": '"1"',
                },
            )
        assert reply.status_code == 200
        assert "x-upstream-hop" not in reply.headers  # named hop-by-hop by the service's Connection header
    received = echo.seen[-1]["headers"]
    names = [k.lower() for k, _ in received]
    assert "x-secret-hop" not in names
    assert "forwarded" not in names and "x-real-ip" not in names
    for claim in ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"):
        assert names.count(claim) == 1, (claim, received)
    values = dict((k.lower(), v) for k, v in received)
    assert values["x-forwarded-for"] == "127.0.0.1"
    assert values["x-forwarded-host"] == gw.url.removeprefix("http://")
    assert values["x-forwarded-proto"] == "http"
    assert values["if-none-match"] == '"1"'
