"""SKU PARAM validation: right type, inside options/range, only declared names, defaults for the rest."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.errors import ParameterInvalid
from orders.domain.parameters import SkuParameter, resolve_current, resolve_parameters

SIZE = SkuParameter("size", "number", default=10, min=1, max=100)
LABEL = SkuParameter("label", "string", default="")
FINISH = SkuParameter("finish", "string", default="matte", options=("matte", "gloss"))
SPEED = SkuParameter(
    "speed", "number", default=2, options=({"value": 1, "label": "Fast"}, {"value": 2, "label": "Std"})
)
HOLLOW = SkuParameter("hollow", "boolean", default=False)
ALL = (SIZE, LABEL, FINISH, SPEED, HOLLOW)


def test_missing_parameters_take_their_defaults() -> None:
    assert resolve_parameters(ALL, {"size": 50}) == {
        "size": 50,
        "label": "",
        "finish": "matte",
        "speed": 2,
        "hollow": False,
    }


@given(st.floats(min_value=1, max_value=100, allow_nan=False) | st.integers(min_value=1, max_value=100))
def test_numbers_inside_the_range_are_kept(value: float) -> None:
    assert resolve_parameters((SIZE,), {"size": value}) == {"size": value}


@given(
    st.floats(max_value=0.999, allow_nan=False, allow_infinity=False)
    | st.floats(min_value=100.001, allow_nan=False, allow_infinity=False)
)
def test_numbers_outside_the_range_name_the_parameter(value: float) -> None:
    with pytest.raises(ParameterInvalid) as caught:
        resolve_parameters((SIZE,), {"size": value})
    assert caught.value.name == "size"


@given(st.text() | st.booleans() | st.none() | st.lists(st.integers(), max_size=2))
def test_a_number_parameter_refuses_other_types(value: Any) -> None:
    with pytest.raises(ParameterInvalid, match="number"):
        resolve_parameters((SIZE,), {"size": value})


@given(st.text().filter(lambda s: s not in ("matte", "gloss")))
def test_options_are_enforced(value: str) -> None:
    with pytest.raises(ParameterInvalid) as caught:
        resolve_parameters((FINISH,), {"finish": value})
    assert caught.value.name == "finish"


def test_labelled_options_compare_by_value() -> None:
    assert resolve_parameters((SPEED,), {"speed": 1})["speed"] == 1
    with pytest.raises(ParameterInvalid):
        resolve_parameters((SPEED,), {"speed": "Fast"})


def test_booleans_must_be_booleans() -> None:
    assert resolve_parameters((HOLLOW,), {"hollow": True}) == {"hollow": True}
    with pytest.raises(ParameterInvalid):
        resolve_parameters((HOLLOW,), {"hollow": 1})


@given(st.text(min_size=1).filter(lambda s: s not in {p.name for p in ALL}))
def test_only_sku_params_may_be_set(name: str) -> None:
    with pytest.raises(ParameterInvalid) as caught:
        resolve_parameters(ALL, {name: 1})
    assert caught.value.name == name


def test_values_at_print_time_drop_removed_and_add_new_parameters() -> None:
    assert resolve_current((SIZE, HOLLOW), {"size": 7, "gone": 1}) == {"size": 7, "hollow": False}
