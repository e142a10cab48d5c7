"""Repositories: the service layer's view of storage (Protocols) and their PostgreSQL implementations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skus.adapters import orm
from skus.domain.errors import DuplicateSku
from skus.domain.model import OPEN_ORDER_STATUSES, Material, Part, Sku, SkuLine


class PartRepository(Protocol):
    async def get(self, part_id: str, *, for_update: bool = False) -> Part | None:
        """`for_update` holds the row (FOR UPDATE) until the transaction ends."""

    async def get_many(self, ids: Iterable[str], *, for_share: bool = False) -> dict[str, Part]:
        """`for_share` shares the rows (FOR SHARE): they cannot be deleted until the transaction ends."""

    async def add(self, part: Part) -> None: ...
    async def update(self, part: Part) -> None: ...
    async def delete(self, part_id: str) -> None: ...
    async def search(self, q: str | None, limit: int, after: str | None) -> list[Part]: ...


class SkuRepository(Protocol):
    async def get(self, sku_id: str, *, for_update: bool = False) -> Sku | None: ...
    async def get_many(self, ids: Iterable[str]) -> list[Sku]: ...
    async def by_code(self, code: str) -> Sku | None: ...
    async def add(self, sku: Sku) -> None:
        """Raises DuplicateSku when the code is taken (case-insensitively), also under a race."""

    async def update(self, sku: Sku) -> None: ...
    async def delete(self, sku_id: str) -> None: ...
    async def search(self, q: str | None, limit: int, after: tuple[str, str] | None) -> list[Sku]: ...
    async def using_part(self, part_id: str) -> list[Sku]: ...


class OrderUsageRepository(Protocol):
    async def apply(self, order_id: str, order_number: str, status: str, revision: int, sku_ids: list[str]) -> bool:
        """Record an order's SKUs; False (and nothing changed) when `revision` is not newer."""

    async def open_orders_using(self, sku_id: str) -> list[tuple[str, str]]:
        """(order_id, order_number) of the open orders that use the SKU."""


SKU_COLUMNS = [c for c in orm.skus.c if c.name != "search"]


