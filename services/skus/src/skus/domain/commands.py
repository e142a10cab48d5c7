"""What callers ask the skus service to do (imperative), as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skus.domain.model import SkuLine


@dataclass(frozen=True)
class UploadPart:
    """A received upload: the file already sits at `path` (spooled, hashed and counted by the HTTP edge);
    only adapters open it."""

    name: str
    material_type: str
    material_color: str | None
    grams: float | None
    print_minutes: float | None
    filename: str
    path: Path
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class UpdatePart:
    """`changes` holds only the fields the client sent: name, material (Material), grams, print_minutes,
    or instead of material one or both of material_type and material_color, which complete from the
    part's current material."""

    part_id: str
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeletePart:
    part_id: str


@dataclass(frozen=True)
class CreateSku:
    code: str
    name: str
    description: str | None
    lines: tuple[SkuLine, ...]


@dataclass(frozen=True)
class UpdateSku:
    """`changes` holds only the fields the client sent: code, name, description, lines."""

    sku_id: str
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteSku:
    sku_id: str


@dataclass(frozen=True)
class RecordOrderUsage:
    """An order's SKUs as of its `revision` (from OrderChanged): an open order keeps them from being deleted."""

    order_id: str
    order_number: str
    status: str
    revision: int
    sku_ids: tuple[str, ...]
