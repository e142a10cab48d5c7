"""Issue 16's forecast on the simulated fleet: three orders with fulfilment dates, one needing a material no
printer holds, show which will be late and why; loading the material (the simulator's control API) moves
the forecast; and each order then completes within 10% of when the forecast said (a time-scaled run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
PRINTER = "p1s-01"
"""The default fleet's FabMatic printer: it clears its own bed, so no operator's delay is in the way."""
PRINT_MINUTES = 200
"""20 s a print at the tests' time scale of 600: long against the dispatch's latency of a second or two (the
three prints run one after another, so this is most of the test's time)."""
PLA = {"slot": 3, "type": "PLA", "color": "#7B3F00", "profile": "GFA00", "remain_percent": 90}
PETG = {"slot": 254, "type": "PETG", "color": "#2E8B57", "profile": "GFG00", "remain_percent": 90}
"""Colours nothing else in the fleet holds: only these orders' jobs want them."""
TIME_SCALE = float(os.environ.get("SIMULATOR_TIME_SCALE") or 600)
"""As tests/conftest.py starts the stack (and devstack tells the queue)."""


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


class Farm:
    def __init__(self, stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> None:
        assert stack.sim is not None
        self.api, self.wait_until, self.sim = api, wait_until, stack.sim
        self.control = httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False)
        self.serial = self.sim.printer(PRINTER).serial
        self.printer_id = ""
        self.original: list[dict[str, Any]] = []

    async def printer(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.api.get(f"/api/v1/printers/{self.printer_id}")).json()
        return body

    async def load(self, *materials: dict[str, Any]) -> None:
        """What an operator does at the printer: the printer then reports the spools (AMS and external)."""
        reply = await self.control.put(f"/printers/{self.serial}/materials", json=[*self.original, *materials])
        assert reply.status_code == 200, reply.text
        colors = {m["color"].upper() for m in materials}

        async def reported() -> bool:
            held = {(m.get("color") or "").upper() for m in (await self.printer())["materials"]}
            return colors <= held

        await self.wait_until(reported, 60, f"{PRINTER} to report {colors}")

    async def order(self, part_id: str, fulfillment: str) -> str:
        sku = await self.api.post(
            "/api/v1/skus",
            json={
                "sku": f"FC-{uuid.uuid4().hex[:8]}",
                "name": "Forecast",
                "parts": [{"part_id": part_id, "quantity": 1}],
            },
        )
        assert sku.status_code == 201, sku.text
        order = await self.api.post(
            "/api/v1/orders",
            json={
                "order_number": f"FC-{uuid.uuid4().hex[:6]}",
                "fulfillment_date": fulfillment,
                "line_items": [{"sku_id": sku.json()["id"], "quantity": 1}],
            },
        )
        assert order.status_code == 201, order.text
        order_id: str = order.json()["id"]
        click = await self.api.post(f"/api/v1/orders/{order_id}/print-jobs", json={})
        assert click.status_code == 202, click.text
        return order_id

    async def part(self, material: dict[str, Any]) -> str:
        data = gcode_3mf(minutes=PRINT_MINUTES, grams=5.0, filament=material["type"], color=material["color"])
        reply = await self.api.post(
            "/api/v1/parts",
            files={"file": ("slab.gcode.3mf", data)},
            data={"name": f"slab {uuid.uuid4().hex[:6]}", "material_type": material["type"],
                  "material_color": material["color"]},
        )
        assert reply.status_code == 201, reply.text
        part_id: str = reply.json()["id"]
        return part_id

    async def forecast_of(self, order_id: str) -> dict[str, Any] | None:
        """The order's forecast as the orders service answers it."""
        reply = await self.api.get(f"/api/v1/orders/{order_id}")
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] | None = reply.json()["forecast"]
        return found

    async def farm_forecast(self, *order_ids: str) -> tuple[datetime, list[dict[str, Any]]] | None:
        """One forecast of the whole farm: when it was made, and these orders' lines of it (None: not all in it)."""
        reply = await self.api.get("/api/v1/forecast")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        lines = {o["order_id"]: o for o in body["orders"]}
        if not all(order_id in lines for order_id in order_ids):
            return None
        return parse(body["generated_at"]), [lines[order_id] for order_id in order_ids]

    async def completed_at(self, order_id: str) -> datetime | None:
        jobs = (await self.api.get("/api/v1/jobs", params={"order_id": order_id})).json()["items"]
        assert all(j["status"] not in ("failed", "cancelled") for j in jobs), jobs
        if jobs and all(j["status"] == "completed" for j in jobs):
            return max(parse(j["finished_at"]) for j in jobs)
        return None


