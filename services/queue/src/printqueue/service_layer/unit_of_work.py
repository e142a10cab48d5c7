"""The queue's unit of work: one transaction over the queue repository, the outbox and the inbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from contracts.envelope import ContractMessage, Envelope
from printqueue.adapters.memory_repository import InMemoryQueueRepository
from printqueue.adapters.repository import QueueRepository, SqlQueueRepository
from servicekit.ids import new_id
from servicekit.tracing import current_traceparent
from servicekit.unit_of_work import SqlUnitOfWork


class QueueUnitOfWork(Protocol):
    """What handlers need; the SQL unit of work and the tests' fake both provide it."""

    rematch: bool
    """Set by a handler whose change can alter the matching outcome; a pass runs after commit."""

    @property
    def queue(self) -> QueueRepository: ...

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope: ...


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


class InMemoryUnitOfWork:
    """A unit of work over an in-memory store: changes and emitted messages are kept only on commit."""

    def __init__(self, store: InMemoryQueueRepository) -> None:
        self.store = store
        self.published: list[ContractMessage] = []
        self.envelopes: list[Envelope] = []
        self.rematch = False
        self._work = store
        self._pending: list[ContractMessage] = []
        self._pending_envelopes: list[Envelope] = []

    async def __aenter__(self) -> InMemoryUnitOfWork:
        self._work = self.store.snapshot()
        self._pending = []
        self._pending_envelopes = []
        self.rematch = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._pending = []
        self._pending_envelopes = []

    @property
    def queue(self) -> InMemoryQueueRepository:
        return self._work

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope:
        self._pending.append(message)
        envelope = Envelope(
            id=new_id(), type=message.SUBJECT, source="/services/queue", subject=subject_id,
            data=message.model_dump(mode="json"), traceparent=current_traceparent(),
        )
        self._pending_envelopes.append(envelope)
        return envelope

    async def commit(self) -> None:
        self.store.orders, self.store.jobs = self._work.orders, self._work.jobs
        self.store.printers_by_id = self._work.printers_by_id
        self.store.slices, self.store.traces = self._work.slices, self._work.traces
        self.store.settings = self._work.settings
        self.published.extend(self._pending)
        self.envelopes.extend(self._pending_envelopes)
        self._pending = []
        self._pending_envelopes = []
