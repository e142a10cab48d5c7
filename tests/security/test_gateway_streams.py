"""The live event stream at the API gateway (issue 13) ends when the credential that opened it does:
logout, token revocation, a disabled account, the credential's expiry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack import Stack
from devstack.postgres import asyncpg_dsn

from .gateway_harness import ENV_TOKEN, OwnGateway, login, own_gateway

pytestmark = pytest.mark.integration

ENDS_WITHIN = 15.0


@pytest.fixture(scope="module")
async def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnGateway]:
    async with own_gateway(stack, tmp_path_factory.mktemp("gateway-streams"), sse_heartbeat_seconds=1) as running:
        yield running


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, **kw: Any) -> AsyncIterator[asyncio.Task[None]]:
    """Opens /api/v1/events and reads it in a task that finishes when the server ends the stream."""
    connected = asyncio.Event()

    async def read() -> None:
        async with client.stream("GET", "/api/v1/events", timeout=httpx.Timeout(60, read=60), **kw) as reply:
            assert reply.status_code == 200
            async for line in reply.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()

    task = asyncio.create_task(read())
    waiting = asyncio.create_task(connected.wait())
    await asyncio.wait([task, waiting], timeout=15, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert connected.is_set(), "the event stream did not open"
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def ends(task: asyncio.Task[None]) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(task), ENDS_WITHIN)
    except TimeoutError:
        pytest.fail(f"the event stream was still open {ENDS_WITHIN} s after its credential ended")


async def test_logout_closes_the_sessions_stream(gateway: OwnGateway) -> None:
    admin = gateway.first_admin()
    async with gateway.client(token=None) as browser:
        assert (await login(browser, admin["username"], admin["password"])).status_code == 200
        async with open_stream(browser) as stream:
            assert (await browser.post("/api/v1/auth/logout")).status_code == 204
            await ends(stream)


async def test_revoking_a_token_closes_its_stream(gateway: OwnGateway) -> None:
    async with gateway.client(ENV_TOKEN) as admin:
        token = (await admin.post("/api/v1/auth/tokens", json={"name": "dashboard"})).json()
        async with gateway.client(token["token"]) as dashboard, open_stream(dashboard) as stream:
            assert (await admin.delete(f"/api/v1/auth/tokens/{token['id']}")).status_code == 204
            await ends(stream)


async def test_disabling_a_user_closes_their_streams(gateway: OwnGateway) -> None:
    async with gateway.client(ENV_TOKEN) as admin:
        user = (await admin.post("/api/v1/users", json={"username": "watcher", "role": "viewer",
                                                          "password": "a long enough password"})).json()
        async with gateway.client(token=None) as browser:
            assert (await login(browser, "watcher", "a long enough password")).status_code == 200
            async with open_stream(browser) as stream:
                assert (await admin.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})).status_code == 200
                await ends(stream)


async def test_a_stream_ends_when_its_token_expires(gateway: OwnGateway) -> None:
    async with gateway.client(ENV_TOKEN) as admin:
        soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        token = (await admin.post("/api/v1/auth/tokens", json={"name": "brief", "expires_at": soon})).json()
    async with gateway.client(token["token"]) as client, open_stream(client) as stream:
        await ends(stream)


async def test_a_revocation_through_another_replica_closes_the_stream(stack: Stack, tmp_path: Path) -> None:
    """Two gateways on one database: the one holding the stream learns of it by checking again."""
    async with own_gateway(stack, tmp_path / "a", sse_recheck_seconds=1, sse_heartbeat_seconds=1) as first:
        async with first.client(ENV_TOKEN) as admin:
            token = (await admin.post("/api/v1/auth/tokens", json={"name": "kiosk"})).json()
            async with first.client(token["token"]) as kiosk, open_stream(kiosk) as stream:
                # revoke straight in the shared table, as another replica's request would
                await _delete_token_elsewhere(first, token["id"])
                await ends(stream)


async def _delete_token_elsewhere(gateway: OwnGateway, token_id: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(gateway.database_url))
    try:
        assert await conn.execute("DELETE FROM api_tokens WHERE id = $1", token_id) == "DELETE 1"
    finally:
        await conn.close()
