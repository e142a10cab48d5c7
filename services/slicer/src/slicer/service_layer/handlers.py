"""The steps of answering one `SlicePart`, each a command handler owning its own short transaction.

`begin_slice` answers from the cache, says to wait for another worker's live claim, or claims the
slice; the pipeline then runs outside any transaction, and `record_outcome` stores the result (or the
tools' refusal) together with the answer in the outbox and the request's inbox mark. A request is
answered exactly once: its inbox mark and its answer commit together, and the answer's envelope id is
derived from the request's, so even a duplicate that slipped past the inbox is dropped by JetStream.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta

from contracts.envelope import ContractMessage
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from slicer.domain import commands
from slicer.domain.commands import SliceRequest
from slicer.domain.model import Answer, Claim, ClaimLost, SliceFailure, SliceResult, Wait
from slicer.service_layer import messages
from slicer.service_layer.ports import SliceError, SliceJob, SlicePipeline
from slicer.service_layer.unit_of_work import SlicerUnitOfWork

SLICE_PART_DURABLE = "slicer__slice_part"


@dataclass(frozen=True)
class Deps:
    """Time, ids and what the handlers work with: the pipeline (cache keys, profiles) and the claim's lease."""

    clock: Clock = utc_now
    ids: IdFactory = new_id
    _: KW_ONLY
    pipeline: SlicePipeline
    lease: timedelta = timedelta(seconds=60)
    instance: str = "slicer"
    """Names this replica in every claim it takes (`<instance>/<id>`)."""
    consumer: str = SLICE_PART_DURABLE

    def new_owner(self) -> str:
        """One token per claim: a restarted replica with the same name never mistakes an old claim for its own."""
        return f"{self.instance}/{self.ids()}"


@dataclass(frozen=True)
class Answered:
    """The request is answered (now or before): ack it."""

    how: str


@dataclass(frozen=True)
class Waiting:
    """Another worker slices the same key; look again when it is done or its lease ran out."""

    key: str
    owner: str
    until: datetime


@dataclass(frozen=True)
class Claimed:
    """This worker holds the slice: run the pipeline, then `record_outcome`."""

    key: str
    job: SliceJob
    owner: str
    attempt: int


Begun = Answered | Waiting | Claimed


async def begin_slice(cmd: commands.BeginSlice, uow: SlicerUnitOfWork, deps: Deps) -> Begun:
    request = cmd.request
    message = request.message
    async with uow:
        uow.caused_by(request.envelope)
        if await uow.answered(deps.consumer, request.id):
            return Answered("duplicate request, already answered")
        now = deps.clock()
        try:
            job = messages.job_for(message)
        except messages.NotSliceable as exc:
            await _answer(uow, request, deps, messages.failed(message, SliceFailure("fetch", str(exc)), at=now))
            return Answered("not sliceable")
        try:
            deps.pipeline.profile_for(job)
            key = deps.pipeline.cache_key(job)
        except SliceError as exc:
            # Not cached: an operator can add the missing profile (SLICER_PROFILES_DIR) and ask again.
            failure = SliceFailure(exc.stage, exc.message)
            await _answer(uow, request, deps, messages.failed(message, failure, at=now))
            return Answered(f"failed at {exc.stage}")
        item = await uow.slices.get_or_add(key, messages.inputs_of(message), now, for_update=True)
        owner = deps.new_owner()
        decision = item.decide(owner, now, deps.lease)
        if isinstance(decision, Answer):
            await _answer(uow, request, deps, messages.cached_answer(message, decision, at=now))
            return Answered("from the cache")
        if isinstance(decision, Wait):
            return Waiting(key, decision.owner, decision.until)
        assert isinstance(decision, Claim)
        await uow.slices.save(item)
        await uow.commit()
        return Claimed(key, job, owner, decision.attempt)


async def renew_claim(cmd: commands.RenewClaim, uow: SlicerUnitOfWork, deps: Deps) -> bool:
    """Keep the claim alive while the pipeline runs; False once it was lost (the slice still finishes)."""
    async with uow:
        item = await uow.slices.get(cmd.key, for_update=True)
        if item is None:
            return False
        try:
            item.renew(cmd.owner, deps.clock(), deps.lease)
        except ClaimLost:
            return False
        await uow.slices.save(item)
        await uow.commit()
        return True


async def record_outcome(cmd: commands.RecordOutcome, uow: SlicerUnitOfWork, deps: Deps) -> Answered:
    """Store what the pipeline made (or why it could not) and answer, in one transaction."""
    request, outcome = cmd.request, cmd.outcome
    message = request.message
    async with uow:
        uow.caused_by(request.envelope)
        now = deps.clock()
        item = await uow.slices.get_or_add(cmd.key, messages.inputs_of(message), now, for_update=True)
        if item.done:
            answer = messages.cached_answer(message, Answer(result=item.result, failure=item.failure), at=now)
            how = "already done by another worker"
        elif isinstance(outcome, SliceResult):
            item.complete(outcome, now)
            answer = messages.completed(message, outcome, cached=False, at=now)
            how = "sliced"
        else:
            item.fail(outcome, now)
            answer = messages.failed(message, outcome, at=now)
            how = f"failed at {outcome.stage}"
        await uow.slices.save(item)
        await _answer(uow, request, deps, answer)
        return Answered(how)


async def answer_uncached(cmd: commands.AnswerUncached, uow: SlicerUnitOfWork, deps: Deps) -> Answered:
    """Answer failed but cache nothing, when the cause is not the inputs and may go away: the source is
    not (yet) in `part-files`, or this replica lacks a tool."""
    request, failure = cmd.request, cmd.failure
    async with uow:
        uow.caused_by(request.envelope)
        now = deps.clock()
        item = await uow.slices.get_or_add(cmd.key, messages.inputs_of(request.message), now, for_update=True)
        item.release(cmd.owner, failure.error, now)
        await uow.slices.save(item)
        await _answer(uow, request, deps, messages.failed(request.message, failure, at=now))
        return Answered(f"failed at {failure.stage}, not cached")


async def give_back(cmd: commands.GiveBack, uow: SlicerUnitOfWork, deps: Deps) -> None:
    """Infrastructure trouble (object store, database): release the claim so a redelivery can retry at once."""
    async with uow:
        item = await uow.slices.get(cmd.key, for_update=True)
        if item is None:
            return
        item.release(cmd.owner, cmd.error, deps.clock())
        await uow.slices.save(item)
        await uow.commit()


async def _answer(uow: SlicerUnitOfWork, request: SliceRequest, deps: Deps, answer: ContractMessage) -> None:
    """The answer and the inbox mark commit together; a request already answered gets no second one."""
    if await uow.claim_inbox(deps.consumer, request.id):
        uow.answer(answer, envelope_id=messages.answer_id(request.id), subject_id=request.message.slice_key)
    await uow.commit()
