"""Thin HTTP routes for /api/v1/parts and /api/v1/skus: request → command or query, result → response
(domain errors answer as problems through servicekit). Handlers and views own the transactions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from servicekit.documented import NOT_BLANK
from servicekit.pagination import Cursor, Limit, Page, cursor_values, encode_cursor
from servicekit.storable_text import refuse_unstorable_text
from skus.adapters.multipart_upload import receive_upload
from skus.domain import commands
from skus.domain.errors import Invalid, UploadTooLarge
from skus.domain.model import HEX_COLOR
from skus.entrypoints.schemas import PartOut, PartPatch, SkuIn, SkuOut, SkuPatch, sku_body
from skus.service_layer import handlers, views
from skus.service_layer.handlers import Deps
from skus.service_layer.unit_of_work import UnitOfWork

MULTIPART_SLACK = 1 << 20
"""Room for the form fields and boundaries around a file of the maximum size."""

MEDIA_TYPES = {"stl": "model/stl", "3mf": "model/3mf", "gcode.3mf": "model/3mf", "gcode": "text/x.gcode"}

UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "name", "material_type"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A .3mf, .gcode.3mf, .gcode, .stl or .scad file, by its name",
                        },
                        "name": {"type": "string", "minLength": 1, "pattern": NOT_BLANK},
                        "material_type": {"type": "string", "minLength": 1, "pattern": NOT_BLANK},
                        "material_color": {"type": "string", "description": "#RRGGBB", "pattern": HEX_COLOR.pattern},
                        "grams": {"type": "number", "minimum": 0},
                        "print_minutes": {"type": "number", "minimum": 0},
                    },
                }
            }
        },
    }
}


def _number(fields: dict[str, str], name: str) -> float | None:
    text = fields.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Invalid(name, "must be a number") from None
    if not math.isfinite(value):
        raise Invalid(name, "must be a finite number")
    return value


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise Invalid(name, "is required")
    return value


def router(uow_factory: Callable[[], UnitOfWork], deps: Deps, *, max_upload_bytes: int) -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.post("/parts", status_code=201, response_model=PartOut, openapi_extra=UPLOAD_FORM)
    async def upload_part(request: Request) -> PartOut:
        """Multipart: file, name, material_type, material_color?, grams?, print_minutes?."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes + MULTIPART_SLACK:
            raise UploadTooLarge(max_upload_bytes)
        upload = await receive_upload(
            request.stream(), request.headers.get("content-type", ""), deps.store.scratch_dir(), max_upload_bytes
        )
        try:
            refuse_unstorable_text({**upload.fields, "file": upload.filename})
            if upload.path is None or not upload.filename:
                raise Invalid("file", "is required: a .3mf, .gcode.3mf, .gcode, .stl or .scad file with its name")
            cmd = commands.UploadPart(
                name=_required(upload.fields, "name"),
                material_type=_required(upload.fields, "material_type"),
                material_color=upload.fields.get("material_color") or None,
                grams=_number(upload.fields, "grams"),
                print_minutes=_number(upload.fields, "print_minutes"),
                filename=upload.filename,
                path=upload.path,
                size_bytes=upload.size_bytes,
                sha256=upload.sha256,
            )
            part = await handlers.upload_part(cmd, uow_factory(), deps)
        finally:
            upload.discard()
        return PartOut.of(part)

    @r.get("/parts", response_model=Page[PartOut])
    async def list_parts(q: str | None = None, limit: Limit = 50, cursor: Cursor = None) -> Page[PartOut]:
        position = cursor_values(cursor, "after")
        after = position[0] if position else None
        found = await views.parts(q, limit + 1, after, uow_factory())
        page = found[:limit]
        next_cursor = encode_cursor({"after": page[-1].id}) if len(found) > limit else None
        return Page[PartOut](items=[PartOut.of(p) for p in page], next_cursor=next_cursor)

    @r.get("/parts/{part_id}", response_model=PartOut)
    async def get_part(part_id: str) -> PartOut:
        return PartOut.of(await views.part(part_id, uow_factory()))

    @r.patch("/parts/{part_id}", response_model=PartOut)
    async def patch_part(part_id: str, body: PartPatch) -> PartOut:
        sent = body.model_fields_set
        changes: dict[str, Any] = {k: getattr(body, k) for k in ("name", "grams", "print_minutes") if k in sent}
        if "material" in sent:
            if body.material is None:
                raise Invalid("material", "must not be null")
            changes["material"] = body.material.to_domain()
        else:
            changes.update({k: getattr(body, k) for k in ("material_type", "material_color") if k in sent})
        if changes.get("name", "") is None:
            raise Invalid("name", "must not be null")
        part = await handlers.update_part(commands.UpdatePart(part_id, changes), uow_factory(), deps)
        return PartOut.of(part)

    @r.delete("/parts/{part_id}", status_code=204)
    async def delete_part(part_id: str) -> Response:
        await handlers.delete_part(commands.DeletePart(part_id), uow_factory(), deps)
        return Response(status_code=204)

    @r.get("/parts/{part_id}/file", response_class=StreamingResponse)
    async def part_file(part_id: str) -> StreamingResponse:
        part, content = await views.part_file(part_id, uow_factory(), deps.store)
        return StreamingResponse(
            content,
            media_type=MEDIA_TYPES.get(part.kind, "application/octet-stream"),
            headers={
                "Content-Length": str(part.size_bytes),
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(part.filename)}",
                "ETag": f'"{part.sha256}"',
            },
        )

    @r.post("/skus", status_code=201, response_model=SkuOut)
    async def create_sku(body: SkuIn) -> JSONResponse:
        cmd = commands.CreateSku(
            code=body.sku,
            name=body.name,
            description=body.description,
            lines=tuple(line.to_domain() for line in body.parts),
        )
        return JSONResponse(sku_body(await handlers.create_sku(cmd, uow_factory(), deps)), status_code=201)

    @r.get("/skus", response_model=Page[SkuOut])
    async def list_skus(q: str | None = None, limit: Limit = 50, cursor: Cursor = None) -> JSONResponse:
        position = cursor_values(cursor, "code", "id")
        after = (position[0], position[1]) if position else None
        found = await views.skus(q, limit + 1, after, uow_factory())
        page = found[:limit]
        next_cursor = (
            encode_cursor({"code": page[-1].sku.code.lower(), "id": page[-1].sku.id}) if len(found) > limit else None
        )
        return JSONResponse({"items": [sku_body(v) for v in page], "next_cursor": next_cursor})

    @r.get("/skus/{sku_id}", response_model=SkuOut)
    async def get_sku(sku_id: str) -> JSONResponse:
        return JSONResponse(sku_body(await views.sku(sku_id, uow_factory())))

    @r.patch("/skus/{sku_id}", response_model=SkuOut)
    async def patch_sku(sku_id: str, body: SkuPatch) -> JSONResponse:
        sent = body.model_fields_set
        changes: dict[str, Any] = {}
        for field, key in (("sku", "code"), ("name", "name")):
            if field in sent:
                value = getattr(body, field)
                if value is None:
                    raise Invalid(field, "must not be null")
                changes[key] = value
        if "description" in sent:
            changes["description"] = body.description
        if "parts" in sent:
            if body.parts is None:
                raise Invalid("parts", "must not be null")
            changes["lines"] = tuple(line.to_domain() for line in body.parts)
        view = await handlers.update_sku(commands.UpdateSku(sku_id, changes), uow_factory(), deps)
        return JSONResponse(sku_body(view))

    @r.delete("/skus/{sku_id}", status_code=204)
    async def delete_sku(sku_id: str) -> Response:
        await handlers.delete_sku(commands.DeleteSku(sku_id), uow_factory(), deps)
        return Response(status_code=204)

    return r
