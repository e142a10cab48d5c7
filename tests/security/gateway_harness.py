"""API gateways of the security tests' own, on the session's stack.

Each runs the real gateway app in this process under uvicorn on a free port, with its own freshly
migrated database on the stack's PostgreSQL, the stack's NATS, the stack's real services as
upstreams (or a recording echo server where a test must see what reaches a service), and the
settings a test needs (limits, throttling), so no test has to change the shared stack's gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api_gateway.bootstrap import create_app
from api_gateway.config import Settings
from devstack import Stack
from devstack.postgres import database_url, drop_databases, ensure_databases
from servicekit.database import run_migrations
from servicekit.testing import wait_until

ALEMBIC_INI = Path(__file__).parents[2] / "services" / "api-gateway" / "alembic.ini"
ENV_TOKEN = "security-tests-env-token"
UPSTREAMS = {"skus": "skus_url", "orders": "orders_url", "queue": "queue_url", "printer_gateway": "printer_gateway_url"}


@contextlib.asynccontextmanager
async def serving(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve an ASGI app under uvicorn on a free port of 127.0.0.1 (no proxy is trusted)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", forwarded_allow_ips="", **config
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or task.done(), 30, "uvicorn to start", interval=0.02)
    finally:
        if not server.started:
            server.should_exit = True
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class OwnGateway:
    url: str
    data_dir: Path
    database_url: str

    def first_admin(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.data_dir / "first-admin.json").read_text())
        return data

    def client(self, token: str | None = ENV_TOKEN, **kw: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, trust_env=False, **kw)


@contextlib.asynccontextmanager
async def own_gateway(stack: Stack, data_dir: Path, **settings: Any) -> AsyncIterator[OwnGateway]:
    server = database_url(stack.database_urls["api_gateway"], "postgres")
    name = "security_gateway_" + uuid.uuid4().hex[:12]
    await ensure_databases(server, [name])
    url = database_url(server, name)
    try:
        await asyncio.to_thread(run_migrations, ALEMBIC_INI, url)
        values: dict[str, Any] = {
            "database_url": url,
            "nats_url": stack.nats_url,
            "data_dir": data_dir,
            "api_token": ENV_TOKEN,
            "service_instance": name,
            **{variable: stack.service_url(service) for service, variable in UPSTREAMS.items()},
            **settings,
        }
        async with serving(create_app(Settings(**values))) as base:
            yield OwnGateway(base, data_dir, url)
    finally:
        await drop_databases(server, [name])


@dataclass
class Echo:
    """A stand-in upstream service that answers every request with what it received."""

    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def echo_service() -> AsyncIterator[Echo]:
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(rest: str, request: Request) -> Response:
        body = await request.body()
        seen.append({"path": request.url.path, "headers": request.headers.items(), "size": len(body)})
        return JSONResponse({"path": request.url.path}, headers={"X-Upstream-Hop": "1", "Connection": "X-Upstream-Hop"})

    async with serving(app) as url:
        yield Echo(url, seen)


async def raw_request(
    base_url: str, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Send `path` byte for byte (HTTP clients resolve `..` and `//` before sending; attackers do not)."""
    parts = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(parts.host, parts.port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.host}:{parts.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(-1), timeout=30)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Log `client` in; its cookie jar then holds the session, and its headers the CSRF token."""
    reply = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    if reply.status_code == 200:
        client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    return reply
