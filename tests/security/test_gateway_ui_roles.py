"""The web UI shows each role only what it may do (issue 13): viewers get no write buttons, operators no
printer administration; the gateway refuses the rest anyway. Real Chromium against the stack."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devstack import Stack

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
CHROMIUM = shutil.which("chromium")


@pytest.fixture
async def page_as(stack: Stack, api: httpx.AsyncClient) -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Chromium not installed (make test installs it as root on Debian)")
    from playwright.async_api import async_playwright, expect

    usernames: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])

        async def signed_in(role: str) -> Any:
            username = f"{role}-{uuid.uuid4().hex[:6]}"
            usernames.append(username)
            created = await api.post("/api/v1/users", json={"username": username, "role": role, "password": PASSWORD})
            assert created.status_code == 201, created.text
            page = await (await browser.new_context(base_url=stack.api_url)).new_page()
            await page.goto("/#/orders")
            await page.get_by_label("Username").fill(username)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible(timeout=15_000)
            return page

        signed_in.usernames = usernames  # type: ignore[attr-defined]
        try:
            yield signed_in
        finally:
            await browser.close()


async def test_a_viewer_sees_no_write_actions(page_as: Any) -> None:
    from playwright.async_api import expect

    page = await page_as("viewer")
    await expect(page.get_by_role("button", name="New order")).to_be_hidden()
    await page.goto("/#/printers")
    await expect(page.get_by_role("heading", name="Printers", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Add printer")).to_be_hidden()
    await page.goto("/#/skus")
    await expect(page.get_by_role("heading", name="SKUs and parts")).to_be_visible()
    await expect(page.get_by_role("button", name="New SKU")).to_be_hidden()


async def test_an_operator_runs_the_farm_but_does_not_add_printers(page_as: Any) -> None:
    from playwright.async_api import expect

    page = await page_as("operator")
    await expect(page.get_by_role("button", name="New order")).to_be_visible()
    await page.goto("/#/printers")
    await expect(page.get_by_role("heading", name="Printers", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Add printer")).to_be_hidden()


async def test_anyone_changes_their_own_password_in_the_ui(page_as: Any, stack: Stack) -> None:
    from playwright.async_api import expect

    page = await page_as("viewer")
    await page.get_by_role("button", name="Password").click()
    dialog = page.get_by_role("dialog", name="Change your password")
    await dialog.get_by_label("Current password").fill(PASSWORD)
    await dialog.get_by_label("New password").fill("another long password")
    await dialog.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Password changed.")).to_be_visible()
    async with httpx.AsyncClient(base_url=stack.api_url, trust_env=False) as client:
        username = page_as.usernames[-1]
        old = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        new = await client.post("/api/v1/auth/login", json={"username": username, "password": "another long password"})
    assert (old.status_code, new.status_code) == (401, 200)
