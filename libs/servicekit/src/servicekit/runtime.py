"""Everything a service process runs besides its own code: engine, bus, outbox relay, the FastAPI
app's lifespan, and the pre-start migration step. Each service's bootstrap builds one of these."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import APIRouter, FastAPI

from servicekit.collector import tune_gc
from servicekit.database import create_engine, migrations_at_head, run_migrations, session_factory
from servicekit.health import Check, health_router
from servicekit.inbox import Inbox
from servicekit.logging import configure_logging
from servicekit.messaging import Bus
from servicekit.metrics import HttpMetricsMiddleware, ServiceMetrics
from servicekit.outbox import Outbox, OutboxRelay
from servicekit.problems import install_problem_handlers
from servicekit.settings import ServiceSettings
from servicekit.storable_text import StorableText
from servicekit.thread_switching import tune_thread_switching
from servicekit.tracing import configure_tracing, instrument_app, instrument_engine, shutdown_tracing, tracing_enabled

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]

KEEP_ALIVE_SECONDS = 75
"""How long a service keeps an idle HTTP connection open: longer than its clients keep one in their pools (the
API gateway, 30 s), so a client never sends on a connection the service is closing at that moment (with
both at 5 s, a request now and then met a closed connection and the gateway answered 503)."""


def http_server_options(host: str, port: int) -> dict[str, Any]:
    """How every HTTP listener of a service is served. Each request runs in a fresh context: uvicorn otherwise
    starts a request that arrived while the previous one on the connection was finishing (pipelined, or sent
    the moment the previous response's bytes were in) from inside that request's task, so it inherited that
    request's context variables: its server span became the next request's parent (one click's trace then
    hung under the order created before it) and its correlation id was logged on the next request's lines."""
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "reset_contextvars": True,
    }


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        outbox_table: sa.Table,
        inbox_table: sa.Table,
        *,
        bus: Bus | None = None,
    ) -> None:
        """`bus` replaces the NATS bus the settings describe (a bootstrap's `create_app(bus=...)`)."""
        self.name, self.settings = name, settings
        self.instance = settings.service_instance or name
        self.metrics = ServiceMetrics(name, self.instance)
        """Services add their domain metrics here (`metrics.gauge(...)`, `metrics.on_scrape(...)`)."""
        self.engine = create_engine(settings.database_url)
        if tracing_enabled():
            instrument_engine(self.engine)
        self.sessions = session_factory(self.engine)
        self.bus = bus or Bus(
            settings.nats_url,
            name,
            max_deliver=settings.consumer_max_deliver,
            ack_wait=settings.consumer_ack_wait_seconds,
            tls_ca_file=settings.nats_tls_ca_file,
            metrics=self.metrics,
        )
        self.outbox = Outbox(outbox_table, source=f"/services/{name}")
        self.inbox = Inbox(inbox_table)
        self.relay = OutboxRelay(
            self.sessions,
            outbox_table,
            self.bus.publish,
            batch_size=settings.relay_batch_size,
            idle_poll_seconds=settings.relay_idle_poll_seconds,
            in_flight=settings.relay_in_flight,
            metrics=self.metrics,
            publish_encoded=self.bus.publish_encoded,
        )
        self.metrics.on_scrape("outbox", lambda: self.relay.refresh_backlog(self.metrics))
        self.metrics.on_scrape("consumers", self.bus.refresh_consumer_lag)
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []

    def uow_args(self) -> dict[str, Any]:
        """Arguments for `SqlUnitOfWork` subclasses: a commit that emitted messages hands them to the relay,
        which publishes them at once (or wakes up for them)."""
        return {
            "sessions": self.sessions, "outbox": self.outbox, "inbox": self.inbox, "on_commit": self.relay.wake,
            "publish_committed": self.relay.publish_committed,
        }

    def on_start(self, hook: Hook) -> None:
        """Run after NATS is connected and before consumers start."""
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._on_stop.append(hook)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.bus.connect()
        for hook in self._on_start:
            await hook()
        self.relay.start()
        await self.bus.start()
        metrics_server = self._start_metrics_listener()
        log.info("%s started", self.instance)
        try:
            yield
        finally:
            if metrics_server is not None:
                server, task = metrics_server
                server.should_exit = True
                await _bounded(task, "stopping the metrics listener")
            for hook in reversed(self._on_stop):
                await _bounded(hook(), "stop hook")
            await _bounded(self.bus.close(), "closing the bus")
            await _bounded(self.relay.stop(), "stopping the outbox relay")
            await _bounded(self.engine.dispose(), "closing the database pool")

    def _start_metrics_listener(self) -> tuple[uvicorn.Server, asyncio.Task[None]] | None:
        if not self.settings.metrics_port:
            return None
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        app.include_router(self.metrics.router())
        options = http_server_options(self.settings.host, self.settings.metrics_port)
        server = _SideServer(uvicorn.Config(app, lifespan="off", **options))
        return server, asyncio.create_task(server.serve(), name="metrics-listener")

    def create_app(
        self,
        *,
        title: str,
        routers: Sequence[APIRouter],
        health_checks: dict[str, Check] | None = None,
    ) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with self.running():
                yield

        app = FastAPI(title=title, lifespan=lifespan, dependencies=[StorableText])
        install_problem_handlers(app)
        app.include_router(health_router(self.engine, self.bus, health_checks))
        if not self.settings.metrics_port:
            app.include_router(self.metrics.router())
        app.add_middleware(HttpMetricsMiddleware, metrics=self.metrics)
        if tracing_enabled():
            instrument_app(app)
        for router in routers:
            app.include_router(router)
        return app


class _SideServer(uvicorn.Server):
    """A second listener in the same process and event loop; the main server keeps the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(service: str, settings: ServiceSettings, alembic_ini: Path, app_factory: Callable[[], FastAPI]) -> None:
    """The process entry point. `python -m <svc>` migrates then serves until SIGTERM/SIGINT;
    `migrate` only migrates (the Kubernetes migration Job); `wait-for-migrations` blocks until another
    process has migrated (the init container, so a pod never serves an old schema)."""
    instance = settings.service_instance or service
    configure_logging(service, settings.log_level, instance=instance, fmt=settings.log_format)
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "wait-for-migrations":
        asyncio.run(_wait_for_migrations(alembic_ini, settings.database_url))
        return
    if command not in ("serve", "migrate"):
        raise SystemExit(f"usage: python -m {service} [serve|migrate|wait-for-migrations]")
    if command == "migrate" or settings.migrate_on_start:
        run_migrations(alembic_ini, settings.database_url)
    if command == "migrate":
        return
    configure_tracing(service, instance)
    tune_gc()
    tune_thread_switching()
    uvicorn.run(app_factory(), timeout_graceful_shutdown=10, **http_server_options(settings.host, settings.port))
    shutdown_tracing()


async def _wait_for_migrations(alembic_ini: Path, database_url: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not await migrations_at_head(alembic_ini, database_url):
        if time.monotonic() > deadline:
            raise SystemExit("the database schema did not reach head in time; is the migration Job failing?")
        log.info("waiting for the migration job to bring the schema to head")
        await asyncio.sleep(2)


STOP_STEP_SECONDS = 5.0
"""A shutdown step that cannot finish (NATS or the database unreachable) must not keep the process alive."""


async def _bounded(step: Awaitable[None], what: str) -> None:
    try:
        await asyncio.wait_for(step, timeout=STOP_STEP_SECONDS)
    except TimeoutError:
        log.warning("%s did not finish within %ss; going on with shutdown", what, STOP_STEP_SECONDS)
    except Exception:
        log.exception("%s failed during shutdown", what)
