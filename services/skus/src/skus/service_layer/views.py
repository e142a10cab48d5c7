"""Reads of the skus service: queries that change nothing, each in its own short transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

from skus.adapters.file_store import FileStore
from skus.domain.errors import NotFound
from skus.domain.model import Part, SkuView, describe
from skus.service_layer.unit_of_work import UnitOfWork


async def part(part_id: str, uow: UnitOfWork) -> Part:
    async with uow:
        found = await uow.parts.get(part_id)
    if found is None:
        raise NotFound("part", part_id)
    return found


async def parts(q: str | None, limit: int, after: str | None, uow: UnitOfWork) -> list[Part]:
    async with uow:
        return await uow.parts.search(q, limit, after)


async def part_file(part_id: str, uow: UnitOfWork, store: FileStore) -> tuple[Part, AsyncIterator[bytes]]:
    """The part and its file's bytes; a part whose file is missing from the store is a 404 too."""
    found = await part(part_id, uow)
    if not await store.exists(found.sha256):
        raise NotFound("file of part", part_id)
    return found, store.read(found.sha256)


async def sku(sku_id: str, uow: UnitOfWork) -> SkuView:
    async with uow:
        found = await uow.skus.get(sku_id)
        if found is None:
            raise NotFound("SKU", sku_id)
        its_parts = await uow.parts.get_many(line.part_id for line in found.lines)
    return describe(found, its_parts)


async def skus_by_id(ids: list[str], uow: UnitOfWork) -> list[SkuView]:
    """Every SKU of `ids` that exists, in the order asked (for rpc.skus.v1.get_skus)."""
    async with uow:
        found = {s.id: s for s in await uow.skus.get_many(ids)}
        its_parts = await uow.parts.get_many(line.part_id for s in found.values() for line in s.lines)
    return [describe(found[i], its_parts) for i in dict.fromkeys(ids) if i in found]


async def skus(q: str | None, limit: int, after: tuple[str, str] | None, uow: UnitOfWork) -> list[SkuView]:
    async with uow:
        found = await uow.skus.search(q, limit, after)
        its_parts = await uow.parts.get_many(line.part_id for s in found for line in s.lines)
    return [describe(s, its_parts) for s in found]
