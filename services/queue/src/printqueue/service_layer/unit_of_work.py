"""The queue's unit of work: one transaction over the queue repository, the outbox and the inbox."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

from contracts.envelope import ContractMessage, Envelope
from printqueue.adapters.repository import QueueRepository, SqlQueueRepository
from servicekit.unit_of_work import SqlUnitOfWork


class QueueUnitOfWork(Protocol):
    """What handlers need; the SQL unit of work, a bus delivery's (`DeliveryUnitOfWork`) and the tests' fake
    provide it. A handler enters it and commits it itself."""

    rematch: bool
    """Set by a handler whose change can alter the matching outcome; a pass runs after commit."""

    @property
    def queue(self) -> QueueRepository: ...

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope: ...

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWork(SqlUnitOfWork):
    def __init__(self, *, wake_matcher: Callable[[], None] = lambda: None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wake_matcher = wake_matcher
        self.rematch = False

    def _open(self) -> None:
        self.queue: SqlQueueRepository = SqlQueueRepository(self.session)
        self.rematch = False

    async def commit(self) -> None:
        await super().commit()
        if self.rematch:
            self.rematch = False
            self.wake_matcher()


class DeliveryUnitOfWork:
    """The transaction servicekit's bus opened for one consumed message, its inbox mark already claimed in
    it (`Bus.consume` opens it, claims the envelope id, and commits and acks after the consumer returns).
    A handler owns it as any unit of work: entering joins that transaction, so the handler's commit
    commits its change together with the inbox mark; leaving it, or a failure, is the bus's to settle."""

    def __init__(self, delivery: UnitOfWork) -> None:
        self._delivery = delivery

    @property
    def rematch(self) -> bool:
        return self._delivery.rematch

    @rematch.setter
    def rematch(self, value: bool) -> None:
        self._delivery.rematch = value

    @property
    def queue(self) -> SqlQueueRepository:
        return self._delivery.queue

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope:
        return self._delivery.emit(message, subject_id=subject_id)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        await self._delivery.commit()
