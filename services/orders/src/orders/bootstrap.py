"""The only place that wires the orders service together."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from orders.adapters import orm
from orders.adapters.sku_catalogue import SkuCatalogueClient
from orders.config import Settings
from orders.domain.model import OrderLimits
from orders.entrypoints import api, consumers, schemas
from orders.service_layer.handlers import Deps
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.messaging import Bus
from servicekit.runtime import ServiceRuntime, serve

ALEMBIC_INI = Path(__file__).parents[2] / "alembic.ini"


def create_app(
    settings: Settings | None = None,
    *,
    uow_factory: Callable[[], UnitOfWork] | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> FastAPI:
    """Each part given replaces the real one (tests pass a fake unit of work, a fixed clock, known ids)."""
    settings = settings or Settings()
    runtime = ServiceRuntime("orders", settings, orm.outbox, orm.inbox, bus=bus)

    def sql_uow() -> UnitOfWork:
        return UnitOfWork(**runtime.uow_args())

    new_uow = uow_factory or sql_uow
    catalogue = SkuCatalogueClient(runtime.bus, settings.sku_request_timeout_seconds)
    limits = OrderLimits(
        max_jobs=settings.order_max_jobs,
        max_line_items=settings.order_max_line_items,
        max_quantity=settings.line_item_max_quantity,
    )
    deps = Deps(clock=clock or utc_now, ids=ids or new_id, fetch_skus=catalogue.fetch, limits=limits)
    consumers.register(runtime.bus, new_uow, deps)
    app = runtime.create_app(title="printfarm orders", routers=[api.router(new_uow, deps)])
    schemas.state_limits(app.openapi(), limits)  # FastAPI keeps the document it made: this is the one served
    return app


def main() -> None:
    settings = Settings()
    serve("orders", settings, ALEMBIC_INI, lambda: create_app(settings))
