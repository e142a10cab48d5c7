"""The operator's flows in the web UI, in real Chromium against the whole stack.

Every change the tests wait for arrives over the live event stream: a marker set on `window` before
the wait must still be there afterwards, which proves the page was not reloaded.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (dev dependency playwright>=1.49)")

from playwright.async_api import FilePayload, Page, expect

from servicekit.testing import wait_until

pytestmark = pytest.mark.integration

LIVE_TIMEOUT = 60_000
PRINT_MINUTES = 30
"""Simulated minutes per print: a few real seconds at the tests' time scale, long enough to watch."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6].upper()}"


async def mark_page(page: Page) -> None:
    await page.evaluate("window.__noReload = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__noReload === true"), "the page reloaded; it should update live"


async def pick_manual_printer(api: httpx.AsyncClient, material: str) -> dict[str, Any]:
    """An online printer without FabMatic that holds `material`, so its bed needs an operator."""
    printers = (await api.get("/api/v1/printers")).json()["items"]
    for printer in sorted(printers, key=lambda p: p["name"]):
        types = {m["type"].upper() for m in printer["materials"] if m.get("type")}
        if printer["online"] and not printer["fabmatic"] and material in types and printer["bed_clear"]:
            return dict(printer)
    pytest.fail(f"the simulated fleet has no idle, online, non-FabMatic printer with {material}")


async def new_order(page: Page, number: str, customer: str) -> None:
    await page.goto("/#/orders")
    await page.get_by_role("button", name="New order").click()
    dialog = page.get_by_role("dialog", name="New order")
    await dialog.get_by_label("Order number").fill(number)
    await dialog.get_by_label("Customer name").fill(customer)
    await dialog.get_by_role("button", name="Create order").click()
    await expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()


