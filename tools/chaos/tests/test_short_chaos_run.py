"""The short chaos run `make test` does: every service process killed once (a printer-gateway replica
included), NATS and PostgreSQL restarted, a printer unplugged and one power-cycled, messages duplicated
and reordered, while 16 jobs print on 8 printers. Nothing lost, nothing printed twice, the order done."""

from __future__ import annotations

import os

import pytest

from chaos.plan import SHORT
from chaos.run import run_chaos

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CHAOS_SEED") or 12)


@pytest.mark.timeout(600)
async def test_a_short_chaos_run_loses_no_job_and_prints_none_twice() -> None:
    outcome = await run_chaos(SEED, SHORT, budget=240)
    print(outcome.line())
    assert not outcome.tally.lost, f"{outcome.line()}\nlost: {outcome.tally.lost}\nlogs: {outcome.kept}"
    assert not outcome.tally.doubled, f"{outcome.line()}\nprinted twice: {outcome.tally.doubled}\nlogs: {outcome.kept}"
    assert not outcome.skipped, f"{outcome.line()}\nnot done: {outcome.skipped}"
    assert outcome.passed, f"{outcome.line()}\nunfinished: {outcome.tally.unfinished}\nlogs: {outcome.kept}"
    assert sum(outcome.performed.values()) == SHORT.actions
