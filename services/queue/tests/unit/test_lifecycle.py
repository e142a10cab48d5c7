"""The pure job lifecycle: dispatch, the printer's reports and the gateway's refusals (sequence 0, matched
by `command_id`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from printqueue.domain import lifecycle
from printqueue.domain.lifecycle import DispatchPolicy, PrintReport
from printqueue.domain.model import Assignment, Job, Material

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = DispatchPolicy(deadline_seconds=90, max_dispatch_attempts=3, deadline_grace_seconds=5)


def new_job() -> Job:
    return Job(
        id="j1", order_id="o1", order_number="1001", line_item_id="l1", line_position=0, sku_id="s1", sku="BOX",
        part_id="p1", part_index=0, part_name="box", copy_number=1, material=Material("PLA"), parameters={},
        file={}, assignment=Assignment(), order_created_at=T0, created_at=T0, updated_at=T0,
    )


def dispatched(printer_id: str = "pr1", command_id: str = "c1") -> Job:
    job = new_job()
    lifecycle.dispatch(job, printer_id, command_id, T0, POLICY)
    return job


def refusal(job: Job, status: str, **extra: Any) -> PrintReport:
    fields: dict[str, Any] = {
        "job_id": job.id, "printer_id": job.printer_id, "command_id": job.command_id, "status": status,
        "sequence": 0, "occurred_at": T0, "error": "unknown printer", **extra,
    }
    return PrintReport(**fields)


def test_the_default_watchdog_gives_an_unacknowledged_dispatch_up_in_about_a_minute_and_a_half() -> None:
    job = new_job()
    lifecycle.dispatch(job, "pr1", "c1", T0, DispatchPolicy())
    assert job.dispatch_deadline is not None and job.dispatch_deadline - T0 <= timedelta(seconds=120)
    assert lifecycle.expire_dispatch(job, T0 + timedelta(seconds=60), DispatchPolicy()).changed is False
    outcome = lifecycle.expire_dispatch(job, T0 + timedelta(seconds=120), DispatchPolicy())
    assert outcome.changed and outcome.flag_printer == "pr1" and job.status == "queued"


def test_a_not_started_refusal_gives_the_job_back_and_flags_the_printer() -> None:
    job = dispatched()
    outcome = lifecycle.apply_print_report(job, refusal(job, "not_started"), T0, POLICY)
    assert (outcome.changed, outcome.flag_printer, outcome.stop_printer) == (True, "pr1", None)
    assert (job.status, job.printer_id, job.command_id, job.error) == ("queued", None, None, "unknown printer")
    assert job.dispatch_deadline is None


def test_not_started_refusals_fail_the_job_after_bounded_attempts_with_the_last_reason() -> None:
    job = new_job()
    for attempt in range(1, POLICY.max_dispatch_attempts + 1):
        lifecycle.dispatch(job, f"pr{attempt}", f"c{attempt}", T0, POLICY)
        lifecycle.apply_print_report(job, refusal(job, "not_started", error=f"reason {attempt}"), T0, POLICY)
    assert job.status == "failed"
    assert job.error is not None and job.error.endswith(f"reason {POLICY.max_dispatch_attempts}")


def test_a_failed_refusal_fails_the_job_with_the_reason() -> None:
    job = dispatched()
    reason = "a X1C printer cannot print a .stl file as it is: it needs a sliced .gcode.3mf"
    outcome = lifecycle.apply_print_report(job, refusal(job, "failed", error=reason), T0, POLICY)
    assert outcome.changed and outcome.flag_printer is None and outcome.stop_printer is None
    assert (job.status, job.error, job.finished_at, job.dispatch_deadline) == ("failed", reason, T0, None)


def test_a_stale_refusal_of_an_earlier_dispatch_leaves_the_later_one_alone() -> None:
    job = dispatched("pr1", "c1")
    stale = refusal(job, "not_started")
    lifecycle.apply_print_report(job, stale, T0, POLICY)
    lifecycle.dispatch(job, "pr1", "c2", T0, POLICY)
    before = (job.status, job.command_id, job.revision)
    assert lifecycle.apply_print_report(job, stale, T0, POLICY) == lifecycle.Outcome()
    assert lifecycle.apply_print_report(job, refusal(job, "failed", command_id="c1"), T0, POLICY).changed is False
    assert (job.status, job.command_id, job.revision) == before


def test_a_refusal_without_a_command_id_or_from_another_printer_is_not_matched() -> None:
    job = dispatched()
    assert lifecycle.apply_print_report(job, refusal(job, "not_started", command_id=None), T0, POLICY).changed is False
    assert lifecycle.apply_print_report(job, refusal(job, "failed", printer_id="pr2"), T0, POLICY).changed is False
    assert job.status == "assigned"


def test_a_refusal_after_the_printer_reported_printing_does_not_undo_the_print() -> None:
    job = dispatched()
    started = PrintReport(job.id, "pr1", "started", 1, T0, command_id="c1")
    assert lifecycle.apply_print_report(job, started, T0, POLICY).started_on == "pr1"
    for status in ("not_started", "failed"):
        outcome = lifecycle.apply_print_report(job, refusal(job, status), T0, POLICY)
        assert outcome == lifecycle.Outcome()
    assert (job.status, job.printer_id, job.command_id) == ("printing", "pr1", "c1")


REPORTS = st.sampled_from(["started", "printing", "paused", "completed", "failed", "cancelled", "not_started"])


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["report", "refusal", "redispatch"]),
            REPORTS,
            st.sampled_from(["c0", "c1", "c2", None]),
            st.sampled_from(["pr1", "pr2"]),
        ),
        max_size=20,
    )
)
def test_a_refusal_acts_only_on_the_unacknowledged_dispatch_it_answers(
    steps: list[tuple[str, str, str | None, str]],
) -> None:
    job = dispatched("pr1", "c0")
    sequence = 0
    commands = iter(f"c{n}" for n in range(1, 100))
    for kind, status, command_id, printer_id in steps:
        if kind == "redispatch":
            if job.status == "queued":
                lifecycle.dispatch(job, printer_id, next(commands), T0, POLICY)
            continue
        if kind == "report":
            sequence += 1
            report = PrintReport(job.id, printer_id, status, sequence, T0, command_id=command_id)  # type: ignore[arg-type]
            lifecycle.apply_print_report(job, report, T0, POLICY)
            continue
        if status not in ("not_started", "failed"):
            continue
        before = (job.status, job.printer_id, job.command_id, job.revision, job.dispatch_attempts)
        answers = (
            before[0] == "assigned" and command_id is not None and command_id == job.command_id
            and printer_id == job.printer_id
        )
        outcome = lifecycle.apply_print_report(
            job, refusal(job, status, command_id=command_id, printer_id=printer_id), T0, POLICY
        )
        assert outcome.stop_printer is None, "a refusal never stops a printer: it never started anything"
        if not answers:
            assert outcome == lifecycle.Outcome()
            assert (job.status, job.printer_id, job.command_id, job.revision, job.dispatch_attempts) == before
            continue
        assert outcome.changed and job.revision == before[3] + 1
        assert job.status in ("queued", "failed", "cancelled") and job.command_id is None
        if status == "not_started":
            assert outcome.flag_printer == printer_id
            assert job.status == "queued" or job.dispatch_attempts >= POLICY.max_dispatch_attempts
        else:
            assert job.status == "failed" and outcome.flag_printer is None
