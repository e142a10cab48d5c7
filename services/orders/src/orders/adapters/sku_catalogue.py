"""The skus service's catalogue, asked over `rpc.skus.v1.get_skus` for ids the replica (fed by SkuChanged
messages) has not seen yet."""

from __future__ import annotations

import logging

from contracts.skus.v1 import GET_SKUS_SUBJECT, GetSkus, GetSkusReply
from orders.domain.errors import SkuCatalogueUnavailable
from orders.domain.model import Sku
from orders.service_layer.messages import sku_from_message
from servicekit.messaging import Bus

log = logging.getLogger(__name__)


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
