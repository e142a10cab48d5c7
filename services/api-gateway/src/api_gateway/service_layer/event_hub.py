"""Fan-out of live change events to SSE clients, with gap-free resume from a Last-Event-ID.

One follower per gateway process reads the source streams; each connected client gets a bounded
queue. A client too slow to keep up is disconnected (its queue never grows past the bound); it
reconnects with its last id and the missed events are replayed from the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Protocol

from api_gateway.domain.auth import EndedCredentials, Principal
from api_gateway.domain.events import (
    SOURCE_STREAMS,
    LoggedMessage,
    Position,
    decode_position,
    heartbeat,
    to_event,
)

log = logging.getLogger(__name__)


class EventLog(Protocol):
    async def positions(self) -> Position:
        """The last sequence of every source stream now."""
        ...

    def follow(self, after: Position) -> AsyncIterator[LoggedMessage]:
        """Every message after `after`, per stream in order, forever."""
        ...

    def replay(self, after: Position, until: Position, limit: int) -> AsyncIterator[LoggedMessage]:
        """Messages with `after[s] < seq <= until[s]`, per stream in order; at most `limit`."""
        ...


Recheck = Callable[[], Awaitable[bool]]
"""Whether the stream's credential still works (asked every `recheck_seconds`: expiry, revocation elsewhere)."""


class Subscription:
    def __init__(self, size: int, principal: Principal | None = None) -> None:
        self.queue: asyncio.Queue[LoggedMessage | None] = asyncio.Queue(maxsize=size)
        self.principal = principal
        self.dropped = False
        self.ended = False

    def offer(self, message: LoggedMessage) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.close(dropped=True)

    def close(self, *, dropped: bool = False) -> None:
        self.dropped = self.dropped or dropped
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class EventHub:
    def __init__(
        self,
        source: EventLog,
        *,
        client_queue: int = 1000,
        max_replay: int = 10_000,
        heartbeat_seconds: float = 15.0,
        retry_seconds: float = 1.0,
        recheck_seconds: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.source = source
        self.client_queue, self.max_replay = client_queue, max_replay
        self.heartbeat_seconds, self.retry_seconds = heartbeat_seconds, retry_seconds
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self.position: Position = dict.fromkeys(SOURCE_STREAMS, 0)
        self.subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.position = {**self.position, **await self.source.positions()}
        self._task = asyncio.create_task(self._pump(), name="event-hub")
        self.ready.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscription in list(self.subscriptions):
            subscription.close()

    async def _pump(self) -> None:
        while True:
            try:
                async for message in self.source.follow(dict(self.position)):
                    self.publish(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the event streams failed; resuming from %s", self.position)
            await asyncio.sleep(self.retry_seconds)

    def publish(self, message: LoggedMessage) -> None:
        if message.seq <= self.position.get(message.stream, 0):
            return
        self.position[message.stream] = message.seq
        for subscription in list(self.subscriptions):
            subscription.offer(message)

    def end(self, ended: EndedCredentials) -> None:
        """Close every stream opened with a credential that just stopped working."""
        for subscription in list(self.subscriptions):
            if subscription.principal is not None and ended.covers(subscription.principal):
                subscription.ended = True
                subscription.close()

    async def frames(
        self,
        last_event_id: str | None,
        principal: Principal | None = None,
        recheck: Recheck | None = None,
    ) -> AsyncGenerator[str, None]:
        """The SSE body for one client: replay after `last_event_id` if given, then live, with heartbeats.

        The stream ends when its credential does: at once on logout or revocation here, by the
        credential's expiry time, and within `recheck_seconds` of a revocation through another replica.
        """
        subscription = Subscription(self.client_queue, principal)
        self.subscriptions.add(subscription)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.recheck_seconds if recheck is not None else float("inf")
        try:
            until = dict(self.position)
            resumed = decode_position(last_event_id) if last_event_id else None
            seen = dict(until) if resumed is None else resumed
            yield "retry: 2000\n: connected\n\n"
            if resumed is not None:
                async for message in self.source.replay(dict(seen), until, self.max_replay):
                    frame = self._advance(seen, message)
                    if frame:
                        yield frame
                for stream, seq in until.items():
                    seen[stream] = max(seen.get(stream, 0), seq)
            last_beat = loop.time()
            while True:
                if self._expired(principal):
                    return
                if recheck is not None and loop.time() >= next_check:
                    if not await recheck():
                        log.info("closed an event stream whose credential no longer works")
                        return
                    next_check = loop.time() + self.recheck_seconds
                wait = min(self.heartbeat_seconds - (loop.time() - last_beat), next_check - loop.time())
                wait = min(wait, self._until_expiry(principal))
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), timeout=max(0.0, wait))
                except TimeoutError:
                    if loop.time() - last_beat >= self.heartbeat_seconds:
                        last_beat = loop.time()
                        yield heartbeat()
                    continue
                if item is None:
                    if subscription.dropped:
                        log.info("disconnected a slow event stream client")
                    if subscription.ended:
                        log.info("closed an event stream: its credential ended")
                    return
                frame = self._advance(seen, item)
                if frame:
                    yield frame
        finally:
            self.subscriptions.discard(subscription)

    def _until_expiry(self, principal: Principal | None) -> float:
        if principal is None or principal.expires_at is None or self.clock is None:
            return float("inf")
        return (principal.expires_at - self.clock()).total_seconds()

    def _expired(self, principal: Principal | None) -> bool:
        return self._until_expiry(principal) <= 0

    @staticmethod
    def _advance(seen: Position, message: LoggedMessage) -> str | None:
        if message.seq <= seen.get(message.stream, 0):
            return None
        seen[message.stream] = message.seq
        event = to_event(message, seen)
        return None if event is None else event.frame()
