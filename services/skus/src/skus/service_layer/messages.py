"""Contract ↔ domain: the skus.v1 messages built from domain state (full state on every change), and the
commands built from the messages skus consumes."""

from __future__ import annotations

from contracts.orders.v1 import OrderChanged
from contracts.shared_values import FileRef, Material
from contracts.skus.v1 import GetSkusReply, PartChanged, SkuChanged, SkuMaterialTotal, SkuParameter, SkuPart
from skus.domain import commands
from skus.domain.model import Part, SkuView


def file_ref(part: Part) -> FileRef:
    return FileRef.model_validate(
        {
            "sha256": part.sha256,
            "filename": part.filename,
            "kind": part.kind,
            "size_bytes": part.size_bytes,
            "plate": part.details.get("plate"),
        }
    )


def part_changed(part: Part, *, deleted: bool = False) -> PartChanged:
    return PartChanged(
        id=part.id,
        name=part.name,
        file=file_ref(part),
        material=Material(type=part.material.type, color=part.material.color),
        grams=part.grams,
        print_minutes=part.print_minutes,
        revision=part.revision,
        deleted=deleted,
        updated_at=part.updated_at,
    )


def sku_changed(view: SkuView) -> SkuChanged:
    sku = view.sku
    return SkuChanged(
        id=sku.id,
        sku=sku.code,
        name=sku.name,
        description=sku.description,
        parts=[
            SkuPart(
                part_id=r.part.id,
                part_name=r.part.name,
                quantity=r.line.quantity,
                material=Material(type=r.material.type, color=r.material.color),
                file=file_ref(r.part),
                parameter_values=dict(r.line.parameter_values),
                sku_params=list(r.line.sku_params),
                grams=r.part.grams,
                print_minutes=r.part.print_minutes,
            )
            for r in view.lines
        ],
        parameters=[SkuParameter.model_validate(p) for p in view.parameters],
        jobs_per_unit=view.jobs_per_unit,
        materials=[SkuMaterialTotal(type=m.type, color=m.color, grams=m.grams) for m in view.materials],
        revision=sku.revision,
        deleted=sku.deleted,
        updated_at=sku.updated_at,
    )


def get_skus_reply(views: list[SkuView]) -> GetSkusReply:
    return GetSkusReply(items=[sku_changed(v) for v in views])


def record_order_usage(message: OrderChanged) -> commands.RecordOrderUsage:
    return commands.RecordOrderUsage(
        order_id=message.id,
        order_number=message.order_number,
        status=message.status,
        revision=message.revision,
        sku_ids=tuple(message.sku_ids),
    )