async def test_login_is_required_and_logout_ends_the_session(page: Page, admin: dict[str, str]) -> None:
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Sign in to printfarm")).to_be_visible()
    await page.goto("/#/printers")
    await expect(page).to_have_url(re.compile(r"#/login\?next=%2Fprinters$"))
    await expect(page.get_by_role("heading", name="Sign in to printfarm")).to_be_visible()

    await page.get_by_label("Username").fill(admin["username"])
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("wrong username or password")

    await page.get_by_label("Password").fill(admin["password"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Printers")).to_be_visible()


async def test_order_with_a_sku_made_on_the_fly_and_its_parameters(
    page: Page, part_files: Any, screenshots: Path
) -> None:
    number = unique("UI-PARAMS")
    code = unique("BOX")
    await new_order(page, number, "Ada Lovelace")

    # Header fields: a bad email is shown next to its field, a good edit is saved with If-Match.
    await page.get_by_label("Customer email").fill("not-an-email")
    await page.get_by_role("button", name="Save details").click()
    email_error = page.locator(".field", has=page.get_by_label("Customer email")).locator(".field-error")
    await expect(email_error).to_contain_text("email")
    await page.get_by_label("Customer email").fill("ada@example.com")
    await page.get_by_label("Fulfilment date").fill("2030-01-15")
    await page.get_by_role("button", name="Save details").click()
    await expect(page.get_by_role("status").filter(has_text="Order details saved")).to_be_visible()

    # The SKU does not exist: create it from the search, uploading its part file in the dialog.
    await page.get_by_label("Find a SKU").fill(code)
    await page.get_by_role("button", name=f"Create SKU “{code}”").click()
    dialog = page.get_by_role("dialog", name="New SKU")
    await expect(dialog.get_by_label("SKU code")).to_have_value(code)
    await dialog.get_by_label("Name", exact=True).fill("Parametric box")
    await dialog.get_by_label("Part file").set_input_files(
        files=FilePayload(name="box.scad", mimeType="text/plain", buffer=part_files.scad_box)
    )
    await dialog.get_by_label("Material type").fill("PLA")
    await dialog.get_by_role("button", name="Upload part").click()
    await expect(dialog.get_by_label("Part", exact=True)).not_to_have_value("")
    await expect(dialog.get_by_label("Part", exact=True).locator("option:checked")).to_contain_text("box.scad")
    for name in ("width", "finish", "hollow", "label"):
        await expect(dialog.get_by_role("checkbox", name=name, exact=True)).to_be_checked()
    await dialog.get_by_role("button", name="Create SKU").click()
    await expect(dialog).to_be_hidden()

    # The SKU's parameters become a form: number with range, dropdown, checkbox and text.
    width = page.get_by_label("width — Width in millimetres")
    await expect(width).to_have_attribute("min", "10")
    await expect(width).to_have_attribute("max", "50")
    await expect(width).to_have_attribute("step", "5")
    await expect(page.get_by_label("finish — Surface finish")).to_have_value('"matte"')
    await page.get_by_label("Quantity", exact=True).fill("3")
    await expect(page.locator(".summary .muted", has_text="+3 with the line item being added")).to_be_visible()

    await width.fill("95")
    await page.get_by_role("button", name="Add to order").click()
    width_error = page.locator(".field", has=width).locator(".field-error")
    await expect(width_error).to_contain_text("50")

    await width.fill("35")
    await page.get_by_label("finish — Surface finish").select_option(label="glossy")
    await page.get_by_label("hollow — Hollow inside").check()
    await page.get_by_label("label — Engraved label").fill("Ada")
    await page.screenshot(path=str(screenshots / "order-parameters-1280x800.png"), full_page=True)
    await page.get_by_role("button", name="Add to order").click()

    row = page.locator("tr.line", has_text=code)
    await expect(row).to_contain_text("width: 35")
    await expect(row).to_contain_text("finish: glossy")
    await expect(row).to_contain_text("hollow: true")
    await expect(row).to_contain_text("label: Ada")
    await expect(page.locator(".summary .counter")).to_have_text("3")
    await expect(page.locator("section", has=page.get_by_role("heading", name="SKU breakdown"))).to_contain_text(code)

    # Changing the quantity updates the job counter at once, then saves it.
    quantity = page.get_by_label(f"Quantity of {code}")
    await quantity.fill("4")
    await expect(page.locator(".summary .counter")).to_have_text("4")
    # The reload must not overtake the PATCH that Enter sends (a navigation abandons a request in flight:
    # seen once as the old quantity 3 after the reload, on a loaded machine). The first PATCH may meet 412
    # (the order's revision moved, e.g. by the new line's estimate) and the page sends it again on the new
    # revision: wait for the one that is accepted.
    async with page.expect_response(
        lambda r: r.request.method == "PATCH" and "/line-items/" in r.url and r.ok, timeout=LIVE_TIMEOUT
    ):
        await quantity.press("Enter")
    await page.reload()
    await expect(page.get_by_label(f"Quantity of {code}")).to_have_value("4")
    await expect(page.get_by_label("Customer email")).to_have_value("ada@example.com")


async def test_print_watch_progress_clear_bed_green_check_bulk_close_and_find_closed(
    page: Page, api: httpx.AsyncClient, part_files: Any
) -> None:
    printer = await pick_manual_printer(api, "PLA")
    number = unique("UI-PRINT")
    code = unique("SLAB")
    await new_order(page, number, "Grace Hopper")

    await page.get_by_label("Find a SKU").fill(code)
    await page.get_by_role("button", name=f"Create SKU “{code}”").click()
    dialog = page.get_by_role("dialog", name="New SKU")
    await dialog.get_by_label("Name", exact=True).fill("Slab")
    await dialog.get_by_label("Part file").set_input_files(
        files=FilePayload(name="slab.gcode.3mf", mimeType="application/octet-stream",
                          buffer=part_files.gcode_3mf(PRINT_MINUTES, "PLA"))
    )
    await dialog.get_by_label("Material type").fill("PLA")
    await dialog.get_by_role("button", name="Upload part").click()
    await expect(dialog.locator(".part-row select")).not_to_have_value("")
    await dialog.get_by_role("button", name="Create SKU").click()
    await expect(dialog).to_be_hidden()
    await page.get_by_label("Quantity", exact=True).fill("2")
    await page.get_by_role("button", name="Add to order").click()
    await expect(page.locator(".summary .counter")).to_have_text("2")

    # Print Jobs on one specific printer: the second copy must wait for its bed to be cleared.
    await page.get_by_role("button", name="Print Jobs").click()
    dialog = page.get_by_role("dialog", name=f"Print Jobs for {number}")
    await dialog.get_by_label("Specific printer").check()
    await dialog.get_by_label("Printer", exact=True).select_option(printer["id"])
    await dialog.get_by_role("button", name="Send to the queue").click()
    await expect(dialog).to_be_hidden()

    await mark_page(page)
    counts = page.locator(".summary .counts")
    await expect(counts).to_contain_text("1 of 2 sent jobs completed", timeout=LIVE_TIMEOUT)
    await expect(page.locator("tr.line", has_text=code)).to_contain_text("1/2 done")
    await assert_not_reloaded(page)

    # The queue shows the waiting copy, linked to its order, and says why it waits.
    await page.goto(f"/#/queue?order={number}")
    waiting = page.locator("tbody tr", has_text=number)
    await expect(waiting).to_have_count(1, timeout=LIVE_TIMEOUT)
    link = f"#/orders/{await order_id(api, number)}"
    await expect(waiting.get_by_role("link", name=number)).to_have_attribute("href", link)
    await waiting.get_by_role("button", name="Why waiting?").click()
    why = page.get_by_role("dialog")
    await expect(why.locator("li", has_text=printer["name"])).to_contain_text("part on its bed")
    await why.get_by_role("button", name="Close dialog").click()

    # Clearing the bed lets it print; the printer card follows the job live.
    await page.goto("/#/printers")
    card = page.locator("article", has=page.get_by_role("heading", name=printer["name"], exact=True))
    bed_clear, part_on_bed = card.locator(".bed .ok"), card.locator(".bed .warn-text")
    cleared = card.get_by_role("button", name=f"Bed cleared on {printer['name']}")
    await expect(part_on_bed).to_be_visible()
    await mark_page(page)
    await cleared.click()
    await expect(bed_clear).to_be_visible()
    await expect(part_on_bed).to_be_visible(timeout=LIVE_TIMEOUT)
    await expect(cleared).to_be_enabled(timeout=LIVE_TIMEOUT)
    await assert_not_reloaded(page)
    await cleared.click()
    await expect(bed_clear).to_be_visible()

    # The green check on the order and in the list.
    await page.goto("/#/orders")
    await page.get_by_label("Order number").fill(number)
    row = page.locator("tbody tr", has_text=number)
    await expect(row.get_by_role("img", name="complete")).to_be_visible(timeout=LIVE_TIMEOUT)
    await expect(row).to_contain_text("completed")

    # Bulk close from the Actions menu (with an order that cannot close yet, which is refused).
    open_number = unique("UI-OPEN")
    created = await api.post("/api/v1/orders", json={"order_number": open_number})
    assert created.status_code == 201, created.text
    await page.get_by_label("Order number").fill("UI-")
    await row.get_by_role("checkbox").check()
    await page.locator("tbody tr", has_text=open_number).get_by_role("checkbox").check()
    await page.get_by_role("button", name="Actions ▾").click()
    await page.get_by_role("menuitem", name="Close selected orders").click()
    notice = page.locator(".notice")
    await expect(notice).to_contain_text("Closed 1 order.")
    await expect(notice).to_contain_text(open_number)
    await expect(page.locator("tbody tr", has_text=number)).to_have_count(0)

    # Closed orders are hidden until asked for.
    await page.get_by_label("Order number").fill(number)
    await expect(page.locator("tbody tr.empty")).to_be_visible()
    await page.get_by_label("Show closed orders").check()
    found = page.locator("tbody tr", has_text=number)
    await expect(found).to_contain_text("closed")
    await found.get_by_role("link", name=number).click()
    await expect(page.get_by_role("button", name="Save details")).to_be_disabled()


async def order_id(api: httpx.AsyncClient, number: str) -> str:
    reply = await api.get("/api/v1/orders", params={"q": number, "include_closed": "true"})
    items = reply.json()["items"]
    assert items, f"order {number} not found"
    return str(items[0]["id"])


async def test_queue_tabs_priority_cancel_retry_and_why_waiting(
    page: Page, api: httpx.AsyncClient, part_files: Any
) -> None:
    """Jobs needing a material nobody has loaded stay queued, so the test controls their state."""
    part = await api.post(
        "/api/v1/parts",
        data={"name": "nylon clip", "material_type": "PA-CF"},
        files={"file": ("clip.gcode.3mf", part_files.gcode_3mf(PRINT_MINUTES, "PA-CF"))},
    )
    assert part.status_code == 201, part.text
    sku = await api.post("/api/v1/skus", json={"sku": unique("CLIP"), "name": "Clip",
                                                "parts": [{"part_id": part.json()["id"], "quantity": 1}]})
    assert sku.status_code == 201, sku.text
    number = unique("UI-QUEUE")
    order = await api.post("/api/v1/orders", json={"order_number": number,
                                                   "line_items": [{"sku_id": sku.json()["id"], "quantity": 2}]})
    assert order.status_code == 201, order.text
    sent = await api.post(f"/api/v1/orders/{order.json()['id']}/print-jobs", json={})
    assert sent.status_code == 202, sent.text

    await page.goto("/#/queue")
    await page.get_by_label("Order number").fill(number)
    rows = page.locator("tbody tr", has_text=number)
    await expect(rows).to_have_count(2, timeout=LIVE_TIMEOUT)
    first = rows.first

    await first.get_by_role("button", name="Why waiting?").click()
    why = page.get_by_role("dialog")
    await expect(why).to_contain_text("No printer can take this job right now")
    await expect(why.locator("li").first).to_contain_text("does not hold the material")
    await why.get_by_role("button", name="Close dialog").click()

    # The reload must not overtake the PATCH the choice sends (a navigation abandons a request in flight).
    async with page.expect_response(
        lambda r: r.request.method == "PATCH" and "/api/v1/jobs/" in r.url, timeout=LIVE_TIMEOUT
    ) as patched:
        await first.get_by_role("combobox").select_option("low")
    assert (await patched.value).ok, "the priority change was refused"
    await expect(page.get_by_role("alert")).to_have_count(0)
    await page.reload()
    rows = page.locator("tbody tr", has_text=number)
    await expect(rows).to_have_count(2)
    lows = rows.filter(has=page.locator("option[value=low]:checked"))
    await expect(lows).to_have_count(1)

    await mark_page(page)
    await lows.get_by_role("button", name="Cancel").click()
    await expect(rows).to_have_count(1)
    await page.get_by_role("tab", name="Cancelled").click()
    cancelled = page.locator("tbody tr", has_text=number)
    await expect(cancelled).to_have_count(1)
    await cancelled.get_by_role("button", name="Retry").click()
    await expect(cancelled).to_have_count(0)
    await page.get_by_role("tab", name="Queued").click()
    await expect(page.locator("tbody tr", has_text=number)).to_have_count(2)
    await assert_not_reloaded(page)

    # A job cancelled elsewhere leaves the Queued tab live.
    job = (await api.get("/api/v1/jobs", params={"order_number": number})).json()["items"][0]
    assert (await api.post(f"/api/v1/jobs/{job['id']}/cancel")).status_code == 200
    await expect(page.locator("tbody tr", has_text=number)).to_have_count(1, timeout=LIVE_TIMEOUT)
    await assert_not_reloaded(page)


async def test_upload_a_part_then_create_and_edit_a_sku(page: Page, part_files: Any) -> None:
    part_name = unique("hook")
    code = unique("HOOK")
    await page.goto("/#/skus")
    upload = page.locator("fieldset", has_text="Upload a part")
    await upload.get_by_label("Part file").set_input_files(
        files=FilePayload(name="hook.gcode.3mf", mimeType="application/octet-stream",
                          buffer=part_files.gcode_3mf(PRINT_MINUTES, "PETG"))
    )
    await upload.get_by_label("Part name").fill(part_name)
    await upload.get_by_label("Material type").fill("PETG")
    await upload.get_by_label("Material colour", exact=True).fill("#10A050")
    await upload.get_by_role("button", name="Upload part").click()
    part_row = page.locator("tbody tr", has_text=part_name)
    await expect(part_row).to_contain_text("PETG")
    await expect(part_row.get_by_role("img", name="colour #10A050")).to_be_visible()

    await page.get_by_role("button", name="New SKU").click()
    dialog = page.get_by_role("dialog", name="New SKU")
    await dialog.get_by_label("SKU code").fill(code)
    await dialog.get_by_label("Name", exact=True).fill("Wall hook")
    await dialog.get_by_label("Part", exact=True).select_option(label=f"{part_name} (hook.gcode.3mf)")
    await dialog.get_by_label("Quantity").fill("2")
    await dialog.get_by_role("button", name="Create SKU").click()
    await expect(dialog).to_be_hidden()
    sku_row = page.locator("tbody tr", has_text=code)
    await expect(sku_row).to_contain_text(f"2× {part_name}")

    await sku_row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name=f"Edit SKU {code}")
    await dialog.get_by_label("Name", exact=True).fill("Wall hook, large")
    await dialog.get_by_label("Quantity").fill("3")
    await dialog.get_by_role("button", name="Save SKU").click()
    await expect(dialog).to_be_hidden()
    await expect(sku_row).to_contain_text("Wall hook, large")
    await expect(sku_row).to_contain_text(f"3× {part_name}")


async def test_add_printer_form_shows_problems_next_to_fields(page: Page) -> None:
    name = unique("ui-printer").lower()
    await page.goto("/#/printers")
    await page.get_by_role("button", name="Add printer").click()
    dialog = page.get_by_role("dialog", name="Add a printer")
    await expect(dialog.get_by_label("Access code")).to_have_attribute("type", "password")
    for label in ("Name", "Model", "Protocol", "Host", "MQTT port", "FTPS port", "Serial number", "Access code",
                  "Tags", "FabMatic (clears its own bed)", "CA certificate (PEM, optional)"):
        await expect(dialog.get_by_label(label, exact=True)).to_be_visible()
    await dialog.get_by_label("Name", exact=True).fill(name)
    await dialog.get_by_label("Model").fill("P1S")
    await dialog.get_by_label("Host").fill("127.0.0.1")
    await dialog.get_by_label("MQTT port").fill("70000")
    await dialog.get_by_label("Serial number").fill(uuid.uuid4().hex[:12].upper())
    await dialog.get_by_label("Access code").fill("12345678")
    await dialog.get_by_label("Tags").fill("ui-test, spare")
    await dialog.get_by_role("button", name="Add printer").click()
    port_error = dialog.locator(".field", has=page.get_by_label("MQTT port")).locator(".field-error")
    await expect(port_error).to_be_visible()
    await expect(dialog.get_by_label("MQTT port")).to_have_attribute("aria-invalid", "true")

    await dialog.get_by_label("MQTT port").fill("1")
    await dialog.get_by_role("button", name="Add printer").click()
    await expect(dialog).to_be_hidden()
    card = page.locator("article", has=page.get_by_role("heading", name=name, exact=True))
    await expect(card).to_contain_text("ui-test")
    await expect(card).not_to_contain_text("12345678")


async def test_lost_event_stream_shows_a_banner_and_recovers(page: Page, stack: Any) -> None:
    banner = page.locator("#live-banner")
    await expect(banner).to_be_hidden()
    await mark_page(page)
    restart = asyncio.create_task(stack.restart_service("api_gateway"))
    await expect(banner).to_be_visible(timeout=LIVE_TIMEOUT)
    await expect(page.locator("#live-state")).to_have_text("Offline")
    await restart
    await expect(banner).to_be_hidden(timeout=LIVE_TIMEOUT)
    await expect(page.locator("#live-state")).to_have_text("Live")
    await assert_not_reloaded(page)


async def test_a_dead_letter_shows_in_the_header_and_is_replayed_from_its_page(
    page: Page, stack: Any, screenshots: Path
) -> None:
    import nats

    from contracts.envelope import Envelope
    from contracts.orders.v1 import OrderCancelled

    message_id = str(uuid.uuid4())
    poison = Envelope(id=message_id, type=OrderCancelled.SUBJECT, source="/tests/browser", data={"nonsense": 1})
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().publish(
            OrderCancelled.SUBJECT, poison.model_dump_json().encode(), headers={"Nats-Msg-Id": message_id}
        )
    finally:
        await nc.close()

    badge = page.locator("#dead-letters")

    async def listed() -> bool:
        await page.reload()
        await expect(page.get_by_role("heading").first).to_be_visible()
        return await page.locator(f'tr[data-message-id="{message_id}"]').count() > 0

    await page.goto("/#/dead-letters")
    await wait_until(listed, 30, "the dead letter to show on the page", interval=0.5)
    await expect(badge).to_be_visible()
    await expect(badge).to_contain_text("dead letter")
    row = page.locator(f'tr[data-message-id="{message_id}"]')
    await expect(row).to_contain_text("queue__order_cancelled")
    await expect(row).to_contain_text("undecodable")
    await page.screenshot(path=str(screenshots / "dead-letters-1280x800.png"), full_page=True)

    await row.get_by_role("button", name=f"Replay {message_id}").click()
    await page.get_by_role("dialog", name="Replay this message?").get_by_role("button", name="Replay").click()
    await expect(page.get_by_role("status").filter(has_text=f"Replayed {message_id}")).to_be_visible()


async def test_an_edit_goes_through_progress_made_meanwhile_and_stops_at_a_real_conflict(
    page: Page, part_files: Any, api: httpx.AsyncClient
) -> None:
    """The order's revision moves with the queue's progress (job counts, estimates) as well as with edits:
    a parameter edit sent on a revision that only progress has overtaken is saved; one that someone else's
    edit has overtaken is not, and the page shows what they changed."""
    part = await api.post("/api/v1/parts", files={"file": ("box.scad", part_files.scad_box)},
                          data={"name": unique("box"), "material_type": "PLA"})
    assert part.status_code == 201, part.text
    sku = await api.post("/api/v1/skus", json={
        "sku": unique("BOX"), "name": "Parametric box",
        "parts": [{"part_id": part.json()["id"], "quantity": 1, "sku_params": ["label"]}],
    })
    assert sku.status_code == 201, sku.text
    order = await api.post("/api/v1/orders", json={
        "order_number": unique("UI-CONFLICT"),
        "line_items": [{"sku_id": sku.json()["id"], "quantity": 1, "parameters": {"label": "Ada"}}],
    })
    assert order.status_code == 201, order.text
    order_id, line_id = order.json()["id"], order.json()["line_items"][0]["id"]
    line_url = f"/api/v1/orders/{order_id}/line-items/{line_id}"

    # No live stream: the page keeps the revision it loaded, as it would between an event and its refresh.
    await page.context.route("**/api/v1/events*", lambda route: route.abort())
    await page.goto(f"/#/orders/{order_id}")
    await page.reload()
    row = page.locator("tr.line")
    await expect(row.locator("ul.params")).to_have_text("label: Ada")

    # The revision moves twice, the order ends as it was (what the queue's counts do to it).
    for quantity in (2, 1):
        assert (await api.patch(line_url, json={"quantity": quantity})).status_code == 200

    async def edit_label(value: str) -> None:
        await row.get_by_role("button", name="Parameters").click()
        dialog = page.get_by_role("dialog", name=re.compile("^Parameters of "))
        await dialog.get_by_label("label").fill(value)
        await dialog.get_by_role("button", name="Save parameters").click()

    await edit_label("Grace")
    await expect(page.get_by_role("dialog")).to_be_hidden()
    await expect(row.locator("ul.params")).to_have_text("label: Grace")
    assert (await api.get(f"/api/v1/orders/{order_id}")).json()["line_items"][0]["parameters"] == {"label": "Grace"}

    # Someone else sets the same line meanwhile: the page says so, shows their value and saves nothing.
    assert (await api.patch(line_url, json={"parameters": {"label": "Zed"}})).status_code == 200
    await edit_label("Hopper")
    await expect(page.get_by_role("alert").filter(has_text="Someone changed this order meanwhile")).to_be_visible()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await expect(row.locator("ul.params")).to_have_text("label: Zed")
    assert (await api.get(f"/api/v1/orders/{order_id}")).json()["line_items"][0]["parameters"] == {"label": "Zed"}
    await page.get_by_role("dialog").get_by_role("button", name="Save parameters").click()
    await expect(page.get_by_role("dialog")).to_be_hidden()
    await expect(row.locator("ul.params")).to_have_text("label: Hopper")
