"""HTTP routes for printers (API.md "Printers"). The access code or API key goes in, never out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography import x509
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.colours import canonical_color
from printer_gateway.domain import commands
from printer_gateway.domain.errors import PrinterNotFound
from printer_gateway.domain.model import Printer
from printer_gateway.domain.printer_status import LoadedMaterial
from printer_gateway.service_layer import handlers, views
from printer_gateway.service_layer.handlers import Deps
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.documented import NOT_BLANK, documented
from servicekit.pagination import Cursor, Limit, Page, cursor_values, encode_cursor
from servicekit.problems import Invalid, Problem

Port = Annotated[int, Field(ge=1, le=65535)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


def _check_pem(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError as exc:
        raise ValueError("not a PEM certificate (bundle)") from exc
    return value


def _check_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    cleaned = [t.strip() for t in tags]
    if any(not t for t in cleaned):
        raise ValueError("tags must be non-empty strings")
    return sorted(set(cleaned))


Protocol = Literal["bambu_lan", "moonraker", "octoprint", "prusalink"]
DEFAULT_PORTS: dict[str, int] = {"bambu_lan": 8883, "moonraker": 7125, "octoprint": 80, "prusalink": 80}
Secret = Annotated[str, Field(min_length=1, max_length=128)]
Tag = Annotated[str, Field(json_schema_extra=documented(pattern=NOT_BLANK))]
"""`_check_tags` refuses a blank tag (with its own message); the document says so."""
HEX_COLOUR = r"^\s*#?[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?\s*$"
"""What `canonical_color` accepts, for the OpenAPI document."""
PRESENT = documented(not_null=True)
"""A PATCH field that may be left out but not sent as null (only `ca_cert` may be cleared)."""


def _credentials_by_protocol(schema: dict[str, Any]) -> None:
    """`PrinterIn.registration`'s rules in the OpenAPI document: which credential each protocol takes."""
    text = {"type": "string"}
    schema["allOf"] = [
        {
            "if": {"properties": {"protocol": {"const": "bambu_lan"}}, "required": ["protocol"]},
            "then": {
                "required": ["serial", "access_code"],
                "properties": {"serial": text, "access_code": text, "api_key": {"type": "null"}},
            },
            "else": {"properties": {"access_code": {"type": "null"}}},
        },
        {
            "if": {"properties": {"protocol": {"enum": ["octoprint", "prusalink"]}}, "required": ["protocol"]},
            "then": {"required": ["api_key"], "properties": {"api_key": text}},
        },
    ]


