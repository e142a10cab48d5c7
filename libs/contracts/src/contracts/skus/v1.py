"""skus.v1: the SKU library's state, published whole on every change."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from contracts.envelope import ContractMessage
from contracts.shared_values import FileRef, Frozen, Material

PART_FILES_BUCKET = "part-files"
"""JetStream object store bucket holding every part file, key = sha256. Owned by skus."""

GET_SKUS_SUBJECT = "rpc.skus.v1.get_skus"
"""Core NATS request/reply (not a stream subject): `GetSkus` in, `GetSkusReply` out."""


class SkuParameter(Frozen):
    name: str
    type: str
    default: Any = None
    description: str | None = None
    options: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    group: str | None = None


class SkuPart(Frozen):
    part_id: str
    part_name: str
    quantity: int
    material: Material
    file: FileRef
    parameter_values: dict[str, Any] = {}
    sku_params: list[str] = []
    grams: float | None = None
    print_minutes: float | None = None


class SkuMaterialTotal(Frozen):
    type: str
    color: str | None = None
    grams: float = 0.0


class SkuChanged(ContractMessage):
    """Full state of one SKU after a change; `deleted` marks its removal. Newer `revision` wins."""

    SUBJECT: ClassVar[str] = "skus.v1.sku.changed"

    id: str
    sku: str
    name: str
    description: str | None = None
    parts: list[SkuPart]
    parameters: list[SkuParameter] = []
    jobs_per_unit: int
    materials: list[SkuMaterialTotal] = []
    revision: int
    deleted: bool = False
    updated_at: datetime


class PartChanged(ContractMessage):
    """Full state of one part after a change."""

    SUBJECT: ClassVar[str] = "skus.v1.part.changed"

    id: str
    name: str
    file: FileRef
    material: Material
    grams: float | None = None
    print_minutes: float | None = None
    revision: int
    deleted: bool = False
    updated_at: datetime


class GetSkus(Frozen):
    ids: list[str]


class GetSkusReply(Frozen):
    items: list[SkuChanged]
