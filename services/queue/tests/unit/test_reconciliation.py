from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from printqueue.domain.model import Assignment, Job, Material, OrderRecord, summarize
from printqueue.domain.reconciliation import (
    DesiredLineItem,
    DesiredOrder,
    DesiredPart,
    cancel_order_jobs,
    desired_jobs,
    desired_runs,
    reconcile_order_jobs,
    reconcile_unchanged,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PLA = Material("PLA", "#FFFFFF")
ANY = Assignment()


def part(part_id: str, quantity: int = 1, material: Material = PLA) -> DesiredPart:
    return DesiredPart(part_id=part_id, part_name=part_id, quantity=quantity, material=material, file={"sha256": "x"})


def line(line_id: str, quantity: int, *parts: DesiredPart, position: int = 0) -> DesiredLineItem:
    return DesiredLineItem(
        line_item_id=line_id, position=position, sku_id="sku", sku="SKU", quantity=quantity, parameters={},
        parts=list(parts),
    )


def order(revision: int, *lines: DesiredLineItem, assignment: Assignment = ANY) -> DesiredOrder:
    return DesiredOrder(
        order_id="o1", order_number="1001", print_revision=revision, assignment=assignment, order_created_at=NOW,
        line_items=list(lines), fulfillment_date=date(2026, 2, 1),
    )


ids = (f"j{n:04d}" for n in itertools.count())


def apply(record: OrderRecord | None, jobs: list[Job], desired: DesiredOrder) -> tuple[OrderRecord, list[Job]]:
    result = reconcile_order_jobs(record, jobs, desired, NOW, lambda: next(ids))
    assert result is not None
    return result.order, jobs + result.added


def test_copies_are_line_quantity_times_part_quantity_numbered_per_part() -> None:
    wanted = desired_jobs([line("l1", 2, part("a", 2), part("b"), part("a"))])
    assert sorted(j.identity for j in wanted) == sorted(
        [("l1", "a", n) for n in range(1, 7)] + [("l1", "b", 1), ("l1", "b", 2)]
    )


def test_applying_the_same_state_again_or_an_older_revision_changes_nothing() -> None:
    record, jobs = apply(None, [], order(1, line("l1", 3, part("a"))))
    assert len(jobs) == 3 and record.applied_revision == 1
    assert reconcile_order_jobs(record, jobs, order(1, line("l1", 5, part("a"))), NOW, lambda: "x") is None
    assert reconcile_order_jobs(record, jobs, order(0, line("l1", 5, part("a"))), NOW, lambda: "x") is None
    again = reconcile_order_jobs(record, jobs, order(2, line("l1", 3, part("a"))), NOW, lambda: "x")
    assert again is not None
    assert (len(again.added), len(again.cancelled), again.kept, again.changed) == (0, 0, 3, [])


def test_removed_identities_are_cancelled_only_if_not_started() -> None:
    record, jobs = apply(None, [], order(1, line("l1", 4, part("a"))))
    by_copy = {j.copy_number: j for j in jobs}
    by_copy[1].status = "printing"
    by_copy[2].status = "completed"
    by_copy[3].status = "assigned"
    by_copy[3].printer_id = "p1"
    result = reconcile_order_jobs(record, jobs, order(2), NOW, lambda: "x")
    assert result is not None
    assert sorted(j.copy_number for j in result.cancelled) == [3, 4]
    assert [j.id for j in result.stops] == [by_copy[3].id]
    assert (by_copy[1].status, by_copy[2].status) == ("printing", "completed")
    assert not by_copy[1].wanted and by_copy[3].error == "removed from the order"


def test_a_copy_removed_then_wanted_again_gets_a_new_job_beside_the_cancelled_one() -> None:
    record, jobs = apply(None, [], order(1, line("l1", 2, part("a"))))
    record, jobs = apply(record, jobs, order(2, line("l1", 1, part("a"))))
    record, jobs = apply(record, jobs, order(3, line("l1", 2, part("a"))))
    copies = sorted((j.copy_number, j.status) for j in jobs)
    assert copies == [(1, "queued"), (2, "cancelled"), (2, "queued")]
    assert vars(summarize(jobs).totals) == {"queued": 2, "printing": 0, "completed": 0, "failed": 0, "cancelled": 0}


def test_queued_jobs_follow_edits_of_their_order_but_started_ones_do_not() -> None:
    record, jobs = apply(None, [], order(1, line("l1", 2, part("a"))))
    jobs[0].status = "printing"
    edited = order(2, line("l1", 2, part("a", material=Material("PETG"))), assignment=Assignment("tags", tags=("x",)))
    result = reconcile_order_jobs(record, jobs, edited, NOW, lambda: "x")
    assert result is not None and [j.id for j in result.changed] == [jobs[1].id]
    assert jobs[1].material == Material("PETG") and jobs[1].assignment.tags == ("x",) and jobs[1].revision == 2
    assert jobs[0].material == PLA and jobs[0].revision == 1


def test_order_cancellation_cancels_what_has_not_started() -> None:
    record, jobs = apply(None, [], order(1, line("l1", 3, part("a"))))
    jobs[0].status = "printing"
    jobs[1].status, jobs[1].printer_id = "assigned", "p1"
    result = cancel_order_jobs(record, "o1", jobs, 2, NOW)
    assert result is not None and result.order.cancelled
    assert [j.status for j in jobs] == ["printing", "cancelled", "cancelled"]
    assert [j.id for j in result.stops] == [jobs[1].id]
    assert cancel_order_jobs(result.order, "o1", jobs, 2, NOW) is None
    assert reconcile_order_jobs(result.order, jobs, order(1, line("l1", 3, part("a"))), NOW, lambda: "x") is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["l1", "l2", "l3"]),
            st.integers(-1, 4),
            st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-1, 3)), max_size=4),
        ),
        max_size=4,
    )
)
def test_desired_runs_expand_to_exactly_the_desired_jobs(
    shape: list[tuple[str, int, list[tuple[str, int]]]],
) -> None:
    lines = [line(line_id, quantity, *(part(p, q) for p, q in parts)) for line_id, quantity, parts in shape]
    runs = desired_runs(order(1, *lines))
    if len({line_id for line_id, _, _ in shape}) != len(shape):
        assert runs is None
        return
    assert runs is not None
    expanded = [
        replace(run.first, copy_number=copy)
        for run in runs
        for copy in range(run.first.copy_number, run.last_copy + 1)
    ]
    assert expanded == desired_jobs(lines)


def test_reconciling_an_unchanged_order_moves_only_the_revision() -> None:
    record, jobs = apply(None, [], order(1, line("l1", 3, part("a"))))
    result = reconcile_unchanged(record, order(2, line("l1", 3, part("a"))), kept=3)
    full = reconcile_order_jobs(record, jobs, order(2, line("l1", 3, part("a"))), NOW, lambda: "x")
    assert result == full and result is not None and result.order.applied_revision == 2
    assert reconcile_unchanged(result.order, order(2, line("l1", 3, part("a"))), kept=3) is None
