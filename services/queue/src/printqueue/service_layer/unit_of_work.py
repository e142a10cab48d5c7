"""The queue's unit of work: one transaction over the queue repository, the outbox and the inbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

from contracts.envelope import ContractMessage, Envelope
from printqueue.adapters.queue_repository import QueueRepository, SqlQueueRepository
from servicekit.unit_of_work import SqlUnitOfWork


class QueueUnitOfWork(Protocol):
    """What handlers need; the SQL unit of work and the tests' fake provide it. A handler enters it and commits
    it itself; a consumer's handler gets the unit of work the bus opened with the delivery's inbox mark, so
    its block joins that transaction and the bus's commit commits both."""

    rematch: bool
    """Set by a handler whose change can alter the matching outcome; a pass runs after commit."""

    @property
    def queue(self) -> QueueRepository: ...

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope: ...

    def emit_encoded(self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]) -> None:
        """Messages whose JSON a bulk writer rendered itself (`messages.JobChangedJson`)."""

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
        """The matcher is woken once the change is committed: a joined block's commit is the outer one's."""
        if self.joined:
            return
        await super().commit()
        if self.rematch:
            self.rematch = False
            self.wake_matcher()
