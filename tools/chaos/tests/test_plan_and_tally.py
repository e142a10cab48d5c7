"""The chaos plan (seeded, complete) and the tally (what counts as lost or printed twice)."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from chaos.accounting import JobState, PrintStart, doubled_starts, tally
from chaos.plan import FULL, SERVICE_INSTANCES, SHORT, ChaosProfile, plan_chaos

PRINTERS = [f"CHAOS{n:05d}" for n in range(1, 9)]


@given(st.integers(0, 2**32), st.sampled_from([FULL, SHORT]))
def test_a_seed_always_gives_the_same_complete_plan(seed: int, profile: ChaosProfile) -> None:
    plan = plan_chaos(seed, profile, PRINTERS)
    assert plan == plan_chaos(seed, profile, PRINTERS)
    assert len(plan) == profile.actions
    kills = Counter(a.target for a in plan if a.kind == "kill")
    assert kills == dict.fromkeys(SERVICE_INSTANCES, profile.kills_per_service)
    kinds = Counter(a.kind for a in plan)
    assert kinds["restart_nats"] == kinds["restart_postgres"] == profile.server_restarts
    assert kinds["offline"] == kinds["power_cycle"] == profile.printer_faults
    assert kinds["duplicate"] == kinds["reorder"] == profile.tamperings
    times = [a.at for a in plan]
    assert times == sorted(times) and all(b - a >= profile.min_gap - 0.01 for a, b in itertools.pairwise(times))
    assert {a.target for a in plan if a.kind in ("offline", "power_cycle")} <= set(PRINTERS)


def test_the_full_profile_is_what_the_issue_asks_for() -> None:
    assert FULL.jobs >= 60 and FULL.printers >= 8 and FULL.kills_per_service >= 2 and FULL.server_restarts >= 1
    assert "printer_gateway-2" in SERVICE_INSTANCES


def start(job: str, at: str, outcome: str | None, serial: str = "P1") -> PrintStart:
    return PrintStart(job_id=job, serial=serial, at=at, outcome=outcome)


def test_a_retry_after_a_failed_print_is_not_a_double_but_a_start_after_a_finished_one_is() -> None:
    starts = [
        start("a", "t1", "power_lost"),
        start("a", "t2", "finished", "P2"),
        start("b", "t1", "finished"),
        start("b", "t3", "finished", "P3"),
        start("c", "t1", None),
        start("c", "t2", "finished"),
    ]
    assert [(s.job_id, s.at) for s in doubled_starts(starts)] == [("b", "t3"), ("c", "t2")]


def test_lost_counts_missing_jobs_and_completions_no_printer_finished() -> None:
    jobs = [JobState("a", "completed"), JobState("b", "completed"), JobState("c", "queued")]
    result = tally(4, jobs, [start("a", "t1", "finished"), start("b", "t1", "failed")])
    assert result.lost == ["b", "missing-1"]
    assert result.completed == 1 and result.unfinished == ["c"] and not result.passed


def test_every_job_finished_once_passes() -> None:
    jobs = [JobState(j, "completed") for j in "ab"]
    starts = [start("a", "t1", "failed"), start("a", "t2", "finished"), start("b", "t1", "finished")]
    assert tally(2, jobs, starts).passed


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["failed", "power_lost", "finished", None])),
                max_size=12))
def test_a_job_whose_every_earlier_start_failed_is_never_doubled(rows: list[tuple[str, str | None]]) -> None:
    starts = [start(job, f"t{i:03d}", outcome) for i, (job, outcome) in enumerate(rows)]
    doubled = doubled_starts(starts)
    for s in doubled:
        earlier = [x for x in starts if x.job_id == s.job_id and x.at < s.at]
        assert any(x.outcome in ("finished", None) for x in earlier)
    assert len(doubled) <= max(0, len(starts) - len({s.job_id for s in starts}))
