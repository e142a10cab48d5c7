"""Fakes for the gateway's unit tests: in-memory repositories, event log, upstream services."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.testclient import TestClient

from api_gateway.bootstrap import build_app
from api_gateway.config import Settings
from api_gateway.domain.auth import Account, ApiToken, Session
from api_gateway.domain.dead_letters import ArchiveUnavailable, DeadLetter, Replay
from api_gateway.domain.events import SOURCE_STREAMS, LoggedMessage, Position
from api_gateway.domain.idempotency import IdempotencyRecord, StoredResponse
from servicekit.testing import FakeUnitOfWork as BaseFakeUnitOfWork
from servicekit.testing import wait_until

TOKEN = "test-env-token"
SERVICES = {"skus": "http://skus.test", "orders": "http://orders.test", "queue": "http://queue.test",
            "printer-gateway": "http://printers.test", "slicer": "http://slicer.test"}


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Store:
    """The 'database' the fake repositories share across units of work (committed state only)."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, ApiToken] = {}
        self.sessions: dict[str, Session] = {}


class FakeIdempotency:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def claim(self, record: IdempotencyRecord) -> bool:
        if (record.principal, record.key) in self.store.keys:
            return False
        self.store.keys[(record.principal, record.key)] = record
        return True

    async def get(self, principal: str, key: str) -> IdempotencyRecord | None:
        return self.store.keys.get((principal, key))

    async def complete(self, principal: str, key: str, response: StoredResponse, now: datetime) -> None:
        self.store.keys[(principal, key)] = replace(self.store.keys[(principal, key)], response=response)

    async def release(self, principal: str, key: str) -> None:
        record = self.store.keys.get((principal, key))
        if record is not None and record.response is None:
            del self.store.keys[(principal, key)]

    async def take_over(self, record: IdempotencyRecord, now: datetime) -> bool:
        current = self.store.keys.get((record.principal, record.key))
        if current is None or current.created_at != record.created_at or current.response is not None:
            return False
        self.store.keys[(record.principal, record.key)] = replace(current, created_at=now)
        return True

    async def prune(self, older_than: datetime) -> int:
        old = [k for k, r in self.store.keys.items() if r.created_at < older_than]
        for k in old:
            del self.store.keys[k]
        return len(old)


class FakeAccounts:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def any(self) -> bool:
        return bool(self.store.accounts)

    async def add(self, account: Account) -> bool:
        if any(a.username == account.username for a in self.store.accounts.values()):
            return False
        self.store.accounts[account.id] = account
        return True

    async def by_username(self, username: str) -> Account | None:
        return next((a for a in self.store.accounts.values() if a.username == username), None)

    async def get(self, account_id: str) -> Account | None:
        return self.store.accounts.get(account_id)

    async def all_accounts(self) -> list[Account]:
        return sorted(self.store.accounts.values(), key=lambda a: a.username)

    async def update(self, account: Account) -> None:
        self.store.accounts[account.id] = account

    async def lock_admins(self) -> list[Account]:
        return [a for a in self.store.accounts.values() if a.role == "admin" and a.active]


class FakeTokens:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, token: ApiToken) -> None:
        self.store.tokens[token.id] = token

    async def by_digest(self, token_sha256: str) -> ApiToken | None:
        return next((t for t in self.store.tokens.values() if t.token_sha256 == token_sha256), None)

    async def get(self, token_id: str) -> ApiToken | None:
        return self.store.tokens.get(token_id)

    async def list(self, account_id: str | None = None) -> list[ApiToken]:
        return [t for t in self.store.tokens.values() if account_id is None or t.account_id == account_id]

    async def delete(self, token_id: str) -> bool:
        return self.store.tokens.pop(token_id, None) is not None


class FakeSessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, session: Session) -> None:
        self.store.sessions[session.id] = session

    async def by_digest(self, session_sha256: str, now: datetime) -> Session | None:
        return next(
            (s for s in self.store.sessions.values() if s.session_sha256 == session_sha256 and s.expires_at > now),
            None,
        )

    async def delete_by_digest(self, session_sha256: str) -> str | None:
        for sid in [s.id for s in self.store.sessions.values() if s.session_sha256 == session_sha256]:
            del self.store.sessions[sid]
            return sid
        return None

    async def delete_for_account(self, account_id: str, keep: str | None = None) -> list[str]:
        ended = [s.id for s in self.store.sessions.values() if s.account_id == account_id and s.id != keep]
        for sid in ended:
            del self.store.sessions[sid]
        return ended

    async def prune(self, now: datetime) -> int:
        return 0


