"""A simulated day of printing on the time-scaled fleet, for the farm analytics tests (API and browser).

An order of PLA parts whose prints add up to a day of printer time (three hours each, by their files) keeps
the PLA printers busy until it completes, the operator clearing beds as the prints come off; meanwhile an ABS
part is sent to the printer holding ABS, armed by the simulator to refuse its next job, so the day also has a
failed job with the printer's reason. The simulator prints each part in a few real seconds (its
`print_seconds` switch; at the tests' time scale three hours would take 18), which the figures only need
to be more than nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from devstack import Stack

from .sliced_files import gcode_3mf

Wait = Callable[..., Awaitable[Any]]
PRINT_MINUTES = 180
JOBS = 8
"""8 prints x 3 h: a day of printer time."""
GRAMS = 25.0
PRINT_SECONDS = 3.0
"""Real seconds the simulated PLA printers take for each print of the day."""


@dataclass(frozen=True)
class FarmDay:
    completed_order_id: str
    completed_order_number: str
    failed_order_id: str
    jobs: int
    grams_per_job: float


async def _order(api: httpx.AsyncClient, material: str, quantity: int, minutes: int, grams: float) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    part = await api.post(
        "/api/v1/parts",
        files={"file": (f"day-{tag}.gcode.3mf", gcode_3mf(minutes=minutes, grams=grams, filament=material, note=tag))},
        data={"name": f"Day {material} {tag}", "material_type": material},
    )
    assert part.status_code == 201, part.text
    sku = await api.post(
        "/api/v1/skus",
        json={"sku": f"DAY-{tag}", "name": f"Day {material}", "parts": [{"part_id": part.json()["id"], "quantity": 1}]},
    )
    assert sku.status_code == 201, sku.text
    number = f"DAY-{material}-{tag}"
    line_items = [{"sku_id": sku.json()["id"], "quantity": quantity}]
    order = await api.post("/api/v1/orders", json={"order_number": number, "line_items": line_items})
    assert order.status_code == 201, order.text
    order_id: str = order.json()["id"]
    click = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": {"mode": "next_available"}})
    assert click.status_code == 202, click.text
    return order_id, number


async def clear_beds(api: httpx.AsyncClient) -> None:
    """What the operator does as prints come off: every printer done with a print gets its bed cleared."""
    for p in (await api.get("/api/v1/printers?limit=500")).json()["items"]:
        if p["bed_clear"] is False and p["state"] in ("finished", "idle") and not p["current_job_id"]:
            await api.post(f"/api/v1/printers/{p['id']}/bed-cleared")


async def print_a_day(stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> FarmDay:
    assert stack.sim is not None

    async def fleet() -> list[dict[str, Any]] | None:
        printers: list[dict[str, Any]] = (await api.get("/api/v1/printers?limit=500")).json()["items"]
        bambu = [p for p in printers if p["protocol"] == "bambu_lan" and p["online"]]
        return printers if len(bambu) >= 3 else None

    printers = await wait_until(fleet, 90, "the simulated Bambu printers to be online")
    abs_printers = [
        p for p in printers if p["protocol"] == "bambu_lan" and any(m["type"].upper() == "ABS" for m in p["materials"])
    ]
    assert len(abs_printers) == 1, "the default fleet has one Bambu printer holding ABS"
    abs_printer = abs_printers[0]
    simulated = {p.serial for p in stack.sim.printers}
    async with httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False) as control:
        await _reset(api, control, abs_printer, wait_until)
        armed = await control.post(f"/printers/{abs_printer['serial']}/faults", json={"refuse_next_job": True})
        assert armed.status_code == 200, armed.text
        pla_serials = [
            p["serial"] for p in printers
            if p.get("serial") in simulated and any(m["type"].upper() == "PLA" for m in p["materials"])
        ]
        try:
            for serial in pla_serials:
                hurried = await control.post(f"/printers/{serial}/faults", json={"print_seconds": PRINT_SECONDS})
                assert hurried.status_code == 200, hurried.text
            failed_order, _ = await _order(api, "ABS", 1, 30, 5.0)
            order_id, number = await _order(api, "PLA", JOBS, PRINT_MINUTES, GRAMS)

            async def done() -> bool:
                await clear_beds(api)
                order = (await api.get(f"/api/v1/orders/{order_id}")).json()
                failed = (await api.get(f"/api/v1/jobs?order_id={failed_order}")).json()["items"]
                return bool(order["is_complete"]) and [j["status"] for j in failed] == ["failed"]

            what = f"order {number}'s day of prints to complete and the ABS job to fail"
            await wait_until(done, 240, what, interval=0.5)
        finally:
            for serial in pla_serials:
                await control.post(f"/printers/{serial}/faults", json={"print_seconds": None})
        await _reset(api, control, abs_printer, wait_until)
    return FarmDay(order_id, number, failed_order, JOBS, GRAMS)


async def _reset(api: httpx.AsyncClient, control: httpx.AsyncClient, printer: dict[str, Any], wait_until: Wait) -> None:
    """A printer left in error by a refused job (FAILED until its next print) is power-cycled back to IDLE and
    its bed cleared, as an operator would, so the ABS printer is ready for the tests that follow."""
    current = (await api.get(f"/api/v1/printers/{printer['id']}")).json()
    if current["state"] == "error":
        cycled = await control.post(f"/printers/{printer['serial']}/faults", json={"power_cycle": True})
        assert cycled.status_code == 200, cycled.text

    async def ready() -> bool:
        now = (await api.get(f"/api/v1/printers/{printer['id']}")).json()
        if not now["bed_clear"] and not now["current_job_id"] and now["state"] in ("idle", "finished"):
            await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
            now = (await api.get(f"/api/v1/printers/{printer['id']}")).json()
        return bool(now["online"] and now["bed_clear"] and now["state"] in ("idle", "finished"))

    await wait_until(ready, 60, f"{printer['name']} idle with a clear bed")
