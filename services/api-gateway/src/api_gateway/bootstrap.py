"""The only wiring: settings → runtime (database, NATS) → Deps (clock, ids, the access and webhook policies,
ports) → idempotency, event hub, upstreams, webhook dispatcher → routes → app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api_gateway.adapters import orm
from api_gateway.adapters.credentials_file import FirstAdminFile
from api_gateway.adapters.dead_letter_stream import JetStreamDeadLetters
from api_gateway.adapters.event_log import JetStreamEventLog
from api_gateway.adapters.passwords import Argon2Passwords
from api_gateway.adapters.upstream import Upstreams
from api_gateway.adapters.webhook_sender import HttpWebhookSender
from api_gateway.config import Settings
from api_gateway.domain import commands
from api_gateway.domain.auth import digest
from api_gateway.domain.login_throttle import LoginThrottle, ThrottlePolicy
from api_gateway.domain.webhooks import RetryPolicy, parse_allowed_hosts
from api_gateway.entrypoints import auth, dead_letters, docs, events, health, proxy, webhook_consumers, webhooks
from api_gateway.entrypoints.edge import EdgeMiddleware
from api_gateway.entrypoints.problems import install_gateway_problems
from api_gateway.service_layer import handlers
from api_gateway.service_layer.event_hub import EventHub, EventLog
from api_gateway.service_layer.handlers import Deps, TokenLifetimes
from api_gateway.service_layer.idempotency import IdempotencyKeys
from api_gateway.service_layer.ports import DeadLetterArchive, PasswordHasher
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork, UnitOfWork
from api_gateway.service_layer.webhook_dispatch import WebhookDispatcher
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.messaging import Bus
from servicekit.problems import install_problem_handlers
from servicekit.runtime import ServiceRuntime, serve
from servicekit.secrets import SecretCipher
from servicekit.storable_text import StorableText

log = logging.getLogger(__name__)

SERVICE = "api-gateway"
TITLE = "printfarm API gateway"
STATIC = Path(__file__).parent / "static"
PRUNE_EVERY_SECONDS = 3600.0


def build_app(
    settings: Settings,
    *,
    uow_factory: Callable[[], GatewayUnitOfWork],
    event_log: EventLog,
    dead_letter_archive: DeadLetterArchive,
    runtime: ServiceRuntime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    passwords: PasswordHasher | None = None,
    clock: Clock = utc_now,
    ids: IdFactory = new_id,
    serve_webhooks: bool = False,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Everything but the process's database/NATS plumbing is built here, so the unit tests build the app
    on fakes and run its lifespan without NATS; `create_app` builds it on a `ServiceRuntime`.
    `serve_webhooks`: the /webhooks routes and the dispatcher (the unit of work must hold `webhooks`)."""
    allowed_hosts = parse_allowed_hosts(settings.webhook_allowed_hosts)
    wakeup = asyncio.Event()
    deps = Deps(
        clock=clock,
        ids=ids,
        passwords=passwords
        or Argon2Passwords(concurrency=settings.password_hash_concurrency, queue=settings.password_hash_queue),
        env_token_digest=digest(settings.api_token) if settings.api_token else "",
        session_ttl=timedelta(hours=settings.session_ttl_hours),
        token_lifetimes=TokenLifetimes(
            default=timedelta(days=settings.token_default_days), longest=timedelta(days=settings.token_max_days)
        ),
        throttle=LoginThrottle(
            ThrottlePolicy(
                max_failures_per_user=settings.login_max_failures_per_user,
                max_failures_per_address=settings.login_max_failures_per_address,
                window=timedelta(seconds=settings.login_failure_window_seconds),
            )
        ),
        first_admin_file=FirstAdminFile(settings.data_dir),
        allowed_hosts=allowed_hosts,
        retry_policy=RetryPolicy(
            base=timedelta(seconds=settings.webhook_retry_base_seconds),
            longest=timedelta(seconds=settings.webhook_retry_max_seconds),
            max_attempts=settings.webhook_max_attempts,
        ),
        delivery_lease=timedelta(seconds=settings.webhook_timeout_seconds * 3),
        wake_dispatcher=wakeup.set,
        dead_letters=dead_letter_archive,
    )
    upstreams = Upstreams(
        settings.upstreams(),
        timeout=settings.upstream_timeout_seconds,
        upload_timeout=settings.upload_timeout_seconds,
        health_timeout=settings.health_timeout_seconds,
        openapi_timeout=settings.openapi_timeout_seconds,
        restart_grace=settings.upstream_restart_grace_seconds,
        transport=transport,
    )
    keys = IdempotencyKeys(
        uow_factory,
        deps.clock,
        wait_seconds=settings.idempotency_wait_seconds,
        stale_after=timedelta(seconds=settings.idempotency_stale_seconds),
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
    )
    hub = EventHub(
        event_log,
        client_queue=settings.sse_client_queue,
        max_replay=settings.sse_max_replay,
        heartbeat_seconds=settings.sse_heartbeat_seconds,
        recheck_seconds=settings.sse_recheck_seconds,
        clock=deps.clock,
    )
    deps.credentials_ended.listen(hub.end)
    authenticate = auth.authenticator(uow_factory, deps, disabled=settings.auth_disabled)
    background: list[asyncio.Task[None]] = []
    dispatcher: WebhookDispatcher | None = None
    sender: HttpWebhookSender | None = None
    if serve_webhooks:
        sender = HttpWebhookSender(timeout_seconds=settings.webhook_timeout_seconds, transport=webhook_transport)
        dispatcher = WebhookDispatcher(uow_factory, sender, deps, wakeup=wakeup)

    async def start() -> None:
        if not settings.auth_disabled:
            first_admin = commands.EnsureFirstAdmin(settings.first_admin_username, settings.first_admin_password)
            await handlers.ensure_first_admin(first_admin, uow_factory(), deps)
            await deps.unknown_user_hash.get(deps.hasher, deps.secrets)
        await hub.start()
        background.append(asyncio.create_task(_prune_forever(keys), name="idempotency-prune"))
        if dispatcher is not None:
            background.append(asyncio.create_task(dispatcher.run_forever(), name="webhook-dispatch"))

    async def stop() -> None:
        for task in background:
            task.cancel()
        await hub.stop()
        await upstreams.aclose()
        if sender is not None:
            await sender.aclose()

    def own_document() -> dict[str, Any]:
        document = app.openapi()
        webhooks.state_allowed_hosts(document, allowed_hosts)
        return document

    routers = [
        auth.router(
            uow_factory,
            deps,
            authenticate,
            cookie_secure=settings.secure_cookies(),
            session_seconds=int(settings.session_ttl_hours * 3600),
        ),
        auth.users_router(uow_factory, deps, authenticate),
        health.router(upstreams, settings.health_probes),
        events.router(hub, authenticate),
        dead_letters.router(uow_factory, deps, authenticate),
        *([webhooks.router(uow_factory, deps, authenticate)] if serve_webhooks else []),
        docs.router(upstreams, own_document),
        proxy.router(
            upstreams,
            keys,
            authenticate,
            max_json_bytes=settings.max_json_bytes,
            max_upload_bytes=settings.max_upload_bytes,
        ),
    ]
    if runtime is not None:
        runtime.on_start(start)
        runtime.on_stop(stop)
        app = runtime.create_app(title=TITLE, routers=routers)
    else:

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await start()
            try:
                yield
            finally:
                await stop()

        app = FastAPI(title=TITLE, lifespan=lifespan, dependencies=[StorableText])
        install_problem_handlers(app)

        @app.get("/health", include_in_schema=False)
        async def own_health() -> JSONResponse:
            return JSONResponse({"status": "ok"})

        for router in routers:
            app.include_router(router)
    install_gateway_problems(app)
    _point_default_docs_at_the_merged_ones(app)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="ui")
    app.add_middleware(EdgeMiddleware, hsts_seconds=settings.hsts_seconds, behind_tls=settings.behind_tls)
    app.state.hub, app.state.deps, app.state.keys = hub, deps, keys
    app.state.webhook_dispatcher = dispatcher
    return app


