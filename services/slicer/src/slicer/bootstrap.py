"""The only wiring of the slicer: settings → runtime → unit of work → pipeline, object stores, the
slice-request work queue and the operators' routes."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.messaging import Bus
from servicekit.runtime import ServiceRuntime, serve
from slicer.adapters import orm
from slicer.adapters.object_store import NatsSlicedFiles, NatsSourceFiles
from slicer.config import Settings
from slicer.entrypoints import api
from slicer.entrypoints.consumers import SliceRequestConsumer
from slicer.entrypoints.metrics import SlicerMetrics
from slicer.service_layer.handlers import Deps
from slicer.service_layer.pipeline import ToolLimits, build_pipeline
from slicer.service_layer.ports import SlicePipeline
from slicer.service_layer.slicing import SliceWorker
from slicer.service_layer.unit_of_work import SlicerUnitOfWork, UnitOfWork

log = logging.getLogger(__name__)


def default_pipeline(settings: Settings) -> SlicePipeline:
    """OpenSCAD and PrusaSlicer under the configured limits, with the operator's profile overrides."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    limits = ToolLimits(
        time_limit_seconds=settings.slicer_time_limit_seconds, memory_limit_mb=settings.slicer_memory_limit_mb
    )
    return build_pipeline(settings.slicer_profiles_dir, settings.work_dir, limits)


SLICING_TOOLS = ("openscad", "prusa-slicer")


def missing_tools() -> list[str]:
    """Said once at start: without them every slice that needs them fails (answered, not cached)."""
    return [tool for tool in SLICING_TOOLS if shutil.which(tool) is None]


def create_app(
    settings: Settings | None = None,
    *,
    uow_factory: Callable[[], SlicerUnitOfWork] | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    pipeline: SlicePipeline | None = None,
) -> FastAPI:
    """What is given replaces the real one (tests give fakes); the rest is built from `settings`."""
    settings = settings or Settings()
    runtime = ServiceRuntime("slicer", settings, orm.outbox, orm.inbox, bus=bus)

    def sql_uow() -> SlicerUnitOfWork:
        return UnitOfWork(**runtime.uow_args())

    uows = uow_factory or sql_uow
    deps = Deps(
        clock=clock or utc_now,
        ids=ids or new_id,
        pipeline=pipeline or default_pipeline(settings),
        lease=timedelta(seconds=settings.slicer_claim_lease_seconds),
        instance=runtime.instance,
    )
    sliced = NatsSlicedFiles(runtime.bus)
    worker = SliceWorker(uows, deps, NatsSourceFiles(runtime.bus), sliced)
    slicer_metrics = SlicerMetrics(runtime.metrics)
    consumer = SliceRequestConsumer(
        runtime.bus,
        worker,
        concurrency=settings.slicer_concurrency,
        ack_wait=settings.consumer_ack_wait_seconds,
        max_deliver=settings.consumer_max_deliver,
        fetch_timeout=settings.slicer_fetch_timeout_seconds,
        wait_poll=settings.slicer_wait_poll_seconds,
        observe_slice=slicer_metrics.observe_slice,
    )
    slicer_metrics.watch(consumer.queue_reading, lambda: consumer.in_flight)
    if pipeline is None and (missing := missing_tools()):
        log.warning("not on PATH: %s; slices that need them are answered failed (not cached)", ", ".join(missing))
    runtime.on_start(sliced.ensure_bucket)
    runtime.on_start(consumer.start)
    runtime.on_stop(consumer.stop)

    async def consuming() -> bool:
        return consumer.running

    app = runtime.create_app(
        title="printfarm slicer", routers=[api.router(uows)], health_checks={"slice_requests": consuming}
    )
    app.state.worker = worker
    app.state.consumer = consumer
    return app


def main() -> None:
    settings = Settings()
    serve("slicer", settings, Path(__file__).parents[2] / "alembic.ini", lambda: create_app(settings))
