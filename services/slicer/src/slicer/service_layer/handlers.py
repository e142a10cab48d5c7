"""The steps of answering one `SlicePart`, each its own short transaction.

`begin_slice` answers from the cache, says to wait for another worker's live claim, or claims the
slice; the pipeline then runs outside any transaction, and `record_outcome` stores the result (or the
tools' refusal) together with the answer in the outbox and the request's inbox mark. A request is
answered exactly once: its inbox mark and its answer commit together, and the answer's envelope id is
derived from the request's, so even a duplicate that slipped past the inbox is dropped by JetStream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.envelope import ContractMessage, Envelope
from contracts.queue.v1 import SlicePart
from servicekit.ids import Clock, utc_now
from slicer.domain.model import Answer, Claim, ClaimLost, SliceFailure, SliceResult, Wait
from slicer.service_layer import messages
from slicer.service_layer.ports import SliceError, SliceJob, SlicePipeline
from slicer.service_layer.unit_of_work import SlicerUnitOfWork

SLICE_PART_DURABLE = "slicer__slice_part"


@dataclass(frozen=True)
class Context:
    lease: timedelta
    clock: Clock = utc_now
    consumer: str = SLICE_PART_DURABLE


@dataclass(frozen=True)
class SliceRequest:
    message: SlicePart
    envelope: Envelope

    @property
    def id(self) -> str:
        return self.envelope.id


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


async def begin_slice(
    request: SliceRequest, uow: SlicerUnitOfWork, pipeline: SlicePipeline, ctx: Context, owner: str
) -> Begun:
    message = request.message
    uow.caused_by(request.envelope)
    if await uow.answered(ctx.consumer, request.id):
        return Answered("duplicate request, already answered")
    now = ctx.clock()
    try:
        job = messages.job_for(message)
    except messages.NotSliceable as exc:
        await _answer(uow, request, ctx, messages.failed(message, SliceFailure("fetch", str(exc)), at=now))
        return Answered("not sliceable")
    try:
        pipeline.profile_for(job)
        key = pipeline.cache_key(job)
    except SliceError as exc:
        # Not cached: an operator can add the missing profile (SLICER_PROFILES_DIR) and ask again.
        await _answer(uow, request, ctx, messages.failed(message, SliceFailure(exc.stage, exc.message), at=now))
        return Answered(f"failed at {exc.stage}")
    item = await uow.slices.lock(key, messages.inputs_of(message), now)
    decision = item.decide(owner, now, ctx.lease)
    if isinstance(decision, Answer):
        await _answer(uow, request, ctx, _cached_answer(message, decision, now))
        return Answered("from the cache")
    if isinstance(decision, Wait):
        return Waiting(key, decision.owner, decision.until)
    assert isinstance(decision, Claim)
    await uow.slices.save(item)
    await uow.commit()
    return Claimed(key, job, owner, decision.attempt)


async def renew_claim(claimed: Claimed, uow: SlicerUnitOfWork, ctx: Context) -> bool:
    """Keep the claim alive while the pipeline runs; False once it was lost (the slice still finishes)."""
    item = await uow.slices.get(claimed.key)
    if item is None:
        return False
    item = await uow.slices.lock(claimed.key, item.inputs, ctx.clock())
    try:
        item.renew(claimed.owner, ctx.clock(), ctx.lease)
    except ClaimLost:
        return False
    await uow.slices.save(item)
    await uow.commit()
    return True


async def record_outcome(
    request: SliceRequest,
    claimed: Claimed,
    outcome: SliceResult | SliceFailure,
    uow: SlicerUnitOfWork,
    ctx: Context,
) -> Answered:
    """Store what the pipeline made (or why it could not) and answer, in one transaction."""
    message = request.message
    uow.caused_by(request.envelope)
    now = ctx.clock()
    item = await uow.slices.lock(claimed.key, messages.inputs_of(message), now)
    if item.done:
        answer = _cached_answer(message, Answer(result=item.result, failure=item.failure), now)
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
    await _answer(uow, request, ctx, answer)
    return Answered(how)


async def answer_uncached(
    request: SliceRequest, claimed: Claimed, failure: SliceFailure, uow: SlicerUnitOfWork, ctx: Context
) -> Answered:
    """Answer failed but cache nothing, when the cause is not the inputs and may go away: the source is
    not (yet) in `part-files`, or this replica lacks a tool."""
    uow.caused_by(request.envelope)
    now = ctx.clock()
    item = await uow.slices.lock(claimed.key, messages.inputs_of(request.message), now)
    item.release(claimed.owner, failure.error, now)
    await uow.slices.save(item)
    await _answer(uow, request, ctx, messages.failed(request.message, failure, at=now))
    return Answered(f"failed at {failure.stage}, not cached")


async def give_back(claimed: Claimed, error: str, uow: SlicerUnitOfWork, ctx: Context) -> None:
    """Infrastructure trouble (object store, database): release the claim so a redelivery can retry at once."""
    item = await uow.slices.get(claimed.key)
    if item is None:
        return
    item = await uow.slices.lock(claimed.key, item.inputs, ctx.clock())
    item.release(claimed.owner, error, ctx.clock())
    await uow.slices.save(item)
    await uow.commit()


def _cached_answer(message: SlicePart, answer: Answer, now: datetime) -> ContractMessage:
    if answer.result is not None:
        return messages.completed(message, answer.result, cached=True, at=now)
    failure = answer.failure or SliceFailure("slice", "failed earlier without a message")
    return messages.failed(message, failure, at=now)


async def _answer(uow: SlicerUnitOfWork, request: SliceRequest, ctx: Context, answer: ContractMessage) -> None:
    """The answer and the inbox mark commit together; a request already answered gets no second one."""
    if await uow.claim_inbox(ctx.consumer, request.id):
        uow.answer(answer, envelope_id=messages.answer_id(request.id), subject_id=request.message.slice_key)
    await uow.commit()
