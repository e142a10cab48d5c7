"""The pure SKU rules: parameter values against their declaration, the SKU PARAM union, totals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skus.domain.errors import Invalid
from skus.domain.model import Material, Part, Sku, SkuLine, check_lines, describe, value_problem

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WIDTH = {"name": "width", "type": "number", "default": 20, "min": 10, "max": 50}


def part(part_id: str, parameters: list[dict[str, Any]], grams: float | None = 10.0, material: str = "PLA") -> Part:
    return Part(part_id, f"Part {part_id}", f"{part_id}.scad", "scad", 1, "0" * 64, Material(material),
                grams, None, parameters, {}, NOW, NOW)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_fits_exactly_when_inside_the_range(value: float) -> None:
    assert (value_problem(WIDTH, value) is None) == (10 <= value <= 50)


@given(st.one_of(st.text(), st.booleans(), st.none(), st.lists(st.integers())))
def test_anything_but_a_number_is_refused_for_a_number(value: Any) -> None:
    assert value_problem(WIDTH, value) == "must be a number"


@given(st.sampled_from(["a", "b", "c", "d", "", "A"]))
def test_options_are_the_only_allowed_values(value: str) -> None:
    parameter = {"name": "p", "type": "string", "default": "a",
                 "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}, {"value": "c", "label": "C"}]}
    assert (value_problem(parameter, value) is None) == (value in {"a", "b", "c"})


@given(st.lists(st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.integers(1, 20)), max_size=8))
def test_jobs_per_unit_and_grams_add_up(lines: list[tuple[str, int]]) -> None:
    parts = {"p1": part("p1", [], 10.0), "p2": part("p2", [], 2.5, "PETG"), "p3": part("p3", [], None)}
    sku = Sku("s", "S", "S", None, [SkuLine(p, q) for p, q in lines], NOW, NOW)
    view = describe(sku, parts)
    assert view.jobs_per_unit == sum(q for _, q in lines)
    total = sum(m.grams for m in view.materials)
    assert total == pytest.approx(sum((parts[p].grams or 0) * q for p, q in lines))


def test_same_name_same_type_is_one_parameter_and_a_fixed_value_is_its_default() -> None:
    parts = {"a": part("a", [WIDTH]), "b": part("b", [dict(WIDTH, default=30)])}
    lines = [SkuLine("a", 1, parameter_values={"width": 40}, sku_params=("width",)),
             SkuLine("b", 1, sku_params=("width",))]
    check_lines(lines, parts)
    view = describe(Sku("s", "S", "S", None, lines, NOW, NOW), parts)
    assert [(p["name"], p["default"]) for p in view.parameters] == [("width", 40)]


def test_type_clash_names_both_parts() -> None:
    parts = {"a": part("a", [WIDTH]), "b": part("b", [{"name": "width", "type": "string", "default": "x"}])}
    with pytest.raises(Invalid) as caught:
        check_lines([SkuLine("a", 1, sku_params=("width",)), SkuLine("b", 1, sku_params=("width",))], parts)
    assert caught.value.field == "parts[1].sku_params"
    assert "'Part a'" in caught.value.message and "'Part b'" in caught.value.message


def test_a_parameter_named_twice_in_one_line_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        check_lines([SkuLine("a", 1, sku_params=("width", "width"))], {"a": part("a", [WIDTH])})
    assert caught.value.field == "parts[0].sku_params"
