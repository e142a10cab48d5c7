"""The skus service's SKUs as this service holds them: from SkuChanged messages and the
`rpc.skus.v1.get_skus` request for ids the replica has not seen yet."""

from __future__ import annotations

import logging

from contracts.skus.v1 import GET_SKUS_SUBJECT, GetSkus, GetSkusReply, SkuChanged
from orders.domain.errors import SkuCatalogueUnavailable
from orders.domain.model import MaterialGrams, Sku
from orders.domain.parameters import SkuParameter
from servicekit.messaging import Bus

log = logging.getLogger(__name__)


def sku_from_message(message: SkuChanged) -> Sku:
    return Sku(
        id=message.id,
        sku=message.sku,
        name=message.name,
        jobs_per_unit=message.jobs_per_unit,
        parameters=tuple(
            SkuParameter(
                name=p.name,
                type=p.type,
                default=p.default,
                options=tuple(p.options) if p.options is not None else None,
                min=p.min,
                max=p.max,
            )
            for p in message.parameters
        ),
        materials=tuple(MaterialGrams(m.type, m.color, m.grams) for m in message.materials),
        parts=tuple(part.model_dump(mode="json") for part in message.parts),
        revision=message.revision,
        deleted=message.deleted,
    )


class SkuCatalogueClient:
    """Request/reply to the skus service; an id it does not know is simply absent from the answer."""

    def __init__(self, bus: Bus, timeout: float = 5.0) -> None:
        self.bus, self.timeout = bus, timeout

    async def fetch(self, ids: list[str]) -> list[Sku]:
        try:
            reply = await self.bus.request(GET_SKUS_SUBJECT, GetSkus(ids=ids), GetSkusReply, timeout=self.timeout)
        except Exception as exc:
            log.warning("get_skus for %s failed: %r", ids, exc)
            raise SkuCatalogueUnavailable(type(exc).__name__) from exc
        return [sku_from_message(item) for item in reply.items if item.id in ids]
