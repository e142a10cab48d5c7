"""The only place the printer gateway is wired together."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from fastapi import FastAPI

from printer_gateway.adapters import orm
from printer_gateway.adapters.leases import LeaseTable
from printer_gateway.adapters.part_files import PartFiles
from printer_gateway.config import Settings
from printer_gateway.entrypoints import analytics, api, consumers
from printer_gateway.entrypoints.metrics import GatewayMetrics
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.fleet import Fleet
from printer_gateway.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import new_id, utc_now
from servicekit.runtime import ServiceRuntime, serve
from servicekit.secrets import SecretCipher

SERVICE = "printer-gateway"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    instance = settings.service_instance or f"{SERVICE}-{socket.gethostname()}-{os.getpid()}"
    runtime = ServiceRuntime(SERVICE, settings, orm.outbox, orm.inbox)

    def uow_factory() -> UnitOfWork:
        return UnitOfWork(**runtime.uow_args())

    cipher = SecretCipher.from_settings(
        settings.printer_secret_key, settings.data_dir, setting="PRINTER_SECRET_KEY", key_file="printer-secret.key"
    )
    leases = LeaseTable(runtime.bus, instance, settings.lease_ttl_seconds)
    fleet = Fleet(settings, instance, uow_factory, leases, cipher, PartFiles(runtime.bus), utc_now)
    GatewayMetrics(runtime.metrics, runtime.sessions, lambda: len(fleet.held))
    serve_forwarded = consumers.register(runtime.bus, uow_factory, fleet, utc_now)

    async def reencrypt_access_codes() -> None:
        rewritten = await handlers.reencrypt_access_codes(uow_factory(), cipher)
        if rewritten:
            log.info("re-encrypted %s printer access codes under the newest PRINTER_SECRET_KEY", rewritten)

    runtime.on_start(reencrypt_access_codes)
    runtime.on_start(serve_forwarded)
    runtime.on_start(fleet.start)
    runtime.on_stop(fleet.stop)
    return runtime.create_app(
        title="printfarm printer gateway",
        routers=[
            api.router(uow_factory, cipher, utc_now, new_id, fleet.wake, fleet.camera_snapshot),
            analytics.router(uow_factory, utc_now),
        ],
    )


def main() -> None:
    settings = Settings()
    serve(SERVICE, settings, Path(__file__).resolve().parents[2] / "alembic.ini", lambda: create_app(settings))
