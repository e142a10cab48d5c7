"""Browser tests: the operator's web UI in real headless Chromium (Playwright) against the whole stack.

The stack is the session's one `stack` fixture (tests/conftest.py: devstack on free ports). Chromium is the
system's (`apt-get install chromium`); Playwright never downloads a browser here. Without Chromium or
the `playwright` package the tests are skipped, saying which one is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..integration.sliced_files import gcode_3mf

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXPECT_TIMEOUT_MS = 15_000
"""Generous: CI runs these beside the integration tests' stack on two cores."""
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip (never fail) the browser tests on a machine without Chromium or Playwright, and say which."""
    reason = None
    if importlib.util.find_spec("playwright") is None:
        reason = "the playwright package is not installed (dev dependency playwright>=1.49)"
    elif not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def admin(stack: Any) -> dict[str, str]:
    """The first admin's username and password, as the gateway wrote them into its data folder."""
    credentials: dict[str, str] = json.loads((stack.data_dir / "api_gateway" / "first-admin.json").read_text())
    return credentials


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


async def sign_in(page: Page, base_url: str, admin: dict[str, str]) -> None:
    """Through the login page, the way an operator does."""
    from playwright.async_api import expect

    await page.goto(f"{base_url}/#/orders")
    await expect(page.get_by_role("heading", name="Sign in to printfarm")).to_be_visible()
    await page.get_by_label("Username").fill(admin["username"])
    await page.get_by_label("Password").fill(admin["password"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    await expect(page.locator("#live-state")).to_have_text("Live")


OpenPage = Callable[..., Awaitable["Page"]]


@pytest.fixture
async def open_page(browser: Browser, stack: Any, admin: dict[str, str]) -> AsyncIterator[OpenPage]:
    """`await open_page(viewport, signed_in=True)`: a fresh browser context; page errors fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def opener(viewport: ViewportSize = DESKTOP, *, signed_in: bool = True) -> Page:
        context = await browser.new_context(viewport=viewport, base_url=stack.api_url)
        contexts.append(context)
        opened = await context.new_page()
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.on(
            "console",
            lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
        )
        if signed_in:
            await sign_in(opened, stack.api_url, admin)
        return opened

    try:
        yield opener
    finally:
        for context in contexts:
            await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
async def page(open_page: OpenPage) -> Page:
    """A signed-in operator at 1280×800."""
    return await open_page(DESKTOP)


@pytest.fixture(scope="session")
def viewports() -> dict[str, ViewportSize]:
    return {"desktop": DESKTOP, "phone": PHONE}


def _gcode_3mf(minutes: int, filament: str) -> bytes:
    """A sliced project the simulator prints in `minutes` of simulated time, 6 g of filament."""
    return gcode_3mf(minutes=minutes, grams=6.0, filament=filament)


SCAD_BOX = b"""/* [Size] */
// Width in millimetres
width = 20; // [10:5:50]
// Surface finish
finish = "matte"; // [matte, glossy, satin]
/* [Options] */
// Hollow inside
hollow = false;
// Engraved label
label = "hello";
module box() { cube([width, width, 5]); }
box();
"""


@pytest.fixture(scope="session")
def part_files() -> PartFiles:
    return PartFiles(gcode_3mf=_gcode_3mf, scad_box=SCAD_BOX)


@dataclass(frozen=True)
class PartFiles:
    """Part files the tests upload, made in the test (no binary fixtures)."""

    gcode_3mf: Callable[[int, str], bytes]
    scad_box: bytes