class MaterialIn(BaseModel):
    """A spool the operator says is loaded, for a printer that does not report its filament."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    type: Annotated[str, Field(min_length=1, max_length=32, json_schema_extra=documented(pattern=NOT_BLANK))]
    color: Annotated[str | None, Field(json_schema_extra=documented(pattern=HEX_COLOUR))] = None

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is None:
            return None
        color = canonical_color(value)
        if color is None:
            raise ValueError("must be #RRGGBB")
        return color


def _operator_materials(materials: list[MaterialIn]) -> tuple[LoadedMaterial, ...]:
    return tuple(
        LoadedMaterial(slot=i, type=m.type.upper(), color=m.color, profile=None, remain_percent=None)
        for i, m in enumerate(materials)
    )


class PrinterIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, json_schema_extra=_credentials_by_protocol)

    name: Text
    model: Text
    protocol: Protocol
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: Port | None = None
    ftp_port: Port = 990
    camera_port: Port | None = None
    serial: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    access_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    api_key: Secret | None = None
    ca_cert: str | None = None
    tags: list[Tag] = []
    fabmatic: bool = False
    materials: Annotated[list[MaterialIn], Field(max_length=64)] = []

    _pem = field_validator("ca_cert")(_check_pem)
    _tags = field_validator("tags")(_check_tags)

    def registration(self) -> commands.RegisterPrinter:
        """What each protocol needs, as a problem naming the missing field (422)."""
        if self.protocol == "bambu_lan":
            for name in ("serial", "access_code"):
                if getattr(self, name) is None:
                    raise Invalid.field(name, f"required for protocol {self.protocol}")
            if self.api_key is not None:
                raise Invalid.field("api_key", "a Bambu printer takes an access_code, not an api_key")
        else:
            if self.access_code is not None:
                raise Invalid.field("access_code", f"a {self.protocol} printer takes an api_key")
            if self.api_key is None and self.protocol != "moonraker":
                raise Invalid.field("api_key", f"required for protocol {self.protocol}")
        return commands.RegisterPrinter(
            name=self.name,
            model=self.model,
            protocol=self.protocol,
            host=self.host,
            port=self.port or DEFAULT_PORTS[self.protocol],
            ftp_port=self.ftp_port,
            serial=self.serial,
            secret=self.access_code or self.api_key or "",
            ca_cert=self.ca_cert,
            tags=self.tags,
            fabmatic=self.fabmatic,
            materials=_operator_materials(self.materials),
            camera_port=self.camera_port,
        )


class PrinterPatch(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: Annotated[Text | None, Field(json_schema_extra=PRESENT)] = None
    model: Annotated[Text | None, Field(json_schema_extra=PRESENT)] = None
    host: Annotated[str | None, Field(min_length=1, max_length=255, json_schema_extra=PRESENT)] = None
    port: Annotated[Port | None, Field(json_schema_extra=PRESENT)] = None
    ftp_port: Annotated[Port | None, Field(json_schema_extra=PRESENT)] = None
    camera_port: Annotated[Port | None, Field(json_schema_extra=PRESENT)] = None
    serial: Annotated[str | None, Field(min_length=1, max_length=64, json_schema_extra=PRESENT)] = None
    access_code: Annotated[str | None, Field(min_length=1, max_length=64, json_schema_extra=PRESENT)] = None
    api_key: Annotated[Secret | None, Field(json_schema_extra=PRESENT)] = None
    ca_cert: str | None = None
    tags: Annotated[list[Tag] | None, Field(json_schema_extra=PRESENT)] = None
    fabmatic: Annotated[bool | None, Field(json_schema_extra=PRESENT)] = None
    materials: Annotated[list[MaterialIn] | None, Field(max_length=64, json_schema_extra=PRESENT)] = None

    _pem = field_validator("ca_cert")(_check_pem)
    _tags = field_validator("tags")(_check_tags)


class MaterialOut(BaseModel):
    slot: int
    type: str
    color: str | None
    profile: str | None
    remain_percent: int | None


class PrinterOut(BaseModel):
    id: str
    name: str
    model: str
    protocol: str
    host: str
    port: int
    ftp_port: int
    camera_port: int | None
    serial: str | None
    tags: list[str]
    fabmatic: bool
    online: bool
    state: str
    error: str | None
    bed_clear: bool
    materials: list[MaterialOut]
    materials_source: Literal["printer", "operator"] | None
    """`printer`: reported by the printer (AMS, Spoolman); `operator`: what the operator registered."""
    current_job_id: str | None
    progress_percent: float | None
    idle_since: datetime | None
    owner: str | None
    note: str | None
    created_at: datetime
    updated_at: datetime


def printer_out(p: Printer) -> PrinterOut:
    s = p.status
    return PrinterOut(
        id=p.id,
        name=p.name,
        model=p.model,
        protocol=p.protocol,
        host=p.host,
        port=p.port,
        ftp_port=p.ftp_port,
        camera_port=p.camera_port,
        serial=p.serial,
        tags=p.tags,
        fabmatic=p.fabmatic,
        online=s.online,
        state=s.state,
        error=p.error,
        bed_clear=p.bed_clear,
        materials=[MaterialOut(**m.__dict__) for m in p.materials],
        materials_source="printer" if s.materials else ("operator" if p.operator_materials else None),
        current_job_id=p.current_job_id,
        progress_percent=float(s.progress_percent) if p.current_job_id and s.progress_percent is not None else None,
        idle_since=p.idle_since,
        owner=p.owner,
        note=p.note,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


SECRET_FIELDS = ("access_code", "api_key")


def router(
    uow_factory: Callable[[], PrinterGatewayUnitOfWork],
    deps: Deps,
    on_change: Callable[[], None],
    camera: Callable[[str], Awaitable[bytes]],
) -> APIRouter:
    api = APIRouter(prefix="/api/v1/printers", tags=["printers"])

    @api.post("", status_code=201, response_model=PrinterOut)
    async def register(body: PrinterIn) -> PrinterOut:
        printer = await handlers.register_printer(body.registration(), uow_factory(), deps)
        on_change()
        return printer_out(printer)

    @api.get("", response_model=Page[PrinterOut])
    async def list_printers(
        tag: Annotated[str | None, Query()] = None, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[PrinterOut]:
        position = cursor_values(cursor, "name", "id")
        after = (position[0], position[1]) if position else None
        printers = await views.printers(tag, after, limit + 1, uow_factory())
        page, more = printers[:limit], len(printers) > limit
        next_cursor = encode_cursor({"name": page[-1].name, "id": page[-1].id}) if more else None
        return Page[PrinterOut](items=[printer_out(p) for p in page], next_cursor=next_cursor)

    @api.get("/{printer_id}", response_model=PrinterOut)
    async def get_printer(printer_id: str) -> PrinterOut:
        printer = await views.printer(printer_id, uow_factory())
        if printer is None:
            raise PrinterNotFound(printer_id)
        return printer_out(printer)

    @api.patch("/{printer_id}", response_model=PrinterOut)
    async def patch_printer(printer_id: str, body: PrinterPatch) -> PrinterOut:
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        nulls = [k for k, v in changes.items() if v is None and k != "ca_cert"]
        if nulls:
            raise Problem.field(nulls[0], "may not be null", status=422, title="Unprocessable content")
        if body.materials is not None:
            changes["materials"] = _operator_materials(body.materials)
        secrets = {name: changes.pop(name) for name in SECRET_FIELDS if name in changes}
        cmd = commands.UpdatePrinter(printer_id, changes, secrets)
        printer = await handlers.update_printer(cmd, uow_factory(), deps)
        on_change()
        return printer_out(printer)

    @api.delete("/{printer_id}", status_code=204)
    async def delete_printer(printer_id: str) -> Response:
        await handlers.delete_printer(commands.DeletePrinter(printer_id), uow_factory(), deps)
        on_change()
        return Response(status_code=204)

    @api.get(
        "/{printer_id}/camera",
        response_class=Response,
        responses={
            200: {"content": {"image/jpeg": {}}, "description": "the camera's newest picture"},
            409: {"description": "no picture now: the printer is unreachable or has no camera the gateway shows"},
        },
    )
    async def camera_picture(printer_id: str) -> Response:
        """The newest picture from the printer's camera, fetched by the gateway that holds the printer."""
        if await views.printer(printer_id, uow_factory()) is None:
            raise PrinterNotFound(printer_id)
        picture = await camera(printer_id)
        return Response(content=picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @api.post("/{printer_id}/bed-cleared", response_model=PrinterOut)
    async def bed_cleared(printer_id: str) -> PrinterOut:
        printer = await handlers.clear_bed(commands.ClearBed(printer_id), uow_factory(), deps)
        return printer_out(printer)

    return api
