"""Access rules without I/O: equal-time login, bounded hashing, streams closed when credentials end."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher as Argon2

from api_gateway.adapters.credentials_file import FirstAdminFile
from api_gateway.adapters.passwords import Argon2Passwords
from api_gateway.domain import commands
from api_gateway.domain.auth import EndedCredentials, Principal, Role
from api_gateway.domain.errors import BadCredentials, HashingBusy
from api_gateway.service_layer import handlers
from api_gateway.service_layer.event_hub import EventHub
from api_gateway.service_layer.handlers import Deps

from .api_gateway_fakes import FakeClock, FakeUnitOfWork, Ids, MemoryEventLog, PlainPasswords, Store


class CountingPasswords(PlainPasswords):
    def __init__(self) -> None:
        self.verified: list[str] = []

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return await super().verify(password_hash, password)


def deps_for(tmp_path: Path, passwords: CountingPasswords) -> Deps:
    counter = iter(range(10_000))
    return Deps(
        clock=FakeClock(),
        ids=Ids(),
        secrets=lambda: f"secret-{next(counter)}",
        passwords=passwords,
        first_admin_file=FirstAdminFile(tmp_path),
    )


async def test_an_unknown_user_costs_one_password_check_like_a_wrong_password(tmp_path: Path) -> None:
    passwords = CountingPasswords()
    deps, store = deps_for(tmp_path, passwords), Store()
    assert await handlers.ensure_first_admin(commands.EnsureFirstAdmin("admin"), FakeUnitOfWork(store), deps)
    await deps.unknown_user_hash.get(passwords, deps.secrets)
    with pytest.raises(BadCredentials):
        await handlers.login(commands.Login("admin", "wrong"), FakeUnitOfWork(store), deps)
    with pytest.raises(BadCredentials):
        await handlers.login(commands.Login("nobody", "wrong"), FakeUnitOfWork(store), deps)
    assert len(passwords.verified) == 2
    assert passwords.verified[1].startswith("plain$")  # a real hash, not a shortcut


async def test_hashing_beyond_the_slots_and_the_queue_is_refused() -> None:
    passwords = Argon2Passwords(Argon2(time_cost=2, memory_cost=8 * 1024, parallelism=1), concurrency=1, queue=1)
    hashed = await passwords.hash("correct horse battery")
    results = await asyncio.gather(*(passwords.verify(hashed, "wrong") for _ in range(6)), return_exceptions=True)
    busy = [r for r in results if isinstance(r, HashingBusy)]
    assert len(busy) == 4 and results[:2] == [False, False]
    assert await passwords.verify(hashed, "correct horse battery")  # the slots are free again


async def test_ending_a_credential_closes_only_its_streams() -> None:
    hub = EventHub(MemoryEventLog(), heartbeat_seconds=0.05)
    await hub.start()
    alice = Principal(id="account:a", name="alice", via="session", role=Role.VIEWER, account_id="a",
                      credential="session:s1")
    bob = Principal(id="token:t1", name="bob", via="token", role=Role.VIEWER, account_id="b", credential="token:t1")
    streams = {p.name: hub.frames(None, p) for p in (alice, bob)}
    for frames in streams.values():
        assert "connected" in await anext(frames)
    hub.end(EndedCredentials(credentials=frozenset({"session:s1"})))
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(anext(streams["alice"]), 1)
    assert (await asyncio.wait_for(anext(streams["bob"]), 1)).startswith(":")  # a heartbeat: still open
    hub.end(EndedCredentials(accounts=frozenset({"b"})))
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(anext(streams["bob"]), 1)
    await hub.stop()


async def test_a_stream_ends_at_its_credentials_expiry() -> None:
    clock = FakeClock()
    hub = EventHub(MemoryEventLog(), heartbeat_seconds=0.05, clock=clock)
    await hub.start()
    brief = Principal(id="token:t", name="t", via="token", credential="token:t",
                      expires_at=clock.now + timedelta(seconds=30))
    frames = hub.frames(None, brief)
    await anext(frames)
    await asyncio.wait_for(anext(frames), 1)
    clock.advance(31)
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(anext(frames), 1)
    await hub.stop()
