"""Issue 12: a dispatch the printer gateway refuses reaches the queue and is acted on at once, through
every service: `not_started` (a printer the gateway does not know) sends the job to another printer long
before the dispatch watchdog (90 s) could have done it. A file that kind of printer cannot print (which
the gateway would refuse as `failed`) is never dispatched: the queue matches files to protocols."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from contracts.envelope import ContractMessage, Envelope
from contracts.printers.v1 import LoadedMaterial, PrinterChanged, PrintUpdated
from contracts.queue.v1 import StartPrint
from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
TPU_PRINTER = "a1-01"
"""The default fleet's only TPU printer."""
WELL_BEFORE_THE_WATCHDOG = 45
"""Seconds to wait for the refusal's effect: the queue's own watchdog would take 90 s + grace."""
PRINTED = 240
"""Seconds to wait for a dispatched 20-minute print to complete: 2 s of printing at the stack's time scale,
the rest is the upload and every service's turn on a busy two-core machine. Only a deadline, not a claim."""


class Recorder:
    """Every StartPrint and PrintUpdated on the wire, and a way to speak as a printer gateway."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.seen: set[str] = set()
        self.messages: list[ContractMessage] = []

    async def start(self) -> None:
        for kind in (StartPrint, PrintUpdated):
            await self.nc.subscribe(kind.SUBJECT, cb=functools.partial(self._received, kind=kind))

    async def _received(self, msg: Msg, *, kind: type[ContractMessage]) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.id not in self.seen and envelope.data is not None:
            self.seen.add(envelope.id)
            self.messages.append(envelope.open(kind))

    def of(self, kind: type[Any], **where: Any) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind) and all(getattr(m, k) == v for k, v in where.items())]

    async def publish(self, message: ContractMessage) -> None:
        envelope = Envelope(
            id=str(uuid.uuid4()), type=message.SUBJECT, source="/services/printer-gateway",
            data=message.model_dump(mode="json"),
        )
        await self.nc.jetstream(timeout=10).publish(
            message.SUBJECT, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id}
        )


@pytest.fixture
async def wire(stack: Stack) -> AsyncIterator[Recorder]:
    nc = await nats.connect(stack.nats_url)
    recorder = Recorder(nc)
    await recorder.start()
    try:
        yield recorder
    finally:
        await nc.drain()


class Farm:
    """Parts, SKUs and orders through the public API, and the TPU printer made ready for them."""

    def __init__(self, stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> None:
        self.stack, self.api, self.wait_until = stack, api, wait_until
        self.printer_id = ""

    async def ready_tpu_printer(self) -> str:
        printers = (await self.api.get("/api/v1/printers?limit=500")).json()["items"]
        self.printer_id = next(p["id"] for p in printers if p["name"] == TPU_PRINTER)

        async def idle_and_clear() -> bool:
            p = (await self.api.get(f"/api/v1/printers/{self.printer_id}")).json()
            if p["online"] and not p["current_job_id"] and not p["bed_clear"]:
                await self.api.post(f"/api/v1/printers/{self.printer_id}/bed-cleared")
                p = (await self.api.get(f"/api/v1/printers/{self.printer_id}")).json()
            return bool(p["online"] and p["bed_clear"] and not p["current_job_id"])

        await self.wait_until(idle_and_clear, 60, f"{TPU_PRINTER} idle with a clear bed")
        return self.printer_id

    async def part(self, filename: str, data: bytes, material: str) -> str:
        reply = await self.api.post(
            "/api/v1/parts", files={"file": (filename, data)},
            data={"name": f"{filename} {uuid.uuid4().hex[:6]}", "material_type": material},
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    async def order(self, part_ids: list[str], assignment: dict[str, Any] | None = None) -> str:
        lines = []
        for part_id in part_ids:
            sku = await self.api.post(
                "/api/v1/skus",
                json={"sku": f"REF-{uuid.uuid4().hex[:8]}", "name": "Refusal test",
                      "parts": [{"part_id": part_id, "quantity": 1}]},
            )
            assert sku.status_code == 201, sku.text
            lines.append({"sku_id": sku.json()["id"], "quantity": 1})
        order = await self.api.post(
            "/api/v1/orders", json={"order_number": f"REF-{uuid.uuid4().hex[:6]}", "line_items": lines}
        )
        assert order.status_code == 201, order.text
        order_id = str(order.json()["id"])
        click = await self.api.post(
            f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": assignment or {"mode": "next_available"}}
        )
        assert click.status_code == 202, click.text
        return order_id

    async def jobs(self, order_id: str, count: int) -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await self.api.get(f"/api/v1/jobs?order_id={order_id}&limit=500")).json()[
            "items"
        ]
        return items if len(items) == count else None

    async def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.api.get(f"/api/v1/jobs/{job_id}")).json()
        return body


@pytest.fixture
async def farm(stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> Farm:
    return Farm(stack, api, wait_until)


async def test_a_printer_the_gateway_does_not_know_refuses_and_the_job_prints_elsewhere(
    farm: Farm, wire: Recorder, wait_until: Wait
) -> None:
    tpu_printer = await farm.ready_tpu_printer()
    # A printer the queue hears of but no gateway holds (e.g. deleted from the gateway's database), idle the
    # longest of all: the queue sends it the job first.
    ghost = str(uuid.uuid4())
    ghost_state: dict[str, Any] = {
        "id": ghost, "name": f"ghost-{ghost[:6]}", "model": "A1", "online": True, "state": "idle",
        "bed_clear": True, "materials": [LoadedMaterial(slot=254, type="TPU", color="#FFFFFF")],
        "idle_since": datetime(2020, 1, 1, tzinfo=UTC), "updated_at": datetime.now(UTC),
    }
    await wire.publish(PrinterChanged(revision=1, **ghost_state))
    try:
        # A job nothing can print shows, in its matching explanation, that the queue knows the ghost.
        probe_part = await farm.part("probe.gcode.3mf", gcode_3mf(filament="PA-CF"), f"PA-CF-{ghost[:6]}")
        probe = await farm.order([probe_part])
        (probe_job,) = await wait_until(lambda: farm.jobs(probe, 1), 30, "the probe job")

        async def knows_ghost() -> bool:
            items = (await farm.api.get(f"/api/v1/jobs/{probe_job['id']}/matching")).json()["items"]
            return any(item["printer_id"] == ghost for item in items)

        await wait_until(knows_ghost, 30, "the queue to know the ghost printer")
        await farm.api.post(f"/api/v1/jobs/{probe_job['id']}/cancel")

        part = await farm.part("flex.gcode.3mf", gcode_3mf(minutes=20, grams=3.0, filament="TPU"), "TPU")
        order_id = await farm.order([part])
        (job,) = await wait_until(lambda: farm.jobs(order_id, 1), 30, "the TPU job")
        # The refusal and the second dispatch may already have happened when this looks: the first is the first.
        first = (await wait_until(lambda: wire.of(StartPrint, job_id=job["id"]), 30, "the first dispatch"))[0]
        assert first.printer_id == ghost and first.deadline_seconds <= 120

        (refusal,) = await wait_until(
            lambda: wire.of(PrintUpdated, job_id=job["id"], printer_id=ghost), WELL_BEFORE_THE_WATCHDOG,
            "the gateway's refusal",
        )
        assert (refusal.status, refusal.sequence, refusal.command_id) == ("not_started", 0, first.command_id)
        assert refusal.error == "unknown printer"
        second = await wait_until(
            lambda: wire.of(StartPrint, job_id=job["id"], printer_id=tpu_printer), WELL_BEFORE_THE_WATCHDOG,
            "the job sent to the real TPU printer after the refusal",
        )
        assert second[0].attempt == 2 and second[0].command_id != first.command_id

        done = await wait_until(
            lambda: _status(farm, job["id"], "completed"), PRINTED, "the job to print to completion on the TPU printer"
        )
        assert (done["printer_id"], done["dispatch_attempts"]) == (tpu_printer, 2)
    finally:
        await wire.publish(PrinterChanged(revision=2, deleted=True, **{**ghost_state, "online": False}))


async def test_a_file_the_printer_cannot_print_is_never_sent_and_the_printer_takes_the_next(
    farm: Farm, wire: Recorder, wait_until: Wait
) -> None:
    """Plain G-code assigned to a Bambu printer: the queue knows the printer's protocol and never dispatches
    it (the gateway would refuse it as unprintable), says why, and the printer takes the job behind it."""
    tpu_printer = await farm.ready_tpu_printer()
    plain = b"; generated by hand\n; filament_type = TPU\nG28\nG1 X10 Y10 E1\n"
    unprintable = await farm.part("flex.gcode", plain, "TPU")
    printable = await farm.part("flex.gcode.3mf", gcode_3mf(minutes=20, grams=3.0, filament="TPU"), "TPU")
    order_id = await farm.order([unprintable, printable], {"mode": "printer", "printer_id": tpu_printer})
    jobs = await wait_until(lambda: farm.jobs(order_id, 2), 30, "two jobs")
    plain_job = next(j for j in jobs if j["part_id"] == unprintable)
    sliced_job = next(j for j in jobs if j["part_id"] == printable)

    await wait_until(
        lambda: _status(farm, sliced_job["id"], "completed"), PRINTED, "the next job to print on the same printer"
    )
    assert (await farm.job(sliced_job["id"]))["printer_id"] == tpu_printer
    assert wire.of(StartPrint, job_id=plain_job["id"]) == [], "the plain G-code was never dispatched"
    assert (await farm.job(plain_job["id"]))["status"] == "queued"
    verdicts = (await farm.api.get(f"/api/v1/jobs/{plain_job['id']}/matching")).json()["items"]
    verdict = next(v for v in verdicts if v["printer_id"] == tpu_printer)
    assert (verdict["result"], verdict["detail"]) == (
        "file_mismatch", "a plain G-code file cannot print on a Bambu printer"
    )
    cancel = await farm.api.post(f"/api/v1/orders/{order_id}/cancel")
    assert cancel.status_code in (200, 202), cancel.text


async def _status(farm: Farm, job_id: str, status: str) -> dict[str, Any] | None:
    job = await farm.job(job_id)
    return job if job["status"] == status else None