def _point_default_docs_at_the_merged_ones(app: FastAPI) -> None:
    """FastAPI's own /docs would describe only the gateway; the whole API is at /api/docs."""
    defaults = {"/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in defaults]

    @app.get("/docs", include_in_schema=False)
    async def docs() -> RedirectResponse:
        return RedirectResponse("/api/docs")


async def _prune_forever(keys: IdempotencyKeys) -> None:
    while True:
        try:
            removed = await keys.prune()
            if removed:
                log.info("forgot %s expired idempotency keys", removed)
        except Exception:
            log.exception("pruning idempotency keys failed")
        await asyncio.sleep(PRUNE_EVERY_SECONDS)


def create_app(
    settings: Settings | None = None,
    *,
    uow_factory: Callable[[], GatewayUnitOfWork] | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    event_log: EventLog | None = None,
    dead_letter_archive: DeadLetterArchive | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    passwords: PasswordHasher | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The gateway process's app: what is given replaces the real one (tests give fakes), the rest is built
    from `settings` on a `ServiceRuntime` (PostgreSQL, NATS)."""
    settings = settings or Settings()
    runtime = ServiceRuntime(SERVICE, settings, orm.outbox, orm.inbox, bus=bus)
    secrets = SecretCipher.from_settings(
        settings.webhook_secret_key, settings.data_dir, setting="WEBHOOK_SECRET_KEY", key_file="webhook-secret.key"
    )

    def sql_uow() -> UnitOfWork:
        return UnitOfWork(secrets=secrets, **runtime.uow_args())

    uows: Callable[[], GatewayUnitOfWork] = uow_factory or sql_uow

    async def seal_webhook_secrets() -> None:
        """Before anything is sent: registered ahead of the app's own start (which starts the dispatcher)."""
        sealed = await handlers.seal_webhook_secrets(commands.SealWebhookSecrets(), uows(), app.state.deps)
        if sealed:
            log.info("encrypted %s webhook secrets under the newest WEBHOOK_SECRET_KEY", sealed)

    runtime.on_start(seal_webhook_secrets)
    app = build_app(
        settings,
        uow_factory=uows,
        event_log=event_log or JetStreamEventLog(runtime.bus),
        dead_letter_archive=dead_letter_archive or JetStreamDeadLetters(runtime.bus),
        runtime=runtime,
        transport=transport,
        passwords=passwords,
        clock=clock or utc_now,
        ids=ids or new_id,
        serve_webhooks=True,
        webhook_transport=webhook_transport,
    )
    deps: Deps = app.state.deps
    # The bus's consumers take the SQL unit of work's type; a test's fake stands in for it the same way.
    consumer_uows = cast(Callable[[], UnitOfWork], uows) if uow_factory is not None else sql_uow
    webhook_consumers.register(runtime.bus, consumer_uows, deps)
    return app


def main() -> None:
    settings = Settings()
    serve(SERVICE, settings, Path(__file__).parents[2] / "alembic.ini", lambda: create_app(settings))
