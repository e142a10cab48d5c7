"""Matching by colour closeness through the whole stack: a job asks for a red a little off the red a
simulated printer holds; with the farm's tolerance at 0 it waits (the explanation and the material plan
say how far the spool is), an operator widens the tolerance and the job goes to that printer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from printqueue.domain.colour_distance import color_distance

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]


def a_close_colour(color: str) -> tuple[str, float]:
    """A colour 1 to 4 ΔE00 from `color`: the same colour from another spool maker."""
    rgb = [int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]
    for step in range(2, 40, 2):
        for channel in range(3):
            shifted = list(rgb)
            shifted[channel] = shifted[channel] - step if shifted[channel] >= 128 else shifted[channel] + step
            candidate = "#" + "".join(f"{c:02X}" for c in shifted)
            distance = color_distance(color, candidate)
            if distance is not None and 1.0 < distance < 4.0:
                return candidate, distance
    raise AssertionError(f"no colour 1-4 ΔE from {color}")


@pytest.fixture
async def tolerance_reset(api: httpx.AsyncClient) -> AsyncIterator[None]:
    """The setting is the whole farm's: every other test expects exact colours."""
    try:
        yield
    finally:
        reply = await api.put("/api/v1/queue/settings", json={"color_tolerance": 0})
        assert reply.status_code == 200, reply.text


async def test_a_close_colour_matches_once_the_operator_sets_a_tolerance(
    api: httpx.AsyncClient, wait_until: Wait, tolerance_reset: None
) -> None:
    assert (await api.get("/api/v1/queue/settings")).json() == {"color_tolerance": 0}
    for bad in ({"color_tolerance": -1}, {"color_tolerance": 101}, {"color_tolerance": "red"}, {}):
        refused = await api.put("/api/v1/queue/settings", json=bad)
        assert refused.status_code == 422, refused.text
        assert "color_tolerance" in refused.text

    printers = (await api.get("/api/v1/printers")).json()["items"]
    printer, spool = next(
        (p, m)
        for p in printers
        if p.get("online") and p.get("protocol", "bambu_lan") == "bambu_lan"
        for m in p.get("materials") or []
        if m.get("type") and m.get("color")
    )
    wanted, distance = a_close_colour(spool["color"])
    material = spool["type"]

    part = await api.post(
        "/api/v1/parts",
        data={"name": f"close {uuid.uuid4().hex[:6]}", "material_type": material, "material_color": wanted},
        files={"file": ("close.gcode.3mf", gcode_3mf(minutes=1200, grams=2.0, filament=material))},
    )
    assert part.status_code == 201, part.text
    sku = await api.post(
        "/api/v1/skus",
        json={"sku": f"C-{uuid.uuid4().hex[:10]}", "name": "Close red",
              "parts": [{"part_id": part.json()["id"], "quantity": 1}]},
    )  # fmt: skip
    assert sku.status_code == 201, sku.text
    created = await api.post(
        "/api/v1/orders",
        json={"order_number": f"C-{uuid.uuid4().hex[:6]}", "line_items": [{"sku_id": sku.json()["id"], "quantity": 2}]},
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    pinned = {"assignment": {"mode": "printer", "printer_id": printer["id"]}}
    assert (await api.post(f"/api/v1/orders/{order_id}/print-jobs", json=pinned)).status_code == 202

    async def the_jobs() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await api.get("/api/v1/jobs", params={"order_id": order_id})).json()["items"]
        return items if len(items) == 2 else []

    try:
        queued, _ = await wait_until(the_jobs, 60, "the queue to create both jobs")
        assert queued["material"]["color"] == wanted

        explained = (await api.get(f"/api/v1/jobs/{queued['id']}/matching")).json()
        assert explained["color_tolerance"] == 0
        (verdict,) = [i for i in explained["items"] if i["printer_id"] == printer["id"]]
        assert verdict["result"] == "material_mismatch"
        assert verdict["color_distance"] == pytest.approx(distance, abs=0.01)
        assert f"ΔE {verdict['color_distance']:g}" in verdict["detail"]
        assert {j["status"] for j in await the_jobs()} == {"queued"}

        def need(items: list[dict[str, Any]]) -> dict[str, Any]:
            return next(i for i in items if i["color"] == wanted and i["type"].casefold() == material.casefold())

        plan = need((await api.get("/api/v1/queue/materials")).json()["items"])
        assert printer["id"] not in plan["printers_loaded"]

        widened = await api.put("/api/v1/queue/settings", json={"color_tolerance": 4})
        assert widened.status_code == 200 and widened.json() == {"color_tolerance": 4}
        assert (await api.get("/api/v1/queue/settings")).json() == {"color_tolerance": 4}

        explained = (await api.get(f"/api/v1/jobs/{queued['id']}/matching")).json()
        (verdict,) = [i for i in explained["items"] if i["printer_id"] == printer["id"]]
        assert explained["color_tolerance"] == 4
        assert verdict["result"] != "material_mismatch"
        assert verdict["color_distance"] == pytest.approx(distance, abs=0.01)

        async def one_dispatched() -> list[dict[str, Any]]:
            await _clear_bed(api, printer["id"])
            jobs = await the_jobs()
            return jobs if any(j["status"] in ("printing", "completed") for j in jobs) else []

        # Printing, not merely assigned: a dispatch the printer refuses (its bed was not clear yet) puts the
        # job back in the queue, and the plan below would rightly count it as waiting again.
        jobs = await wait_until(one_dispatched, 300, "a close-colour job to print on the printer", interval=0.25)
        (started,) = [j for j in jobs if j["status"] in ("printing", "completed")]
        assert started["printer_id"] == printer["id"]
        # The other copy waits for the same printer (a 20-hour print at the stack's time scale is 2 minutes):
        # the material plan counts the close spool as loaded, so it suggests nothing to load.
        assert [j["status"] for j in await the_jobs() if j["id"] != started["id"]] == ["queued"]

        async def plan_with_one_waiting() -> dict[str, Any] | None:
            item = need((await api.get("/api/v1/queue/materials")).json()["items"])
            return item if item["jobs_waiting"] == 1 else None

        still = await wait_until(plan_with_one_waiting, 30, "the material plan to count the one copy still waiting")
        assert printer["id"] in still["printers_loaded"]
        assert {"printer_id": printer["id"], "slot": spool["slot"]} in still["slots_loaded"]
    finally:
        # Stop the 20-hour print too: the printer belongs to the tests that follow (an order's cancel lets
        # a printing job finish).
        left = (await api.get("/api/v1/jobs", params={"order_id": order_id})).json()["items"]
        for job in left:
            if job["status"] in ("assigned", "printing", "paused"):
                await api.post(f"/api/v1/jobs/{job['id']}/cancel")
        await api.post(f"/api/v1/orders/{order_id}/cancel")


async def _clear_bed(api: httpx.AsyncClient, printer_id: str) -> None:
    current = (await api.get(f"/api/v1/printers/{printer_id}")).json()
    if current.get("bed_clear") is False and current.get("state") in ("finished", "idle"):
        await api.post(f"/api/v1/printers/{printer_id}/bed-cleared")
