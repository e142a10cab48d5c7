"""Farm analytics over the queue's jobs: per-bucket counts and grams, failure reasons, queue wait and each
order's click-to-complete time, computed by the pure functions the HTTP route serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from printqueue.domain.analytics import (
    OTHER_REASON,
    TOP_REASONS,
    UNKNOWN_REASON,
    JobFact,
    Window,
    failure_reasons,
    job_analytics,
    order_lead_times,
    queue_wait,
)

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
H = timedelta(hours=1)


def job(
    id: str,
    status: str = "completed",
    *,
    order: str = "o1",
    created: datetime = NOW - 5 * H,
    started: datetime | None = None,
    finished: datetime | None = None,
    grams: float | None = 10.0,
    material: str = "PLA",
    error: str | None = None,
) -> JobFact:
    return JobFact(
        id=id, order_id=order, order_number=f"#{order}", status=status, material_type=material, created_at=created,
        started_at=started, finished_at=finished, grams=grams, error=error,
    )


def test_a_day_window_has_hourly_buckets_and_a_week_daily_ones_with_empty_ones_kept() -> None:
    day = Window.ending("24h", NOW)
    assert day.bucket == "hour" and day.since == NOW - 24 * H
    hours = day.buckets()
    assert len(hours) == 25 and hours[0] == datetime(2026, 3, 9, 15, tzinfo=UTC) and hours[-1] == NOW.replace(minute=0)
    week = Window.ending("7d", NOW)
    assert week.bucket == "day" and [d.day for d in week.buckets()] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert len(Window.ending("30d", NOW).buckets()) == 31


def test_completed_and_failed_jobs_count_in_the_bucket_they_finished_in_with_grams_by_material() -> None:
    window = Window.ending("24h", NOW)
    jobs = [
        job("a", finished=NOW - 2 * H, grams=12.5, material="pla "),
        job("b", finished=NOW - 2 * H + timedelta(minutes=20), grams=7.5, material="PLA"),
        job("c", finished=NOW - 1 * H, grams=30, material="PETG"),
        job("d", "failed", finished=NOW - 1 * H, error="nozzle clog"),
        job("e", finished=NOW - 25 * H),  # before the window
        job("f", "printing", started=NOW - H),
    ]
    figures = job_analytics(jobs, window)
    assert (figures.completed, figures.failed) == (3, 1)
    assert figures.grams == {"PETG": 30.0, "PLA": 20.0}
    by_start = {b.start: b for b in figures.series}
    two_ago = by_start[(NOW - 2 * H).replace(minute=0)]
    assert (two_ago.completed, two_ago.failed, two_ago.grams) == (2, 0, {"PLA": 20.0})
    one_ago = by_start[(NOW - H).replace(minute=0)]
    assert (one_ago.completed, one_ago.failed, one_ago.grams) == (1, 1, {"PETG": 30.0})
    assert sum(b.completed for b in figures.series) == 3 and sum(b.failed for b in figures.series) == 1
    assert figures.failure_reasons[0].reason == "nozzle clog"


def test_failure_reasons_rank_by_count_and_sum_the_tail_as_other() -> None:
    failed = [job(f"x{i}", "failed", error=f"reason {i}") for i in range(TOP_REASONS + 2)]
    failed += [job("y1", "failed", error="clog"), job("y2", "failed", error=" clog "), job("y3", "failed")]
    reasons = failure_reasons(failed)
    assert reasons[0].reason == "clog" and reasons[0].count == 2
    assert len(reasons) == TOP_REASONS + 1 and reasons[-1].reason == OTHER_REASON
    assert sum(r.count for r in reasons) == len(failed)
    assert UNKNOWN_REASON in {r.reason for r in reasons}


def test_queue_wait_is_from_creation_to_start_of_the_jobs_started_in_the_window() -> None:
    window = Window.ending("24h", NOW)
    jobs = [
        job("a", "printing", created=NOW - 3 * H, started=NOW - 2 * H),
        job("b", "completed", created=NOW - 3 * H, started=NOW - 3 * H + timedelta(minutes=30), finished=NOW),
        job("c", "queued", created=NOW - 3 * H),
        job("d", "completed", created=NOW - 50 * H, started=NOW - 30 * H, finished=NOW - 29 * H),
    ]
    wait = queue_wait(jobs, window)
    assert wait.jobs == 2 and wait.average_seconds == 2700.0 and wait.max_seconds == 3600.0
    assert queue_wait([], window).average_seconds is None


def test_an_order_counts_from_its_first_job_to_its_last_completion_once_every_live_job_is_done() -> None:
    window = Window.ending("7d", NOW)
    jobs = [
        job("a", order="done", created=NOW - 10 * H, finished=NOW - 4 * H),
        job("b", order="done", created=NOW - 9 * H, finished=NOW - 2 * H),
        job("c", "cancelled", order="done", created=NOW - 20 * H),
        job("d", order="open", created=NOW - 9 * H, finished=NOW - 2 * H),
        job("e", "printing", order="open", created=NOW - 9 * H),
        job("f", order="old", created=NOW - 300 * H, finished=NOW - 200 * H),
    ]
    orders = order_lead_times(jobs, window)
    assert [o.order_id for o in orders] == ["done"]
    assert orders[0].seconds == 8 * 3600 and orders[0].clicked_at == NOW - 10 * H
    assert job_analytics(jobs, window).average_click_to_complete_seconds == 8 * 3600


moments = st.integers(min_value=-40 * 3600, max_value=3600).map(lambda s: NOW + timedelta(seconds=s))


@st.composite
def facts(draw: st.DrawFn) -> JobFact:
    created = draw(moments)
    status = draw(st.sampled_from(["queued", "printing", "completed", "failed", "cancelled"]))
    started = draw(st.none() | moments)
    finished = draw(moments) if status in ("completed", "failed") else None
    return job(
        draw(st.uuids()).hex, status, order=draw(st.sampled_from("abc")), created=created, started=started,
        finished=finished, grams=draw(st.none() | st.floats(0, 500)), material=draw(st.sampled_from(["PLA", "abs"])),
        error=draw(st.none() | st.sampled_from(["clog", "spaghetti"])),
    )


@given(st.lists(facts(), max_size=40), st.sampled_from(["24h", "7d", "30d"]))
def test_the_series_adds_up_to_the_totals_and_every_figure_lies_in_the_window(jobs: list[JobFact], period: str) -> None:
    window = Window.ending(period, NOW)  # type: ignore[arg-type]
    figures = job_analytics(jobs, window)
    assert sum(b.completed for b in figures.series) == figures.completed
    assert sum(b.failed for b in figures.series) == figures.failed == sum(r.count for r in figures.failure_reasons)
    for material, grams in figures.grams.items():
        # Each bucket and the total are rounded to the milligram on their own: half a milligram each may differ.
        rounding = 0.0005 * (len(figures.series) + 1) + 1e-9
        assert abs(sum(b.grams.get(material, 0.0) for b in figures.series) - grams) <= rounding
    assert all(window.since <= o.completed_at < window.until and o.seconds >= 0 for o in figures.orders)
    if figures.queue_wait.jobs:
        assert figures.queue_wait.average_seconds is not None and figures.queue_wait.average_seconds >= 0
