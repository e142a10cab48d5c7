"""Print lifecycle: dispatch → started → progress → an end, and the bed-clear flag."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printer_gateway.domain.lifecycle import (
    BedNoLongerClear,
    BedNotClear,
    DispatchTimedOut,
    JobEnded,
    JobEvent,
    LifecycleEvent,
    PrintAborted,
    PrintCancelled,
    PrintCompleted,
    PrinterBusy,
    PrintFailed,
    PrintPaused,
    PrintProgressed,
    PrintResumed,
    PrintStarted,
    PrintTracker,
)
from printer_gateway.domain.printer_status import PrinterStatus

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
JOB = "job-0190"
P = "printer-1"
CANCELLED = 0x0300400C

_STATE = {
    "IDLE": "idle",
    "PREPARE": "printing",
    "SLICING": "printing",
    "RUNNING": "printing",
    "PAUSE": "paused",
    "FINISH": "finished",
    "FAILED": "error",
}


def report(gcode_state: str, subtask: str | None = JOB, percent: int | None = None, **changes: object) -> PrinterStatus:
    status = PrinterStatus(
        online=True,
        state=_STATE.get(gcode_state, "error"),  # type: ignore[arg-type]
        gcode_state=gcode_state,
        subtask_name=subtask,
        progress_percent=percent,
    )
    return replace(status, **changes)  # type: ignore[arg-type]


def run(tracker: PrintTracker, *statuses: PrinterStatus) -> tuple[PrintTracker, list[LifecycleEvent]]:
    events: list[LifecycleEvent] = []
    now = T0
    for status in statuses:
        now += timedelta(seconds=1)
        tracker, step = tracker.observe(status, now)
        events.extend(step)
    return tracker, events


def dispatched(last_state: str = "IDLE", last_subtask: str | None = None) -> PrintTracker:
    tracker = PrintTracker(P, bed_clear=True, last_gcode_state=last_state, last_subtask=last_subtask)
    return tracker.dispatch(JOB, T0, T0 + timedelta(minutes=10))


def kinds(events: list[LifecycleEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_full_successful_print() -> None:
    tracker, events = run(
        dispatched(),
        report("IDLE", subtask=None),
        report("PREPARE", percent=0),
        report("RUNNING", percent=0),
        report("RUNNING", percent=40),
        report("RUNNING", percent=40),
        report("FINISH", percent=100),
    )
    assert kinds(events) == [
        "PrintStarted",
        "PrintProgressed",
        "PrintProgressed",
        "PrintCompleted",
        "BedNoLongerClear",
    ]
    assert events[2] == PrintProgressed(P, JOB, 40, None, None, None)
    assert events[-1] == BedNoLongerClear(P, JOB)
    assert tracker.job is None
    assert not tracker.bed_clear


def test_previous_finish_of_another_job_is_not_our_completion() -> None:
    tracker, events = run(dispatched("FINISH", "older-job"), report("FINISH", subtask="older-job"))
    assert events == []
    assert tracker.job is not None and not tracker.job.started


def test_dispatch_requires_clear_bed_and_no_tracked_job() -> None:
    with pytest.raises(BedNotClear):
        PrintTracker(P, bed_clear=False).dispatch(JOB, T0, T0)
    with pytest.raises(PrinterBusy):
        dispatched().dispatch("other", T0, T0)


def test_pause_and_resume() -> None:
    _, events = run(
        dispatched(),
        report("RUNNING", percent=10),
        report("PAUSE", percent=10, hms_codes=("0700_2000_0002_0001",), error_reason="HMS 0700_2000_0002_0001"),
        report("PAUSE", percent=10),
        report("RUNNING", percent=11),
    )
    assert kinds(events) == ["PrintStarted", "PrintProgressed", "PrintPaused", "PrintResumed", "PrintProgressed"]
    assert events[2] == PrintPaused(P, JOB, "HMS 0700_2000_0002_0001")


def test_failure_while_printing_carries_the_reason() -> None:
    _, events = run(
        dispatched(),
        report("RUNNING", percent=30),
        report("FAILED", percent=30, print_error=0x07008011, error_reason="print error 0700_8011"),
    )
    failed = [e for e in events if isinstance(e, PrintFailed)]
    assert failed == [PrintFailed(P, JOB, "print error 0700_8011", refused=False)]


def test_failed_from_prepare_is_a_refusal() -> None:
    _, events = run(dispatched(), report("PREPARE"), report("FAILED", error_reason="print failed"))
    failed = [e for e in events if isinstance(e, PrintFailed)]
    assert len(failed) == 1 and failed[0].refused
    assert "PREPARE" in failed[0].reason


def test_cancel_suppresses_the_failure_that_follows() -> None:
    tracker, events = run(
        dispatched(),
        report("RUNNING", percent=50),
        report("RUNNING", percent=50, print_error=CANCELLED),
        report("FAILED", percent=50, print_error=CANCELLED),
        report("IDLE", subtask=None),
    )
    assert kinds(events) == ["PrintStarted", "PrintProgressed", "PrintCancelled", "BedNoLongerClear"]
    assert tracker.job is None


def test_cancel_reported_together_with_failed() -> None:
    _, events = run(dispatched(), report("RUNNING"), report("FAILED", print_error=CANCELLED))
    assert [type(e) for e in events if isinstance(e, JobEnded)] == [PrintCancelled]


def test_leftover_cancel_code_does_not_cancel_the_next_job() -> None:
    tracker = dispatched("FAILED", "older")
    tracker = replace(tracker, last_print_error=CANCELLED)
    tracker, events = run(
        tracker,
        report("PREPARE", print_error=CANCELLED),
        report("RUNNING", print_error=CANCELLED, percent=5),
        report("FINISH", print_error=CANCELLED, percent=100),
    )
    assert [type(e) for e in events if isinstance(e, JobEnded)] == [PrintCompleted]


def test_running_to_idle_is_an_abort() -> None:
    _, events = run(dispatched(), report("RUNNING"), report("IDLE", subtask=None))
    aborted = [e for e in events if isinstance(e, PrintAborted)]
    assert len(aborted) == 1 and "RUNNING" in aborted[0].reason
    assert BedNoLongerClear(P, JOB) in events


def test_offline_while_printing_keeps_the_job_until_the_printer_tells() -> None:
    tracker, _ = run(dispatched(), report("RUNNING", percent=10))
    offline = replace(report("RUNNING", percent=10), online=False, state="offline")
    tracker, later = tracker.observe(offline, T0 + timedelta(hours=5))
    assert later == ()
    assert tracker.job is not None and tracker.job.started
    tracker, later = tracker.observe(report("FINISH", percent=100), T0 + timedelta(hours=6))
    assert kinds(list(later)) == ["PrintCompleted", "BedNoLongerClear"]


def test_dispatch_deadline() -> None:
    tracker = dispatched()
    tracker, events = tracker.observe(report("IDLE", subtask=None), T0 + timedelta(minutes=9))
    assert events == ()
    tracker, events = tracker.check_deadline(T0 + timedelta(minutes=10))
    assert events == (DispatchTimedOut(P, JOB),)
    assert tracker.job is None and tracker.bed_clear
    tracker, events = tracker.observe(report("RUNNING"), T0 + timedelta(minutes=11))
    assert events == ()


def test_start_wins_over_the_deadline_in_the_same_report() -> None:
    _, events = dispatched().observe(report("PREPARE"), T0 + timedelta(minutes=30))
    assert kinds(list(events)) == ["PrintStarted", "PrintProgressed"]


def test_restart_restores_tracking_and_the_first_finish_is_not_a_new_completion() -> None:
    """The tracker persisted after a completion sees FINISH again after a gateway restart: no event."""
    tracker, _ = run(dispatched(), report("RUNNING"), report("FINISH"))
    restored = PrintTracker.from_record(tracker.as_record())
    assert restored == tracker
    again, events = run(restored, report("FINISH"))
    assert events == []
    assert again.job is None


def test_restart_while_printing_completes_when_finish_arrives() -> None:
    tracker, _ = run(dispatched(), report("RUNNING", percent=20))
    restored = PrintTracker.from_record(tracker.as_record())
    assert restored == tracker
    _, events = run(restored, report("FINISH", percent=100))
    assert [type(e) for e in events] == [PrintCompleted, BedNoLongerClear]


def test_a_print_that_ran_entirely_while_the_gateway_was_down_completes_its_job() -> None:
    """Killed right after sending `project_file`: the restarted gateway first sees our print finished."""
    restored = PrintTracker.from_record(dispatched("FINISH", "older-job").as_record())
    tracker, events = run(restored, report("FINISH", percent=100))
    assert kinds(events) == ["PrintStarted", "PrintCompleted", "BedNoLongerClear"]
    assert tracker.job is None and not tracker.bed_clear
    _, later = tracker.check_deadline(T0 + timedelta(hours=1))
    assert later == (), "no dispatch deadline left to call it not started"


def test_a_print_of_ours_that_failed_unseen_fails_the_job_without_calling_it_refused() -> None:
    _, events = run(dispatched(), report("FAILED", print_error=0x07008011))
    failed = [e for e in events if isinstance(e, PrintFailed)]
    assert kinds(events)[:1] == ["PrintStarted"] and len(failed) == 1 and not failed[0].refused


def test_a_retried_job_is_not_ended_by_the_failed_attempt_the_printer_still_shows() -> None:
    tracker, events = run(dispatched("FAILED", JOB), report("FAILED"), report("FAILED"))
    assert events == [] and tracker.job is not None and not tracker.job.started
    _, events = run(tracker, report("PREPARE"), report("RUNNING"), report("FINISH"))
    assert "PrintCompleted" in kinds(events)


def test_fresh_tracker_does_not_react_to_the_first_report() -> None:
    tracker, events = run(PrintTracker(P, bed_clear=True), report("FINISH", subtask="something"))
    assert events == [] and tracker.bed_clear


def test_foreign_print_ending_makes_the_bed_not_clear() -> None:
    tracker, events = run(
        PrintTracker(P, bed_clear=True, last_gcode_state="IDLE"),
        report("RUNNING", subtask="started at the screen"),
        report("FINISH", subtask="started at the screen"),
    )
    assert events == [BedNoLongerClear(P, None)]
    tracker, events = run(tracker.clear_bed(), report("FINISH", subtask="started at the screen"))
    assert events == [] and tracker.bed_clear


def test_print_that_happened_entirely_while_away_still_occupies_the_bed() -> None:
    tracker = PrintTracker(P, bed_clear=True, last_gcode_state="FINISH", last_subtask="a")
    tracker, events = run(tracker, report("FINISH", subtask="b"))
    assert events == [BedNoLongerClear(P, None)]


def test_another_print_replacing_ours_ends_our_job() -> None:
    _, events = run(dispatched(), report("RUNNING"), report("RUNNING", subtask="someone else"))
    failed = [e for e in events if isinstance(e, PrintFailed)]
    assert len(failed) == 1 and "someone else" in failed[0].reason


def test_release_forgets_without_events() -> None:
    assert dispatched().release().job is None


# --- properties -------------------------------------------------------------------------------

job_ids = ["job-a", "job-b", "job-c"]
gcode_states = ["IDLE", "PREPARE", "SLICING", "RUNNING", "PAUSE", "FINISH", "FAILED", "INIT", "WEIRD"]
status_strategy = st.builds(
    lambda gs, subtask, error, online, percent: replace(
        report(gs, subtask=subtask, percent=percent, print_error=error), online=online
    ),
    st.sampled_from(gcode_states),
    st.sampled_from([*job_ids, "foreign", None]),
    st.sampled_from([None, CANCELLED, 0x07008011]),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 100)),
)
step_strategy = st.one_of(
    st.tuples(st.just("status"), status_strategy),
    st.tuples(st.just("dispatch"), st.sampled_from(job_ids)),
    st.tuples(st.just("wait"), st.integers(1, 1200)),
    st.tuples(st.just("clear"), st.none()),
    st.tuples(st.just("restart"), st.none()),
)


@settings(max_examples=400)
@given(st.booleans(), st.lists(step_strategy, max_size=40))
def test_lifecycle_invariants(bed_clear: bool, steps: list[tuple[str, object]]) -> None:
    tracker = PrintTracker(P, bed_clear=bed_clear)
    now = T0
    events: list[LifecycleEvent] = []
    dispatched_jobs: set[str] = set()
    for kind, value in steps:
        now += timedelta(seconds=1)
        if kind == "status":
            assert isinstance(value, PrinterStatus)
            tracker, step = tracker.observe(value, now)
            events.extend(step)
        elif kind == "dispatch":
            assert isinstance(value, str)
            if tracker.bed_clear and tracker.job is None and value not in dispatched_jobs:
                tracker = tracker.dispatch(value, now, now + timedelta(minutes=10))
                dispatched_jobs.add(value)
        elif kind == "wait":
            assert isinstance(value, int)
            now += timedelta(seconds=value)
            tracker, step = tracker.check_deadline(now)
            events.extend(step)
        elif kind == "clear":
            tracker = tracker.clear_bed()
            events.append(BedNoLongerClear("clear-marker", None))
        else:
            tracker = PrintTracker.from_record(tracker.as_record())

    job_events = [e for e in events if isinstance(e, JobEvent)]
    assert {e.job_id for e in job_events} <= dispatched_jobs, "no events for a job never dispatched"
    terminal = Counter(e.job_id for e in job_events if isinstance(e, JobEnded))
    assert all(count == 1 for count in terminal.values()), "at most one terminal event per job"
    starts = Counter(e.job_id for e in job_events if isinstance(e, PrintStarted))
    assert all(count == 1 for count in starts.values())
    for job_id in dispatched_jobs:
        own = [e for e in job_events if e.job_id == job_id]
        ended_at = next((i for i, e in enumerate(own) if isinstance(e, JobEnded)), None)
        if ended_at is not None:
            assert ended_at == len(own) - 1, "nothing after the terminal event"
        progress_like = (
            PrintProgressed,
            PrintPaused,
            PrintResumed,
            PrintCompleted,
            PrintFailed,
            PrintCancelled,
            PrintAborted,
        )
        if any(isinstance(e, progress_like) for e in own):
            assert isinstance(own[0], PrintStarted), "a job reports progress or an outcome only once started"
    bed_events = [e for e in events if isinstance(e, BedNoLongerClear)]
    previous_was_not_clear = not bed_clear
    for event in bed_events:
        if event.printer_id == "clear-marker":
            previous_was_not_clear = False
        else:
            assert not previous_was_not_clear, "bed goes not-clear once until cleared"
            previous_was_not_clear = True
    assert tracker.bed_clear == (not previous_was_not_clear)
