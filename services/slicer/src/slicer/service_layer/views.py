"""Reads that change nothing: what operators ask of `/slices`, and what a waiting request looks at."""

from __future__ import annotations

from datetime import datetime

from slicer.domain.errors import SliceNotFound
from slicer.domain.model import Slice
from slicer.service_layer.unit_of_work import SlicerUnitOfWork


async def slice_or_none(key: str, uow: SlicerUnitOfWork) -> Slice | None:
    async with uow:
        return await uow.slices.get(key)


async def slice_by_key(key: str, uow: SlicerUnitOfWork) -> Slice:
    found = await slice_or_none(key, uow)
    if found is None:
        raise SliceNotFound(key)
    return found


async def slice_page(
    state: str | None, limit: int, after: tuple[datetime, str] | None, uow: SlicerUnitOfWork
) -> tuple[list[Slice], tuple[datetime, str] | None]:
    """Newest first; the position after the page's last slice when more follow."""
    async with uow:
        return await uow.slices.page(state, limit, after)


async def slice_counts(uow: SlicerUnitOfWork) -> dict[str, int]:
    async with uow:
        return await uow.slices.count_by_state()
