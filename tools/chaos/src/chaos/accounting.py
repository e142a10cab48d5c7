"""Counting what the chaos did to the order: jobs lost, prints started twice, from the printers' own record.

Pure: fed with the queue's jobs and the simulator's record of accepted `project_file` commands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

FAILED_OUTCOMES = frozenset({"failed", "power_lost"})
"""A start that ended like this may be started again (the operator retried the failed job)."""


@dataclass(frozen=True)
class PrintStart:
    job_id: str
    serial: str
    at: str
    outcome: str | None
    """`finished`, `failed`, `power_lost`, or None while the print runs."""


@dataclass(frozen=True)
class JobState:
    id: str
    status: str


@dataclass(frozen=True)
class Tally:
    expected: int
    jobs: int
    completed: int
    lost: list[str]
    """Jobs the order should have that never completed with a finished print at a printer."""
    doubled: list[PrintStart]
    """Starts of a job while an earlier start of it had not failed."""
    unfinished: list[str]

    @property
    def passed(self) -> bool:
        return not self.lost and not self.doubled and self.completed == self.expected == self.jobs


def doubled_starts(starts: Iterable[PrintStart]) -> list[PrintStart]:
    """A print started twice: any start after one of the same job that finished, still runs, or vanished."""
    by_job: dict[str, list[PrintStart]] = defaultdict(list)
    for start in starts:
        by_job[start.job_id].append(start)
    doubled = []
    for job_starts in by_job.values():
        ordered = sorted(job_starts, key=lambda s: s.at)
        for i, start in enumerate(ordered):
            if any(earlier.outcome not in FAILED_OUTCOMES for earlier in ordered[:i]):
                doubled.append(start)
    return doubled


def tally(expected: int, jobs: Iterable[JobState], starts: Iterable[PrintStart]) -> Tally:
    """Lost: fewer jobs than the order needs, or a job called completed that no printer finished."""
    jobs = list(jobs)
    starts = list(starts)
    finished = {s.job_id for s in starts if s.outcome == "finished"}
    completed = [j.id for j in jobs if j.status == "completed"]
    phantom = [job_id for job_id in completed if job_id not in finished]
    missing = max(0, expected - len(jobs))
    return Tally(
        expected=expected,
        jobs=len(jobs),
        completed=len(completed) - len(phantom),
        lost=phantom + [f"missing-{n + 1}" for n in range(missing)],
        doubled=doubled_starts(starts),
        unfinished=[j.id for j in jobs if j.status != "completed"],
    )
