"""Job counter, SKU breakdown and material totals: Σ quantity × jobs_per_unit, per SKU and per material."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from orders.domain.model import LineItem, MaterialGrams, Order, PartEstimate, Sku, material_totals, sku_breakdown

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = {
    "a": Sku("a", "A", "Alpha", jobs_per_unit=3, materials=(MaterialGrams("PLA", "#000000", 12.5),)),
    "b": Sku(
        "b",
        "B",
        "Beta",
        jobs_per_unit=1,
        materials=(MaterialGrams("PLA", "#000000", 2.0), MaterialGrams("PETG", None, 4.0)),
    ),
    "c": Sku("c", "C", "Gamma", jobs_per_unit=0),
}
lines = st.lists(st.tuples(st.sampled_from(sorted(SKUS)), st.integers(1, 1000)), max_size=30)


def _items(spec: list[tuple[str, int]]) -> list[LineItem]:
    return [LineItem(f"li{i}", sku_id, q, {}, i) for i, (sku_id, q) in enumerate(spec)]


@given(lines)
def test_job_count_is_quantity_times_jobs_per_unit(spec: list[tuple[str, int]]) -> None:
    order = Order("o", "N", T0, T0, line_items=_items(spec))
    assert order.job_count(SKUS) == sum(q * SKUS[s].jobs_per_unit for s, q in spec)


@given(lines)
def test_breakdown_adds_up_to_the_job_count(spec: list[tuple[str, int]]) -> None:
    items = _items(spec)
    breakdown = sku_breakdown(items, SKUS)
    assert [b.sku_id for b in breakdown] == list(dict.fromkeys(s for s, _ in spec))
    assert sum(b.job_count for b in breakdown) == Order("o", "N", T0, T0, line_items=items).job_count(SKUS)
    for b in breakdown:
        assert b.quantity == sum(q for s, q in spec if s == b.sku_id)
        assert b.job_count == b.quantity * b.jobs_per_unit


def test_material_totals_group_by_type_and_colour() -> None:
    totals = material_totals(_items([("a", 2), ("b", 3), ("c", 9)]), SKUS)
    assert totals == [MaterialGrams("PETG", None, 12.0), MaterialGrams("PLA", "#000000", 31.0)]


def test_a_sku_the_replica_does_not_hold_counts_no_jobs() -> None:
    order = Order("o", "N", T0, T0, line_items=_items([("zzz", 4), ("a", 1)]))
    assert order.job_count(SKUS) == 3


TAG = Sku(
    "t",
    "TAG",
    "Name tag",
    jobs_per_unit=3,
    materials=(MaterialGrams("PLA", "#FF0000", 4.0),),
    parts=(
        {"part_id": "plate", "quantity": 1, "material": {"type": "PLA", "color": "#FF0000"}, "grams": 4.0},
        {"part_id": "text", "quantity": 2, "material": {"type": "PETG", "color": None}, "grams": None},
    ),
)


@given(st.integers(1, 50), st.data())
def test_a_sliced_part_counts_its_slices_grams_and_its_declared_grams_for_the_copies_not_sliced(
    quantity: int, data: st.DataObject
) -> None:
    sliced = data.draw(st.integers(0, 2 * quantity))
    weights = data.draw(st.lists(st.floats(0.1, 500.0), min_size=sliced, max_size=sliced))
    plate_sliced = data.draw(st.integers(0, quantity))
    estimates = (
        PartEstimate("plate", quantity, plate_sliced, 3.5 * plate_sliced, 0.0),
        PartEstimate("text", 2 * quantity, sliced, sum(weights), 0.0),
    )
    line = LineItem("li", "t", quantity, {}, 0, estimates=estimates)
    totals = {(m.type, m.color): m.grams for m in material_totals([line], {"t": TAG})}
    assert totals[("PETG", None)] == round(sum(weights), 3), "no declared weight: only the slices count"
    assert totals[("PLA", "#FF0000")] == round(3.5 * plate_sliced + 4.0 * (quantity - plate_sliced), 3)


def test_without_estimates_the_sku_s_declared_materials_count() -> None:
    line = LineItem("li", "t", 2, {}, 0)
    assert material_totals([line], {"t": TAG}) == [MaterialGrams("PLA", "#FF0000", 8.0)]
