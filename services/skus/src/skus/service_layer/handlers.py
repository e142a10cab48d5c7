"""Write use cases of the skus service: each takes its command, the unit of work and `Deps`, opens the
transaction itself, applies the domain rules, emits the full new state through the outbox and commits
once. Reads are in `views`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from servicekit.ids import Clock, IdFactory, new_id, utc_now
from skus.adapters.file_store import FileStore
from skus.adapters.openscad import RenderResult
from skus.adapters.part_file_bucket import PartFileBucket
from skus.domain import commands
from skus.domain.errors import DuplicateSku, InUse, Invalid, NotFound, StorageUnavailable
from skus.domain.files import FileInfo, FileKind
from skus.domain.model import (
    Material,
    Part,
    Sku,
    SkuView,
    check_amount,
    check_color,
    check_lines,
    check_material_type,
    check_name,
    describe,
    revise_sku,
)
from skus.service_layer.messages import part_changed, sku_changed
from skus.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Inspect = Callable[[Path, str], FileInfo]
RenderCheck = Callable[[Path], Awaitable[RenderResult]]


@dataclass(frozen=True)
class Deps:
    """What handlers are given rather than reach for: time and ids (deterministic under test), and where
    part files go and how they are read (the local store, the shared bucket, the readers, the render
    check). The file ports have no default: bootstrap or a test says where files go."""

    clock: Clock = utc_now
    ids: IdFactory = new_id
    store: FileStore = field(kw_only=True)
    bucket: PartFileBucket = field(kw_only=True)
    inspect: Inspect = field(kw_only=True)
    """Reads the spooled upload at a path, under the uploaded name (adapters.file_inspection)."""
    render: RenderCheck = field(kw_only=True)


def part_details(info: FileInfo, render: RenderResult | None) -> dict[str, Any]:
    """What a farm may want to see about a file besides the contract fields (API extras)."""
    details: dict[str, Any] = {
        "plates": [
            {
                "number": p.number,
                "gcode": p.gcode,
                "print_minutes": p.print_minutes,
                "grams": p.grams,
                "filaments": [{"type": f.type, "color": f.color, "grams": f.grams} for f in p.filaments],
            }
            for p in info.plates
        ],
        "filaments": [{"type": f.type, "color": f.color, "grams": f.grams} for f in info.filaments],
        "triangle_count": info.triangle_count,
        "bounding_box": None,
        "warnings": list(info.warnings),
    }
    if info.bounding_box is not None:
        box = info.bounding_box
        details["bounding_box"] = {"min": list(box.min_xyz), "max": list(box.max_xyz), "size": list(box.size)}
    if render is not None:
        details["render"] = {"rendered": render.rendered, "ok": render.ok, "message": render.message}
    sliced = [p for p in info.plates if p.gcode is not None]
    details["plate"] = sliced[0].gcode if sliced else None
    return details


async def upload_part(cmd: commands.UploadPart, uow: UnitOfWork, deps: Deps) -> Part:
    """The part's material is what the operator asked for: a colour the slicer happened to record (shown
    in `filaments`) is not made a requirement, or a job would wait for a spool nobody meant."""
    name = check_name(cmd.name, "name")
    material_type = check_material_type(cmd.material_type, "material_type")
    color = check_color(cmd.material_color, "material_color")
    grams = check_amount(cmd.grams, "grams")
    minutes = check_amount(cmd.print_minutes, "print_minutes")
    if cmd.size_bytes == 0:
        raise Invalid("file", "the file is empty")
    info = await anyio.to_thread.run_sync(deps.inspect, cmd.path, cmd.filename)
    render: RenderResult | None = None
    if info.kind is FileKind.SCAD:
        render = await deps.render(cmd.path)
        if not render.ok:
            raise Invalid("file", f"OpenSCAD cannot render it with its defaults: {render.message}")
    now = deps.clock()
    part = Part(
        id=deps.ids(),
        name=name,
        filename=Path(cmd.filename).name,
        kind=info.kind.value,
        size_bytes=cmd.size_bytes,
        sha256=cmd.sha256,
        material=Material(material_type, color),
        grams=grams if grams is not None else info.grams,
        print_minutes=minutes if minutes is not None else info.print_minutes,
        parameters=[p.to_dict() for p in info.parameters],
        details=part_details(info, render),
        created_at=now,
        updated_at=now,
    )
    try:
        await deps.bucket.put(cmd.sha256, cmd.path)
        await deps.store.put(cmd.sha256, cmd.path)
    except Exception as exc:
        log.warning("storing part file %s failed: %r", cmd.sha256, exc)
        raise StorageUnavailable(f"the file could not be stored right now ({type(exc).__name__}); try again") from exc
    async with uow:
        await uow.parts.add(part)
        uow.emit(part_changed(part), subject_id=part.id)
        await uow.commit()
    return part


async def _republish_skus_using(part_id: str, uow: UnitOfWork, now: Any) -> None:
    """A part's name, material or weight is part of every SkuChanged that includes it."""
    for sku in await uow.skus.using_part(part_id):
        revised = revise_sku(sku, now)
        await uow.skus.update(revised)
        parts = await uow.parts.get_many(line.part_id for line in revised.lines)
        uow.emit(sku_changed(describe(revised, parts)), subject_id=revised.id)


