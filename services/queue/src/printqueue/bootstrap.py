"""The only wiring: settings → runtime → unit of work → consumers, matching loop and routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from printqueue.adapters import orm
from printqueue.config import Settings
from printqueue.domain.forecast import ForecastSettings
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.entrypoints import api, consumers, forecast_api
from printqueue.entrypoints.forecast_loop import ForecastLoop
from printqueue.entrypoints.matching_loop import MatchingLoop
from printqueue.entrypoints.metrics import QueueMetrics
from printqueue.service_layer import handlers
from printqueue.service_layer.handlers import Context
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.runtime import ServiceRuntime, serve


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime("queue", settings, orm.outbox, orm.inbox)
    ctx = Context(
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

    def uow_factory() -> UnitOfWork:
        return UnitOfWork(wake_matcher=wake, **runtime.uow_args())

    loop = MatchingLoop(
        uow_factory,
        ctx,
        settings.match_interval_seconds,
        settings.full_match_interval_seconds,
        metrics=QueueMetrics(runtime.metrics, runtime.sessions),
    )
    forecaster = ForecastLoop(
        uow_factory,
        ForecastSettings(
            time_scale=settings.forecast_time_scale,
            bed_clear_minutes=settings.forecast_bed_clear_minutes,
            default_print_minutes=settings.forecast_default_print_minutes,
        ),
        ctx.clock,
        settings.forecast_debounce_seconds,
        settings.forecast_interval_seconds,
    )
    consumers.register(runtime.bus, uow_factory, ctx)

    async def adopt_unsliced_jobs() -> None:
        async with uow_factory() as uow:
            await handlers.adopt_unsliced_jobs(uow, ctx)
            await uow.commit()

    runtime.on_start(adopt_unsliced_jobs)
    runtime.on_start(loop.start)
    runtime.on_start(forecaster.start)
    runtime.on_stop(loop.stop)
    runtime.on_stop(forecaster.stop)
    app = runtime.create_app(
        title="printfarm queue", routers=[api.router(uow_factory, ctx), forecast_api.router(forecaster)]
    )
    app.state.matching_loop = loop
    app.state.forecast_loop = forecaster
    return app


def main() -> None:
    settings = Settings()
    serve("queue", settings, Path(__file__).parents[2] / "alembic.ini", lambda: create_app(settings))
