"""The gateway's unit-test harness: its app on the fakes of `api_gateway_fakes`, and fake upstream services."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
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
from servicekit.testing import wait_until

from .api_gateway_fakes import FakeClock, FakeUnitOfWork, MemoryDeadLetters, MemoryEventLog, PlainPasswords, Store

TOKEN = "test-env-token"
SERVICES = {"skus": "http://skus.test", "orders": "http://orders.test", "queue": "http://queue.test",
            "printer-gateway": "http://printers.test", "slicer": "http://slicer.test"}


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
        "upstream_restart_grace_seconds": 0.3,
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