async def update_part(cmd: commands.UpdatePart, uow: UnitOfWork, deps: Deps) -> Part:
    """A material given in part (`material_type`, `material_color`) completes from the part's current
    one under the row lock, so two partial edits cannot lose each other's half."""
    changes: dict[str, Any] = {}
    if "name" in cmd.changes:
        changes["name"] = check_name(cmd.changes["name"], "name")
    if "material" in cmd.changes:
        material: Material = cmd.changes["material"]
        changes["material"] = Material(
            check_material_type(material.type, "material.type"), check_color(material.color, "material.color")
        )
    for key in ("grams", "print_minutes"):
        if key in cmd.changes:
            changes[key] = check_amount(cmd.changes[key], key)
    async with uow:
        part = await uow.parts.get(cmd.part_id, for_update=True)
        if part is None:
            raise NotFound("part", cmd.part_id)
        if "material" not in changes and ("material_type" in cmd.changes or "material_color" in cmd.changes):
            material = Material(
                cmd.changes.get("material_type") or part.material.type,
                cmd.changes["material_color"] if "material_color" in cmd.changes else part.material.color,
            )
            changes["material"] = Material(
                check_material_type(material.type, "material.type"), check_color(material.color, "material.color")
            )
        if not changes:
            return part
        now = deps.clock()
        part = replace(part, revision=part.revision + 1, updated_at=now, **changes)
        await uow.parts.update(part)
        uow.emit(part_changed(part), subject_id=part.id)
        await _republish_skus_using(part.id, uow, now)
        await uow.commit()
    return part


async def delete_part(cmd: commands.DeletePart, uow: UnitOfWork, deps: Deps) -> None:
    """The file itself stays: print jobs already sent may still need it."""
    async with uow:
        part = await uow.parts.get(cmd.part_id, for_update=True)
        if part is None:
            raise NotFound("part", cmd.part_id)
        users = await uow.skus.using_part(part.id)
        if users:
            codes = ", ".join(s.code for s in users)
            raise InUse(
                f"part {part.name!r} is used by SKUs {codes}; remove it from them first",
                [{"id": s.id, "sku": s.code, "name": s.name} for s in users],
            )
        await uow.parts.delete(part.id)
        gone = replace(part, revision=part.revision + 1, updated_at=deps.clock())
        uow.emit(part_changed(gone, deleted=True), subject_id=part.id)
        await uow.commit()


async def _parts_for(lines: Iterable[Any], uow: UnitOfWork) -> dict[str, Part]:
    """Locks the parts (FOR SHARE) so a concurrent part delete cannot slip between check and commit."""
    return await uow.parts.get_many((line.part_id for line in lines), for_share=True)


