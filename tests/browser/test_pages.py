"""Every page at 1280×800 and on a 390-wide phone: a screenshot into screenshots/, no sideways
scrolling, every form control labelled; and the keyboard alone reaches and uses the controls."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (dev dependency playwright>=1.49)")

from playwright.async_api import Page, ViewportSize, expect

pytestmark = pytest.mark.integration

UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !el.labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML.slice(0, 120))"""


async def an_order_with_jobs(api: httpx.AsyncClient, part_files: Any) -> str:
    """An order with one line item sent to the queue, for the order page's screenshot. No printer holds
    its material, so its jobs wait and leave the printers to the other tests."""
    part = await api.post(
        "/api/v1/parts",
        data={"name": "bracket", "material_type": "PA-CF", "material_color": "#D02020"},
        files={"file": ("bracket.gcode.3mf", part_files.gcode_3mf(600, "PA-CF"))},
    )
    assert part.status_code == 201, part.text
    sku = await api.post("/api/v1/skus", json={"sku": f"SHOT-{uuid.uuid4().hex[:6]}", "name": "Wall bracket",
                                                "parts": [{"part_id": part.json()["id"], "quantity": 2}]})
    assert sku.status_code == 201, sku.text
    order = await api.post("/api/v1/orders", json={
        "order_number": f"#SHOT-{uuid.uuid4().hex[:4]}", "customer_name": "Screenshot Customer",
        "customer_email": "shots@example.com", "fulfillment_date": "2030-06-01",
        "line_items": [{"sku_id": sku.json()["id"], "quantity": 3}],
    })
    assert order.status_code == 201, order.text
    order_id = str(order.json()["id"])
    sent = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json={})
    assert sent.status_code == 202, sent.text
    return order_id


async def check_page(page: Page, name: str, size: str, width: int, screenshots: Path) -> None:
    await expect(page.locator("#view[aria-busy]")).to_have_count(0)
    await page.screenshot(path=str(screenshots / f"{name}-{size}.png"), full_page=True)
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{name} at {size} scrolls sideways ({overflow}px wide)"
    unlabelled = await page.evaluate(UNLABELLED_CONTROLS)
    assert not unlabelled, f"{name} at {size} has form controls without a label: {unlabelled}"


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_every_page_fits_is_labelled_and_is_captured(
    size: str,
    open_page: Callable[..., Awaitable[Page]],
    viewports: dict[str, ViewportSize],
    api: httpx.AsyncClient,
    part_files: Any,
    screenshots: Path,
) -> None:
    viewport = viewports[size]
    label = f"{viewport['width']}x{viewport['height']}"
    order_id = await an_order_with_jobs(api, part_files)

    page = await open_page(viewport, signed_in=False)
    await page.goto("/#/orders")
    await expect(page.get_by_role("heading", name="Sign in to printfarm")).to_be_visible()
    await check_page(page, "login", label, viewport["width"], screenshots)

    page = await open_page(viewport)
    pages = {
        "orders": ("/#/orders", "Orders"),
        "order": (f"/#/orders/{order_id}", "Order #SHOT"),
        "queue": ("/#/queue", "Print queue"),
        "printers": ("/#/printers", "Printers"),
        "skus": ("/#/skus", "SKUs and parts"),
        "dead-letters": ("/#/dead-letters", "Dead letters"),
    }
    for name, (path, heading) in pages.items():
        await page.goto(path)
        await expect(page.get_by_role("heading", name=heading).first).to_be_visible()
        await check_page(page, name, label, viewport["width"], screenshots)

    await page.goto(f"/#/orders/{order_id}")
    await page.get_by_role("button", name="Print Jobs").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await check_page(page, "print-jobs-dialog", label, viewport["width"], screenshots)

    await page.goto("/#/skus")
    await page.get_by_role("button", name="New SKU").click()
    await expect(page.get_by_role("dialog", name="New SKU").get_by_label("SKU code")).to_be_focused()
    await check_page(page, "new-sku-dialog", label, viewport["width"], screenshots)


async def test_keyboard_alone_opens_a_dialog_and_moves_between_pages(page: Page) -> None:
    await page.goto("/#/orders")
    await expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_focused()
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent === 'New order'"):
            break
    else:
        pytest.fail("Tab never reached the New order button")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused button shows no focus outline"
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New order")
    await expect(dialog.get_by_label("Order number")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    await page.get_by_role("link", name="Printers").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Printers")).to_be_focused()
