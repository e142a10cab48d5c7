"""`GET /api/v1/health`: every service's own /health, asked concurrently with a short timeout.

Open without credentials (probes carry none) and always 200 when the gateway answers; the body says
which services are not ok. Configured probes (NATS, the printer simulator under devstack) are listed
beside the services, so a part without a service of its own shows its outage too.
"""

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from api_gateway.adapters.upstream import ServiceHealth, Upstreams


class SystemHealth(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, ServiceHealth]


def router(upstreams: Upstreams, probes: dict[str, str] | None = None) -> APIRouter:
    api = APIRouter(tags=["gateway"])
    extra = dict(probes or {})

    @api.get("/api/v1/health", response_model=SystemHealth)
    async def system_health() -> SystemHealth:
        names = [*upstreams.services, *extra]
        results = await asyncio.gather(
            *(upstreams.health(name) for name in upstreams.services),
            *(upstreams.probe(url) for url in extra.values()),
        )
        services = dict(zip(names, results, strict=True))
        status: Literal["ok", "degraded"] = "ok" if all(r == "ok" for r in results) else "degraded"
        return SystemHealth(status=status, services=services)

    return api
