"""Status and the green check follow the job counts of the current line items."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.model import JobCounts, LineItem, Order, Sku, derive_status, line_item_complete, order_complete

T0 = datetime(2026, 1, 1, tzinfo=UTC)
counts = st.builds(
    JobCounts,
    queued=st.integers(0, 5),
    printing=st.integers(0, 5),
    completed=st.integers(0, 20),
    failed=st.integers(0, 5),
    cancelled=st.integers(0, 5),
)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"cancelled": False, "closed": False, "sent": False, "complete": False, "printing": 0}, "open"),
        ({"cancelled": False, "closed": False, "sent": True, "complete": False, "printing": 0}, "queued"),
        ({"cancelled": False, "closed": False, "sent": True, "complete": False, "printing": 2}, "printing"),
        ({"cancelled": False, "closed": False, "sent": True, "complete": True, "printing": 0}, "completed"),
        ({"cancelled": True, "closed": False, "sent": True, "complete": False, "printing": 1}, "cancelled"),
        ({"cancelled": True, "closed": True, "sent": True, "complete": False, "printing": 0}, "closed"),
        ({"cancelled": False, "closed": True, "sent": True, "complete": True, "printing": 0}, "closed"),
    ],
)
def test_status_table(flags: dict[str, bool | int], expected: str) -> None:
    assert derive_status(**flags) == expected  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.integers(1, 10), counts), min_size=1, max_size=6))
def test_complete_exactly_when_every_line_item_is_done(items: list[tuple[int, JobCounts]]) -> None:
    expected = all(c.completed >= n and c.queued == 0 and c.printing == 0 and c.failed == 0 for n, c in items)
    assert order_complete(items) is expected


@given(st.integers(1, 10), counts.filter(lambda c: c.failed > 0))
def test_a_failed_job_blocks_completion(expected_jobs: int, jobs: JobCounts) -> None:
    assert not line_item_complete(expected_jobs, jobs)


def test_an_order_without_line_items_or_jobs_is_never_complete() -> None:
    assert not order_complete([])
    assert not order_complete([(0, JobCounts())])


def test_cancelled_jobs_of_a_reduced_quantity_do_not_block() -> None:
    assert line_item_complete(2, JobCounts(completed=2, cancelled=1))


def _order(*quantities: int) -> tuple[Order, dict[str, Sku]]:
    sku = Sku("s", "S", "Sku", jobs_per_unit=2, parts=({"part_id": "p"},))
    items = [LineItem(f"li{i}", "s", q, {}, i) for i, q in enumerate(quantities)]
    return Order("o", "N", T0, T0, line_items=items, print_revision=1), {"s": sku}


def test_a_line_item_added_after_sending_keeps_the_order_incomplete() -> None:
    order, skus = _order(1)
    order.apply_job_summary(1, {"li0": JobCounts(completed=2)}, JobCounts(completed=2), T0)
    assert order.refresh_status(skus, T0) is True
    assert order.status == "completed"
    order.add_line_item(LineItem("new", "s", 1, {}, 0), T0)
    assert order.refresh_status(skus, T0) is False
    assert (order.status, order.is_complete, order.completed_at) == ("queued", False, None)


def test_removing_the_line_item_with_a_failed_job_completes_the_order() -> None:
    order, skus = _order(1, 1)
    order.apply_job_summary(
        1, {"li0": JobCounts(completed=2), "li1": JobCounts(completed=1, failed=1)}, JobCounts(), T0
    )
    assert order.refresh_status(skus, T0) is False
    order.remove_line_item("li1", T0)
    assert order.refresh_status(skus, T0) is True


def test_older_summaries_are_ignored() -> None:
    order, skus = _order(1)
    assert order.apply_job_summary(5, {"li0": JobCounts(printing=1)}, JobCounts(printing=1), T0)
    assert not order.apply_job_summary(4, {"li0": JobCounts(completed=2)}, JobCounts(completed=2), T0)
    order.refresh_status(skus, T0)
    assert order.status == "printing"
