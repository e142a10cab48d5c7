"""HTTP request and response shapes of /api/v1/parts and /api/v1/skus (API.md), and their mapping
from the domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from servicekit.documented import NOT_BLANK, documented
from skus.domain.model import HEX_COLOR, Material, Part, SkuLine, SkuView

# What the domain checks, stated in the OpenAPI document too.
HEX_COLOUR = documented(pattern=HEX_COLOR.pattern)
PRESENT_TEXT = documented(not_null=True, pattern=NOT_BLANK)


class MaterialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, json_schema_extra=documented(pattern=NOT_BLANK))
    color: str | None = Field(default=None, description="#RRGGBB", json_schema_extra=HEX_COLOUR)

    def to_domain(self) -> Material:
        return Material(self.type, self.color)


class SkuLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    part_id: str
    quantity: int = Field(ge=1, le=10_000)
    material: MaterialIn | None = None
    parameter_values: dict[str, Any] = {}
    sku_params: list[str] = []

    def to_domain(self) -> SkuLine:
        return SkuLine(
            part_id=self.part_id,
            quantity=self.quantity,
            material=None if self.material is None else self.material.to_domain(),
            parameter_values=dict(self.parameter_values),
            sku_params=tuple(self.sku_params),
        )


class SkuIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=128, json_schema_extra=documented(pattern=NOT_BLANK))
    name: str = Field(min_length=1, max_length=500, json_schema_extra=documented(pattern=NOT_BLANK))
    description: str | None = Field(default=None, max_length=10_000)
    parts: list[SkuLineIn] = Field(default=[], max_length=500)


class SkuPatch(BaseModel):
    """Only the fields sent are changed; `parts` replaces the whole list."""

    model_config = ConfigDict(extra="forbid")

    sku: str | None = Field(default=None, min_length=1, max_length=128, json_schema_extra=PRESENT_TEXT)
    name: str | None = Field(default=None, min_length=1, max_length=500, json_schema_extra=PRESENT_TEXT)
    description: str | None = Field(default=None, max_length=10_000)
    parts: list[SkuLineIn] | None = Field(default=None, max_length=500, json_schema_extra=documented(not_null=True))


class PartPatch(BaseModel):
    """Only the fields sent are changed. The file cannot change: upload a new part instead."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=500, json_schema_extra=PRESENT_TEXT)
    material: MaterialIn | None = Field(default=None, json_schema_extra=documented(not_null=True))
    material_type: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=PRESENT_TEXT)
    material_color: str | None = Field(default=None, json_schema_extra=HEX_COLOUR)
    grams: float | None = Field(default=None, ge=0)
    print_minutes: float | None = Field(default=None, ge=0)


class MaterialOut(BaseModel):
    type: str
    color: str | None


class RenderOut(BaseModel):
    rendered: bool
    ok: bool
    message: str


class PartOut(BaseModel):
    id: str
    name: str
    filename: str
    kind: str
    size_bytes: int
    sha256: str
    material: MaterialOut
    grams: float | None
    print_minutes: float | None
    parameters: list[dict[str, Any]]
    plates: list[dict[str, Any]]
    filaments: list[dict[str, Any]]
    triangle_count: int | None
    bounding_box: dict[str, Any] | None
    render: RenderOut | None
    warnings: list[str]
    revision: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, part: Part) -> PartOut:
        d = part.details
        return cls(
            id=part.id,
            name=part.name,
            filename=part.filename,
            kind=part.kind,
            size_bytes=part.size_bytes,
            sha256=part.sha256,
            material=MaterialOut(type=part.material.type, color=part.material.color),
            grams=part.grams,
            print_minutes=part.print_minutes,
            parameters=part.parameters,
            plates=d.get("plates", []),
            filaments=d.get("filaments", []),
            triangle_count=d.get("triangle_count"),
            bounding_box=d.get("bounding_box"),
            render=None if d.get("render") is None else RenderOut.model_validate(d["render"]),
            warnings=d.get("warnings", []),
            revision=part.revision,
            created_at=part.created_at,
            updated_at=part.updated_at,
        )


class SkuPartOut(BaseModel):
    part_id: str
    part_name: str
    quantity: int
    material: MaterialOut
    parameter_values: dict[str, Any]
    sku_params: list[str]
    grams: float | None
    print_minutes: float | None


class MaterialTotalOut(BaseModel):
    type: str
    color: str | None
    grams: float


class SkuOut(BaseModel):
    id: str
    sku: str
    name: str
    description: str | None
    parts: list[SkuPartOut]
    parameters: list[dict[str, Any]]
    jobs_per_unit: int
    materials: list[MaterialTotalOut]
    revision: int
    created_at: datetime
    updated_at: datetime


def rfc3339(moment: datetime) -> str:
    """UTC with a `Z`, as pydantic writes it, so every endpoint prints timestamps alike."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sku_body(view: SkuView) -> dict[str, Any]:
    """The SKU JSON (shape: SkuOut). Built as plain data: SKU lists are the hot path of order entry,
    and constructing a pydantic model per part per SKU cost a third of a search request."""
    sku = view.sku
    return {
        "id": sku.id,
        "sku": sku.code,
        "name": sku.name,
        "description": sku.description,
        "parts": [
            {
                "part_id": r.part.id,
                "part_name": r.part.name,
                "quantity": r.line.quantity,
                "material": {"type": r.material.type, "color": r.material.color},
                "parameter_values": dict(r.line.parameter_values),
                "sku_params": list(r.line.sku_params),
                "grams": r.part.grams,
                "print_minutes": r.part.print_minutes,
            }
            for r in view.lines
        ],
        "parameters": list(view.parameters),
        "jobs_per_unit": view.jobs_per_unit,
        "materials": [{"type": m.type, "color": m.color, "grams": m.grams} for m in view.materials],
        "revision": sku.revision,
        "created_at": rfc3339(sku.created_at),
        "updated_at": rfc3339(sku.updated_at),
    }
