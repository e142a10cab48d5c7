"""The only wiring: settings → runtime → unit of work → consumers, matching loop and routes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from printqueue.adapters import orm
from printqueue.config import Settings
from printqueue.domain import commands
from printqueue.domain.forecast import ForecastSettings
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.entrypoints import api, consumers, forecast_api
from printqueue.entrypoints.forecast_loop import ForecastLoop
from printqueue.entrypoints.matching_loop import MatchingLoop
from printqueue.entrypoints.metrics import QueueMetrics
from printqueue.service_layer import handlers
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.messaging import Bus
from servicekit.runtime import ServiceRuntime, serve


def create_app(
    settings: Settings | None = None,
    *,
    uow_factory: Callable[[], UnitOfWork] | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> FastAPI:
    """What is given replaces the real one: the units of work (the SQL ones wake the matcher), the NATS
    bus, the clock and the ids."""
    settings = settings or Settings()
    runtime = ServiceRuntime("queue", settings, orm.outbox, orm.inbox, bus=bus)
    deps = Deps(
        clock=clock or utc_now,
        ids=ids or new_id,
        policy=DispatchPolicy(
            deadline_seconds=settings.dispatch_deadline_seconds,
            max_dispatch_attempts=settings.max_dispatch_attempts,
            printer_cooldown_seconds=settings.printer_cooldown_seconds,
            deadline_grace_seconds=settings.dispatch_grace_seconds,
        ),
        slice_answer_seconds=settings.slice_answer_timeout_seconds,
        max_slice_requests=settings.max_slice_requests,
    )

    def wake() -> None:
        loop.wake()
        forecaster.wake()

    def sql_uow() -> UnitOfWork:
        return UnitOfWork(wake_matcher=wake, wake_forecaster=lambda: forecaster.wake(), **runtime.uow_args())

    uows = uow_factory or sql_uow
    loop = MatchingLoop(
        uows,
        deps,
        settings.match_interval_seconds,
        settings.full_match_interval_seconds,
        metrics=QueueMetrics(runtime.metrics, runtime.sessions),
    )
    forecaster = ForecastLoop(
        uows,
        ForecastSettings(
            time_scale=settings.forecast_time_scale,
            bed_clear_minutes=settings.forecast_bed_clear_minutes,
            default_print_minutes=settings.forecast_default_print_minutes,
        ),
        deps,
        settings.forecast_debounce_seconds,
        settings.forecast_interval_seconds,
    )
    consumers.register(runtime.bus, uows, deps, loop.count_printer_pass)

    async def adopt_unsliced_jobs() -> None:
        await handlers.adopt_unsliced_jobs(commands.AdoptUnslicedJobs(), uows(), deps)

    runtime.on_start(adopt_unsliced_jobs)
    runtime.on_start(loop.start)
    runtime.on_start(forecaster.start)
    runtime.on_stop(loop.stop)
    runtime.on_stop(forecaster.stop)
    app = runtime.create_app(
        title="printfarm queue", routers=[api.router(uows, deps), forecast_api.router(forecaster)]
    )
    app.state.matching_loop = loop
    app.state.forecast_loop = forecaster
    return app


def main() -> None:
    settings = Settings()
    serve("queue", settings, Path(__file__).parents[2] / "alembic.ini", lambda: create_app(settings))
