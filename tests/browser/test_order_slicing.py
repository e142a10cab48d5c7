"""The order page of a custom product (an OpenSCAD name tag with the customer's name on each line): each line
shows its parameters and, from what its jobs print, "slicing…" until the slicer has made the file, then the
slicer's estimate (minutes and grams); a value changed on a line says it is sliced again when sent, and the
next send shows the new file's estimate. At 1280×800 and 390×844: screenshots, no sideways scrolling,
labelled controls and no serious axe-core violations."""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (dev dependency playwright>=1.49)")

from playwright.async_api import Locator, Page, ViewportSize, expect

from devstack import Stack

from .test_operator_screens import check_screen

pytestmark = pytest.mark.integration

SLICE_TIMEOUT = 180_000
"""A cold OpenSCAD render and PrusaSlicer run on a busy two-core machine."""
TAG_SCAD = b"""/* [Text] */
// the name on the tag
label = "Ada";
linear_extrude(2) square([6 + 4 * len(label), 12]);
"""
"""The tag grows with the name: names of different lengths slice into different files."""


def expected_estimate(jobs: list[dict[str, Any]]) -> str:
    """What the page writes for these jobs' files (order.js `describeEstimate`)."""
    minutes = math.floor(sum(j["file"]["print_minutes"] for j in jobs) + 0.5)
    grams = sum(j["file"]["grams"] for j in jobs)
    shown = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{shown} · {grams:.1f} g" + (f" ({len(jobs)} jobs)" if len(jobs) > 1 else "")


def line_row(page: Page, label: str) -> Locator:
    return page.locator("tr.line", has=page.locator("ul.params li", has_text=f"label: {label}"))