async def _check_code_free(code: str, uow: UnitOfWork, own_id: str | None = None) -> None:
    existing = await uow.skus.by_code(code)
    if existing is not None and existing.id != own_id:
        raise DuplicateSku(code, existing.id, existing.code)


async def create_sku(cmd: commands.CreateSku, uow: UnitOfWork, deps: Deps) -> SkuView:
    code = check_name(cmd.code, "sku")
    name = check_name(cmd.name, "name")
    async with uow:
        await _check_code_free(code, uow)
        parts = await _parts_for(cmd.lines, uow)
        lines = check_lines(cmd.lines, parts)
        now = deps.clock()
        sku = Sku(deps.ids(), code, name, cmd.description, lines, created_at=now, updated_at=now)
        await uow.skus.add(sku)
        view = describe(sku, parts)
        uow.emit(sku_changed(view), subject_id=sku.id)
        await uow.commit()
    return view


async def update_sku(cmd: commands.UpdateSku, uow: UnitOfWork, deps: Deps) -> SkuView:
    """Orders already sent to print keep their snapshot; only the next print-jobs sees this."""
    changes: dict[str, Any] = {}
    if "code" in cmd.changes:
        changes["code"] = check_name(cmd.changes["code"], "sku")
    if "name" in cmd.changes:
        changes["name"] = check_name(cmd.changes["name"], "name")
    if "description" in cmd.changes:
        changes["description"] = cmd.changes["description"]
    if "lines" in cmd.changes:
        changes["lines"] = list(cmd.changes["lines"])
    async with uow:
        # Parts before the SKU row, the order update_part locks them in, so the two never deadlock.
        before = await uow.skus.get(cmd.sku_id)
        if before is None:
            raise NotFound("SKU", cmd.sku_id)
        parts = await _parts_for(changes.get("lines", before.lines), uow)
        sku = await uow.skus.get(cmd.sku_id, for_update=True)
        if sku is None:
            raise NotFound("SKU", cmd.sku_id)
        lines = changes.get("lines", sku.lines)
        missing = {line.part_id for line in lines} - parts.keys()
        if missing:
            parts.update(await _parts_for([line for line in lines if line.part_id in missing], uow))
        if "code" in changes:
            await _check_code_free(changes["code"], uow, own_id=sku.id)
        if "lines" in changes:
            changes["lines"] = check_lines(lines, parts)
        if not changes:
            return describe(sku, parts)
        sku = revise_sku(sku, deps.clock(), **changes)
        await uow.skus.update(sku)
        view = describe(sku, parts)
        uow.emit(sku_changed(view), subject_id=sku.id)
        await uow.commit()
    return view


async def delete_sku(cmd: commands.DeleteSku, uow: UnitOfWork, deps: Deps) -> None:
    async with uow:
        sku = await uow.skus.get(cmd.sku_id, for_update=True)
        if sku is None:
            raise NotFound("SKU", cmd.sku_id)
        orders = await uow.orders.open_orders_using(sku.id)
        if orders:
            numbers = ", ".join(number for _, number in orders)
            raise InUse(
                f"SKU {sku.code!r} is used by open orders {numbers}",
                [{"id": order_id, "order_number": number} for order_id, number in orders],
            )
        parts = await uow.parts.get_many(line.part_id for line in sku.lines)
        await uow.skus.delete(sku.id)
        gone = revise_sku(sku, deps.clock(), deleted=True)
        uow.emit(sku_changed(describe(gone, parts)), subject_id=sku.id)
        await uow.commit()


async def record_order_usage(cmd: commands.RecordOrderUsage, uow: UnitOfWork, deps: Deps) -> bool:
    """Which SKUs an order uses now; False when an equal or newer revision is known already. Delivered by
    the bus, this block joins the bus's open unit of work, which holds the delivery's inbox mark and
    commits the two together."""
    async with uow:
        applied = await uow.orders.apply(cmd.order_id, cmd.order_number, cmd.status, cmd.revision, list(cmd.sku_ids))
        await uow.commit()
    return applied
