"""Keeps the production forecast current: recomputed when something that moves it changed (debounced) and
on a timer, served from memory by `GET /api/v1/forecast`, and each order's forecast published to the
orders service (`queue.v1.order.forecast_changed`) when it moved.

Why a message and not a read of the queue from the orders service or the gateway: the order is the
orders service's; it answers `GET /api/v1/orders/{id}` and the orders list from its own database, so an
order's forecast must be there too (one service never reads another's database, the gateway only
forwards). The queue owns what the forecast is made of (jobs, the printer replica), so it publishes
each order's forecast, as it publishes the job counts. Only a forecast that moved is published (an end
time by more than 2% of the time left, at least `TOLERANCE_FLOOR`; `late`; `blocked_by`), so a busy
farm sends a few messages per change, not one per order per run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from printqueue.adapters.forecast_inputs import OpenJobs, load_forecast_inputs
from printqueue.domain import commands
from printqueue.domain.forecast import Forecast, ForecastSettings, OrderForecast, forecast
from printqueue.service_layer.forecast_changes import publish_forecasts
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.background import WakeableLoop

log = logging.getLogger(__name__)

TOLERANCE_FLOOR = timedelta(seconds=5)
THROTTLE = 4.0
"""After a forecast that took t seconds, the next one waits at least THROTTLE × t."""


def moved(before: OrderForecast | None, after: OrderForecast, now: datetime) -> bool:
    """Whether an order's forecast changed enough to tell the orders service."""
    if before is None or before.late != after.late or before.blocked_by != after.blocked_by:
        return True
    if before.completes_at is None or after.completes_at is None:
        return before.completes_at != after.completes_at
    tolerance = max(TOLERANCE_FLOOR, (after.completes_at - now) * 0.02)
    return abs(after.completes_at - before.completes_at) > tolerance


class ForecastLoop:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        settings: ForecastSettings,
        deps: Deps,
        debounce_seconds: float,
        interval_seconds: float,
    ) -> None:
        self.uow_factory, self.settings, self.deps = uow_factory, settings, deps
        self.debounce, self.interval = debounce_seconds, interval_seconds
        self.latest: Forecast | None = None
        self.published: dict[str, OrderForecast] = {}
        self.runs = 0
        self.last_seconds = 0.0
        self._lock = asyncio.Lock()
        self._open_jobs = OpenJobs()
        self._loop = WakeableLoop(
            "forecast-loop", self._step, interval_seconds=interval_seconds, retry_seconds=1.0, logger=log
        )

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def current(self) -> Forecast:
        """The latest forecast; the first request before any run makes one."""
        if self.latest is None:
            return await self.refresh()
        return self.latest

    async def refresh(self) -> Forecast:
        async with self._lock:
            started = time.perf_counter()
            async with self.uow_factory() as uow:
                inputs = await load_forecast_inputs(uow.session, self._open_jobs)
            now = self.deps.clock()
            # CPU-bound: in a thread, so requests are still answered while a large farm is forecast.
            result = await asyncio.to_thread(
                forecast, inputs.jobs, inputs.printers, now, self.settings, inputs.sliced, inputs.color_tolerance
            )
            self.latest = result
            await self._publish(result)
            self.runs += 1
            self.last_seconds = time.perf_counter() - started
            return result

    async def _publish(self, result: Forecast) -> None:
        changed = [o for o in result.orders.values() if moved(self.published.get(o.order_id), o, result.generated_at)]
        if changed:
            cmd = commands.PublishForecasts(tuple(changed), result.generated_at)
            await publish_forecasts(cmd, self.uow_factory(), self.deps)
        kept = {o.order_id: o for o in changed}
        before = self.published
        self.published = {
            order_id: kept.get(order_id, before.get(order_id, order)) for order_id, order in result.orders.items()
        }

    async def _step(self, woken: bool) -> None:
        if woken:
            # Let the rest of a burst of changes land first; on a large farm, where a forecast takes a
            # while, wait longer, so forecasting takes at most a fifth of a core however busy the farm.
            await asyncio.sleep(max(self.debounce, THROTTLE * self.last_seconds))
            self._loop.absorb_wakes()
        await self.refresh()
