"""Farm analytics from the jobs the queue owns: jobs completed and failed and grams of each material used
per hour or day, why jobs failed, how long jobs waited for a printer, and each order's time from the
print-jobs click to its last job completed. Pure functions over `JobFact`s, so they are tested without a
database; the adapter fetches the jobs of every order with activity in the window.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Period = Literal["24h", "7d", "30d"]
PERIODS: dict[Period, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
Bucket = Literal["hour", "day"]
TOP_REASONS = 10
"""Failure reasons beyond the most frequent ten are summed as `other`, so a chart stays legible."""
OTHER_REASON = "other"
UNKNOWN_REASON = "no reason given"


@dataclass(frozen=True)
class Window:
    """The half-open interval [since, until) and the size of its chart buckets (hours for 24 h, else days)."""

    period: Period
    since: datetime
    until: datetime
    bucket: Bucket

    @classmethod
    def ending(cls, period: Period, until: datetime) -> Window:
        return cls(period, until - PERIODS[period], until, "hour" if period == "24h" else "day")

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= moment < self.until

    def bucket_of(self, moment: datetime) -> datetime:
        """The UTC hour or day `moment` falls in."""
        moment = moment.astimezone(UTC)
        if self.bucket == "hour":
            return moment.replace(minute=0, second=0, microsecond=0)
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)

    def buckets(self) -> list[datetime]:
        """Every bucket the window touches, oldest first, so empty hours or days show as zero."""
        step = timedelta(hours=1) if self.bucket == "hour" else timedelta(days=1)
        first, last = self.bucket_of(self.since), self.bucket_of(self.until - timedelta(microseconds=1))
        out = []
        while first <= last:
            out.append(first)
            first += step
        return out


@dataclass(frozen=True)
class JobFact:
    """What analytics needs of one job."""

    id: str
    order_id: str
    order_number: str
    status: str
    material_type: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    grams: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class BucketFigures:
    start: datetime
    completed: int
    failed: int
    grams: dict[str, float]
    """Grams by material type (upper case) of the jobs completed in this bucket."""


@dataclass(frozen=True)
class FailureReason:
    reason: str
    count: int


@dataclass(frozen=True)
class QueueWait:
    """From the click that made a job to its start on a printer, over the jobs started in the window."""

    jobs: int
    average_seconds: float | None
    max_seconds: float | None


@dataclass(frozen=True)
class OrderLeadTime:
    order_id: str
    order_number: str
    clicked_at: datetime
    completed_at: datetime
    seconds: float


@dataclass(frozen=True)
class JobAnalytics:
    window: Window
    series: list[BucketFigures]
    completed: int
    failed: int
    grams: dict[str, float]
    failure_reasons: list[FailureReason]
    queue_wait: QueueWait
    orders: list[OrderLeadTime]
    average_click_to_complete_seconds: float | None


def material_key(material_type: str) -> str:
    return material_type.strip().upper() or "UNKNOWN"


def job_analytics(jobs: Iterable[JobFact], window: Window) -> JobAnalytics:
    facts = list(jobs)
    completed = [j for j in facts if j.status == "completed" and window.contains(j.finished_at)]
    failed = [j for j in facts if j.status == "failed" and window.contains(j.finished_at)]
    return JobAnalytics(
        window=window,
        series=_series(completed, failed, window),
        completed=len(completed),
        failed=len(failed),
        grams=_grams(completed),
        failure_reasons=failure_reasons(failed),
        queue_wait=queue_wait(facts, window),
        orders=(orders := order_lead_times(facts, window)),
        average_click_to_complete_seconds=_mean([o.seconds for o in orders]),
    )


def _series(completed: list[JobFact], failed: list[JobFact], window: Window) -> list[BucketFigures]:
    done: Counter[datetime] = Counter()
    lost: Counter[datetime] = Counter()
    grams: dict[datetime, dict[str, float]] = defaultdict(dict)
    for job in completed:
        assert job.finished_at is not None
        start = window.bucket_of(job.finished_at)
        done[start] += 1
        if job.grams:
            key = material_key(job.material_type)
            grams[start][key] = grams[start].get(key, 0.0) + job.grams
    for job in failed:
        assert job.finished_at is not None
        lost[window.bucket_of(job.finished_at)] += 1
    return [
        BucketFigures(start, done[start], lost[start], {k: round(v, 3) for k, v in sorted(grams[start].items())})
        for start in window.buckets()
    ]


def _grams(completed: list[JobFact]) -> dict[str, float]:
    total: dict[str, float] = {}
    for job in completed:
        if job.grams:
            key = material_key(job.material_type)
            total[key] = total.get(key, 0.0) + job.grams
    return {k: round(v, 3) for k, v in sorted(total.items())}


def failure_reasons(failed: Iterable[JobFact]) -> list[FailureReason]:
    """The reasons jobs failed, most frequent first (ties by text); beyond the top ten summed as `other`."""
    counts = Counter((j.error or "").strip() or UNKNOWN_REASON for j in failed)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = [FailureReason(reason, n) for reason, n in ranked[:TOP_REASONS]]
    rest = sum(n for _, n in ranked[TOP_REASONS:])
    return top + ([FailureReason(OTHER_REASON, rest)] if rest else [])


def queue_wait(jobs: Iterable[JobFact], window: Window) -> QueueWait:
    waits = [
        max(0.0, (j.started_at - j.created_at).total_seconds())
        for j in jobs
        if j.started_at is not None and window.contains(j.started_at)
    ]
    return QueueWait(len(waits), _mean(waits), max(waits) if waits else None)


def order_lead_times(jobs: Iterable[JobFact], window: Window) -> list[OrderLeadTime]:
    """Orders whose every live (not cancelled) job is completed, the last within the window: from the first
    job's creation (the click, as the queue saw it) to the last completion. Newest completion first."""
    by_order: dict[str, list[JobFact]] = defaultdict(list)
    for job in jobs:
        if job.status != "cancelled":
            by_order[job.order_id].append(job)
    out = []
    for order_id, live in by_order.items():
        if not all(j.status == "completed" and j.finished_at is not None for j in live):
            continue
        clicked = min(j.created_at for j in live)
        finished = max(j.finished_at for j in live if j.finished_at is not None)
        if window.contains(finished):
            seconds = max(0.0, (finished - clicked).total_seconds())
            out.append(OrderLeadTime(order_id, live[0].order_number, clicked, finished, seconds))
    return sorted(out, key=lambda o: (o.completed_at, o.order_id), reverse=True)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
