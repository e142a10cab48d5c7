"""The unit of work: one transaction holding the state change, its outgoing messages and the inbox mark."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import ContractMessage, Envelope
from servicekit.inbox import Inbox, InboxClaim
from servicekit.outbox import EncodedEnvelope, Outbox, Pending


class SqlUnitOfWork:
    """Services subclass it and build their repositories on `self.session` in `_open()`.

    A handler owns its transaction (`async with uow: ... await uow.commit()`). Entered again while open (a
    consumer's handler, inside the bus's exactly-once frame that claimed the inbox), the block joins the open
    transaction: its `commit()` leaves committing to the outermost block, so the inbox mark, the state change
    and the outgoing messages still commit together, and an error anywhere rolls all of them back.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        inbox: Inbox,
        on_commit: Callable[[], None] = lambda: None,
        publish_committed: Callable[[list[Pending]], None] | None = None,
    ) -> None:
        self.sessions, self.outbox, self.inbox, self.on_commit = sessions, outbox, inbox, on_commit
        self.publish_committed = publish_committed
        """Given (the runtime's relay), a commit hands it the messages it wrote so they are published at once
        from memory, instead of waiting for the relay to read them back; the outbox rows stay the guarantee."""
        self._pending: list[Pending] = []
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._correlation: str | None = None
        self._causation: str | None = None
        self._depth = 0
        self.inbox_claim: InboxClaim | None = None
        """The delivery's inbox claim the bus left to the handler's first statement (`InboxClaim`), if any."""

    @property
    def joined(self) -> bool:
        """True inside a block entered while another was open: its commit is the outer block's."""
        return self._depth > 1

    async def __aenter__(self) -> Self:
        self._depth += 1
        if self._depth > 1:
            return self
        self.session = self.sessions()
        await self.session.begin()
        self._pending = []
        self._after_commit = []
        self.inbox_claim = None
        self._open()
        return self

    def _open(self) -> None:
        """Hook for subclasses: create repositories bound to `self.session`."""

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        if self.session.in_transaction():
            await self.session.rollback()
        await self.session.close()

    def caused_by(self, envelope: Envelope) -> None:
        self._causation = envelope.id
        self._correlation = envelope.correlationid or envelope.id

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope:
        envelope = self.outbox.envelope(
            message, subject_id=subject_id, correlation_id=self._correlation, causation_id=self._causation
        )
        self._pending.append(envelope)
        return envelope

    def emit_encoded(self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]) -> None:
        """Messages of `message_type` whose JSON the caller rendered itself, as (subject id, JSON) pairs: a bulk
        writer's template, which must mean what `message.model_dump_json()` would (its tests hold that)."""
        self.emit_envelopes(self.encode(message_type, data))

    def encode(
        self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]
    ) -> list[EncodedEnvelope]:
        """`emit_encoded`'s envelopes, not emitted yet: a bulk writer wraps its messages while its COPY runs
        (PostgreSQL is the slower side then) and emits them with `emit_envelopes` when their turn comes."""
        return self.outbox.encoded(
            message_type.SUBJECT, data, correlation_id=self._correlation, causation_id=self._causation
        )

    def emit_envelopes(self, envelopes: Iterable[EncodedEnvelope]) -> None:
        """Envelopes `encode` made in this unit of work, into the outbox after what was emitted before."""
        self._pending += envelopes

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Side effects that must not happen unless the transaction commits (e.g. talking to a printer)."""
        self._after_commit.append(action)

    async def claim_inbox(self, consumer: str, message_id: str) -> bool:
        return await self.inbox.claim(self.session, consumer, message_id)

    async def commit(self) -> None:
        if self.joined:
            return
        await self.outbox.add(self.session, self._pending)
        await self.session.commit()
        committed, self._pending = self._pending, []
        if committed:
            if self.publish_committed is not None:
                self.publish_committed(committed)
            else:
                self.on_commit()
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            await action()

    async def rollback(self) -> None:
        """Drops the whole transaction, a joined block's outer one included."""
        self._pending = []
        self._after_commit = []
        await self.session.rollback()
