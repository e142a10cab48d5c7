"""A replica's heartbeat on a thread of its own, with its own NATS connection and event loop.

On a saturated CPU the service's event loop runs seconds behind (every held printer's report is read before the
next timer fires), and a heartbeat on it lapsed: in one 10,000-printer handover 7 of the 9 survivors' heartbeats
lapsed, each then checked its thousand leases before commanding again, and the other survivors could have taken
printers of live replicas. A thread waits for the GIL, milliseconds, not for the loop's backlog; so the heartbeat
keeps time and its TTL can be short, which is how fast a dead replica is noticed.

It still says the replica serves its printers: it beats only while the service's loop has turned within
`stall_seconds` (`loop_turned`), so a replica whose loop is stuck is taken over as a dead one would be.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import nats

from contracts.printers.v1 import REPLICAS_BUCKET

log = logging.getLogger(__name__)


class HeartbeatThread:
    def __init__(
        self,
        connect_options: dict[str, Any],
        instance: str,
        value: bytes,
        interval: float,
        stall_seconds: float,
        beat_sent: Callable[[float], None],
    ) -> None:
        """`beat_sent(sent)` is called on this thread after each heartbeat written, with the monotonic time
        the write was sent (the key's TTL runs from about then)."""
        self._options, self.instance, self.value = connect_options, instance, value
        self.interval, self.stall_seconds, self._beat_sent = interval, stall_seconds, beat_sent
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
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        caller = asyncio.get_running_loop()

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
        nc = await nats.connect(**self._options)
        try:
            bucket = await nc.jetstream(timeout=max(self.interval * 4, 1.0)).key_value(REPLICAS_BUCKET)
            ready(None)
            while not self._stop.is_set():
                await self._beat(bucket)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.interval)
                except TimeoutError:
                    pass
        finally:
            await nc.close()

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
