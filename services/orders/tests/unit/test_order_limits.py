"""How large one order may be: refused exactly when a cap is passed, naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.errors import InvalidField
from orders.domain.model import LineItem, OrderLimits, Sku

LIMITS = OrderLimits(max_jobs=1_000, max_line_items=5, max_quantity=400)


@given(st.lists(st.tuples(st.integers(1, 400), st.integers(0, 6)), max_size=5))
def test_an_order_is_refused_exactly_when_its_jobs_pass_the_cap(lines: list[tuple[int, int]]) -> None:
    skus = {f"s{i}": Sku(f"s{i}", f"S{i}", "x", jobs_per_unit=per_unit) for i, (_, per_unit) in enumerate(lines)}
    items = [LineItem(f"l{i}", f"s{i}", quantity, {}, i) for i, (quantity, _) in enumerate(lines)]
    jobs = sum(quantity * per_unit for quantity, per_unit in lines)
    if jobs > LIMITS.max_jobs:
        with pytest.raises(InvalidField) as refused:
            LIMITS.check_jobs(items, skus)
        assert refused.value.field == "line_items" and f"{jobs} print jobs" in refused.value.message
    else:
        LIMITS.check_jobs(items, skus)


def test_line_items_and_copies_have_their_own_caps() -> None:
    LIMITS.check_line_count(5)
    LIMITS.check_quantity("line_items[0].quantity", 400)
    with pytest.raises(InvalidField, match="at most 5"):
        LIMITS.check_line_count(6)
    with pytest.raises(InvalidField) as refused:
        LIMITS.check_quantity("line_items[3].quantity", 401)
    assert refused.value.field == "line_items[3].quantity"
