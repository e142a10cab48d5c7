"""A pooled connection the service closes just as the gateway reuses it must not become a 503 for a read, nor
must a service being restarted (refusing connections for a moment) for any request that can be sent again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from api_gateway.adapters.upstream import POOL_IDLE_SECONDS, Upstreams, UpstreamUnavailable
from servicekit.runtime import KEEP_ALIVE_SECONDS


def failing(
    first: int, error: type[httpx.TransportError], *, grace: float = 0.0, answer_status: int = 200
) -> tuple[Upstreams, list[str]]:
    """The orders service: its first `first` requests fail with `error`, then it answers; what reached it."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= first:
            raise error("failed as told", request=request)
        return httpx.Response(answer_status, json={"ok": True})

    pool = Upstreams(
        {"orders": "http://orders"}, timeout=5, upload_timeout=5, health_timeout=1, openapi_timeout=1,
        restart_grace=grace, transport=httpx.MockTransport(answer),
    )
    return pool, seen


def upstreams(fail_first: int) -> tuple[Upstreams, list[str]]:
    """A pooled connection the service closed as it was reused."""
    return failing(fail_first, httpx.RemoteProtocolError)


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


def restarting(refusals: int, *, grace: float = 5.0) -> tuple[Upstreams, list[str]]:
    """A service that refuses the first `refusals` connections, as one does while its supervisor restarts it."""
    return failing(refusals, httpx.ConnectError, grace=grace, answer_status=201)


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
async def test_a_request_waits_for_a_service_being_restarted(method: str) -> None:
    pool, seen = restarting(refusals=4)
    reply = await pool.send("orders", method, "/api/v1/orders", [], b"{}")
    assert reply.status_code == 201 and seen == [method] * 5
    await reply.aclose()
    await pool.aclose()


async def test_a_service_that_stays_down_is_a_503_once_the_grace_is_over() -> None:
    pool, seen = restarting(refusals=1_000, grace=0.5)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as refused:
        await pool.send("orders", "GET", "/api/v1/orders", [], b"")
    waited = time.monotonic() - started
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "2"}
    assert 0.3 <= waited < 2.0 and 4 <= len(seen) < 20


async def test_a_streamed_upload_is_not_sent_again_after_a_refusal() -> None:
    pool, seen = restarting(refusals=1)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"part"

    with pytest.raises(UpstreamUnavailable):
        await pool.send("orders", "POST", "/api/v1/parts", [], chunks(), upload=True)
    assert seen == ["POST"]
    await pool.aclose()


async def test_without_a_grace_a_refusal_is_a_503_at_once() -> None:
    pool, seen = restarting(refusals=1, grace=0.0)
    with pytest.raises(UpstreamUnavailable):
        await pool.send("orders", "GET", "/api/v1/orders", [], b"")
    assert seen == ["GET"]
    await pool.aclose()


def database_restarting(unavailable: int, *, grace: float = 5.0) -> tuple[Upstreams, list[str]]:
    """A service whose database is restarting: its first `unavailable` answers are its own 503 with a
    Retry-After (servicekit's answer to a database out of reach), then it answers."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= unavailable:
            return httpx.Response(503, headers={"Retry-After": "1"}, json={"status": 503})
        return httpx.Response(200, json={"ok": True})

    pool = Upstreams(
        {"orders": "http://orders"}, timeout=5, upload_timeout=5, health_timeout=1, openapi_timeout=1,
        restart_grace=grace, transport=httpx.MockTransport(answer),
    )
    return pool, seen


async def test_a_read_waits_out_a_service_s_database_restarting() -> None:
    pool, seen = database_restarting(unavailable=3)
    reply = await pool.send("orders", "GET", "/api/v1/orders", [], b"")
    assert reply.status_code == 200 and seen == ["GET"] * 4
    await reply.aclose()
    await pool.aclose()


async def test_a_write_answered_503_is_not_sent_again() -> None:
    pool, seen = database_restarting(unavailable=1)
    reply = await pool.send("orders", "POST", "/api/v1/orders", [], b"{}")
    assert reply.status_code == 503 and seen == ["POST"]
    await reply.aclose()
    await pool.aclose()


async def test_a_read_still_503_after_the_grace_gets_the_service_s_own_answer() -> None:
    pool, seen = database_restarting(unavailable=1_000, grace=0.5)
    reply = await pool.send("orders", "GET", "/api/v1/orders", [], b"")
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert 4 <= len(seen) < 20
    await reply.aclose()
    await pool.aclose()
