"""rpc.skus.v1.get_skus: lets the orders service fetch a SKU it has not replicated yet, so an order
line can use a SKU created a moment ago."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from contracts.skus.v1 import GET_SKUS_SUBJECT, GetSkus, GetSkusReply
from servicekit.messaging import Bus
from skus.service_layer import views
from skus.service_layer.messages import get_skus_reply
from skus.service_layer.unit_of_work import UnitOfWork

MAX_IDS = 500


def get_skus_answer(uow_factory: Callable[[], UnitOfWork]) -> Callable[[GetSkus], Awaitable[GetSkusReply]]:
    async def answer(request: GetSkus) -> GetSkusReply:
        return get_skus_reply(await views.skus_by_id(request.ids[:MAX_IDS], uow_factory()))

    return answer


def serve(bus: Bus, uow_factory: Callable[[], UnitOfWork]) -> Callable[[], Awaitable[None]]:
    """An on_start hook: subscribe once NATS is connected."""

    async def start() -> None:
        await bus.serve(GET_SKUS_SUBJECT, GetSkus, get_skus_answer(uow_factory))

    return start
