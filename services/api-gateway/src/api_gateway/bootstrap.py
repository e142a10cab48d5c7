"""The only wiring: settings → runtime (database, NATS) → idempotency, access, event hub, upstreams → app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

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
from api_gateway.domain.login_throttle import ThrottlePolicy
from api_gateway.domain.webhooks import RetryPolicy, parse_allowed_hosts
from api_gateway.entrypoints import auth, dead_letters, docs, events, health, proxy, webhook_consumers, webhooks
from api_gateway.entrypoints.edge import EdgeMiddleware
from api_gateway.entrypoints.problems import install_gateway_problems
from api_gateway.service_layer.access import Access, PasswordHasher, TokenLifetimes
from api_gateway.service_layer.dead_letters import DeadLetterArchive, DeadLetters
from api_gateway.service_layer.event_hub import EventHub, EventLog
from api_gateway.service_layer.idempotency import IdempotencyKeys
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork, UnitOfWork
from api_gateway.service_layer.webhooks import WebhookDispatcher, Webhooks, WebhookUnitOfWork, seal_secrets
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.problems import install_problem_handlers
from servicekit.runtime import ServiceRuntime, serve
from servicekit.secrets import SecretCipher
from servicekit.storable_text import StorableText

log = logging.getLogger(__name__)

SERVICE = "api-gateway"
TITLE = "printfarm API gateway"
STATIC = Path(__file__).parent / "static"
PRUNE_EVERY_SECONDS = 3600.0


def _secret() -> str:
    return secrets.token_urlsafe(32)


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
    webhook_uow_factory: Callable[[], WebhookUnitOfWork] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Everything but the process's database/NATS plumbing is built here, so tests inject fakes."""
    upstreams = Upstreams(
        settings.upstreams(),
        timeout=settings.upstream_timeout_seconds,
        upload_timeout=settings.upload_timeout_seconds,
        health_timeout=settings.health_timeout_seconds,
        openapi_timeout=settings.openapi_timeout_seconds,
        transport=transport,
    )
    keys = IdempotencyKeys(
        uow_factory,
        clock,
        wait_seconds=settings.idempotency_wait_seconds,
        stale_after=timedelta(seconds=settings.idempotency_stale_seconds),
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
    )
    access = Access(
        uow_factory,
        passwords
        or Argon2Passwords(concurrency=settings.password_hash_concurrency, queue=settings.password_hash_queue),
        secrets=_secret,
        ids=ids,
        clock=clock,
        env_token=settings.api_token,
        session_ttl=timedelta(hours=settings.session_ttl_hours),
        token_lifetimes=TokenLifetimes(
            default=timedelta(days=settings.token_default_days), longest=timedelta(days=settings.token_max_days)
        ),
        throttle=ThrottlePolicy(
            max_failures_per_user=settings.login_max_failures_per_user,
            max_failures_per_address=settings.login_max_failures_per_address,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        ),
        first_admin_file=FirstAdminFile(settings.data_dir),
    )
    hub = EventHub(
        event_log,
        client_queue=settings.sse_client_queue,
        max_replay=settings.sse_max_replay,
        heartbeat_seconds=settings.sse_heartbeat_seconds,
        recheck_seconds=settings.sse_recheck_seconds,
        clock=clock,
    )
    access.on_credentials_ended(hub.end)
    authenticate = auth.authenticator(access, disabled=settings.auth_disabled)
    background: list[asyncio.Task[None]] = []
    dispatcher: WebhookDispatcher | None = None
    sender: HttpWebhookSender | None = None
    hooks: Webhooks | None = None
    if webhook_uow_factory is not None:
        sender = HttpWebhookSender(timeout_seconds=settings.webhook_timeout_seconds, transport=webhook_transport)
        dispatcher = WebhookDispatcher(
            webhook_uow_factory,
            sender,
            clock=clock,
            policy=RetryPolicy(
                base=timedelta(seconds=settings.webhook_retry_base_seconds),
                longest=timedelta(seconds=settings.webhook_retry_max_seconds),
                max_attempts=settings.webhook_max_attempts,
            ),
            lease=timedelta(seconds=settings.webhook_timeout_seconds * 3),
            allowed_hosts=parse_allowed_hosts(settings.webhook_allowed_hosts),
        )
        hooks = Webhooks(
            webhook_uow_factory,
            clock=clock,
            ids=ids,
            wake=dispatcher.wake,
            allowed_hosts=parse_allowed_hosts(settings.webhook_allowed_hosts),
        )

    async def start() -> None:
        if not settings.auth_disabled:
            await access.ensure_first_admin(settings.first_admin_username, settings.first_admin_password)
            await access.prepare()
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
        webhooks.state_allowed_hosts(document, parse_allowed_hosts(settings.webhook_allowed_hosts))
        return document

    routers = [
        auth.router(
            access,
            authenticate,
            cookie_secure=settings.secure_cookies(),
            session_seconds=int(settings.session_ttl_hours * 3600),
        ),
        auth.users_router(access, authenticate),
        health.router(upstreams, settings.health_probes),
        events.router(hub, authenticate),
        dead_letters.router(DeadLetters(dead_letter_archive), authenticate),
        *([webhooks.router(hooks, authenticate)] if hooks is not None else []),
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
    app.state.hub, app.state.access, app.state.keys = hub, access, keys
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(SERVICE, settings, orm.outbox, orm.inbox)
    secrets = SecretCipher.from_settings(
        settings.webhook_secret_key, settings.data_dir, setting="WEBHOOK_SECRET_KEY", key_file="webhook-secret.key"
    )

    def uow_factory() -> UnitOfWork:
        return UnitOfWork(secrets=secrets, **runtime.uow_args())

    async def seal_webhook_secrets() -> None:
        sealed = await seal_secrets(uow_factory())
        if sealed:
            log.info("encrypted %s webhook secrets under the newest WEBHOOK_SECRET_KEY", sealed)

    runtime.on_start(seal_webhook_secrets)

    app = build_app(
        settings,
        uow_factory=uow_factory,
        event_log=JetStreamEventLog(runtime.bus),
        dead_letter_archive=JetStreamDeadLetters(runtime.bus),
        runtime=runtime,
        webhook_uow_factory=uow_factory,
    )
    dispatcher: WebhookDispatcher = app.state.webhook_dispatcher
    webhook_consumers.register(runtime.bus, uow_factory, utc_now, new_id, dispatcher.wake)
    return app


def main() -> None:
    settings = Settings()
    serve(SERVICE, settings, Path(__file__).parents[2] / "alembic.ini", lambda: create_app(settings))
