"""The only wiring of the skus service: settings → runtime → unit of work, `Deps` → consumers, RPC, routes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.messaging import Bus
from servicekit.runtime import ServiceRuntime, serve
from skus.adapters import orm
from skus.adapters.file_inspection import inspect_local_file
from skus.adapters.file_store import LocalFileStore
from skus.adapters.openscad import render_check
from skus.adapters.part_file_bucket import NatsPartFileBucket
from skus.config import Settings
from skus.domain.files import InspectionLimits
from skus.entrypoints import api, consumers, rpc
from skus.service_layer.handlers import Deps
from skus.service_layer.unit_of_work import UnitOfWork


def create_app(
    settings: Settings | None = None,
    *,
    uow_factory: Callable[[], UnitOfWork] | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> FastAPI:
    """Whatever is given replaces the real one (a test's fake unit of work, bus, clock or ids)."""
    settings = settings or Settings()
    runtime = ServiceRuntime("skus", settings, orm.outbox, orm.inbox, bus=bus)

    def sql_uow() -> UnitOfWork:
        return UnitOfWork(**runtime.uow_args())

    make_uow = uow_factory or sql_uow
    deps = Deps(
        clock=clock or utc_now,
        ids=ids or new_id,
        store=LocalFileStore(settings.part_files_root),
        bucket=NatsPartFileBucket(runtime.bus),
        inspect=partial(
            inspect_local_file,
            limits=InspectionLimits(
                seconds=settings.inspect_timeout_seconds,
                max_uncompressed_bytes=settings.inspect_max_uncompressed_bytes,
                max_ratio=settings.inspect_max_ratio,
                max_members=settings.inspect_max_members,
                max_xml_depth=settings.inspect_max_xml_depth,
            ),
        ),
        render=partial(render_check, timeout=settings.openscad_timeout_seconds, executable=settings.openscad_binary),
    )
    consumers.register(runtime.bus, make_uow, deps)
    runtime.on_start(rpc.serve(runtime.bus, make_uow))
    return runtime.create_app(
        title="printfarm skus",
        routers=[api.router(make_uow, deps, max_upload_bytes=settings.max_upload_bytes)],
    )


def main() -> None:
    settings = Settings()
    serve("skus", settings, Path(__file__).parents[2] / "alembic.ini", lambda: create_app(settings))
