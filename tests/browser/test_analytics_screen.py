"""The analytics screen after a simulated day of printing on the time-scaled fleet: at 1280×800 and
390×844 its charts are drawn with data (jobs per hour, filament by material, printer utilisation, failure
reasons, click-to-complete), the page fits, its controls are labelled and axe-core finds nothing serious;
the screenshots go to screenshots/."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (dev dependency playwright>=1.49)")

from playwright.async_api import Page, ViewportSize, expect

from ..integration.farm_day import FarmDay
from .test_operator_screens import check_screen

pytestmark = pytest.mark.integration

CHARTS = (
    "Jobs completed and failed per hour",
    "Filament used per hour by material",
    "Printer utilisation (time in each state, % printing)",
    "Why jobs failed",
    "Click to complete",
)


async def drawn_bars(page: Page, caption: str) -> int:
    figure = page.locator("figure.chart").filter(has=page.locator("figcaption", has_text=caption))
    await expect(figure).to_have_attribute("data-empty", "false")
    count: int = await figure.locator("svg rect.bar").evaluate_all(
        "(bars) => bars.filter((b) => b.getBBox().width > 0 && b.getBBox().height > 0).length"
    )
    return count


async def test_the_analytics_screen_draws_a_day_of_printing_at_both_sizes(
    farm_day: FarmDay,
    open_page: Callable[..., Awaitable[Page]],
    viewports: dict[str, ViewportSize],
    screenshots: Path,
) -> None:
    day = farm_day

    for size in ("desktop", "phone"):
        viewport = viewports[size]
        label = f"{viewport['width']}x{viewport['height']}"
        page = await open_page(viewport)
        await page.get_by_role("link", name="Analytics").click()
        await expect(page.get_by_role("heading", name="Farm analytics")).to_be_visible()
        await expect(page.locator("figure.chart")).to_have_count(len(CHARTS))
        for caption in CHARTS:
            assert await drawn_bars(page, caption) >= 1, f"{caption} at {label} has no bar drawn"
        assert await drawn_bars(page, "Jobs completed and failed per hour") >= 2, "completed and failed bars"
        utilisation = page.get_by_role("img", name="Printer utilisation (time in each state, % printing)")
        await expect(utilisation).to_be_visible()
        await expect(page.locator(".stats")).to_contain_text("Jobs completed")
        await expect(page.get_by_role("table", name="Click to complete", exact=False)).to_contain_text(
            day.completed_order_number
        )
        await check_screen(page, "analytics", label, viewport["width"], screenshots)

    await page.get_by_label("Period").select_option("7d")
    await expect(page).to_have_url(re.compile(r"#/analytics\?period=7d$"))
    await expect(page.locator("figure.chart figcaption").first).to_have_text("Jobs completed and failed per day")
    assert await drawn_bars(page, "Jobs completed and failed per day") >= 1
