"""The printer gateway's domain metrics: the fleet by state and online (from the stored statuses, so every
replica reports the whole fleet, printers no replica holds included) and this replica's lease count."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from printer_gateway.adapters import orm
from servicekit.metrics import ServiceMetrics, set_labelled


class GatewayMetrics:
    def __init__(
        self, metrics: ServiceMetrics, sessions: async_sessionmaker[AsyncSession], leases_held: Callable[[], int]
    ) -> None:
        self.sessions, self.leases_held = sessions, leases_held
        self.printers = metrics.gauge(
            "printfarm_printers", "Registered printers by state and whether they are online.", ["state", "online"]
        )
        self.leases = metrics.gauge("printfarm_printer_gateway_leases", "Printers whose lease this replica holds.")
        self._seen: set[tuple[str, ...]] = set()
        metrics.on_scrape("printers", self.refresh)

    async def refresh(self) -> None:
        self.leases.set(self.leases_held())
        t = orm.printers
        state = t.c.status["state"].astext
        online = t.c.status["online"].as_boolean()
        async with self.sessions() as session:
            rows = await session.execute(
                sa.select(state, online, sa.func.count()).where(t.c.deleted.is_(False)).group_by(state, online)
            )
            counts: dict[tuple[str, ...], float] = {
                (str(s or "unknown"), "true" if on else "false"): float(n) for s, on, n in rows
            }
        set_labelled(self.printers, counts, self._seen)
