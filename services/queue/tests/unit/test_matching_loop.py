"""The matching loop chases unanswered slice requests beside full passes, but not after every woken pass."""

from __future__ import annotations

from printqueue.domain.matching import Dispatch
from printqueue.entrypoints.matching_loop import MatchingLoop
from printqueue.service_layer.handlers import Deps

from .queue_fakes import InMemoryUnitOfWork


class CountingLoop(MatchingLoop):
    """The loop's own scheduling, with the pass and the chase only counted."""

    def __init__(self, full_pass_seconds: float) -> None:
        super().__init__(InMemoryUnitOfWork, Deps(), interval_seconds=1.0, full_pass_seconds=full_pass_seconds)
        self.full_passes = 0
        self.chases = 0

    async def run_once(self, *, assign: bool = True) -> list[Dispatch]:
        self.full_passes += assign
        return []

    async def chase_slices(self) -> int:
        self.chases += 1
        return 0


async def test_woken_passes_in_a_row_chase_slices_once_per_full_pass_interval() -> None:
    loop = CountingLoop(full_pass_seconds=3600.0)
    for _ in range(5):
        await loop._step(True)
    assert (loop.full_passes, loop.chases) == (5, 1)


async def test_with_the_interval_elapsed_every_full_pass_chases() -> None:
    loop = CountingLoop(full_pass_seconds=0.0)
    for _ in range(3):
        await loop._step(True)
    assert (loop.full_passes, loop.chases) == (3, 3)
