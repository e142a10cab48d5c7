"""Roles, users and tokens at the API gateway (issue 13): viewers read, operators run the farm, admins
also manage printers, users and tokens; a token is no stronger than its creator and expires."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack import Stack

from .gateway_harness import ENV_TOKEN, OwnGateway, login, own_gateway

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
async def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnGateway]:
    async with own_gateway(stack, tmp_path_factory.mktemp("gateway-roles")) as running:
        yield running


@pytest.fixture
async def admin(gateway: OwnGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.client(ENV_TOKEN) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_user(admin: httpx.AsyncClient, role: str, password: str = PASSWORD) -> dict[str, Any]:
    reply = await admin.post("/api/v1/users", json={"username": unique(role), "role": role, "password": password})
    assert reply.status_code == 201, reply.text
    user: dict[str, Any] = reply.json()
    return user


@contextlib.asynccontextmanager
async def session_of(
    gateway: OwnGateway, user: dict[str, Any], password: str = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client logged in as `user` (session cookie + CSRF header)."""
    async with gateway.client(token=None) as client:
        reply = await login(client, user["username"], password)
        assert reply.status_code == 200, reply.text
        yield client


async def token_for(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    reply = await client.post("/api/v1/auth/tokens", json={"name": unique("t"), **body})
    assert reply.status_code == 201, reply.text
    token: dict[str, Any] = reply.json()
    return token


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['token']}"}


async def test_the_env_api_token_is_an_admin(admin: httpx.AsyncClient) -> None:
    me = await admin.get("/api/v1/auth/me")
    assert me.json()["role"] == "admin"
    assert (await admin.get("/api/v1/users")).status_code == 200


async def test_each_role_does_what_it_may_and_no_more(gateway: OwnGateway, admin: httpx.AsyncClient) -> None:
    viewer, operator = await new_user(admin, "viewer"), await new_user(admin, "operator")
    async with session_of(gateway, viewer) as v, session_of(gateway, operator) as o:
        assert (await v.get("/api/v1/orders")).status_code == 200
        assert (await v.get("/api/v1/printers")).status_code == 200
        refused = await v.post("/api/v1/orders", json={"order_number": unique("V")})
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["required_role"] == "operator"
        assert (await v.post(f"/api/v1/printers/{uuid.uuid4()}/bed-cleared")).status_code == 403
        assert (await v.get("/api/v1/users")).status_code == 403

        created = await o.post("/api/v1/orders", json={"order_number": unique("O")})
        assert created.status_code == 201, created.text
        assert (await o.post(f"/api/v1/printers/{uuid.uuid4()}/bed-cleared")).status_code == 404  # reached the service
        assert (await o.post("/api/v1/printers", json={})).status_code == 403
        assert (await o.delete(f"/api/v1/printers/{uuid.uuid4()}")).status_code == 403
        assert (await o.post("/api/v1/users", json={"username": unique("x")})).status_code == 403

    assert (await admin.post("/api/v1/printers", json={})).status_code == 422  # reached the service


async def test_a_token_is_no_stronger_than_its_creator(gateway: OwnGateway, admin: httpx.AsyncClient) -> None:
    operator = await new_user(admin, "operator")
    async with session_of(gateway, operator) as o:
        stronger = await o.post("/api/v1/auth/tokens", json={"name": "mine", "role": "admin"})
        assert stronger.status_code == 403
        assert stronger.json()["errors"][0]["field"] == "role"
        own = await token_for(o)
        assert own["role"] == "operator"
        weaker = await token_for(o, role="viewer")
    async with gateway.client(token=None) as anyone:
        assert (await anyone.get("/api/v1/orders", headers=bearer(weaker))).status_code == 200
        assert (await anyone.post("/api/v1/orders", json={}, headers=bearer(weaker))).status_code == 403
        assert (await anyone.post("/api/v1/printers", json={}, headers=bearer(own))).status_code == 403
        # demoting the account demotes what its tokens can do
        await admin.patch(f"/api/v1/users/{operator['id']}", json={"role": "viewer"})
        assert (await anyone.post("/api/v1/orders", json={}, headers=bearer(own))).status_code == 403