class FakeUnitOfWork(BaseFakeUnitOfWork[Store]):
    """servicekit's fake unit of work over the store: only committed writes stay; `commits` counts them all."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, source="/services/api-gateway")

    def _open(self) -> None:
        self.idempotency = FakeIdempotency(self.work)
        self.accounts = FakeAccounts(self.work)
        self.tokens = FakeTokens(self.work)
        self.logins = FakeSessions(self.work)


class PlainPasswords:
    """Argon2 is deliberately slow; the access logic does not depend on the algorithm."""

    async def hash(self, password: str) -> str:
        return "plain$" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "plain$" + password


class MemoryEventLog:
    def __init__(self) -> None:
        self.messages: dict[str, list[LoggedMessage]] = {s: [] for s in SOURCE_STREAMS}
        self._changed: asyncio.Event | None = None

    def append(self, stream: str, subject: str, data: dict[str, Any] | None) -> LoggedMessage:
        message = LoggedMessage(stream, len(self.messages[stream]) + 1, subject, data)
        self.messages[stream].append(message)
        if self._changed is not None:
            self._changed.set()
        return message

    async def positions(self) -> Position:
        return {s: len(m) for s, m in self.messages.items()}

    async def follow(self, after: Position) -> AsyncIterator[LoggedMessage]:
        self._changed = self._changed or asyncio.Event()
        seen = dict(after)
        while True:
            for stream in SOURCE_STREAMS:
                for message in list(self.messages[stream]):
                    if message.seq > seen[stream]:
                        seen[stream] = message.seq
                        yield message
            await self._changed.wait()
            self._changed.clear()

    async def replay(self, after: Position, until: Position, limit: int) -> AsyncIterator[LoggedMessage]:
        sent = 0
        for stream in SOURCE_STREAMS:
            for message in self.messages[stream]:
                if after[stream] < message.seq <= until[stream] and sent < limit:
                    sent += 1
                    yield message


class MemoryDeadLetters:
    """The DEADLETTER stream: entries by sequence, replays as JetStream would store them (deduplicated
    by replay id)."""

    def __init__(self) -> None:
        self.stored: dict[int, DeadLetter] = {}
        self.published: list[tuple[str, bytes]] = []
        self.replay_ids: set[int] = set()
        self.down = False

    def add(self, entry: DeadLetter) -> None:
        self.stored[entry.seq] = entry

    async def entries(self) -> list[DeadLetter]:
        if self.down:
            raise ArchiveUnavailable("did not answer")
        return [self.stored[seq] for seq in sorted(self.stored)]

    async def republish(self, replay: Replay) -> bool:
        if replay.from_seq in self.replay_ids:
            return False
        self.replay_ids.add(replay.from_seq)
        self.published.append((replay.subject, replay.data))
        return True

    async def forget(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self.stored.pop(seq, None)


class Recorder:
    """What a fake upstream received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


class UpstreamTransport(httpx.AsyncBaseTransport):
    """Routes the gateway's upstream requests by host to fake ASGI services; `down` ones refuse."""

    def __init__(self, apps: dict[str, FastAPI]) -> None:
        self.apps = {SERVICES[name].removeprefix("http://"): httpx.ASGITransport(app) for name, app in apps.items()}
        self.down: set[str] = set()
        self.slow: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        service = next(name for name, url in SERVICES.items() if url.endswith(host))
        if service in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if service in self.slow:
            raise httpx.ReadTimeout("timed out", request=request)
        return await self.apps[host].handle_async_request(request)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "skus_url": SERVICES["skus"],
        "orders_url": SERVICES["orders"],
        "queue_url": SERVICES["queue"],
        "printer_gateway_url": SERVICES["printer-gateway"],
        "slicer_url": SERVICES["slicer"],
        "api_token": TOKEN,
        "data_dir": tmp_path,
        "idempotency_wait_seconds": 0.5,
        **overrides,
    }
    return Settings(**values)


class Harness:
    def __init__(self, tmp_path: Path, apps: dict[str, FastAPI]) -> None:
        self.tmp_path = tmp_path
        self.store = Store()
        self.events = MemoryEventLog()
        self.dead_letters = MemoryDeadLetters()
        self.transport = UpstreamTransport(apps)
        self.clock = FakeClock()

    def app(self, **overrides: Any) -> FastAPI:
        return build_app(
            settings_for(self.tmp_path, **overrides),
            uow_factory=lambda: FakeUnitOfWork(self.store),
            event_log=self.events,
            dead_letter_archive=self.dead_letters,
            transport=self.transport,
            passwords=PlainPasswords(),
            clock=self.clock,
        )

    @contextlib.contextmanager
    def client(self, *, token: str | None = TOKEN, **overrides: Any) -> Iterator[TestClient]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with TestClient(self.app(**overrides), headers=headers, raise_server_exceptions=False) as client:
            yield client


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free port of 127.0.0.1 (for real streaming responses)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), 10, "uvicorn to start", interval=0.01)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


FakeApps = Callable[[], dict[str, FastAPI]]


@pytest.fixture
def harness(tmp_path: Path, upstream_apps: dict[str, FastAPI]) -> Harness:
    return Harness(tmp_path, upstream_apps)


class Thing(BaseModel):
    """Every fake service declares a schema with the same name, to check the merged document."""

    id: str


def fake_service(name: str, recorder: Recorder) -> FastAPI:
    app = FastAPI(title=name)
    state: dict[str, Any] = {"health": 200}
    app.state.control = state

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"}, status_code=state["health"])

    @app.get(f"/api/v1/typed-{name}", response_model=Thing)
    async def typed() -> Thing:
        return Thing(id=name)

    @app.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(rest: str, request: Request) -> Response:
        body = await request.body()
        recorder.requests.append(
            {"service": name, "method": request.method, "path": request.url.path, "query": request.url.query,
             "headers": dict(request.headers), "body": body}
        )
        status = int(request.headers.get("x-test-status") or (201 if request.method == "POST" else 200))
        reply = {
            "service": name,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "n": len(recorder.requests),
        }
        return JSONResponse(
            reply,
            status_code=status,
            headers={"ETag": f'"v{len(recorder.requests)}"', "Location": f"/api/v1/{rest}/{len(recorder.requests)}"},
        )

    return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def upstream_apps(recorder: Recorder) -> dict[str, FastAPI]:
    return {name: fake_service(name, recorder) for name in SERVICES}
