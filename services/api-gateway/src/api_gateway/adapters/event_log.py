"""The ORDERS, QUEUE and PRINTERS JetStream streams read through ephemeral ordered consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from api_gateway.domain.events import EVENT_NAMES, SOURCE_STREAMS, LoggedMessage, Position
from contracts.envelope import Envelope
from contracts.registry import STREAMS
from servicekit.messaging import Bus

log = logging.getLogger(__name__)

_OWNER = {stream: owner for owner, stream in STREAMS.items()}


class JetStreamEventLog:
    def __init__(self, bus: Bus, *, idle_seconds: float = 2.0, buffer: int = 10_000) -> None:
        self.bus, self.idle_seconds, self.buffer = bus, idle_seconds, buffer

    async def positions(self) -> Position:
        position: Position = {}
        for stream in SOURCE_STREAMS:
            info = await self.bus.js.stream_info(stream)
            position[stream] = int(info.state.last_seq)
        return position

    async def follow(self, after: Position) -> AsyncIterator[LoggedMessage]:
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=self.buffer)
        subscriptions = []
        try:
            for stream in SOURCE_STREAMS:
                subscriptions.append(await self._subscribe(stream, after.get(stream, 0), queue.put))
            while True:
                yield await self._decode(await queue.get())
        finally:
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def replay(self, after: Position, until: Position, limit: int) -> AsyncIterator[LoggedMessage]:
        remaining = limit
        for stream in SOURCE_STREAMS:
            if until.get(stream, 0) <= after.get(stream, 0) or remaining <= 0:
                continue
            subscription = await self._subscribe(stream, after.get(stream, 0), None)
            try:
                while remaining > 0:
                    try:
                        msg = await subscription.next_msg(timeout=self.idle_seconds)
                    except NatsTimeoutError:
                        break
                    message = await self._decode(msg)
                    if message.seq > until[stream]:
                        break
                    remaining -= 1
                    yield message
                    if message.seq >= until[stream]:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        if remaining <= 0:
            log.warning("event replay stopped after %s messages; the client skips the rest", limit)

    async def _subscribe(self, stream: str, after: int, cb: Any) -> Any:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
        return await self.bus.js.subscribe(
            f"{_OWNER[stream]}.>", stream=stream, ordered_consumer=True, config=config, cb=cb
        )

    async def _decode(self, msg: Msg) -> LoggedMessage:
        stream = msg.metadata.stream
        seq = int(msg.metadata.sequence.stream)
        data = None
        if msg.subject in EVENT_NAMES:
            try:
                envelope = await self.bus.resolve(Envelope.model_validate_json(msg.data))
                data = envelope.data
            except Exception:
                log.warning("skipping undecodable %s message %s:%s", msg.subject, stream, seq)
        return LoggedMessage(stream=stream, seq=seq, subject=msg.subject, data=data)
