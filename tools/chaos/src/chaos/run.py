"""One chaos run: a stack of its own, an order, the seeded plan carried out while an operator keeps
clearing beds and retrying what a power cut failed, then the tally and its one summary line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from chaos.accounting import JobState, Tally, tally
from chaos.farm import API_ERRORS, Farm
from chaos.fleet import write_fleet
from chaos.plan import ChaosProfile, plan_chaos
from devstack import Stack, StackConfig, wait_until

log = logging.getLogger("chaos")
T = TypeVar("T")

TIME_SCALE = 600.0
PRINT_MINUTES = 90
"""Printer minutes per print: 9 real seconds at the time scale, so faults land on prints under way."""
OPERATOR_EVERY = 1.0


@dataclass(frozen=True)
class Outcome:
    seed: int
    profile: ChaosProfile
    actions: int
    performed: dict[str, int]
    skipped: list[str]
    tally: Tally
    retried: int
    dead_letters: int | None
    time_to_complete: float | None
    wall: float
    kept: Path | None

    @property
    def passed(self) -> bool:
        return self.tally.passed and self.time_to_complete is not None and not self.skipped

    def line(self) -> str:
        done = "never" if self.time_to_complete is None else f"{self.time_to_complete:.1f}s"
        kinds = " ".join(f"{k}={v}" for k, v in sorted(self.performed.items()))
        return (
            f"chaos seed={self.seed} actions={sum(self.performed.values())}/{self.actions} ({kinds}) "
            f"jobs={self.tally.completed}/{self.tally.expected} lost={len(self.tally.lost)} "
            f"doubled={len(self.tally.doubled)} time_to_complete={done} "
            f"printers={self.profile.printers} retried={self.retried} dead_letters={self.dead_letters} "
            f"wall={self.wall:.0f}s {'PASS' if self.passed else 'FAIL'}"
        )


async def run_chaos(seed: int, profile: ChaosProfile, *, budget: float, keep: bool = False) -> Outcome:
    """`budget` bounds the run after the order is sent: the plan, then completion and settling."""
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix=f"printfarm-chaos-{seed}-"))
    serials = write_fleet(folder / "fleet.json", profile.printers)
    config = StackConfig.for_tests(
        folder / "stack", os.environ, time_scale=TIME_SCALE, fleet=str(folder / "fleet.json")
    )
    passed = False
    try:
        async with Stack(config) as stack:
            await stack.start_service("printer_gateway")  # the replica the plan kills too
            farm = Farm(stack, seed)
            try:
                outcome = await _shake(stack, farm, seed, profile, serials, budget, began)
            finally:
                await farm.close()
        passed = outcome.passed
        return outcome if passed or keep else _kept(outcome, folder)
    finally:
        if passed and not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _kept(outcome: Outcome, folder: Path) -> Outcome:
    return Outcome(**{**outcome.__dict__, "kept": folder})


async def _shake(
    stack: Stack, farm: Farm, seed: int, profile: ChaosProfile, serials: list[str], budget: float, began: float
) -> Outcome:
    plan = plan_chaos(seed, profile, serials)
    await farm.place_order(profile.jobs, PRINT_MINUTES)
    sent = time.monotonic()
    deadline = sent + budget
    completed_at: float | None = None

    async def operator() -> None:
        nonlocal completed_at
        while True:
            await farm.operate()
            if completed_at is None:
                with contextlib.suppress(*API_ERRORS, RuntimeError):
                    if (await farm.order())["is_complete"]:
                        completed_at = time.monotonic()
            await asyncio.sleep(OPERATOR_EVERY)  # an operator's pace, not a wait for a condition

    operating = asyncio.create_task(operator(), name="chaos-operator")
    try:
        previous_at = 0.0
        for action in plan:
            # The plan's gaps, counted from when the previous fault was done (waiting for a process to be
            # back may take a while; faults do not then fire in a burst).
            await asyncio.sleep(action.at - previous_at)
            previous_at = action.at
            if time.monotonic() > deadline:
                farm.counters.skipped.append(f"{action.describe()}: past the time budget")
                continue
            await asyncio.wait_for(farm.perform(action), timeout=max(1.0, deadline - time.monotonic()))
        await farm.settle_faults()
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: completed_at is not None, max(1.0, deadline - time.monotonic()),
                             "the order's green check", interval=0.5)
        with contextlib.suppress(TimeoutError):
            await wait_until(_settled(farm), max(5.0, deadline - time.monotonic()), "the farm to settle",
                             interval=0.5)
    finally:
        operating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await operating
    listed = cast(Callable[[], Awaitable[list[JobState]]], _answer(farm.jobs))  # truthy once answered
    jobs = await wait_until(listed, 60, "the queue to list the order's jobs")
    starts = await farm.starts()
    result = tally(profile.jobs, jobs, starts)
    for start in result.doubled:
        log.error("printed twice: job %s on %s at %s", start.job_id, start.serial, start.at)
    return Outcome(
        seed=seed,
        profile=profile,
        actions=len(plan),
        performed=dict(farm.counters.performed),
        skipped=list(farm.counters.skipped),
        tally=result,
        retried=farm.counters.retried,
        dead_letters=await farm.dead_letters(),
        time_to_complete=None if completed_at is None else completed_at - sent,
        wall=time.monotonic() - began,
        kept=None,
    )


def _settled(farm: Farm) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        with contextlib.suppress(*API_ERRORS, RuntimeError):
            return await farm.healthy() and await farm.all_printers_idle()
        return False

    return check


def _answer(call: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T | None]]:
    async def check() -> T | None:
        with contextlib.suppress(*API_ERRORS, RuntimeError):
            return await call()
        return None

    return check
