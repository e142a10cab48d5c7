"""The slicer's HTTP edge: health (servicekit) and read-only views of slices for operators.

Not part of the public API (the gateway forwards nothing here); `/slices` is for an operator asking
what was sliced, what failed and why, and who holds a claim.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from contracts.slicer.v1 import SLICED_FILES_BUCKET
from servicekit.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from servicekit.problems import Invalid
from slicer.entrypoints.schemas import SliceOut
from slicer.service_layer import views
from slicer.service_layer.unit_of_work import SlicerUnitOfWork

StateFilter = Literal["requested", "slicing", "completed", "failed"]


class SliceCounts(BaseModel):
    counts: dict[str, int]


def router(uow_factory: Callable[[], SlicerUnitOfWork]) -> APIRouter:
    api = APIRouter(tags=["slicer"])

    @api.get("/slices", response_model=Page[SliceOut])
    async def list_slices(
        limit: Limit = 50,
        cursor: Cursor = None,
        state: Annotated[StateFilter | None, Query(description="Only slices in this state.")] = None,
    ) -> Page[SliceOut]:
        position = decode_cursor(cursor)
        after = None
        if position is not None:
            try:
                after = (datetime.fromisoformat(position["updated_at"]), str(position["key"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise Invalid.field("cursor", "not a cursor of this listing") from exc
        items, last = await views.slice_page(state, limit, after, uow_factory())
        next_cursor = encode_cursor({"updated_at": last[0].isoformat(), "key": last[1]}) if last else None
        return Page[SliceOut](items=[SliceOut.of(i, SLICED_FILES_BUCKET) for i in items], next_cursor=next_cursor)

    @api.get("/slices/counts", response_model=SliceCounts)
    async def slice_counts() -> SliceCounts:
        return SliceCounts(counts=await views.slice_counts(uow_factory()))

    @api.get("/slices/{key}", response_model=SliceOut)
    async def get_slice(key: str) -> SliceOut:
        return SliceOut.of(await views.slice_by_key(key, uow_factory()), SLICED_FILES_BUCKET)

    return api
