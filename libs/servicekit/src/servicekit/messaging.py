"""The bus: JetStream streams, publishing with `Nats-Msg-Id`, idempotent consumers, claim checks,
dead letters and request/reply.

Consumers use FastStream pull subscriptions with manual acks: a message is acked only after the
transaction that applied it (and recorded it in the inbox) committed. A handler that raises is
redelivered with backoff up to `max_deliver` times, then the message goes to
`deadletter.<service>.<durable>` with the error (see `dead_letters`).

Least privilege (`contracts.bus_access`): a service manages only its own stream and buckets (it may
create a stream it reads before its owner starts, never change one), replies to itself under a private
inbox prefix and keeps its claim checks in a bucket of its own.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.errors
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from faststream.security import BaseSecurity
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, ObjectStoreConfig, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from contracts.bus_access import claim_check_bucket, consumer, inbox_prefix, owners_read_by
from contracts.envelope import (
    DEAD_LETTER_PREFIX,
    MAX_INLINE_PAYLOAD,
    ContractMessage,
    Envelope,
)
from contracts.registry import DEAD_LETTER_STREAM, SERVICE_PREFIXES, STREAMS, stream_subjects
from servicekit import tracing
from servicekit.dead_letters import dead_letter_headers
from servicekit.inbox import DuplicateDelivery, InboxClaim
from servicekit.logging import correlation_id
from servicekit.metrics import ServiceMetrics
from servicekit.outbox import encode
from servicekit.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)

M = TypeVar("M", bound=ContractMessage)
U = TypeVar("U", bound=SqlUnitOfWork)
R = TypeVar("R", bound=BaseModel)

Handler = Callable[[M, Envelope, U], Awaitable[None]]

STREAM_MAX_AGE_SECONDS = 14 * 24 * 3600


def fetch_timeouts_as_nats_timeouts() -> None:
    """nats-py (2.16) ends a fetch whose deadline ran out while its first probe was answered with a bare
    `TimeoutError`, not its own `nats.errors.TimeoutError` (a subclass of it). FastStream's pull loop
    suppresses only nats' own, so its supervisor logged an ERROR with a traceback and restarted the
    loop: seen on every service as `make run` started on a busy machine. The fetch's timeout is re-raised
    as nats' own; nothing else changes. Idempotent."""
    original = JetStreamContext.PullSubscription.fetch
    if getattr(original, "printfarm_shim", False):
        return

    @functools.wraps(original)
    async def fetch(self: JetStreamContext.PullSubscription, *args: Any, **kwargs: Any) -> list[Msg]:
        try:
            return await original(self, *args, **kwargs)
        except nats.errors.TimeoutError:
            raise
        except TimeoutError as error:
            raise nats.errors.TimeoutError from error

    fetch.printfarm_shim = True  # type: ignore[attr-defined]
    JetStreamContext.PullSubscription.fetch = fetch  # type: ignore[method-assign]
DUPLICATE_WINDOW_SECONDS = 15 * 60


async def _the_message(message: NatsMessage) -> NatsMessage:
    """A subscriber's "decoded body" is the message itself: the bus decodes the envelope on its own."""
    return message


def owner_stream_config(owner: str) -> StreamConfig:
    return StreamConfig(
        name=STREAMS[owner],
        subjects=stream_subjects(owner),
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=STREAM_MAX_AGE_SECONDS,
        max_msg_size=1024 * 1024,
    )


def dead_letter_stream_config() -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=STREAM_MAX_AGE_SECONDS,
    )


def stream_configs() -> list[StreamConfig]:
    return [owner_stream_config(owner) for owner in STREAMS] + [dead_letter_stream_config()]


