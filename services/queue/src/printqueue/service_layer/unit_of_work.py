"""The queue's unit of work: one transaction over the queue repository, the outbox and the inbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

from contracts.envelope import ContractMessage, Envelope
from printqueue.adapters.queue_repository import QueueRepository, SqlQueueRepository
from servicekit.inbox import InboxClaim
from servicekit.outbox import EncodedEnvelope
from servicekit.unit_of_work import SqlUnitOfWork


class QueueUnitOfWork(Protocol):
    """What handlers need; the SQL unit of work and the tests' fake provide it. A handler enters it and commits
    it itself; a consumer's handler gets the unit of work the bus opened with the delivery's inbox mark, so
    its block joins that transaction and the bus's commit commits both."""

    rematch: bool
    """Set by a handler whose change can alter the matching outcome; a pass runs after commit (and a forecast)."""
    reforecast: bool
    """Set by a handler whose change alters the forecast but needs no pass (it ran its own): a forecast only."""
    inbox_claim: InboxClaim | None
    """The delivery's inbox claim the bus left to the handler's first statement (the PrinterChanged consumer's)."""

    @property
    def queue(self) -> QueueRepository: ...

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope: ...

    def emit_encoded(self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]) -> None:
        """Messages whose JSON a bulk writer rendered itself (`messages.JobChangedJson`)."""

    def encode(
        self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]
    ) -> list[EncodedEnvelope]:
        """`emit_encoded`'s envelopes made now (while a COPY runs), emitted later by `emit_envelopes`."""
        ...

    def emit_envelopes(self, envelopes: Iterable[EncodedEnvelope]) -> None: ...

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWork(SqlUnitOfWork):
    def __init__(
        self,
        *,
        wake_matcher: Callable[[], None] = lambda: None,
        wake_forecaster: Callable[[], None] = lambda: None,
        **kwargs: Any,
    ) -> None:
        """`wake_matcher` wakes the matching pass and the forecast, `wake_forecaster` the forecast alone."""
        super().__init__(**kwargs)
        self.wake_matcher, self.wake_forecaster = wake_matcher, wake_forecaster
        self.rematch = self.reforecast = False

    def _open(self) -> None:
        self.queue: SqlQueueRepository = SqlQueueRepository(self.session)
        self.rematch = self.reforecast = False

    async def commit(self) -> None:
        """The loops are woken once the change is committed: a joined block's commit is the outer one's."""
        if self.joined:
            return
        await super().commit()
        rematch, reforecast, self.rematch, self.reforecast = self.rematch, self.reforecast, False, False
        if rematch:
            self.wake_matcher()
        elif reforecast:
            self.wake_forecaster()
