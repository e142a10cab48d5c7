"""Test doubles and waiting every service's tests share, so a fake behaves like the real thing once, here.

Nothing in a service's `src/` imports this module: it is for tests (and test tools) only.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

from contracts.envelope import ContractMessage, Envelope
from servicekit.ids import new_id, utc_now
from servicekit.inbox import InboxClaim
from servicekit.outbox import EncodedEnvelope
from servicekit.tracing import current_traceparent

T = TypeVar("T")
S = TypeVar("S")


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T]], timeout: float, what: str, *, interval: float = ...
) -> T: ...


@overload
async def wait_until(predicate: Callable[[], T], timeout: float, what: str, *, interval: float = ...) -> T: ...


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, *, interval: float = 0.05) -> Any:
    """Poll a sync or async `predicate` until it returns something truthy, and return that value.

    The predicate may raise to end the wait early (a process that died). At the deadline it raises
    `TimeoutError` naming `what` and the predicate's last answer, so a failing test says what never happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last: {result!r})")
        await asyncio.sleep(min(interval, remaining))


class FakeUnitOfWork(Generic[S]):
    """An in-memory unit of work with `SqlUnitOfWork`'s semantics, for service-layer tests without I/O.

    Work happens on `self.work`, a deep copy of `state` taken when the block opens (subclasses build their
    repositories on it in `_open()`, as SQL ones do on the session). `commit()` makes the work the state and
    keeps the emitted envelopes (`published`), the inbox marks (`claimed`) and runs the after-commit actions;
    leaving the block or `rollback()` drops all of them, like a transaction that never committed. Pass
    `published`, `messages` and `claimed` to share them between units of work over one state, as one database would.
    """

    def __init__(
        self,
        state: S,
        *,
        source: str = "/services/test",
        ids: Callable[[], str] = new_id,
        published: list[Envelope] | None = None,
        claimed: set[tuple[str, str]] | None = None,
        messages: list[ContractMessage] | None = None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.state, self.source, self.ids, self.on_commit = state, source, ids, on_commit
        self.published: list[Envelope] = published if published is not None else []
        self.messages: list[ContractMessage] = messages if messages is not None else []
        """The committed messages themselves, in the order they were emitted (`published` holds their envelopes)."""
        self.claimed: set[tuple[str, str]] = claimed if claimed is not None else set()
        self.commits = 0
        self.rollbacks = 0
        self.work: S = state
        self._pending: list[Envelope] = []
        self._pending_messages: list[ContractMessage] = []
        self._encoded: dict[str, tuple[Envelope, ContractMessage]] = {}
        """What `encode` made and `emit_envelopes` has not emitted yet, by envelope id."""
        self._claims: set[tuple[str, str]] = set()
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._correlation: str | None = None
        self._causation: str | None = None
        self._depth = 0
        self.inbox_claim: InboxClaim | None = None
        """As `SqlUnitOfWork.inbox_claim`; fake repositories leave it unclaimed, so the bus claims after the handler."""

    @property
    def joined(self) -> bool:
        """True inside a block entered while another was open: its commit is the outer block's."""
        return self._depth > 1

    async def __aenter__(self) -> Self:
        self._depth += 1
        if self._depth == 1:
            self._begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if not self._depth:
            self._discard()

    def _begin(self) -> None:
        self.work = copy.deepcopy(self.state)
        self._pending, self._pending_messages, self._claims, self._after_commit = [], [], set(), []
        self._encoded = {}
        self.inbox_claim = None
        self._open()

    def _discard(self) -> None:
        self.work = self.state
        self._pending, self._pending_messages, self._claims, self._after_commit = [], [], set(), []
        self._encoded = {}

    def _open(self) -> None:
        """Hook for subclasses: create repositories bound to `self.work`."""

    def _keep(self, work: S) -> None:
        """Hook for subclasses whose state cannot be replaced in place: make `work` the committed state."""
        if hasattr(self.state, "__dict__"):
            vars(self.state).update(vars(work))
        else:
            self.state = work

    def caused_by(self, envelope: Envelope) -> None:
        self._causation = envelope.id
        self._correlation = envelope.correlationid or envelope.id

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope:
        envelope = self._envelope(message, subject_id)
        self._pending.append(envelope)
        self._pending_messages.append(message)
        return envelope

    def _envelope(self, message: ContractMessage, subject_id: str | None) -> Envelope:
        return Envelope(
            id=self.ids(),
            type=message.SUBJECT,
            source=self.source,
            time=utc_now(),
            subject=subject_id,
            data=message.model_dump(mode="json"),
            correlationid=self._correlation,
            causationid=self._causation,
            traceparent=current_traceparent(),
        )

    def emit_encoded(self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]) -> None:
        """Each rendered message validated back into `message_type`: a template that renders what the contract
        refuses fails the test that emitted it."""
        self.emit_envelopes(self.encode(message_type, data))

    def encode(
        self, message_type: type[ContractMessage], data: Iterable[tuple[str | None, str]]
    ) -> list[EncodedEnvelope]:
        """As `emit_encoded` validates them, emitted only by `emit_envelopes` (in this unit of work's block)."""
        out = []
        for subject_id, text in data:
            message = message_type.model_validate_json(text)
            envelope = self._envelope(message, subject_id)
            self._encoded[envelope.id] = (envelope, message)
            out.append(EncodedEnvelope(envelope.id, envelope.type, envelope.model_dump_json(), envelope.traceparent))
        return out

    def emit_envelopes(self, envelopes: Iterable[EncodedEnvelope]) -> None:
        for encoded in envelopes:
            envelope, message = self._encoded.pop(encoded.id)
            self._pending.append(envelope)
            self._pending_messages.append(message)

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        self._after_commit.append(action)

    async def claim_inbox(self, consumer: str, message_id: str) -> bool:
        key = (consumer, message_id)
        if key in self.claimed or key in self._claims:
            return False
        self._claims.add(key)
        return True

    async def commit(self) -> None:
        if self.joined:
            return
        self._keep(self.work)
        self.published.extend(self._pending)
        self.messages.extend(self._pending_messages)
        self.claimed.update(self._claims)
        had_messages = bool(self._pending)
        actions = self._after_commit
        self.commits += 1
        self._begin()
        if had_messages:
            self.on_commit()
        for action in actions:
            await action()

    async def rollback(self) -> None:
        self.rollbacks += 1
        self._begin()
