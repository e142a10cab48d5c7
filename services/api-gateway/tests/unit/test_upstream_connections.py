"""A pooled connection the service closes just as the gateway reuses it must not become a 503 for a read."""

from __future__ import annotations

import httpx
import pytest

from api_gateway.adapters.upstream import POOL_IDLE_SECONDS, Upstreams, UpstreamUnavailable
from servicekit.runtime import KEEP_ALIVE_SECONDS


def upstreams(fail_first: int) -> tuple[Upstreams, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= fail_first:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, json={"ok": True})

    pool = Upstreams(
        {"orders": "http://orders"}, timeout=5, upload_timeout=5, health_timeout=1, openapi_timeout=1,
        transport=httpx.MockTransport(answer),
    )
    return pool, seen


async def test_a_read_on_a_connection_closed_under_it_is_sent_again() -> None:
    pool, seen = upstreams(fail_first=1)
    reply = await pool.send("orders", "GET", "/api/v1/orders", [], b"")
    assert reply.status_code == 200 and seen == ["GET", "GET"]
    await reply.aclose()
    await pool.aclose()


async def test_a_write_is_never_sent_twice() -> None:
    pool, seen = upstreams(fail_first=1)
    with pytest.raises(UpstreamUnavailable):
        await pool.send("orders", "POST", "/api/v1/orders", [], b"{}")
    assert seen == ["POST"]
    await pool.aclose()


async def test_a_read_that_fails_twice_is_a_503_not_a_loop() -> None:
    pool, seen = upstreams(fail_first=5)
    with pytest.raises(UpstreamUnavailable):
        await pool.send("orders", "GET", "/api/v1/orders", [], b"")
    assert seen == ["GET", "GET"]
    await pool.aclose()


def test_the_gateway_drops_idle_connections_before_the_services_close_them() -> None:
    assert POOL_IDLE_SECONDS < KEEP_ALIVE_SECONDS