def tls_context(ca_file: str | None) -> ssl.SSLContext | None:
    """TLS to NATS trusting `ca_file` (the cluster's own CA); None: whatever the URL and server say."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


class Bus:
    """One per process: a nats-py connection for publishing, object stores and request/reply, and a
    FastStream broker for durable consumers."""

    def __init__(
        self,
        nats_url: str,
        service: str,
        *,
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        tls_ca_file: str | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.nats_url, self.service = nats_url, service
        self.metrics = metrics or ServiceMetrics(service, service)
        self.max_deliver, self.ack_wait = max_deliver, ack_wait
        self.inbox_prefix = inbox_prefix(service)
        self._tls = tls_context(tls_ca_file)
        fetch_timeouts_as_nats_timeouts()
        self.broker = NatsBroker(
            nats_url,
            graceful_timeout=10.0,
            logger=logging.getLogger("faststream"),
            log_level=logging.DEBUG,
            # Handlers take the message itself (`_the_message`): FastDepends resolved a `NatsMessage` argument
            # through a worker thread, a thread hop and an anyio task group for every delivery.
            apply_types=False,
            inbox_prefix=self.inbox_prefix,
            security=BaseSecurity(ssl_context=self._tls) if self._tls else None,
        )
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._consumed_streams: set[str] = set()
        self.dead_lettered = 0
        self.durables: dict[str, str] = {}
        """Durable consumer name → its stream, for the lag gauges."""

    @property
    def deployed(self) -> bool:
        """A service of `contracts.registry` (with its own NATS user), not a test probe or a tool."""
        return self.service in SERVICE_PREFIXES

    @property
    def owner(self) -> str | None:
        return SERVICE_PREFIXES.get(self.service)

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("bus not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus not connected")
        return self._js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def connect_options(self, name: str | None = None) -> dict[str, Any]:
        """What `connect` gives nats-py, for another connection of this process's own (one a thread keeps on an
        event loop of its own): the same server, credentials, TLS and reply inbox."""
        return {
            "servers": self.nats_url,
            "name": name or self.service,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 1,
            "inbox_prefix": self.inbox_prefix,
            "tls": self._tls,
        }

    async def connect(self) -> None:
        self._nc = await nats.connect(**self.connect_options())
        self._js = self._nc.jetstream(timeout=10)
        await self.ensure_streams()

    async def start(self) -> None:
        """Start consumers; call after every `consume`/`serve` was declared."""
        if self._consumed_streams:
            await self._ensure_dead_letter_stream()
        await self.broker.start()

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        try:
            await asyncio.wait_for(self.broker.stop(), timeout=5)
        except TimeoutError:
            log.warning("consumers did not stop within 5 s")
        if nc is not None:
            try:
                await asyncio.wait_for(nc.drain(), timeout=5)
            except Exception:
                await nc.close()

    async def ensure_streams(self) -> None:
        """A service sets up and updates its own stream, and creates a stream it reads if its owner has
        not started yet (with the owner's configuration, from the contracts; never changing one that
        exists). A process that is not a deployed service (a test probe, a tool) sets up every stream,
        as an administrator would."""
        if not self.deployed:
            owned, read = list(STREAMS), []
        else:
            owned = [self.owner] if self.owner is not None else []
            read = [owner for owner in owners_read_by(self.service) if owner != self.owner]
        for owner in owned:
            config = owner_stream_config(owner)
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)
        if not self.deployed:
            await self._ensure_dead_letter_stream()
        for owner in read:
            await self._create_if_missing(owner_stream_config(owner))

    async def _create_if_missing(self, config: StreamConfig) -> None:
        assert config.name is not None
        try:
            await self.js.stream_info(config.name)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.stream_info(config.name)  # made meanwhile by its owner or another reader

    async def _ensure_dead_letter_stream(self) -> None:
        """Shared by every consumer; created by whoever comes first, never changed by a service."""
        await self._create_if_missing(dead_letter_stream_config())

    async def object_store(self, bucket: str, *, ttl_seconds: float | None = None) -> Any:
        """A bucket this service writes (and so may create)."""
        try:
            return await self.js.object_store(bucket)
        except NotFoundError:
            try:
                return await self.js.create_object_store(
                    bucket, config=ObjectStoreConfig(bucket=bucket, ttl=ttl_seconds)
                )
            except BadRequestError:
                return await self.js.object_store(bucket)

    async def readable_object_store(self, bucket: str) -> Any:
        """A bucket another service writes: raises NotFoundError until its writer has made it."""
        return await self.js.object_store(bucket)

    async def publish(self, envelope: Envelope) -> None:
        """Publish to JetStream and wait for the stream's ack. Oversized payloads go by claim check."""
        payload = encode(envelope)
        if len(payload) > MAX_INLINE_PAYLOAD:
            owner = envelope.type.split(".", 1)[0]
            store = await self.object_store(claim_check_bucket(owner), ttl_seconds=STREAM_MAX_AGE_SECONDS)
            await store.put(envelope.id, json.dumps(envelope.data).encode())
            payload = encode(envelope.model_copy(update={"data": None, "dataref": envelope.id}))
        headers = {"Nats-Msg-Id": envelope.id}
        if envelope.traceparent:
            headers["traceparent"] = envelope.traceparent
        await self.js.publish(envelope.type, payload, headers=headers, timeout=10)

    async def publish_encoded(self, subject: str, message_id: str, payload: bytes, traceparent: str | None) -> None:
        """`publish` for an envelope already serialised (an outbox row's JSON, its id and subject beside it),
        which must fit inline: the relay sends big backlogs without decoding and re-encoding every row."""
        if len(payload) > MAX_INLINE_PAYLOAD:
            raise ValueError(f"envelope {message_id} is over the inline limit: publish it as an Envelope")
        headers = {"Nats-Msg-Id": message_id}
        if traceparent:
            headers["traceparent"] = traceparent
        await self.js.publish(subject, payload, headers=headers, timeout=10)

    async def resolve(self, envelope: Envelope) -> Envelope:
        if envelope.dataref is None:
            return envelope
        owner = envelope.type.split(".", 1)[0]
        if owner == self.owner or not self.deployed:
            store = await self.object_store(claim_check_bucket(owner), ttl_seconds=STREAM_MAX_AGE_SECONDS)
        else:
            store = await self.readable_object_store(claim_check_bucket(owner))
        result = await store.get(envelope.dataref)
        return envelope.with_data(json.loads(result.data))

    def consume(
        self,
        message_type: type[M],
        durable: str,
        handler: Handler[M, U],
        uow_factory: Callable[[], U],
        *,
        deliver_new_only: bool = False,
        claim_in_handler: bool = False,
    ) -> None:
        """Apply `message_type` messages exactly once per `durable` consumer, acking after commit. A
        deployed service's consumers are declared in `contracts.bus_access` (its NATS user allows those).
        With `claim_in_handler` the handler's first statement carries the inbox claim (`uow.inbox_claim`,
        `inbox.claiming`): a round trip fewer on a latency path (a printer turning ready). A handler that ran no
        such statement is claimed after it; a duplicate is rolled back either way."""
        owner = message_type.subject_owner()
        if self.deployed and consumer(self.service, durable).message is not message_type:
            raise KeyError(f"{durable} is declared for another message in contracts.bus_access.CONSUMERS")
        self._consumed_streams.add(STREAMS[owner])
        metrics = self.metrics
        self.durables[durable] = STREAMS[owner]

        async def on_message(msg: NatsMessage) -> None:
            raw: Msg = msg.raw_message
            started = time.perf_counter()
            if raw.metadata.num_delivered > 1:
                metrics.redeliveries.labels(durable).inc()
            try:
                envelope = await self.resolve(Envelope.model_validate_json(raw.data))
                message = envelope.open(message_type)
            except Exception as exc:
                await self._dead_letter(raw, durable, f"undecodable: {exc}")
                metrics.deliveries.labels(durable, "dead_letter").inc()
                return
            correlation = correlation_id.set(envelope.correlationid or envelope.id)
            try:
                with tracing.span(
                    f"process {envelope.type}",
                    kind=SpanKind.CONSUMER,
                    parent=envelope.traceparent or (raw.headers or {}).get("traceparent") or "",
                    attributes={
                        "messaging.system": "nats",
                        "messaging.destination.name": raw.subject,
                        "messaging.consumer.group.name": durable,
                        "messaging.message.id": envelope.id,
                        "messaging.message.conversation_id": envelope.correlationid or envelope.id,
                    },
                ) as span:
                    outcome = await self._apply(
                        raw, envelope, message, durable, handler, uow_factory, claim_in_handler=claim_in_handler
                    )
                    span.set_attribute("printfarm.outcome", outcome)
                    if outcome in ("retry", "dead_letter"):
                        tracing.mark_failed(span, outcome)
            finally:
                correlation_id.reset(correlation)
            metrics.deliveries.labels(durable, outcome).inc()
            if outcome == "duplicate":
                metrics.inbox_duplicates.labels(durable).inc()
            metrics.handler_duration.labels(durable).observe(time.perf_counter() - started)

        self.broker.subscriber(
            message_type.SUBJECT,
            stream=JStream(STREAMS[owner], declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=100, timeout=1.0),
            inbox_prefix=f"{self.inbox_prefix}.".encode(),
            ack_policy=AckPolicy.MANUAL,
            decoder=_the_message,
            config=ConsumerConfig(
                max_deliver=self.max_deliver + 1,
                ack_wait=self.ack_wait,
                deliver_policy=DeliverPolicy.NEW if deliver_new_only else DeliverPolicy.ALL,
            ),
        )(on_message)

    async def _apply(
        self,
        raw: Msg,
        envelope: Envelope,
        message: M,
        durable: str,
        handler: Handler[M, U],
        uow_factory: Callable[[], U],
        *,
        claim_in_handler: bool = False,
    ) -> str:
        """Apply one delivery in its own transaction and settle it; returns the outcome for the metrics."""
        applied = False
        try:
            async with uow_factory() as uow:
                uow.caused_by(envelope)
                if claim_in_handler:
                    applied = await self._apply_claimed_in_handler(envelope, message, durable, handler, uow)
                elif await uow.claim_inbox(durable, envelope.id):
                    await handler(message, envelope, uow)
                    await uow.commit()
                    applied = True
        except Exception as exc:
            delivered = raw.metadata.num_delivered
            if delivered >= self.max_deliver:
                log.exception("%s gave up on %s after %s deliveries", durable, envelope.id, delivered)
                await self._dead_letter(raw, durable, repr(exc))
                return "dead_letter"
            log.warning("%s failed on %s (delivery %s): %r", durable, envelope.id, delivered, exc)
            await raw.nak(delay=min(0.2 * 2**delivered, 10.0))
            return "retry"
        await raw.ack()
        return "applied" if applied else "duplicate"

    @staticmethod
    async def _apply_claimed_in_handler(
        envelope: Envelope, message: M, durable: str, handler: Handler[M, U], uow: U
    ) -> bool:
        """`_apply`'s body for a handler whose first statement carries the inbox claim; False for a duplicate (the
        caller's block rolls it back)."""
        claim = uow.inbox_claim = InboxClaim(durable, envelope.id)
        try:
            await handler(message, envelope, uow)
        except DuplicateDelivery:
            return False
        if not claim.claimed and not await uow.claim_inbox(durable, envelope.id):
            return False
        await uow.commit()
        return True

    async def refresh_consumer_lag(self) -> None:
        """What each durable consumer still has to do, as JetStream counts it (shared by the replicas)."""
        for durable, stream in self.durables.items():
            info = await self.js.consumer_info(stream, durable)
            self.metrics.consumer_pending.labels(durable).set(info.num_pending or 0)
            self.metrics.consumer_ack_pending.labels(durable).set(info.num_ack_pending or 0)

    def dead_letter_subject(self, durable: str) -> str:
        """Under the consuming service's own name, so its NATS user needs no one else's prefix."""
        return f"{DEAD_LETTER_PREFIX}.{self.service}.{durable}"

    async def _dead_letter(self, raw: Msg, durable: str, reason: str) -> None:
        headers = dead_letter_headers(
            consumer=durable,
            original_subject=raw.subject,
            original_stream_seq=raw.metadata.sequence.stream,
            original_headers=raw.headers,
            data=raw.data,
            error=reason,
            deliveries=raw.metadata.num_delivered,
        )
        await self.js.publish(self.dead_letter_subject(durable), raw.data, headers=headers, timeout=10)
        await raw.ack()
        self.dead_lettered += 1
        self.metrics.dead_letters.labels(durable).inc()

    async def dead_letter(self, raw: Msg, durable: str, reason: str) -> None:
        """For consumers that run their own fetch loop (the slicer's work queue): the same dead letters."""
        await self._dead_letter(raw, durable, reason)

    async def replay(self, subject: str, data: bytes, headers: dict[str, str]) -> bool:
        """Publish stored bytes again (a dead letter's replay); False when JetStream kept it as a duplicate."""
        ack = await self.js.publish(subject, data, headers=headers, timeout=10)
        return not ack.duplicate

    async def request(self, subject: str, request: BaseModel, reply_type: type[R], timeout: float = 5.0) -> R:
        reply = await self.nc.request(subject, request.model_dump_json().encode(), timeout=timeout)
        return reply_type.model_validate_json(reply.data)

    async def serve(
        self, subject: str, request_type: type[BaseModel], answer: Callable[[Any], Awaitable[BaseModel]]
    ) -> None:
        """Answer core-NATS requests on `subject`, load-balanced over this service's replicas."""

        async def on_request(msg: Msg) -> None:
            try:
                reply = await answer(request_type.model_validate_json(msg.data))
                await msg.respond(reply.model_dump_json().encode())
            except Exception:
                log.exception("request on %s failed", subject)
                await msg.respond(b'{"error": "internal"}')

        await self.nc.subscribe(subject, queue=self.service, cb=on_request)
