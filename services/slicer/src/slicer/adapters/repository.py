"""Slices in PostgreSQL. `get_or_add(..., for_update=True)` is the claim's critical section: a row per cache
key, created if absent and locked `FOR UPDATE`, so two workers asking for the same key at once are
serialised by the database. Operators' pages of slices are read here too, newest first, by keyset."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from slicer.adapters import orm
from slicer.domain.model import Slice, SliceFailure, SliceInputs, SliceResult


class SliceRepository(Protocol):
    async def get_or_add(self, key: str, inputs: SliceInputs, now: datetime, *, for_update: bool = False) -> Slice:
        """The slice for `key`, created `requested` if new; with `for_update`, locked until the transaction ends."""
        ...

    async def get(self, key: str, *, for_update: bool = False) -> Slice | None: ...

    async def save(self, item: Slice) -> None: ...

    async def page(
        self, state: str | None, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Slice], tuple[datetime, str] | None]:
        """Newest first (updated_at desc, key); the position after the page's last slice when more follow."""
        ...

    async def count_by_state(self) -> dict[str, int]: ...


class SqlSliceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_add(self, key: str, inputs: SliceInputs, now: datetime, *, for_update: bool = False) -> Slice:
        t = orm.slices
        await self.session.execute(
            insert(t)
            .values(key=key, state="requested", attempts=0, created_at=now, updated_at=now, **_inputs_row(inputs))
            .on_conflict_do_nothing(index_elements=[t.c.key])
        )
        query = sa.select(t).where(t.c.key == key)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).mappings().one()
        return slice_from_row(row)

    async def get(self, key: str, *, for_update: bool = False) -> Slice | None:
        query = sa.select(orm.slices).where(orm.slices.c.key == key)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).mappings().first()
        return slice_from_row(row) if row is not None else None

    async def save(self, item: Slice) -> None:
        t = orm.slices
        values = _row(item)
        del values["key"]
        await self.session.execute(sa.update(t).where(t.c.key == item.key).values(**values))

    async def page(
        self, state: str | None, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Slice], tuple[datetime, str] | None]:
        t = orm.slices
        query = sa.select(t).order_by(t.c.updated_at.desc(), t.c.key).limit(limit + 1)
        if state is not None:
            query = query.where(t.c.state == state)
        if after is not None:
            updated, key = after
            query = query.where(
                sa.or_(t.c.updated_at < updated, sa.and_(t.c.updated_at == updated, t.c.key > key))
            )
        rows = (await self.session.execute(query)).mappings().all()
        items = [slice_from_row(row) for row in rows[:limit]]
        last = items[-1] if len(rows) > limit else None
        return items, (last.updated_at, last.key) if last is not None and last.updated_at is not None else None

    async def count_by_state(self) -> dict[str, int]:
        t = orm.slices
        rows = (await self.session.execute(sa.select(t.c.state, sa.func.count()).group_by(t.c.state))).all()
        return {state: count for state, count in rows}


def _inputs_row(inputs: SliceInputs) -> dict[str, Any]:
    return {
        "source_sha256": inputs.source_sha256,
        "source_kind": inputs.source_kind,
        "source_filename": inputs.source_filename,
        "parameters": inputs.parameters,
        "printer_model": inputs.printer_model,
        "fabmatic": inputs.fabmatic,
        "material_type": inputs.material_type,
        "material_color": inputs.material_color,
    }


def _row(item: Slice) -> dict[str, Any]:
    result, failure = item.result, item.failure
    return {
        "key": item.key,
        "state": item.state,
        **_inputs_row(item.inputs),
        "claim_owner": item.claim_owner,
        "lease_expires_at": item.lease_expires_at,
        "attempts": item.attempts,
        "file_sha256": result.sha256 if result else None,
        "file_name": result.filename if result else None,
        "file_kind": result.kind if result else None,
        "file_size_bytes": result.size_bytes if result else None,
        "profile": result.profile if result else None,
        "print_minutes": result.print_minutes if result else None,
        "grams": result.grams if result else None,
        "layers": result.layers if result else None,
        "filament_mm": result.filament_mm if result else None,
        "failure_stage": failure.stage if failure else None,
        "failure_error": failure.error if failure else None,
        "last_error": item.last_error,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "started_at": item.started_at,
        "finished_at": item.finished_at,
        "slice_seconds": item.slice_seconds,
    }


def slice_from_row(row: Any) -> Slice:
    result = None
    if row["file_sha256"] is not None:
        result = SliceResult(
            sha256=row["file_sha256"],
            filename=row["file_name"],
            kind=row["file_kind"],
            size_bytes=row["file_size_bytes"],
            profile=row["profile"],
            print_minutes=row["print_minutes"],
            grams=row["grams"],
            layers=row["layers"],
            filament_mm=row["filament_mm"],
        )
    failure = None
    if row["failure_stage"] is not None:
        failure = SliceFailure(stage=row["failure_stage"], error=row["failure_error"] or "")
    return Slice(
        key=row["key"],
        inputs=SliceInputs(
            source_sha256=row["source_sha256"],
            source_kind=row["source_kind"],
            source_filename=row["source_filename"],
            parameters=dict(row["parameters"]),
            printer_model=row["printer_model"],
            fabmatic=row["fabmatic"],
            material_type=row["material_type"],
            material_color=row["material_color"],
        ),
        state=row["state"],
        claim_owner=row["claim_owner"],
        lease_expires_at=row["lease_expires_at"],
        attempts=row["attempts"],
        result=result,
        failure=failure,
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        slice_seconds=row["slice_seconds"],
    )