def like_pattern(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def part_from_row(row: sa.Row[Any]) -> Part:
    m = row._mapping
    return Part(
        id=m["id"],
        name=m["name"],
        filename=m["filename"],
        kind=m["kind"],
        size_bytes=m["size_bytes"],
        sha256=m["sha256"],
        material=Material(m["material_type"], m["material_color"]),
        grams=m["grams"],
        print_minutes=m["print_minutes"],
        parameters=list(m["parameters"]),
        details=dict(m["details"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        revision=m["revision"],
    )


def part_values(part: Part) -> dict[str, Any]:
    return {
        "id": part.id,
        "name": part.name,
        "filename": part.filename,
        "kind": part.kind,
        "size_bytes": part.size_bytes,
        "sha256": part.sha256,
        "material_type": part.material.type,
        "material_color": part.material.color,
        "grams": part.grams,
        "print_minutes": part.print_minutes,
        "parameters": part.parameters,
        "details": part.details,
        "revision": part.revision,
        "created_at": part.created_at,
        "updated_at": part.updated_at,
    }


def line_to_json(line: SkuLine) -> dict[str, Any]:
    return {
        "part_id": line.part_id,
        "quantity": line.quantity,
        "material": None if line.material is None else {"type": line.material.type, "color": line.material.color},
        "parameter_values": dict(line.parameter_values),
        "sku_params": list(line.sku_params),
    }


def line_from_json(data: dict[str, Any]) -> SkuLine:
    material = data.get("material")
    return SkuLine(
        part_id=data["part_id"],
        quantity=data["quantity"],
        material=None if material is None else Material(material["type"], material.get("color")),
        parameter_values=dict(data.get("parameter_values") or {}),
        sku_params=tuple(data.get("sku_params") or ()),
    )


def sku_from_row(row: sa.Row[Any]) -> Sku:
    m = row._mapping
    return Sku(
        id=m["id"],
        code=m["sku"],
        name=m["name"],
        description=m["description"],
        lines=[line_from_json(line) for line in m["lines"]],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        revision=m["revision"],
    )


class SqlPartRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, part_id: str, *, for_update: bool = False) -> Part | None:
        query = sa.select(orm.parts).where(orm.parts.c.id == part_id)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        return None if row is None else part_from_row(row)

    async def get_many(self, ids: Iterable[str], *, for_share: bool = False) -> dict[str, Part]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        query = sa.select(orm.parts).where(orm.parts.c.id.in_(wanted)).order_by(orm.parts.c.id)
        rows = (await self.session.execute(query.with_for_update(read=True) if for_share else query)).all()
        return {row.id: part_from_row(row) for row in rows}

    async def add(self, part: Part) -> None:
        await self.session.execute(sa.insert(orm.parts).values(part_values(part)))

    async def update(self, part: Part) -> None:
        await self.session.execute(sa.update(orm.parts).where(orm.parts.c.id == part.id).values(part_values(part)))

    async def delete(self, part_id: str) -> None:
        await self.session.execute(sa.delete(orm.parts).where(orm.parts.c.id == part_id))

    async def search(self, q: str | None, limit: int, after: str | None) -> list[Part]:
        query = sa.select(orm.parts).order_by(orm.parts.c.id).limit(limit)
        if q:
            query = query.where(sa.func.lower(orm.parts.c.name).like(like_pattern(q), escape="\\"))
        if after is not None:
            query = query.where(orm.parts.c.id > after)
        return [part_from_row(row) for row in (await self.session.execute(query)).all()]


class SqlSkuRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, sku_id: str, *, for_update: bool = False) -> Sku | None:
        query = sa.select(orm.skus).where(orm.skus.c.id == sku_id)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        return None if row is None else sku_from_row(row)

    async def get_many(self, ids: Iterable[str]) -> list[Sku]:
        wanted = list(set(ids))
        if not wanted:
            return []
        rows = (await self.session.execute(sa.select(orm.skus).where(orm.skus.c.id.in_(wanted)))).all()
        return [sku_from_row(row) for row in rows]

    async def by_code(self, code: str) -> Sku | None:
        query = sa.select(orm.skus).where(sa.func.lower(orm.skus.c.sku) == code.lower())
        row = (await self.session.execute(query)).first()
        return None if row is None else sku_from_row(row)

    def _values(self, sku: Sku) -> dict[str, Any]:
        return {
            "id": sku.id,
            "sku": sku.code,
            "name": sku.name,
            "description": sku.description,
            "lines": [line_to_json(line) for line in sku.lines],
            "revision": sku.revision,
            "created_at": sku.created_at,
            "updated_at": sku.updated_at,
        }

    async def _write_uses(self, sku: Sku) -> None:
        await self.session.execute(sa.delete(orm.sku_part_uses).where(orm.sku_part_uses.c.sku_id == sku.id))
        part_ids = sorted({line.part_id for line in sku.lines})
        if part_ids:
            await self.session.execute(
                sa.insert(orm.sku_part_uses), [{"sku_id": sku.id, "part_id": p} for p in part_ids]
            )

    async def _guarded(self, statement: sa.Executable, sku: Sku) -> None:
        try:
            async with self.session.begin_nested():
                await self.session.execute(statement)
        except IntegrityError:
            existing = await self.by_code(sku.code)
            if existing is None or existing.id == sku.id:
                raise
            raise DuplicateSku(sku.code, existing.id, existing.code) from None

    async def add(self, sku: Sku) -> None:
        await self._guarded(sa.insert(orm.skus).values(self._values(sku)), sku)
        await self._write_uses(sku)

    async def update(self, sku: Sku) -> None:
        await self._guarded(sa.update(orm.skus).where(orm.skus.c.id == sku.id).values(self._values(sku)), sku)
        await self._write_uses(sku)

    async def delete(self, sku_id: str) -> None:
        await self.session.execute(sa.delete(orm.skus).where(orm.skus.c.id == sku_id))

    async def search(self, q: str | None, limit: int, after: tuple[str, str] | None) -> list[Sku]:
        t = orm.skus
        code = sa.func.lower(t.c.sku)
        query = sa.select(*SKU_COLUMNS).order_by(code, t.c.id).limit(limit)
        if q:
            query = query.where(t.c.search.like(like_pattern(q), escape="\\"))
        if after is not None:
            query = query.where(sa.tuple_(code, t.c.id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        return [sku_from_row(row) for row in (await self.session.execute(query)).all()]

    async def using_part(self, part_id: str) -> list[Sku]:
        t, uses = orm.skus, orm.sku_part_uses
        query = (
            sa.select(t)
            .join(uses, uses.c.sku_id == t.c.id)
            .where(uses.c.part_id == part_id)
            .order_by(sa.func.lower(t.c.sku))
        )
        return [sku_from_row(row) for row in (await self.session.execute(query)).all()]


class SqlOrderUsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(self, order_id: str, order_number: str, status: str, revision: int, sku_ids: list[str]) -> bool:
        k = orm.known_orders
        values = insert(k).values(
            order_id=order_id, order_number=order_number, status=status, revision=revision, sku_ids=sku_ids
        )
        upsert = values.on_conflict_do_update(
            index_elements=[k.c.order_id],
            set_={"order_number": order_number, "status": status, "revision": revision, "sku_ids": sku_ids},
            where=k.c.revision < revision,
        ).returning(k.c.order_id)
        if (await self.session.execute(upsert)).first() is None:
            return False
        uses = orm.order_sku_uses
        await self.session.execute(sa.delete(uses).where(uses.c.order_id == order_id))
        if status in OPEN_ORDER_STATUSES and sku_ids:
            await self.session.execute(
                sa.insert(uses), [{"order_id": order_id, "sku_id": s} for s in sorted(set(sku_ids))]
            )
        return True

    async def open_orders_using(self, sku_id: str) -> list[tuple[str, str]]:
        uses, k = orm.order_sku_uses, orm.known_orders
        query = (
            sa.select(k.c.order_id, k.c.order_number)
            .join(uses, uses.c.order_id == k.c.order_id)
            .where(uses.c.sku_id == sku_id)
            .order_by(k.c.order_number)
        )
        return [(row.order_id, row.order_number) for row in (await self.session.execute(query)).all()]
