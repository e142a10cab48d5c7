"""A replica's heartbeat on a thread of its own, with its own NATS connection and event loop.

On a saturated CPU the service's event loop runs seconds behind (every held printer's report is read before the
next timer fires), and a heartbeat on it lapsed: in one 10,000-printer handover 7 of the 9 survivors' heartbeats
lapsed, each then checked its thousand leases before commanding again, and the other survivors could have taken
printers of live replicas. A thread waits for the GIL, milliseconds, not for the loop's backlog; so the heartbeat
keeps time and its TTL can be short, which is how fast a dead replica is noticed.

It still says the replica serves its printers: it beats only while the service's loop has turned within
`stall_seconds` (`loop_turned`), so a replica whose loop is stuck is taken over as a dead one would be.

Every beat interval it also lists the live replicas (on a task of its own, so a slow listing never delays a beat)
and hands each list to the service's loop: a dead replica is noticed as its key expires, not once the busy loop
gets round to asking. Its connection answers the replica's alive subject, and the listing asks the others': a
replica whose process died is noticed by the NATS server's "no responders" (`Silences`), before its key expires.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats

from contracts.printers.v1 import GATEWAY_ALIVE_SUBJECT, REPLICAS_BUCKET
from printer_gateway.adapters.replicas import ReplicaDirectory, Silences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Beats:
    interval: float
    """Seconds between heartbeats."""
    stall_seconds: float
    """No heartbeat while the service's event loop has not turned for this long."""
    ttl: float
    """The heartbeat key's TTL (how long a replica found gone is believed gone without asking again)."""


class HeartbeatThread:
    def __init__(
        self,
        connect_options: dict[str, Any],
        instance: str,
        value: bytes,
        beats: Beats,
        beat_sent: Callable[[float], None],
        on_replicas: Callable[[list[str], float], None] | None = None,
        *,
        connection_lost: Callable[[], None] | None = None,
        silences: Silences | None = None,
    ) -> None:
        """`beat_sent(sent)` is called on this thread after each heartbeat written, with the monotonic time
        the write was sent (the key's TTL runs from about then); `on_replicas(live, listed_at)` on the caller's
        event loop with each listing of the live replicas and the monotonic time it was asked;
        `connection_lost()` on this thread as soon as its connection is seen lost (the other replicas may find
        this one silent from then on); the listing notes the replicas found silent in `silences`."""
        self._options, self.instance, self.value = connect_options, instance, value
        self.interval, self.stall_seconds, self.ttl = beats.interval, beats.stall_seconds, beats.ttl
        self._beat_sent, self._on_replicas = beat_sent, on_replicas
        self._connection_lost, self.silences = connection_lost, silences
        self._caller: asyncio.AbstractEventLoop | None = None
        self._loop_seen = time.monotonic()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stalled = False

    def loop_turned(self) -> None:
        """The service's event loop is turning (called from it every beat interval or so)."""
        self._loop_seen = time.monotonic()

    async def start(self) -> None:
        """Start the thread and return once its connection is open (it beats from then on)."""
        caller = asyncio.get_running_loop()
        started: asyncio.Future[None] = caller.create_future()

        def ready(error: BaseException | None) -> None:
            def settle() -> None:
                if started.done():
                    return
                if error is None:
                    started.set_result(None)
                else:
                    started.set_exception(error)

            caller.call_soon_threadsafe(settle)

        self._loop_seen = time.monotonic()
        self._caller = caller
        self._thread = threading.Thread(target=self._run, args=(ready,), name="replica-heartbeat", daemon=True)
        self._thread.start()
        await started

    async def stop(self) -> None:
        """Stop beating (no write after this returns) and close the thread's connection."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # its loop already ended
        await asyncio.to_thread(thread.join, 10)
        self._thread = None

    def _run(self, ready: Callable[[BaseException | None], None]) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # the caller is told: a thread has nobody else to raise to
            log.exception("the heartbeat thread ended")
            ready(exc)

    async def _main(self, ready: Callable[[BaseException | None], None]) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        nc = await nats.connect(**self._options, disconnected_cb=self._disconnected)
        try:
            js = nc.jetstream(timeout=max(self.interval * 4, 1.0))
            bucket = await js.key_value(REPLICAS_BUCKET)
            # Answering before the first beat: a replica listed is never found silent for want of a subscription.
            await nc.subscribe(GATEWAY_ALIVE_SUBJECT.format(instance=self.instance), cb=_answer)
            await nc.flush()
            directory = ReplicaDirectory(js, bucket, self.instance, self.ttl, nc, self.silences)
            ready(None)
            steps = [self._every_interval(lambda: self._beat(bucket))]
            if self._on_replicas is not None:
                # A task of its own: a slow listing (ten requests on a saturated CPU) must not delay the next beat.
                steps.append(self._every_interval(lambda: self._list(directory)))
            await asyncio.gather(*steps)
        finally:
            await nc.close()

    async def _disconnected(self) -> None:
        if self._connection_lost is not None:
            self._connection_lost()

    async def _every_interval(self, step: Callable[[], Awaitable[None]]) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            await step()
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    async def _list(self, directory: ReplicaDirectory) -> None:
        listed_at = time.monotonic()
        try:
            live = await directory.live()
        except Exception:
            log.warning("listing the live replicas failed", exc_info=True)
            return
        if self._caller is None or self._on_replicas is None:
            return
        try:
            self._caller.call_soon_threadsafe(self._on_replicas, live, listed_at)
        except RuntimeError:
            pass  # the service's loop has ended

    async def _beat(self, bucket: Any) -> None:
        behind = time.monotonic() - self._loop_seen
        if behind > self.stall_seconds:
            if not self._stalled:
                log.error("the event loop has not turned for %.1f s: heartbeat stopped until it does", behind)
            self._stalled = True
            return
        if self._stalled:
            log.warning("the event loop turns again: heartbeat resumed")
            self._stalled = False
        sent = time.monotonic()
        try:
            await bucket.put(self.instance, self.value)
        except Exception:
            log.warning("heartbeat write failed", exc_info=True)
            return
        self._beat_sent(sent)


async def _answer(msg: Any) -> None:
    """Another replica asks whether this one's connection is open: it is, since the question came."""
    if msg.reply:
        await msg.respond(b"")
