"""Parts and SKUs: plain dataclasses and the rules that tie a SKU's lines to its parts' parameters."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts.colours import canonical_color
from skus.domain.errors import Invalid

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
OPEN_ORDER_STATUSES = frozenset({"open", "queued", "printing", "completed"})
"""An order in any of these may still print its SKUs again, so they cannot be deleted under it."""
SKU_PARAMETER_KEYS = ("name", "type", "default", "description", "options", "min", "max", "step", "group")


@dataclass(frozen=True)
class Material:
    type: str
    color: str | None = None


@dataclass
class Part:
    """An uploaded file plus what the farm needs to print it. `parameters` are customizer parameters
    in the API shape (`{name, type, default, options?, min?, max?, ...}`)."""

    id: str
    name: str
    filename: str
    kind: str
    size_bytes: int
    sha256: str
    material: Material
    grams: float | None
    print_minutes: float | None
    parameters: list[dict[str, Any]]
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    revision: int = 1

    def parameter(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.parameters if p["name"] == name), None)


@dataclass(frozen=True)
class SkuLine:
    """One part of a SKU: `material` overrides the part's when set."""

    part_id: str
    quantity: int
    material: Material | None = None
    parameter_values: Mapping[str, Any] = field(default_factory=dict)
    sku_params: tuple[str, ...] = ()


@dataclass
class Sku:
    id: str
    code: str
    name: str
    description: str | None
    lines: list[SkuLine]
    created_at: datetime
    updated_at: datetime
    revision: int = 1
    deleted: bool = False


@dataclass(frozen=True)
class ResolvedLine:
    line: SkuLine
    part: Part
    material: Material


@dataclass(frozen=True)
class MaterialTotal:
    type: str
    color: str | None
    grams: float


@dataclass(frozen=True)
class SkuView:
    """A SKU with everything derived from its parts: what the API returns and SkuChanged carries."""

    sku: Sku
    lines: tuple[ResolvedLine, ...]
    parameters: tuple[dict[str, Any], ...]
    jobs_per_unit: int
    materials: tuple[MaterialTotal, ...]


def check_color(color: str | None, field_name: str) -> str | None:
    """An operator's `#RRGGBB` (any case) in the contracts' canonical form; empty is no colour."""
    if color is None or color == "":
        return None
    canonical = canonical_color(color) if HEX_COLOR.match(color) else None
    if canonical is None:
        raise Invalid(field_name, "must be a hex colour #RRGGBB")
    return canonical


def check_material_type(value: str, field_name: str) -> str:
    text = value.strip()
    if not text:
        raise Invalid(field_name, "must not be empty")
    return text.upper()


def check_name(value: str, field_name: str) -> str:
    text = value.strip()
    if not text:
        raise Invalid(field_name, "must not be empty")
    return text


def check_amount(value: float | None, field_name: str) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise Invalid(field_name, "must be a number ≥ 0")
    return value


def option_values(parameter: Mapping[str, Any]) -> list[Any] | None:
    options = parameter.get("options")
    if options is None:
        return None
    return [o["value"] if isinstance(o, dict) else o for o in options]


def value_problem(parameter: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` does not fit the parameter (type, options, range), or None when it does."""
    kind = parameter["type"]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return "must be a number"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return "must be true or false"
    elif not isinstance(value, str):
        return "must be a string"
    allowed = option_values(parameter)
    if allowed is not None and value not in allowed:
        return f"must be one of {allowed}"
    low, high = parameter.get("min"), parameter.get("max")
    if kind == "number" and low is not None and value < low:
        return f"must be ≥ {low}"
    if kind == "number" and high is not None and value > high:
        return f"must be ≤ {high}"
    return None


def check_lines(lines: Sequence[SkuLine], parts: Mapping[str, Part]) -> list[SkuLine]:
    """Every rule a SKU's lines must follow; raises `Invalid` naming the first offending field.
    Returns the lines with their material overrides normalised."""
    checked: list[SkuLine] = []
    for i, line in enumerate(lines):
        at = f"parts[{i}]"
        if line.material is not None:
            line = replace(
                line,
                material=Material(
                    check_material_type(line.material.type, f"{at}.material.type"),
                    check_color(line.material.color, f"{at}.material.color"),
                ),
            )
        checked.append(line)
        if line.quantity < 1:
            raise Invalid(f"{at}.quantity", "must be ≥ 1")
        part = parts.get(line.part_id)
        if part is None:
            raise Invalid(f"{at}.part_id", f"no part {line.part_id}")
        for name, value in line.parameter_values.items():
            parameter = part.parameter(name)
            if parameter is None:
                raise Invalid(f"{at}.parameter_values.{name}", f"part {part.name!r} has no parameter {name!r}")
            problem = value_problem(parameter, value)
            if problem is not None:
                raise Invalid(f"{at}.parameter_values.{name}", problem)
        if len(set(line.sku_params)) != len(line.sku_params):
            raise Invalid(f"{at}.sku_params", "names a parameter twice")
        for name in line.sku_params:
            if part.parameter(name) is None:
                raise Invalid(f"{at}.sku_params", f"part {part.name!r} has no parameter {name!r}")
    sku_parameters(checked, parts)
    return checked


def sku_parameters(lines: Sequence[SkuLine], parts: Mapping[str, Part]) -> tuple[dict[str, Any], ...]:
    """The union of SKU PARAMs: one name is one value for every part that declares it, so the same
    name must have the same type everywhere. A line's fixed value for its SKU PARAM is the default."""
    found: dict[str, tuple[dict[str, Any], int, Part]] = {}
    for i, line in enumerate(lines):
        part = parts[line.part_id]
        for name in line.sku_params:
            parameter = part.parameter(name)
            if parameter is None:
                continue
            if name in found:
                first, first_index, first_part = found[name]
                if first["type"] != parameter["type"]:
                    raise Invalid(
                        f"parts[{i}].sku_params",
                        f"parameter {name!r} is a {first['type']} in part {first_part.name!r} "
                        f"(parts[{first_index}]) but a {parameter['type']} in part {part.name!r} (parts[{i}])",
                    )
                continue
            entry = {key: parameter[key] for key in SKU_PARAMETER_KEYS if key in parameter}
            if name in line.parameter_values:
                entry["default"] = line.parameter_values[name]
            found[name] = (entry, i, part)
    return tuple(entry for entry, _, _ in found.values())


def describe(sku: Sku, parts: Mapping[str, Part]) -> SkuView:
    """Derive the SKU's parts, parameters, jobs per unit and material totals from its parts."""
    resolved = tuple(
        ResolvedLine(line, parts[line.part_id], line.material or parts[line.part_id].material)
        for line in sku.lines
        if line.part_id in parts
    )
    totals: dict[tuple[str, str | None], float] = {}
    for r in resolved:
        key = (r.material.type, r.material.color)
        totals[key] = totals.get(key, 0.0) + (r.part.grams or 0.0) * r.line.quantity
    return SkuView(
        sku=sku,
        lines=resolved,
        parameters=sku_parameters([r.line for r in resolved], parts),
        jobs_per_unit=sum(r.line.quantity for r in resolved),
        materials=tuple(MaterialTotal(t, c, round(g, 3)) for (t, c), g in totals.items()),
    )


def revise_sku(sku: Sku, now: datetime, **changes: Any) -> Sku:
    return replace(sku, revision=sku.revision + 1, updated_at=now, **changes)
