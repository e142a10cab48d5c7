"""Answering slice requests through the service layer, on fakes: cache hits, claims, failures, duplicates
and infrastructure trouble."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from slicer_fakes import (
    SCAD,
    Clock,
    FakePipeline,
    FakeSliced,
    FakeSources,
    FakeUnitOfWork,
    Ids,
    State,
    request,
    slice_part,
)

from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceFailed
from slicer.domain.commands import SliceRequest
from slicer.service_layer import messages
from slicer.service_layer.handlers import Answered, Claimed, Deps, Waiting
from slicer.service_layer.ports import SlicedFile, SliceError, SliceJob
from slicer.service_layer.slicing import RetryLater, SliceWorker

LEASE = timedelta(seconds=30)


class Rig:
    def __init__(self) -> None:
        self.state = State()
        self.clock = Clock()
        self.pipeline = FakePipeline()
        self.sources = FakeSources()
        self.sliced = FakeSliced()
        self.worker = SliceWorker(
            lambda: FakeUnitOfWork(self.state),
            Deps(clock=self.clock, ids=Ids("claim"), pipeline=self.pipeline, lease=LEASE, instance="slicer-1"),
            self.sources,
            self.sliced,
        )

    def answers(self) -> list[SliceCompleted | SliceFailed]:
        out: list[SliceCompleted | SliceFailed] = []
        for envelope in self.state.published:
            kind = SliceCompleted if envelope.type == SliceCompleted.SUBJECT else SliceFailed
            out.append(envelope.open(kind))
        return out

    async def handle(self, req: SliceRequest) -> Answered | Waiting:
        begun = await self.worker.begin(req)
        if isinstance(begun, Claimed):
            return await self.worker.slice(req, begun)
        return begun


@pytest.fixture
def rig() -> Rig:
    return Rig()


async def test_a_new_slice_is_made_stored_and_answered(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    message = slice_part(sha, key="line-1/part-1/X1C")
    req = request(message)
    answered = await rig.handle(req)
    assert isinstance(answered, Answered) and answered.how == "sliced"
    [answer] = rig.answers()
    assert isinstance(answer, SliceCompleted)
    assert answer.slice_key == "line-1/part-1/X1C" and answer.cached is False
    assert answer.file.bucket == SLICED_FILES_BUCKET and answer.file.kind == "gcode.3mf"
    assert rig.sliced.files[answer.file.sha256] is not None
    assert answer.file.size_bytes == len(rig.sliced.files[answer.file.sha256])
    assert answer.estimate.print_minutes == 12.5 and answer.estimate.layers == 40
    assert answer.profile == "fake-x1c/pla" and answer.material.color == "#FF0000"
    assert rig.state.published[0].id == messages.answer_id(req.id)
    assert rig.state.published[0].causationid == req.id
    [item] = rig.state.slices.values()
    assert item.state == "completed" and item.claim_owner is None and item.attempts == 1


async def test_a_later_request_for_the_same_slice_is_answered_from_the_cache(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    await rig.handle(request(slice_part(sha, key="first")))
    answered = await rig.handle(request(slice_part(sha, key="second")))
    assert isinstance(answered, Answered) and answered.how == "from the cache"
    first, second = rig.answers()
    assert isinstance(first, SliceCompleted) and isinstance(second, SliceCompleted)
    assert second.cached is True and second.slice_key == "second"
    assert second.file == first.file and second.estimate == first.estimate
    assert len(rig.pipeline.calls) == 1


async def test_other_parameter_values_are_another_slice(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    await rig.handle(request(slice_part(sha, parameters={"label": "A"})))
    await rig.handle(request(slice_part(sha, parameters={"label": "B"})))
    assert len(rig.pipeline.calls) == 2
    assert len(rig.state.slices) == 2
    assert all(isinstance(a, SliceCompleted) and not a.cached for a in rig.answers())


async def test_a_duplicate_request_is_answered_once(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    req = request(slice_part(sha))
    await rig.handle(req)
    again = await rig.handle(req)
    assert isinstance(again, Answered) and again.how.startswith("duplicate")
    assert len(rig.state.published) == 1
    assert len(rig.pipeline.calls) == 1


async def test_a_second_worker_waits_for_a_live_claim_and_then_answers_from_the_cache(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    first, second = request(slice_part(sha, key="a")), request(slice_part(sha, key="b"))
    claimed = await rig.worker.begin(first)
    assert isinstance(claimed, Claimed) and claimed.owner == "slicer-1/claim-1"
    waiting = await rig.worker.begin(second)
    assert isinstance(waiting, Waiting)
    assert waiting.owner == claimed.owner and waiting.until == rig.clock() + LEASE
    assert await rig.worker.still_waiting(waiting)
    await rig.worker.slice(first, claimed)
    assert not await rig.worker.still_waiting(waiting)
    answered = await rig.handle(second)
    assert isinstance(answered, Answered) and answered.how == "from the cache"
    assert len(rig.pipeline.calls) == 1
    assert [a.slice_key for a in rig.answers()] == ["a", "b"]


async def test_an_expired_claim_is_taken_over_by_the_next_worker(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    first, second = request(slice_part(sha, key="a")), request(slice_part(sha, key="b"))
    dead = await rig.worker.begin(first)
    assert isinstance(dead, Claimed)
    rig.clock.advance(LEASE.total_seconds() - 1)
    assert isinstance(await rig.worker.begin(second), Waiting)
    rig.clock.advance(2)
    taken = await rig.worker.begin(second)
    assert isinstance(taken, Claimed) and taken.attempt == 2 and taken.owner != dead.owner
    await rig.worker.slice(second, taken)
    # The first worker's request, redelivered, is answered from what the second made.
    redelivered = await rig.handle(first)
    assert isinstance(redelivered, Answered) and redelivered.how == "from the cache"
    assert len(rig.pipeline.calls) == 1


async def test_a_worker_whose_claim_was_taken_over_answers_with_the_slice_already_made(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    first, second = request(slice_part(sha, key="a")), request(slice_part(sha, key="b"))
    slow = await rig.worker.begin(first)
    assert isinstance(slow, Claimed)
    rig.clock.advance(LEASE.total_seconds() + 1)
    fast = await rig.worker.begin(second)
    assert isinstance(fast, Claimed)
    await rig.worker.slice(second, fast)
    late = await rig.worker.slice(first, slow)
    assert late.how == "already done by another worker"
    a, b = rig.answers()
    assert isinstance(a, SliceCompleted) and isinstance(b, SliceCompleted)
    assert a.file == b.file and b.slice_key == "a"


async def test_a_tool_refusal_is_answered_as_failed_and_cached(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    rig.pipeline.error = SliceError("render", "ERROR: Parser error in line 2: syntax error")
    await rig.handle(request(slice_part(sha, key="a")))
    again = await rig.handle(request(slice_part(sha, key="b")))
    assert isinstance(again, Answered) and again.how == "from the cache"
    first, second = rig.answers()
    for answer, key in ((first, "a"), (second, "b")):
        assert isinstance(answer, SliceFailed)
        assert answer.slice_key == key and answer.stage == "render"
        assert answer.error == "ERROR: Parser error in line 2: syntax error"
    assert len(rig.pipeline.calls) == 1
    [item] = rig.state.slices.values()
    assert item.state == "failed" and item.failure is not None and item.failure.stage == "render"


async def test_a_refusal_that_may_pass_another_time_is_answered_but_not_cached(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    rig.pipeline.error = SliceError("slice", "PrusaSlicer is not installed on this slicer", transient=True)
    await rig.handle(request(slice_part(sha, key="a")))
    [answer] = rig.answers()
    assert isinstance(answer, SliceFailed) and answer.stage == "slice" and "not installed" in answer.error
    [item] = rig.state.slices.values()
    assert item.state == "requested" and item.failure is None
    rig.pipeline.error = None
    await rig.handle(request(slice_part(sha, key="b")))
    last = rig.answers()[-1]
    assert isinstance(last, SliceCompleted) and last.cached is False


async def test_no_profile_fails_at_once_and_is_not_cached(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    rig.pipeline.profile_error = SliceError("profile", "no profile for printer model 'Ender 3'")
    await rig.handle(request(slice_part(sha, model="Ender 3")))
    [answer] = rig.answers()
    assert isinstance(answer, SliceFailed) and answer.stage == "profile" and "Ender 3" in answer.error
    assert rig.state.slices == {} and rig.pipeline.calls == []
    rig.pipeline.profile_error = None
    await rig.handle(request(slice_part(sha, model="Ender 3")))
    assert isinstance(rig.answers()[-1], SliceCompleted)


async def test_a_source_missing_from_part_files_fails_at_fetch_without_caching(rig: Rig) -> None:
    message = slice_part("c" * 64, key="missing")
    await rig.handle(request(message))
    [answer] = rig.answers()
    assert isinstance(answer, SliceFailed) and answer.stage == "fetch" and "c" * 64 in answer.error
    [item] = rig.state.slices.values()
    assert item.state == "requested" and item.claim_owner is None
    rig.sources.files["c" * 64] = b"late"  # wrong content for that sha256: still refused
    await rig.handle(request(message))
    assert isinstance(rig.answers()[-1], SliceFailed)


async def test_an_already_sliced_source_is_refused(rig: Rig) -> None:
    await rig.handle(request(slice_part("d" * 64, kind="gcode.3mf")))
    [answer] = rig.answers()
    assert isinstance(answer, SliceFailed) and answer.stage == "fetch" and "already sliced" in answer.error
    assert rig.pipeline.calls == []


@pytest.mark.parametrize("where", ["sources", "sliced"])
async def test_an_unreachable_object_store_gives_the_claim_back_for_a_retry(rig: Rig, where: str) -> None:
    sha = rig.sources.add(SCAD)
    getattr(rig, where).down = True
    req = request(slice_part(sha))
    with pytest.raises(RetryLater, match="unreachable"):
        await rig.handle(req)
    assert rig.state.published == []
    [item] = rig.state.slices.values()
    assert item.state == "requested" and item.claim_owner is None and "unreachable" in (item.last_error or "")
    getattr(rig, where).down = False
    answered = await rig.handle(req)
    assert isinstance(answered, Answered) and answered.how == "sliced"
    assert len(rig.state.published) == 1


async def test_the_answer_id_is_the_same_for_a_redelivery_and_new_for_a_new_request() -> None:
    a, b = "0193a000-0000-7000-8000-000000000001", "0193a000-0000-7000-8000-000000000002"
    assert messages.answer_id(a) == messages.answer_id(a)
    assert messages.answer_id(a) != messages.answer_id(b)
    derived = uuid.UUID(messages.answer_id(a))
    assert derived.version == 7 and derived.int >> 80 == uuid.UUID(a).int >> 80


async def test_a_slice_cancelled_at_shutdown_gives_its_claim_back_at_once(rig: Rig) -> None:
    sha = rig.sources.add(SCAD)
    started, release = asyncio.Event(), asyncio.Event()
    real = rig.pipeline.make_printable

    async def blocking(job: SliceJob, source: bytes) -> SlicedFile:
        started.set()
        await release.wait()
        return await real(job, source)

    rig.pipeline.make_printable = blocking  # type: ignore[method-assign]
    req = request(slice_part(sha))
    claimed = await rig.worker.begin(req)
    assert isinstance(claimed, Claimed)
    task = asyncio.create_task(rig.worker.slice(req, claimed))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [item] = rig.state.slices.values()
    assert item.state == "requested" and item.claim_owner is None and "stopped" in (item.last_error or "")
    assert rig.state.published == []
    rig.pipeline.make_printable = real  # type: ignore[method-assign]
    assert isinstance(await rig.worker.begin(request(slice_part(sha, key="next"))), Claimed)