async def test_tokens_expire(gateway: OwnGateway, admin: httpx.AsyncClient, wait_until: Any) -> None:
    default = await token_for(admin)
    expires_at = datetime.fromisoformat(default["expires_at"])
    assert datetime.now(UTC) + timedelta(days=1) < expires_at <= datetime.now(UTC) + timedelta(days=366)
    forever = (datetime.now(UTC) + timedelta(days=4000)).isoformat()
    too_long = await admin.post("/api/v1/auth/tokens", json={"name": "forever", "expires_at": forever})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "expires_at"

    short = await token_for(admin, expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    async with gateway.client(token=short["token"]) as client:
        assert (await client.get("/api/v1/orders")).status_code == 200

        async def refused() -> bool:
            return (await client.get("/api/v1/orders")).status_code == 401

        await wait_until(refused, 20, "the short-lived token to stop working")


async def test_only_the_owner_or_an_admin_sees_and_revokes_a_token(
    gateway: OwnGateway, admin: httpx.AsyncClient
) -> None:
    alice, bob = await new_user(admin, "operator"), await new_user(admin, "operator")
    async with session_of(gateway, alice) as a, session_of(gateway, bob) as b:
        alices = await token_for(a)
        bobs = await token_for(b)
        seen_by_bob = [t["id"] for t in (await b.get("/api/v1/auth/tokens")).json()["items"]]
        assert bobs["id"] in seen_by_bob and alices["id"] not in seen_by_bob
        assert (await b.delete(f"/api/v1/auth/tokens/{alices['id']}")).status_code == 404
        assert (await a.get("/api/v1/orders", headers=bearer(alices))).status_code == 200
        seen_by_admin = [t["id"] for t in (await admin.get("/api/v1/auth/tokens")).json()["items"]]
        assert {alices["id"], bobs["id"]} <= set(seen_by_admin)
        assert (await admin.delete(f"/api/v1/auth/tokens/{alices['id']}")).status_code == 204
        assert (await b.delete(f"/api/v1/auth/tokens/{bobs['id']}")).status_code == 204
    async with gateway.client(token=None) as anyone:
        assert (await anyone.get("/api/v1/orders", headers=bearer(alices))).status_code == 401
        assert (await anyone.get("/api/v1/orders", headers=bearer(bobs))).status_code == 401


async def test_users_are_invited_disabled_and_change_their_password(
    gateway: OwnGateway, admin: httpx.AsyncClient
) -> None:
    invited = await admin.post("/api/v1/users", json={"username": unique("new"), "role": "operator"})
    assert invited.status_code == 201
    user = invited.json()
    first_password = user["password"]
    assert first_password and len(first_password) >= 20
    assert first_password not in (await admin.get(f"/api/v1/users/{user['id']}")).text
    taken = await admin.post("/api/v1/users", json={"username": user["username"], "role": "viewer"})
    assert taken.status_code == 409
    weak = await admin.post("/api/v1/users", json={"username": unique("w"), "password": "short"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "password"

    async with session_of(gateway, user, first_password) as u, session_of(
        gateway, user, first_password
    ) as elsewhere:
        wrong = await u.post("/api/v1/auth/password", json={"current_password": "nope", "new_password": PASSWORD})
        assert wrong.status_code == 422
        changed = await u.post(
            "/api/v1/auth/password", json={"current_password": first_password, "new_password": PASSWORD}
        )
        assert changed.status_code == 204
        assert (await u.get("/api/v1/orders")).status_code == 200  # this session stays
        assert (await elsewhere.get("/api/v1/orders")).status_code == 401  # the others end
        token = await token_for(u)
    async with gateway.client(token=None) as anyone:
        assert (await login(anyone, user["username"], first_password)).status_code == 401
        assert (await login(anyone, user["username"], PASSWORD)).status_code == 200
        assert (await anyone.get("/api/v1/orders")).status_code == 200

        disabled = await admin.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        assert (await anyone.get("/api/v1/orders")).status_code == 401
        assert (await anyone.get("/api/v1/orders", headers=bearer(token))).status_code == 401
        assert (await login(anyone, user["username"], PASSWORD)).status_code == 401
        await admin.patch(f"/api/v1/users/{user['id']}", json={"disabled": False})
        assert (await login(anyone, user["username"], PASSWORD)).status_code == 200


async def test_the_last_admin_stays_an_admin(gateway: OwnGateway, admin: httpx.AsyncClient) -> None:
    users = (await admin.get("/api/v1/users")).json()["items"]
    admins = [u for u in users if u["role"] == "admin" and not u["disabled"]]
    for extra in admins[1:]:
        await admin.patch(f"/api/v1/users/{extra['id']}", json={"role": "operator"})
    last = admins[0]
    assert (await admin.patch(f"/api/v1/users/{last['id']}", json={"role": "viewer"})).status_code == 409
    assert (await admin.patch(f"/api/v1/users/{last['id']}", json={"disabled": True})).status_code == 409
    assert (await admin.get(f"/api/v1/users/{last['id']}")).json()["role"] == "admin"


async def test_the_new_endpoints_are_in_the_api_document(admin: httpx.AsyncClient) -> None:
    paths = (await admin.get("/api/openapi.json")).json()["paths"]
    for path in ("/api/v1/users", "/api/v1/users/{user_id}", "/api/v1/users/{user_id}/password",
                 "/api/v1/auth/password", "/api/v1/auth/tokens"):
        assert path in paths, path


async def test_the_first_admin_file_goes_once_its_password_changed(stack: Stack, tmp_path: Any) -> None:
    async with own_gateway(stack, tmp_path) as fresh:
        first = fresh.first_admin()
        async with fresh.client(token=None) as client:
            assert (await login(client, first["username"], first["password"])).status_code == 200
            changed = await client.post(
                "/api/v1/auth/password", json={"current_password": first["password"], "new_password": PASSWORD}
            )
            assert changed.status_code == 204
        assert not (tmp_path / "first-admin.json").exists()
        async with fresh.client(token=first["api_token"]) as scripts:
            me = await scripts.get("/api/v1/auth/me")
            assert me.status_code == 200 and me.json()["role"] == "admin"
