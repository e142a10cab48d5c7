"""SKU PARAM validation: an order line may set only the SKU's parameters, with values the SKU accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orders.domain.errors import ParameterInvalid


@dataclass(frozen=True)
class SkuParameter:
    name: str
    type: str
    default: Any = None
    options: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None


def option_values(options: Sequence[Any]) -> list[Any]:
    """Options arrive as plain values or as `{value, label}` pairs (`// [1:Fast, 2:Standard]`)."""
    return [o["value"] if isinstance(o, Mapping) and "value" in o else o for o in options]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def check_value(parameter: SkuParameter, value: Any) -> Any:
    """The value if `parameter` accepts it; ParameterInvalid naming the parameter otherwise."""
    kind = parameter.type
    if kind == "number":
        if not _is_number(value):
            raise ParameterInvalid(parameter.name, "must be a number")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ParameterInvalid(parameter.name, "must be true or false")
    elif kind == "string":
        if not isinstance(value, str):
            raise ParameterInvalid(parameter.name, "must be a string")
    if parameter.options:
        allowed = option_values(parameter.options)
        if not any(_same(value, option) for option in allowed):
            raise ParameterInvalid(parameter.name, f"must be one of {allowed!r}")
    if kind == "number":
        if parameter.min is not None and value < parameter.min:
            raise ParameterInvalid(parameter.name, f"must be ≥ {parameter.min:g}")
        if parameter.max is not None and value > parameter.max:
            raise ParameterInvalid(parameter.name, f"must be ≤ {parameter.max:g}")
    return value


def resolve_parameters(parameters: Sequence[SkuParameter], given: Mapping[str, Any]) -> dict[str, Any]:
    """Every SKU PARAM with a value: the given one (checked) or the default. Names are checked in
    sorted order so the same input always names the same offending parameter."""
    by_name = {p.name: p for p in parameters}
    for name in sorted(given):
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ParameterInvalid(name, f"not a SKU PARAM of this SKU (known: {known})")
        check_value(by_name[name], given[name])
    return {p.name: given[p.name] if p.name in given else p.default for p in parameters}


def resolve_current(parameters: Sequence[SkuParameter], stored: Mapping[str, Any]) -> dict[str, Any]:
    """Values at print time: stored ones the SKU still declares, defaults for parameters added since."""
    return {p.name: stored[p.name] if p.name in stored else p.default for p in parameters}
