"""Use cases of the skus service: each loads what it needs, applies the domain rules, emits the full
new state through the outbox and commits once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from contracts.orders.v1 import OrderChanged
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


@dataclass
class PartFiles:
    """Where part files go and how they are read: the local store, the shared bucket, the readers."""

    store: FileStore
    bucket: PartFileBucket
    inspect: Inspect
    render: RenderCheck


@dataclass
class Identity:
    """Injected ids and time, so handlers are deterministic under test."""

    ids: IdFactory = new_id
    clock: Clock = utc_now


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


async def upload_part(cmd: commands.UploadPart, uow: UnitOfWork, files: PartFiles, ident: Identity) -> Part:
    """The part's material is what the operator asked for: a colour the slicer happened to record (shown
    in `filaments`) is not made a requirement, or a job would wait for a spool nobody meant."""
    name = check_name(cmd.name, "name")
    material_type = check_material_type(cmd.material_type, "material_type")
    color = check_color(cmd.material_color, "material_color")
    grams = check_amount(cmd.grams, "grams")
    minutes = check_amount(cmd.print_minutes, "print_minutes")
    if cmd.size_bytes == 0:
        raise Invalid("file", "the file is empty")
    info = await anyio.to_thread.run_sync(files.inspect, cmd.path, cmd.filename)
    render: RenderResult | None = None
    if info.kind is FileKind.SCAD:
        render = await files.render(cmd.path)
        if not render.ok:
            raise Invalid("file", f"OpenSCAD cannot render it with its defaults: {render.message}")
    now = ident.clock()
    part = Part(
        id=ident.ids(),
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
        await files.bucket.put(cmd.sha256, cmd.path)
        await files.store.put(cmd.sha256, cmd.path)
    except Exception as exc:
        log.warning("storing part file %s failed: %r", cmd.sha256, exc)
        raise StorageUnavailable(f"the file could not be stored right now ({type(exc).__name__}); try again") from exc
    async with uow:
        await uow.parts.add(part)
        uow.emit(part_changed(part), subject_id=part.id)
        await uow.commit()
    return part


async def get_part(part_id: str, uow: UnitOfWork) -> Part:
    async with uow:
        part = await uow.parts.get(part_id)
    if part is None:
        raise NotFound("part", part_id)
    return part


async def list_parts(q: str | None, limit: int, after: str | None, uow: UnitOfWork) -> list[Part]:
    async with uow:
        return await uow.parts.search(q, limit, after)


async def _republish_skus_using(part_id: str, uow: UnitOfWork, now: Any) -> None:
    """A part's name, material or weight is part of every SkuChanged that includes it."""
    for sku in await uow.skus.using_part(part_id):
        revised = revise_sku(sku, now)
        await uow.skus.update(revised)
        parts = await uow.parts.get_many(line.part_id for line in revised.lines)
        uow.emit(sku_changed(describe(revised, parts)), subject_id=revised.id)


async def update_part(cmd: commands.UpdatePart, uow: UnitOfWork, ident: Identity) -> Part:
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
        if not changes:
            return part
        now = ident.clock()
        part = replace(part, revision=part.revision + 1, updated_at=now, **changes)
        await uow.parts.update(part)
        uow.emit(part_changed(part), subject_id=part.id)
        await _republish_skus_using(part.id, uow, now)
        await uow.commit()
    return part


async def delete_part(cmd: commands.DeletePart, uow: UnitOfWork, ident: Identity) -> None:
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
        gone = replace(part, revision=part.revision + 1, updated_at=ident.clock())
        uow.emit(part_changed(gone, deleted=True), subject_id=part.id)
        await uow.commit()


async def _parts_for(lines: Iterable[Any], uow: UnitOfWork) -> dict[str, Part]:
    """Locks the parts (FOR SHARE) so a concurrent part delete cannot slip between check and commit."""
    return await uow.parts.get_many((line.part_id for line in lines), for_share=True)


async def _check_code_free(code: str, uow: UnitOfWork, own_id: str | None = None) -> None:
    existing = await uow.skus.by_code(code)
    if existing is not None and existing.id != own_id:
        raise DuplicateSku(code, existing.id, existing.code)


async def create_sku(cmd: commands.CreateSku, uow: UnitOfWork, ident: Identity) -> SkuView:
    code = check_name(cmd.code, "sku")
    name = check_name(cmd.name, "name")
    async with uow:
        await _check_code_free(code, uow)
        parts = await _parts_for(cmd.lines, uow)
        lines = check_lines(cmd.lines, parts)
        now = ident.clock()
        sku = Sku(ident.ids(), code, name, cmd.description, lines, created_at=now, updated_at=now)
        await uow.skus.add(sku)
        view = describe(sku, parts)
        uow.emit(sku_changed(view), subject_id=sku.id)
        await uow.commit()
    return view


async def get_sku(sku_id: str, uow: UnitOfWork) -> SkuView:
    async with uow:
        sku = await uow.skus.get(sku_id)
        if sku is None:
            raise NotFound("SKU", sku_id)
        parts = await uow.parts.get_many(line.part_id for line in sku.lines)
    return describe(sku, parts)


async def get_skus(ids: list[str], uow: UnitOfWork) -> list[SkuView]:
    """Every SKU of `ids` that exists, in the order asked (for rpc.skus.v1.get_skus)."""
    async with uow:
        found = {sku.id: sku for sku in await uow.skus.get_many(ids)}
        parts = await uow.parts.get_many(line.part_id for sku in found.values() for line in sku.lines)
    return [describe(found[i], parts) for i in dict.fromkeys(ids) if i in found]


async def list_skus(q: str | None, limit: int, after: tuple[str, str] | None, uow: UnitOfWork) -> list[SkuView]:
    async with uow:
        found = await uow.skus.search(q, limit, after)
        parts = await uow.parts.get_many(line.part_id for sku in found for line in sku.lines)
    return [describe(sku, parts) for sku in found]


async def update_sku(cmd: commands.UpdateSku, uow: UnitOfWork, ident: Identity) -> SkuView:
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
        sku = revise_sku(sku, ident.clock(), **changes)
        await uow.skus.update(sku)
        view = describe(sku, parts)
        uow.emit(sku_changed(view), subject_id=sku.id)
        await uow.commit()
    return view


async def delete_sku(cmd: commands.DeleteSku, uow: UnitOfWork, ident: Identity) -> None:
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
        gone = revise_sku(sku, ident.clock(), deleted=True)
        uow.emit(sku_changed(describe(gone, parts)), subject_id=sku.id)
        await uow.commit()


async def record_order_usage(message: OrderChanged, uow: UnitOfWork) -> None:
    """Consumer of OrderChanged; runs inside the bus's transaction, which commits."""
    await uow.orders.apply(message.id, message.order_number, message.status, message.revision, list(message.sku_ids))
