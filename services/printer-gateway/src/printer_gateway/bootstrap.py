"""The only place the printer gateway is wired together."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from printer_gateway.adapters import orm
from printer_gateway.adapters.drivers import use_blocking_io_threads
from printer_gateway.adapters.leases import LeaseTable
from printer_gateway.adapters.part_files import PartFiles
from printer_gateway.config import Settings
from printer_gateway.domain import commands
from printer_gateway.entrypoints import analytics, api, consumers
from printer_gateway.entrypoints.metrics import GatewayMetrics
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.fleet import Fleet
from printer_gateway.service_layer.handlers import Deps
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.messaging import Bus
from servicekit.runtime import ServiceRuntime, serve
from servicekit.secrets import SecretCipher

SERVICE = "printer-gateway"
log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    uow_factory: Callable[[], PrinterGatewayUnitOfWork] | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> FastAPI:
    """The gateway's app; what is given replaces the real one (a test's fake unit of work, bus, clock, ids)."""
    settings = settings or Settings()
    instance = settings.service_instance or f"{SERVICE}-{socket.gethostname()}-{os.getpid()}"
    runtime = ServiceRuntime(SERVICE, settings, orm.outbox, orm.inbox, bus=bus)

    def sql_uow() -> PrinterGatewayUnitOfWork:
        return PrinterGatewayUnitOfWork(**runtime.uow_args())

    uows = uow_factory or sql_uow
    cipher = SecretCipher.from_settings(
        settings.printer_secret_key, settings.data_dir, setting="PRINTER_SECRET_KEY", key_file="printer-secret.key"
    )
    deps = Deps(clock=clock or utc_now, ids=ids or new_id, cipher=cipher)
    leases = LeaseTable(runtime.bus, instance, settings.lease_ttl_seconds, settings.replica_ttl_seconds)
    fleet = Fleet(settings, instance, uows, leases, cipher, PartFiles(runtime.bus), deps)
    GatewayMetrics(runtime.metrics, runtime.sessions, lambda: len(fleet.held))
    serve_forwarded = consumers.register(runtime.bus, uows, fleet, deps)

    async def reencrypt_access_codes() -> None:
        rewritten = await handlers.reencrypt_access_codes(commands.ReencryptAccessCodes(), uows(), deps)
        if rewritten:
            log.info("re-encrypted %s printer access codes under the newest PRINTER_SECRET_KEY", rewritten)

    async def size_blocking_io() -> None:
        use_blocking_io_threads(settings.blocking_io_threads)

    runtime.on_start(size_blocking_io)
    runtime.on_start(reencrypt_access_codes)
    runtime.on_start(serve_forwarded)
    runtime.on_start(fleet.start)
    runtime.on_stop(fleet.stop)
    return runtime.create_app(
        title="printfarm printer gateway",
        routers=[
            api.router(uows, deps, fleet.wake, fleet.camera_snapshot),
            analytics.router(uows, deps.clock),
        ],
    )


def main() -> None:
    settings = Settings()
    serve(SERVICE, settings, Path(__file__).resolve().parents[2] / "alembic.ini", lambda: create_app(settings))