async def bambu_printer_with_pla(api: httpx.AsyncClient) -> dict[str, Any]:
    """An online Bambu printer without FabMatic, free, holding PLA: the slicer has profiles for its model."""
    for printer in sorted((await api.get("/api/v1/printers?limit=500")).json()["items"], key=lambda p: p["name"]):
        types = {(m.get("type") or "").upper() for m in printer["materials"]}
        if (printer["online"] and printer["protocol"] == "bambu_lan" and not printer["fabmatic"]
                and not printer["current_job_id"] and "PLA" in types):
            if not printer["bed_clear"]:
                assert (await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")).status_code == 200
            return dict(printer)
    pytest.fail("the simulated fleet has no free, online Bambu printer without FabMatic holding PLA")


async def test_each_openscad_line_shows_its_values_then_slicing_then_the_sliced_estimate(
    stack: Stack,
    open_page: Callable[..., Awaitable[Page]],
    viewports: dict[str, ViewportSize],
    api: httpx.AsyncClient,
    wait_until: Callable[..., Awaitable[Any]],
    screenshots: Path,
) -> None:
    if "slicer" not in stack.config.services:
        pytest.skip("this stack runs no slicer service")
    printer = await bambu_printer_with_pla(api)
    part = await api.post("/api/v1/parts", files={"file": ("tag.scad", TAG_SCAD)},
                          data={"name": f"name tag {uuid.uuid4().hex[:6]}", "material_type": "PLA"})
    assert part.status_code == 201, part.text
    sku = await api.post("/api/v1/skus", json={
        "sku": f"TAG-{uuid.uuid4().hex[:6]}", "name": "Name tag",
        "parts": [{"part_id": part.json()["id"], "quantity": 1, "sku_params": ["label"]}],
    })
    assert sku.status_code == 201, sku.text
    number = f"#TAG-{uuid.uuid4().hex[:4].upper()}"
    order = await api.post("/api/v1/orders", json={
        # Due long ago: the printer takes these before what other tests left waiting for it.
        "order_number": number, "customer_name": "Name Tag Shop", "fulfillment_date": "2020-01-01",
        "line_items": [{"sku_id": sku.json()["id"], "quantity": 1, "parameters": {"label": label}}
                       for label in ("Ada", "Grace")],
    })
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]

    page = await open_page(viewports["desktop"])
    await page.goto(f"/#/orders/{order_id}")
    ada, grace = line_row(page, "Ada"), line_row(page, "Grace")
    for row in (ada, grace):
        await expect(row.locator("td[data-label=Estimate]")).to_have_text("sliced when sent to the queue")

    await page.get_by_role("button", name="Print Jobs").click()
    dialog = page.get_by_role("dialog", name=f"Print Jobs for {number}")
    await dialog.get_by_label("Specific printer").check()
    await dialog.get_by_label("Printer", exact=True).select_option(printer["id"])
    await dialog.get_by_role("button", name="Send to the queue").click()
    await expect(dialog).to_be_hidden()
    # Rendering and slicing take seconds: the page says so before the estimate arrives, live.
    await expect(grace.locator("[data-estimate=slicing]")).to_have_text("slicing…")

    async def sliced() -> list[dict[str, Any]] | None:
        jobs: list[dict[str, Any]] = (await api.get("/api/v1/jobs", params={"order_id": order_id})).json()["items"]
        assert not [j["error"] for j in jobs if j["status"] == "failed"]
        statuses = sorted(j["status"] for j in jobs)
        printed = statuses in (["printing", "queued"], ["completed", "queued"])
        return jobs if printed and all(j["file"] for j in jobs) else None

    jobs = await wait_until(sliced, SLICE_TIMEOUT / 1000, "both lines' jobs sliced, one printed, one waiting")
    by_label = {j["parameters"]["label"]: j for j in jobs}
    assert by_label["Ada"]["file"]["sha256"] != by_label["Grace"]["file"]["sha256"]
    for label, row in (("Ada", ada), ("Grace", grace)):
        await expect(row.locator("[data-estimate=known]")).to_have_text(expected_estimate([by_label[label]]))
        await expect(row.locator("[data-estimate=slicing]")).to_have_count(0)
        await expect(row.locator("ul.params")).to_have_text(f"label: {label}")
    await check_screen(page, "order-sliced-estimates", "1280x800", 1280, screenshots)

    # The first tag prints on the printer, the other waits for its bed: a new name on the waiting line is
    # sliced again once the order is sent again, the printed one keeps its file.
    waiting = next(j for j in jobs if j["status"] == "queued")
    row = line_row(page, waiting["parameters"]["label"])
    await row.get_by_role("button", name="Parameters").click()
    edit = page.get_by_role("dialog")
    await edit.get_by_label("label").fill("Bartholomew")
    await edit.get_by_role("button", name="Save parameters").click()
    await expect(edit).to_be_hidden()
    row = line_row(page, "Bartholomew")
    stale = "values changed: sliced again when sent to the queue"
    await expect(row.locator("[data-estimate=stale]")).to_have_text(stale)

    sent = await api.post(f"/api/v1/orders/{order_id}/print-jobs",
                          json={"assignment": {"mode": "printer", "printer_id": printer["id"]}})
    assert sent.status_code == 202, sent.text

    async def re_sliced() -> dict[str, Any] | None:
        job: dict[str, Any] = (await api.get(f"/api/v1/jobs/{waiting['id']}")).json()
        return job if job["parameters"] == {"label": "Bartholomew"} and job["file"] else None

    changed = await wait_until(re_sliced, SLICE_TIMEOUT / 1000, "the changed line's job sliced with the new name")
    assert changed["file"]["sha256"] != waiting["file"]["sha256"]
    await expect(row.locator("[data-estimate=known]")).to_have_text(expected_estimate([changed]))

    phone = await open_page(viewports["phone"])
    await phone.goto(f"/#/orders/{order_id}")
    await expect(line_row(phone, "Bartholomew").locator("[data-estimate=known]")).to_be_visible()
    await check_screen(phone, "order-sliced-estimates", "390x844", 390, screenshots)

    # Leave the printer to the other tests: nothing of this order waits for it, its bed is cleared.
    assert (await api.post(f"/api/v1/orders/{order_id}/cancel")).status_code == 200

    async def printer_free() -> bool:
        now = (await api.get(f"/api/v1/printers/{printer['id']}")).json()
        return not now["current_job_id"]

    await wait_until(printer_free, 120, "the printer done with this order")
    await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
