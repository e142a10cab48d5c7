"""The bus: JetStream streams, publishing with `Nats-Msg-Id`, idempotent consumers, claim checks,
dead letters and request/reply.

Consumers use FastStream pull subscriptions with manual acks: a message is acked only after the
transaction that applied it (and recorded it in the inbox) committed. A handler that raises is
redelivered with backoff up to `max_deliver` times, then the message goes to
`deadletter.<service>.<durable>` with the error (see `dead_letters`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, ObjectStoreConfig, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import BaseModel

from contracts.envelope import (
    CLAIM_CHECK_BUCKET,
    DEAD_LETTER_PREFIX,
    MAX_INLINE_PAYLOAD,
    ContractMessage,
    Envelope,
)
from contracts.registry import DEAD_LETTER_STREAM, STREAMS, stream_subjects
from servicekit.dead_letters import dead_letter_headers
from servicekit.outbox import encode
from servicekit.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)

M = TypeVar("M", bound=ContractMessage)
U = TypeVar("U", bound=SqlUnitOfWork)
R = TypeVar("R", bound=BaseModel)

Handler = Callable[[M, Envelope, U], Awaitable[None]]

STREAM_MAX_AGE_SECONDS = 14 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 15 * 60


def stream_configs() -> list[StreamConfig]:
    configs = [
        StreamConfig(
            name=stream,
            subjects=stream_subjects(owner),
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=STREAM_MAX_AGE_SECONDS,
            max_msg_size=1024 * 1024,
        )
        for owner, stream in STREAMS.items()
    ]
    configs.append(
        StreamConfig(
            name=DEAD_LETTER_STREAM,
            subjects=[f"{DEAD_LETTER_PREFIX}.>"],
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=STREAM_MAX_AGE_SECONDS,
        )
    )
    return configs


class Bus:
    """One per process: a nats-py connection for publishing, object stores and request/reply, and a
    FastStream broker for durable consumers."""

    def __init__(self, nats_url: str, service: str, *, max_deliver: int = 5, ack_wait: float = 30.0) -> None:
        self.nats_url, self.service = nats_url, service
        self.max_deliver, self.ack_wait = max_deliver, ack_wait
        self.broker = NatsBroker(
            nats_url, graceful_timeout=10.0, logger=logging.getLogger("faststream"), log_level=logging.DEBUG
        )
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self.dead_lettered = 0

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

    async def connect(self) -> None:
        self._nc = await nats.connect(
            self.nats_url, name=self.service, max_reconnect_attempts=-1, reconnect_time_wait=1
        )
        self._js = self._nc.jetstream(timeout=10)
        await self.ensure_streams()

    async def start(self) -> None:
        """Start consumers; call after every `consume`/`serve` was declared."""
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
        for config in stream_configs():
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)

    async def object_store(self, bucket: str, *, ttl_seconds: float | None = None) -> Any:
        try:
            return await self.js.object_store(bucket)
        except NotFoundError:
            try:
                return await self.js.create_object_store(
                    bucket, config=ObjectStoreConfig(bucket=bucket, ttl=ttl_seconds)
                )
            except BadRequestError:
                return await self.js.object_store(bucket)

    async def publish(self, envelope: Envelope) -> None:
        """Publish to JetStream and wait for the stream's ack. Oversized payloads go by claim check."""
        payload = encode(envelope)
        if len(payload) > MAX_INLINE_PAYLOAD:
            store = await self.object_store(CLAIM_CHECK_BUCKET, ttl_seconds=STREAM_MAX_AGE_SECONDS)
            await store.put(envelope.id, json.dumps(envelope.data).encode())
            payload = encode(envelope.model_copy(update={"data": None, "dataref": envelope.id}))
        await self.js.publish(envelope.type, payload, headers={"Nats-Msg-Id": envelope.id}, timeout=10)

    async def resolve(self, envelope: Envelope) -> Envelope:
        if envelope.dataref is None:
            return envelope
        store = await self.object_store(CLAIM_CHECK_BUCKET, ttl_seconds=STREAM_MAX_AGE_SECONDS)
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
    ) -> None:
        """Apply `message_type` messages exactly once per `durable` consumer, acking after commit."""
        owner = message_type.subject_owner()

        async def on_message(msg: NatsMessage) -> None:
            raw: Msg = msg.raw_message
            try:
                envelope = await self.resolve(Envelope.model_validate_json(raw.data))
                message = envelope.open(message_type)
            except Exception as exc:
                await self._dead_letter(raw, durable, f"undecodable: {exc}")
                return
            try:
                async with uow_factory() as uow:
                    uow.caused_by(envelope)
                    if await uow.claim_inbox(durable, envelope.id):
                        await handler(message, envelope, uow)
                        await uow.commit()
            except Exception as exc:
                delivered = raw.metadata.num_delivered
                if delivered >= self.max_deliver:
                    log.exception("%s gave up on %s after %s deliveries", durable, envelope.id, delivered)
                    await self._dead_letter(raw, durable, repr(exc))
                else:
                    log.warning("%s failed on %s (delivery %s): %r", durable, envelope.id, delivered, exc)
                    await raw.nak(delay=min(0.2 * 2**delivered, 10.0))
                return
            await raw.ack()

        self.broker.subscriber(
            message_type.SUBJECT,
            stream=JStream(STREAMS[owner], declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=100, timeout=1.0),
            ack_policy=AckPolicy.MANUAL,
            config=ConsumerConfig(
                max_deliver=self.max_deliver + 1,
                ack_wait=self.ack_wait,
                deliver_policy=DeliverPolicy.NEW if deliver_new_only else DeliverPolicy.ALL,
            ),
        )(on_message)

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
