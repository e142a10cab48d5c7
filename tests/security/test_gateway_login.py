"""Login at the API gateway (issue 13): throttled per user and per address, unknown users cost what a
wrong password costs, password hashing is bounded, and the session cookie is Secure off loopback."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import pytest

from devstack import Stack

from .gateway_harness import OwnGateway, login, own_gateway

pytestmark = pytest.mark.integration

GENEROUS = {"login_max_failures_per_user": 1000, "login_max_failures_per_address": 1000}


async def test_failed_logins_pause_that_user(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, login_max_failures_per_user=3, login_max_failures_per_address=1000) as gw:
        admin = gw.first_admin()
        async with gw.client(token=None) as client:
            for _ in range(3):
                assert (await login(client, admin["username"], "guess")).status_code == 401
            paused = await login(client, admin["username"], admin["password"])
            assert paused.status_code == 429
            assert paused.headers["content-type"] == "application/problem+json"
            assert int(paused.headers["retry-after"]) > 0
            # the pause is per user: someone else still gets in
            created = await client.post(
                "/api/v1/users",
                json={"username": "other", "role": "viewer", "password": "another long password"},
                headers={"Authorization": f"Bearer {admin['api_token']}"},
            )
            assert created.status_code == 201
            assert (await login(client, "other", "another long password")).status_code == 200


async def test_failed_logins_pause_that_address(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, login_max_failures_per_user=1000, login_max_failures_per_address=4) as gw:
        admin = gw.first_admin()
        async with gw.client(token=None) as client:
            for _ in range(4):
                assert (await login(client, f"nobody-{uuid.uuid4().hex[:6]}", "guess")).status_code == 401
            assert (await login(client, admin["username"], admin["password"])).status_code == 429


async def _login_seconds(gw: OwnGateway, username: str, attempts: int) -> float:
    times = []
    async with gw.client(token=None) as client:
        for _ in range(attempts):
            started = time.perf_counter()
            assert (await login(client, username, "not the password")).status_code == 401
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def test_an_unknown_user_takes_as_long_as_a_wrong_password(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, **GENEROUS) as gw:
        admin = gw.first_admin()["username"]
        await _login_seconds(gw, admin, 1)  # warm up the pool and the hasher
        wrong_password = await _login_seconds(gw, admin, 7)
        unknown_user = await _login_seconds(gw, f"nobody-{uuid.uuid4().hex[:6]}", 7)
    # Argon2 costs tens of milliseconds; a login that skips it answers in a few
    assert unknown_user > 0.6 * wrong_password, (unknown_user, wrong_password)


async def test_password_hashing_is_bounded_and_the_excess_refused(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, password_hash_concurrency=1, password_hash_queue=2, **GENEROUS) as gw:
        async with gw.client(token=None) as client:
            replies = await asyncio.gather(
                *(login(client, f"user-{i}", "not the password") for i in range(24))
            )
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {401, 503}
    assert statuses.count(503) >= 10, statuses
    busy = next(r for r in replies if r.status_code == 503)
    assert busy.headers["content-type"] == "application/problem+json" and "retry-after" in busy.headers


async def test_the_session_cookie_is_secure_off_loopback(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, host="0.0.0.0") as gw:  # the setting only
        admin = gw.first_admin()
        async with gw.client(token=None) as client:
            reply = await login(client, admin["username"], admin["password"])
    cookies = reply.headers.get_list("set-cookie")
    assert all("secure" in c.lower() for c in cookies), cookies


async def test_make_run_on_loopback_keeps_plain_http_cookies(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, host="127.0.0.1") as gw:
        admin = gw.first_admin()
        async with gw.client(token=None) as client:
            reply = await login(client, admin["username"], admin["password"])
            assert reply.status_code == 200
            assert (await client.get("/api/v1/auth/me")).status_code == 200
    assert not any("secure" in c.lower() for c in reply.headers.get_list("set-cookie"))
