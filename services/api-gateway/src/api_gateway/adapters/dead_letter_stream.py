"""The DEADLETTER JetStream stream, read through an ephemeral ordered consumer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from api_gateway.domain.dead_letters import DeadLetter, Replay
from api_gateway.domain.errors import ArchiveUnavailable
from contracts.envelope import DEAD_LETTER_PREFIX
from contracts.registry import DEAD_LETTER_STREAM
from servicekit import dead_letters as headers
from servicekit.dead_letters import message_id_of, replay_headers
from servicekit.messaging import Bus


@contextlib.asynccontextmanager
async def _bus_answers(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (NatsError, TimeoutError, RuntimeError) as exc:
        raise ArchiveUnavailable(f"did not answer while {what} ({type(exc).__name__})") from exc


class JetStreamDeadLetters:
    def __init__(self, bus: Bus, *, limit: int = 10_000, idle_seconds: float = 2.0) -> None:
        self.bus, self.limit, self.idle_seconds = bus, limit, idle_seconds

    async def entries(self) -> list[DeadLetter]:
        """The newest `limit` dead letters, oldest first."""
        async with _bus_answers("reading dead letters"):
            return await self._read()

    async def _read(self) -> list[DeadLetter]:
        state = (await self.bus.js.stream_info(DEAD_LETTER_STREAM)).state
        if not state.messages:
            return []
        start = max(int(state.first_seq), int(state.last_seq) - self.limit + 1)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        subscription = await self.bus.js.subscribe(
            f"{DEAD_LETTER_PREFIX}.>", stream=DEAD_LETTER_STREAM, ordered_consumer=True, config=config
        )
        found: list[DeadLetter] = []
        try:
            while len(found) < min(int(state.messages), self.limit):
                try:
                    msg = await subscription.next_msg(timeout=self.idle_seconds)
                except NatsTimeoutError:
                    break
                found.append(_entry(msg))
                if msg.metadata.sequence.stream >= int(state.last_seq):
                    break
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        return found

    async def republish(self, replay: Replay) -> bool:
        async with _bus_answers("replaying"):
            headers = replay_headers(replay.from_seq, replay.dead_letters)
            return await self.bus.replay(replay.subject, replay.data, headers)

    async def forget(self, seqs: Sequence[int]) -> None:
        async with _bus_answers("removing replayed dead letters"):
            for seq in seqs:
                with contextlib.suppress(NotFoundError):
                    await self.bus.js.delete_msg(DEAD_LETTER_STREAM, seq)


def _entry(msg: Msg) -> DeadLetter:
    """Dead letters written before the consumer/message-id headers existed still list, from their subject."""
    seq = int(msg.metadata.sequence.stream)
    h = msg.headers or {}
    consumer = h.get(headers.CONSUMER) or msg.subject.rsplit(".", 1)[-1]
    count = h.get(headers.DEAD_LETTERS, "1")
    at = msg.metadata.timestamp
    return DeadLetter(
        seq=seq,
        consumer=consumer,
        subject=h.get(headers.ORIGINAL_SUBJECT, ""),
        message_id=h.get(headers.MESSAGE_ID) or message_id_of(msg.data, None, f"dead-letter:{seq}"),
        error=h.get(headers.ERROR, ""),
        dead_letters=int(count) if count.isdigit() else 1,
        at=at if isinstance(at, datetime) else datetime.now(UTC),
        data=msg.data,
    )
