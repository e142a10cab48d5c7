"""rpc.skus.v1.get_skus and the OrderChanged consumer, on the in-memory service."""

from __future__ import annotations

from typing import cast

from skus_fakes import FakeUnitOfWork, Service
from skus_samples import gcode_3mf

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderChanged
from contracts.skus.v1 import GetSkus, GetSkusReply
from skus.domain import commands
from skus.entrypoints import consumers, rpc
from skus.service_layer import handlers, messages
from skus.service_layer.unit_of_work import UnitOfWork


async def test_get_skus_answers_with_full_state_of_the_known_ids_in_the_order_asked(service: Service) -> None:
    part = service.client.post(
        "/api/v1/parts", data={"name": "Cube", "material_type": "PLA"}, files={"file": ("c.gcode.3mf", gcode_3mf())}
    ).json()
    a = service.client.post(
        "/api/v1/skus", json={"sku": "A", "name": "A", "parts": [{"part_id": part["id"], "quantity": 2}]}
    ).json()
    b = service.client.post("/api/v1/skus", json={"sku": "B", "name": "B"}).json()
    answer = rpc.get_skus_answer(service.uow)
    reply = await answer(GetSkus(ids=[b["id"], "unknown", a["id"], b["id"]]))
    assert isinstance(reply, GetSkusReply)
    assert [s.id for s in reply.items] == [b["id"], a["id"]]
    sku_a = reply.items[1]
    assert sku_a.revision == 1 and sku_a.jobs_per_unit == 2
    assert sku_a.parts[0].file.sha256 == part["sha256"] and sku_a.parts[0].file.kind == "gcode.3mf"
    assert GetSkusReply.model_validate_json(reply.model_dump_json()) == reply


async def test_order_changed_consumer_records_usage_and_ignores_older_revisions(service: Service) -> None:
    sku = service.client.post("/api/v1/skus", json={"sku": "A", "name": "A"}).json()
    consume = consumers.order_changed_consumer(service.deps)

    async def deliver(status: str, revision: int) -> None:
        message = OrderChanged.model_validate(
            {"id": "o1", "order_number": "A-7", "status": status, "is_complete": False, "sku_ids": [sku["id"]],
             "revision": revision, "updated_at": "2026-01-01T00:00:00Z"}
        )
        envelope = Envelope(id=f"m{revision}", type=OrderChanged.SUBJECT, source="/services/orders",
                            data=message.model_dump(mode="json"))
        async with service.uow() as uow:  # the bus's frame: inbox mark, handler, one commit
            uow.caused_by(envelope)
            assert await uow.claim_inbox(consumers.ORDER_CHANGED_DURABLE, envelope.id)
            await consume(message, envelope, uow)
            await uow.commit()

    await deliver("queued", 2)
    await deliver("closed", 1)
    assert service.state.orders["o1"].status == "queued"
    r = service.client.delete(f"/api/v1/skus/{sku['id']}")
    assert r.status_code == 409 and "A-7" in r.json()["detail"]
    await deliver("closed", 3)
    assert service.client.delete(f"/api/v1/skus/{sku['id']}").status_code == 204


async def test_the_order_changed_handler_commits_alone_and_joins_an_open_unit_of_work(service: Service) -> None:
    def usage(status: str, revision: int) -> commands.RecordOrderUsage:
        message = OrderChanged(
            id="o1", order_number="A-7", status=status, is_complete=False, sku_ids=["s1"], revision=revision,
            updated_at="2026-01-01T00:00:00Z",
        )
        return messages.record_order_usage(message)

    alone = FakeUnitOfWork(service.state, service.published)
    assert await handlers.record_order_usage(usage("queued", 1), cast(UnitOfWork, alone), service.deps) is True
    assert alone.commits == 1 and service.state.orders["o1"].status == "queued"

    frame = FakeUnitOfWork(service.state, service.published)
    async with frame:
        assert await frame.claim_inbox(consumers.ORDER_CHANGED_DURABLE, "m2")
        assert await handlers.record_order_usage(usage("closed", 2), cast(UnitOfWork, frame), service.deps)
        assert service.state.orders["o1"].status == "queued", "a joined block leaves the commit to the frame"
        await frame.rollback()
    assert service.state.orders["o1"].status == "queued"
    assert (consumers.ORDER_CHANGED_DURABLE, "m2") not in service.state.inbox

    again = FakeUnitOfWork(service.state, service.published)
    assert await handlers.record_order_usage(usage("closed", 1), cast(UnitOfWork, again), service.deps) is False
