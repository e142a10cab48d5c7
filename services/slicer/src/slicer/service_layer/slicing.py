"""One slice request from start to answer: claim, fetch the source, run the pipeline outside any
transaction while the claim is renewed, store the file, record the outcome with the answer.

Infrastructure trouble (object store or database unreachable) gives the claim back and is raised as
`RetryLater`: the message goes back to JetStream with backoff and, after the last delivery, to the
dead letters. What the tools refuse is an answer (`SliceFailed`), never a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from slicer.domain import commands
from slicer.domain.commands import SliceRequest
from slicer.domain.model import SliceFailure, SliceResult
from slicer.service_layer import handlers, views
from slicer.service_layer.handlers import Answered, Claimed, Deps, Waiting
from slicer.service_layer.ports import SlicedFiles, SliceError, SourceFiles, SourceNotFound
from slicer.service_layer.unit_of_work import SlicerUnitOfWork

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Not the inputs' fault: try this request again later (another delivery)."""


class SliceWorker:
    def __init__(
        self,
        uow_factory: Callable[[], SlicerUnitOfWork],
        deps: Deps,
        sources: SourceFiles,
        sliced: SlicedFiles,
    ) -> None:
        self.uow_factory, self.deps, self.sources, self.sliced = uow_factory, deps, sources, sliced

    async def begin(self, request: SliceRequest) -> Answered | Waiting | Claimed:
        try:
            begun = await handlers.begin_slice(commands.BeginSlice(request), self.uow_factory(), self.deps)
        except Exception as exc:
            raise RetryLater(f"could not look the slice up: {exc!r}") from exc
        return begun

    async def slice(self, request: SliceRequest, claimed: Claimed) -> Answered:
        """Make the file for a claimed slice and answer."""
        try:
            return await self._slice(request, claimed)
        except asyncio.CancelledError:
            # Shutting down mid-slice: give the claim back so another replica need not wait for the lease.
            await asyncio.shield(self._give_back(claimed, "the worker stopped mid-slice"))
            raise

    async def _slice(self, request: SliceRequest, claimed: Claimed) -> Answered:
        async with self._renewing(claimed):
            try:
                source = await self._fetch(request, claimed)
            except SourceNotFound as exc:
                return await self._answer_uncached(request, claimed, SliceFailure("fetch", str(exc)))
            try:
                made = await self.deps.pipeline.make_printable(claimed.job, source)
            except SliceError as exc:
                failure = SliceFailure(exc.stage, exc.message)
                if exc.transient:
                    # A tool missing here or stopped at its limit on a busy machine: answered, not cached,
                    # so a later request (or an operator's retry) slices it afresh.
                    return await self._answer_uncached(request, claimed, failure)
                return await self._record(commands.RecordOutcome(request, claimed.key, failure), claimed)
            except Exception as exc:
                # Not the inputs' fault (disk full, a work folder gone): another try may well succeed.
                await self._give_back(claimed, f"the pipeline broke: {exc!r}")
                raise RetryLater(f"the pipeline broke: {exc!r}") from exc
            try:
                await self.sliced.put(made.sha256, made.content)
            except Exception as exc:
                await self._give_back(claimed, f"storing the sliced file failed: {exc!r}")
                raise RetryLater(f"storing the sliced file failed: {exc!r}") from exc
        result = SliceResult(
            sha256=made.sha256,
            filename=made.filename,
            kind=made.kind,
            size_bytes=len(made.content),
            profile=made.profile,
            print_minutes=made.print_minutes,
            grams=made.grams,
            layers=made.layers,
            filament_mm=made.filament_mm,
        )
        return await self._record(commands.RecordOutcome(request, claimed.key, result), claimed)

    async def wait_for(self, waiting: Waiting, poll_seconds: float) -> None:
        """Until the slice another worker holds is done, given back, or its claim's lease ran out."""
        while True:
            if not await self.still_waiting(waiting):
                return
            await asyncio.sleep(poll_seconds)

    async def still_waiting(self, waiting: Waiting) -> bool:
        """False once the slice being waited on is done, released, or its claim's lease ran out."""
        try:
            item = await views.slice_or_none(waiting.key, self.uow_factory())
        except Exception:
            log.warning("could not read slice %s while waiting; looking again", waiting.key, exc_info=True)
            return True
        return (
            item is not None
            and item.state == "slicing"
            and item.lease_expires_at is not None
            and item.lease_expires_at > self.deps.clock()
        )

    async def _fetch(self, request: SliceRequest, claimed: Claimed) -> bytes:
        sha256 = request.message.source.sha256
        try:
            source = await self.sources.get(sha256)
        except SourceNotFound:
            raise
        except Exception as exc:
            await self._give_back(claimed, f"fetching the source failed: {exc!r}")
            raise RetryLater(f"fetching source {sha256} failed: {exc!r}") from exc
        actual = hashlib.sha256(source).hexdigest()
        if actual != sha256:
            raise SourceNotFound(f"part-files holds {sha256} with content of sha256 {actual}")
        return source

    async def _answer_uncached(self, request: SliceRequest, claimed: Claimed, failure: SliceFailure) -> Answered:
        cmd = commands.AnswerUncached(request, claimed.key, claimed.owner, failure)
        return await self._finish(claimed, lambda: handlers.answer_uncached(cmd, self.uow_factory(), self.deps))

    async def _record(self, cmd: commands.RecordOutcome, claimed: Claimed) -> Answered:
        return await self._finish(claimed, lambda: handlers.record_outcome(cmd, self.uow_factory(), self.deps))

    async def _finish(self, claimed: Claimed, step: Callable[[], Awaitable[Answered]]) -> Answered:
        try:
            answered = await step()
        except Exception as exc:
            await self._give_back(claimed, f"recording the outcome failed: {exc!r}")
            raise RetryLater(f"recording the outcome failed: {exc!r}") from exc
        return answered

    async def _give_back(self, claimed: Claimed, error: str) -> None:
        try:
            cmd = commands.GiveBack(claimed.key, claimed.owner, error)
            await handlers.give_back(cmd, self.uow_factory(), self.deps)
        except Exception:
            log.warning("could not release the claim on %s; it expires with its lease", claimed.key, exc_info=True)

    @contextlib.asynccontextmanager
    async def _renewing(self, claimed: Claimed) -> AsyncIterator[None]:
        async def renew_forever() -> None:
            interval = self.deps.lease.total_seconds() / 3
            renew = commands.RenewClaim(claimed.key, claimed.owner)
            while True:
                await asyncio.sleep(interval)
                try:
                    if not await handlers.renew_claim(renew, self.uow_factory(), self.deps):
                        log.warning("claim on %s was lost; finishing the slice anyway", claimed.key)
                        return
                except Exception:
                    log.warning("renewing the claim on %s failed; trying again", claimed.key, exc_info=True)

        task = asyncio.create_task(renew_forever(), name=f"renew-{claimed.key[:12]}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
