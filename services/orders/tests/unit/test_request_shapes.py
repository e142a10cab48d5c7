"""Request bodies accept what their JSON Schema says: 2.0 is the integer 2 in JSON, 2.5 and "2" are not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orders.entrypoints.schemas import LineItemIn, OrderPatch


@pytest.mark.parametrize(("sent", "kept"), [(2, 2), (2.0, 2), (1_000_000, 1_000_000)])
def test_a_whole_number_is_a_quantity(sent: float, kept: int) -> None:
    item = LineItemIn.model_validate({"sku_id": "s", "quantity": sent})
    assert item.quantity == kept and isinstance(item.quantity, int)


@pytest.mark.parametrize("sent", [2.5, "2", True, None, 0, 1_000_001, float("nan")])
def test_anything_else_is_refused(sent: object) -> None:
    with pytest.raises(ValidationError):
        LineItemIn.model_validate({"sku_id": "s", "quantity": sent})


def test_an_order_number_may_be_left_out_of_a_patch_but_not_removed() -> None:
    assert OrderPatch.model_validate({}).changes() == {}
    with pytest.raises(ValidationError, match="cannot be removed"):
        OrderPatch.model_validate({"order_number": None})
    assert "anyOf" not in OrderPatch.model_json_schema()["properties"]["order_number"]
