"""Issue 5's failure cases through every service: a printer that drops off the network or loses power
in the middle of a print, and a printer gateway killed in the middle of a print. Nothing is lost and
nothing is printed twice."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
PRINTER = "a1-01"
"""The default fleet's only TPU printer; every job here is pinned to it."""
PRINT_SECONDS = 12


class Pinned:
    """One TPU order pinned to PRINTER, and the views of it the tests need."""

    def __init__(self, stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> None:
        self.stack, self.api, self.wait_until = stack, api, wait_until
        self.serial = stack.sim.printer(PRINTER).serial if stack.sim else ""
        self.control = httpx.AsyncClient(base_url=stack.sim.control_url if stack.sim else "", timeout=30)
        self.printer_id = ""
        self.order_id = ""

    async def faults(self, **switches: Any) -> dict[str, Any]:
        reply = await self.control.post(f"/printers/{self.serial}/faults", json=switches)
        assert reply.status_code == 200, reply.text
        detail: dict[str, Any] = reply.json()
        return detail

    async def project_files_sent(self) -> int:
        detail = (await self.control.get(f"/printers/{self.serial}")).json()
        return sum(1 for c in detail["commands"] if c.get("command") == "project_file")

    async def printer(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.api.get(f"/api/v1/printers/{self.printer_id}")).json()
        return body

    async def ready_printer(self) -> None:
        """Find the printer and leave it idle with a clear bed, whatever earlier tests left behind."""
        printers = (await self.api.get("/api/v1/printers?limit=500")).json()["items"]
        self.printer_id = next(p["id"] for p in printers if p["name"] == PRINTER)
        await self.faults(print_seconds=PRINT_SECONDS)

        async def idle_and_clear() -> bool:
            p = await self.printer()
            if p["online"] and not p["current_job_id"] and not p["bed_clear"]:
                await self.api.post(f"/api/v1/printers/{self.printer_id}/bed-cleared")
                p = await self.printer()
            return bool(p["online"] and p["bed_clear"] and not p["current_job_id"])

        await self.wait_until(idle_and_clear, 60, f"{PRINTER} to be idle with a clear bed")

    async def order_one_print(self) -> dict[str, Any]:
        part = await self.api.post(
            "/api/v1/parts",
            files={"file": ("gasket.gcode.3mf", gcode_3mf(minutes=120, grams=6.0, filament="TPU"))},
            data={"name": f"Gasket {uuid.uuid4().hex[:6]}", "material_type": "TPU"},
        )
        assert part.status_code == 201, part.text
        sku = await self.api.post(
            "/api/v1/skus",
            json={
                "sku": f"RES-{uuid.uuid4().hex[:8]}",
                "name": "Gasket",
                "parts": [{"part_id": part.json()["id"], "quantity": 1}],
            },
        )
        assert sku.status_code == 201, sku.text
        order = await self.api.post(
            "/api/v1/orders",
            json={
                "order_number": f"RES-{uuid.uuid4().hex[:6]}",
                "line_items": [{"sku_id": sku.json()["id"], "quantity": 1}],
            },
        )
        assert order.status_code == 201, order.text
        self.order_id = order.json()["id"]
        click = await self.api.post(
            f"/api/v1/orders/{self.order_id}/print-jobs",
            json={"assignment": {"mode": "printer", "printer_id": self.printer_id}},
        )
        assert click.status_code == 202, click.text
        return await self.wait_until(lambda: self.job_in("printing"), 60, "the job to start printing")

    async def jobs(self) -> list[dict[str, Any]]:
        body = (await self.api.get(f"/api/v1/jobs?order_id={self.order_id}&limit=500")).json()
        items: list[dict[str, Any]] = body["items"]
        return items

    async def job_in(self, *statuses: str) -> dict[str, Any] | None:
        jobs = await self.jobs()
        assert len(jobs) <= 1, f"one job per order here, got {[(j['id'], j['status']) for j in jobs]}"
        return jobs[0] if jobs and jobs[0]["status"] in statuses else None

    async def order(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.api.get(f"/api/v1/orders/{self.order_id}")).json()
        return body

    async def close(self) -> None:
        await self.faults(print_seconds=None)
        await self.control.aclose()


@pytest.fixture
async def pinned(stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> Any:
    p = Pinned(stack, api, wait_until)
    await p.ready_printer()
    yield p
    await p.close()


async def test_a_gateway_killed_mid_print_loses_nothing_and_prints_nothing_twice(pinned: Pinned, stack: Stack) -> None:
    sent_before = await pinned.project_files_sent()
    job = await pinned.order_one_print()
    gateway = stack.instance("printer_gateway")
    await stack.kill_service(gateway.name)
    await stack.start_service("printer_gateway", instance=gateway.name)

    done = await pinned.wait_until(lambda: pinned.job_in("completed"), 90, "the job to complete after the restart")
    assert done["id"] == job["id"] and done["printer_id"] == pinned.printer_id
    assert await pinned.project_files_sent() == sent_before + 1, "the restarted gateway must not start it again"
    order = await pinned.wait_until(
        lambda: _if(pinned.order(), lambda o: o["is_complete"]), 30, "the order's green check"
    )
    assert order["jobs"] == {"total": 1, "queued": 0, "printing": 0, "completed": 1, "failed": 0, "cancelled": 0}
    assert (await pinned.printer())["bed_clear"] is False, "a finished part is still on the bed"


async def test_a_printer_off_the_network_keeps_its_job_printing_until_it_says_what_happened(pinned: Pinned) -> None:
    job = await pinned.order_one_print()
    await pinned.faults(offline=True)
    await pinned.wait_until(lambda: _if(pinned.printer(), lambda p: not p["online"]), 30, "the printer to show offline")
    assert (await pinned.job_in("printing")) is not None, "offline is not failed: the printer may still be printing"

    await pinned.faults(offline=False)
    done = await pinned.wait_until(lambda: pinned.job_in("completed"), 90, "the job to complete after reconnecting")
    assert done["id"] == job["id"]


async def test_a_printer_that_loses_power_mid_print_fails_the_job_which_can_be_retried(
    pinned: Pinned, api: httpx.AsyncClient
) -> None:
    job = await pinned.order_one_print()
    await pinned.faults(power_cycle={"down_seconds": 1})
    failed = await pinned.wait_until(lambda: pinned.job_in("failed"), 60, "the aborted print to fail its job")
    assert failed["error"], "the job says why it failed"
    assert (await pinned.order())["is_complete"] is False

    await pinned.wait_until(lambda: _if(pinned.printer(), lambda p: p["online"]), 30, "the printer back online")
    await api.post(f"/api/v1/printers/{pinned.printer_id}/bed-cleared")
    retried = await api.post(f"/api/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200, retried.text
    await pinned.wait_until(lambda: pinned.job_in("completed"), 90, "the retried job to complete")
    await pinned.wait_until(lambda: _if(pinned.order(), lambda o: o["is_complete"]), 30, "the order's green check")


async def _if(value: Awaitable[dict[str, Any]], check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    resolved = await value
    return resolved if check(resolved) else None
