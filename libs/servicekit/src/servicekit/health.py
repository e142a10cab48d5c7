"""`GET /health`: ready only when the service can reach its database and NATS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.messaging import Bus

Check = Callable[[], Awaitable[bool]]


def health_router(engine: AsyncEngine, bus: Bus, extra: dict[str, Check] | None = None) -> APIRouter:
    router = APIRouter()

    async def database() -> bool:
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    async def nats() -> bool:
        return bus.connected

    checks: dict[str, Check] = {"database": database, "nats": nats, **(extra or {})}

    @router.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        results = {name: "ok" if await check() else "failing" for name, check in checks.items()}
        ok = all(v == "ok" for v in results.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": results}, status_code=200 if ok else 503)

    return router