@pytest.fixture
async def farm(stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> AsyncIterator[Farm]:
    farm = Farm(stack, api, wait_until)
    printers = {p["name"]: p for p in (await api.get("/api/v1/printers?limit=500")).json()["items"]}
    farm.printer_id = printers[PRINTER]["id"]
    snapshot = (await farm.control.get(f"/printers/{farm.serial}")).json()
    farm.original = [m for m in snapshot["materials"] if m.get("slot") not in (PLA["slot"], PETG["slot"])]

    async def ready() -> bool:
        p = await farm.printer()
        if p["online"] and not p["current_job_id"] and not p["bed_clear"]:
            await api.post(f"/api/v1/printers/{p['id']}/bed-cleared")
            p = await farm.printer()
        return bool(p["online"] and p["bed_clear"] and not p["current_job_id"] and p["fabmatic"])

    await wait_until(ready, 60, f"{PRINTER} idle with a clear bed")
    try:
        yield farm
    finally:
        await farm.control.put(f"/printers/{farm.serial}/materials", json=farm.original)
        await farm.control.aclose()


async def test_three_orders_show_which_will_be_late_and_why_and_loading_the_material_moves_the_forecast(
    farm: Farm,
) -> None:
    await farm.load(PLA)
    pla_part, petg_part = await farm.part(PLA), await farm.part(PETG)
    today = datetime.now(UTC).date()
    later = (today + timedelta(days=3)).isoformat()
    first = await farm.order(pla_part, later)
    second = await farm.order(pla_part, later)
    blocked = await farm.order(petg_part, today.isoformat())

    async def forecast_blocked() -> dict[str, Any] | None:
        found = await farm.forecast_of(blocked)
        return found if found is not None and found["blocked_by"] else None

    why = await farm.wait_until(forecast_blocked, 60, "the PETG order's forecast to say what blocks it")
    assert why["blocked_by"] == "no printer holds PETG #2E8B57" and why["completes_at"] is None
    assert why["late"] is True
    listed = (await farm.api.get("/api/v1/orders", params={"q": (await farm.api.get(
        f"/api/v1/orders/{blocked}")).json()["order_number"]})).json()["items"]
    assert [o["forecast"]["blocked_by"] for o in listed] == ["no printer holds PETG #2E8B57"]

    async def both_forecast() -> tuple[datetime, list[dict[str, Any]]] | None:
        shown = [await farm.forecast_of(first), await farm.forecast_of(second)]
        if any(o is None or o["completes_at"] is None for o in shown):
            return None
        return await farm.farm_forecast(first, second)

    made, predicted = await farm.wait_until(both_forecast, 60, "both PLA orders forecast")
    for order in predicted:
        assert order["late"] is False and order["blocked_by"] is None
    # FabMatic: the second print follows the first with no operator in between.
    gap = parse(predicted[1]["completes_at"]) - parse(predicted[0]["completes_at"])
    assert gap == timedelta(minutes=PRINT_MINUTES) / TIME_SCALE

    await farm.load(PLA, PETG)

    async def moved() -> tuple[datetime, list[dict[str, Any]]] | None:
        found = await farm.farm_forecast(first, second, blocked)
        shown = await farm.forecast_of(blocked)
        if found is None or found[1][2]["completes_at"] is None or shown is None or shown["completes_at"] is None:
            return None
        return found

    generated, (_, later_second, after) = await farm.wait_until(
        moved, 60, "the PETG order's forecast to move once PETG is loaded"
    )
    assert after["blocked_by"] is None and after["late"] is False
    # Due today, the PETG order goes before the second PLA one (the matcher's queue order), which moves too.
    assert parse(after["completes_at"]) < parse(later_second["completes_at"])
    assert parse(later_second["completes_at"]) > parse(predicted[1]["completes_at"])

    # The first order's print had started before the load (nothing moved it); the others as forecast after it.
    timeline = [(made, predicted[0]), (generated, later_second), (generated, after)]
    for order_id, (at, forecast) in zip((first, second, blocked), timeline, strict=True):
        actual = await farm.wait_until(
            lambda order_id=order_id: farm.completed_at(order_id), 240, f"order {order_id} printed"
        )
        expected = parse(forecast["completes_at"])
        error = abs((actual - expected) / (expected - at))
        print(f"forecast made {at.isoformat()}: {expected.isoformat()}, completed {actual.isoformat()}: {error:.1%}")
        assert error <= 0.10, f"forecast {expected} made at {at}, completed {actual}"
    done = await farm.forecast_of(blocked)
    assert done is not None and done["late"] is False and done["completes_at"] is not None

