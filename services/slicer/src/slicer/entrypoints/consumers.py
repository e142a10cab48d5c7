"""`queue.v1.cmd.slice_part` as a work queue: one durable pull consumer shared by every slicer replica.

Each replica fetches one request per free slicing slot (`SLICER_CONCURRENCY`), so requests it cannot
start yet stay in JetStream for the other replicas. While a request is handled it is marked in progress
every third of the ack wait, so a long slice is not redelivered early, while a replica killed mid-slice
stops marking and its request is redelivered to another. A request waiting on another replica's claim
gives its slot back while it waits. Acks come after the answer committed; infrastructure failures go
back with backoff and end on `deadletter.slicer.<durable>` after the last delivery (servicekit's policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.queue.v1 import SlicePart
from contracts.registry import STREAMS
from servicekit.messaging import Bus
from slicer.domain.commands import SliceRequest
from slicer.service_layer.handlers import SLICE_PART_DURABLE, Answered, Claimed
from slicer.service_layer.slicing import RetryLater, SliceWorker

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 3.0
"""On shutdown, running slices get this long; then they are abandoned (claim released, request nak'd)
so another replica takes them at once instead of after the ack wait."""


def slice_outcome(how: str) -> str:
    """A bounded label for how a claimed slice was answered (the free text goes to the log)."""
    if how.startswith("failed"):
        return "failed"
    return "sliced" if how == "sliced" else "done_elsewhere"


def retry_delay(delivered: int) -> float:
    """The same backoff as servicekit's consumers."""
    return float(min(0.2 * 2**delivered, 10.0))


class SliceRequestConsumer:
    def __init__(
        self,
        bus: Bus,
        worker: SliceWorker,
        *,
        concurrency: int,
        ack_wait: float,
        max_deliver: int,
        fetch_timeout: float = 2.0,
        wait_poll: float = 0.5,
        durable: str = SLICE_PART_DURABLE,
        observe_slice: Callable[[float, str], None] | None = None,
    ) -> None:
        self.bus, self.worker, self.durable = bus, worker, durable
        self.observe_slice = observe_slice
        self.concurrency, self.ack_wait, self.max_deliver = concurrency, ack_wait, max_deliver
        self.fetch_timeout, self.wait_poll = fetch_timeout, wait_poll
        self.slots = asyncio.Semaphore(concurrency)
        self.stream = STREAMS[SlicePart.subject_owner()]
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self.dead_lettered = 0

    @property
    def in_flight(self) -> int:
        return len(self._handling)

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._loop.done()

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            filter_subject=SlicePart.SUBJECT,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver + 1,
            deliver_policy=DeliverPolicy.ALL,
        )

    async def start(self) -> None:
        """Create (or update) the shared durable consumer and start fetching."""
        js = self.bus.js
        await js.add_consumer(self.stream, config=self.consumer_config())
        self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._loop = asyncio.create_task(self._fetch_forever(), name="slice-requests")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._handling:
            _, pending = await asyncio.wait(self._handling, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _fetch_forever(self) -> None:
        assert self._sub is not None
        while True:
            await self.slots.acquire()
            try:
                messages = await self._sub.fetch(1, timeout=self.fetch_timeout)
            except (TimeoutError, NatsTimeoutError):
                self.slots.release()
                continue
            except asyncio.CancelledError:
                self.slots.release()
                raise
            except Exception:
                self.slots.release()
                log.warning("fetching slice requests failed; trying again", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            task = asyncio.create_task(self._handle(messages[0]), name="slice-request")
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _handle(self, msg: Msg) -> None:
        """Entered holding one slot (taken by the fetch loop for this message)."""
        holding = True
        heartbeat = asyncio.create_task(self._keep_in_progress(msg))
        try:
            request = await self._decode(msg)
            if request is None:
                return
            while True:
                if not holding:
                    await self.slots.acquire()
                    holding = True
                begun = await self.worker.begin(request)
                if isinstance(begun, Claimed):
                    answered = await self._timed_slice(request, begun)
                    log.info("request %s (%s): %s", request.id, begun.key[:16], answered.how)
                    break
                if isinstance(begun, Answered):
                    log.info("request %s: %s", request.id, begun.how)
                    break
                self.slots.release()
                holding = False
                log.info("request %s waits for %s slicing %s", request.id, begun.owner, begun.key[:16])
                await self.worker.wait_for(begun, self.wait_poll)
            await msg.ack()
        except RetryLater as exc:
            await self._retry(msg, str(exc))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        except Exception as exc:
            log.exception("slice request %s failed unexpectedly", msg.metadata.sequence.stream)
            await self._retry(msg, repr(exc))
        finally:
            heartbeat.cancel()
            if holding:
                self.slots.release()

    async def _timed_slice(self, request: SliceRequest, claimed: Claimed) -> Answered:
        """Slice, timing it for the duration histogram: `sliced`, `failed` (answered failed) or `retry`."""
        started = time.perf_counter()
        outcome = "retry"
        try:
            answered = await self.worker.slice(request, claimed)
            outcome = slice_outcome(answered.how)
            return answered
        finally:
            if self.observe_slice is not None:
                self.observe_slice(time.perf_counter() - started, outcome)

    async def queue_reading(self) -> tuple[int, int]:
        """(requests no replica has taken yet, requests taken and not yet acked) of the shared consumer."""
        info = await self.bus.js.consumer_info(self.stream, self.durable)
        return info.num_pending or 0, info.num_ack_pending or 0

    async def _decode(self, msg: Msg) -> SliceRequest | None:
        try:
            envelope = await self.bus.resolve(Envelope.model_validate_json(msg.data))
            return SliceRequest(envelope.open(SlicePart), envelope)
        except Exception as exc:
            await self.bus.dead_letter(msg, self.durable, f"undecodable: {exc}")
            self.dead_lettered += 1
            return None

    async def _retry(self, msg: Msg, reason: str) -> None:
        delivered = msg.metadata.num_delivered
        try:
            if delivered >= self.max_deliver:
                log.error("%s gave up after %s deliveries: %s", self.durable, delivered, reason)
                await self.bus.dead_letter(msg, self.durable, reason)
                self.dead_lettered += 1
            else:
                log.warning("%s: delivery %s failed, retrying: %s", self.durable, delivered, reason)
                await msg.nak(delay=retry_delay(delivered))
        except Exception:
            log.warning("could not nak or dead-letter; JetStream redelivers after the ack wait", exc_info=True)

    async def _keep_in_progress(self, msg: Msg) -> None:
        interval = max(self.ack_wait / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
            except Exception:
                log.warning("marking a slice request in progress failed", exc_info=True)
