"""The slicer's unit of work: one transaction over the slices, the outbox and the inbox."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

import sqlalchemy as sa

from contracts.envelope import ContractMessage, Envelope
from servicekit.unit_of_work import SqlUnitOfWork
from slicer.adapters import orm
from slicer.adapters.repository import SliceRepository, SqlSliceRepository


class SlicerUnitOfWork(Protocol):
    """What handlers need; the SQL unit of work and the tests' fake both provide it."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    @property
    def slices(self) -> SliceRepository: ...

    def caused_by(self, envelope: Envelope) -> None: ...

    def answer(self, message: ContractMessage, *, envelope_id: str, subject_id: str | None = None) -> Envelope:
        """Emit `message` under a fixed envelope id (derived from the request), not a fresh one."""
        ...

    async def answered(self, consumer: str, message_id: str) -> bool:
        """True if `message_id` was already answered by `consumer` (committed), without marking it."""
        ...

    async def claim_inbox(self, consumer: str, message_id: str) -> bool: ...

    async def commit(self) -> None: ...


class UnitOfWork(SqlUnitOfWork):
    def _open(self) -> None:
        self.slices: SqlSliceRepository = SqlSliceRepository(self.session)

    def answer(self, message: ContractMessage, *, envelope_id: str, subject_id: str | None = None) -> Envelope:
        envelope = self.emit(message, subject_id=subject_id)
        fixed = envelope.model_copy(update={"id": envelope_id})
        self._pending[-1] = fixed
        return fixed

    async def answered(self, consumer: str, message_id: str) -> bool:
        t = orm.inbox
        found = await self.session.execute(
            sa.select(t.c.message_id).where(t.c.consumer == consumer, t.c.message_id == message_id)
        )
        return found.first() is not None
