"""rpc.skus.v1.get_skus: lets the orders service fetch a SKU it has not replicated yet, so an order
line can use a SKU created a moment ago."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from contracts.skus.v1 import GET_SKUS_SUBJECT, GetSkus, GetSkusReply
from servicekit.messaging import Bus
from skus.service_layer import handlers
from skus.service_layer.messages import sku_changed
from skus.service_layer.unit_of_work import UnitOfWork

MAX_IDS = 500


def get_skus_answer(uow_factory: Callable[[], UnitOfWork]) -> Callable[[GetSkus], Awaitable[GetSkusReply]]:
    async def answer(request: GetSkus) -> GetSkusReply:
        views = await handlers.get_skus(request.ids[:MAX_IDS], uow_factory())
        return GetSkusReply(items=[sku_changed(v) for v in views])

    return answer


def serve(bus: Bus, uow_factory: Callable[[], UnitOfWork]) -> Callable[[], Awaitable[None]]:
    """An on_start hook: subscribe once NATS is connected."""

    async def start() -> None:
        await bus.serve(GET_SKUS_SUBJECT, GetSkus, get_skus_answer(uow_factory))

    return start
