"""Farm analytics through the API gateway after a simulated day of printing: the queue's job figures
(completed, failed and why, grams of PLA, queue wait, the order's click-to-complete time) and the printer
gateway's utilisation (printing time recorded from the printers' state changes)."""

from __future__ import annotations

import httpx
import pytest

from .farm_day import FarmDay

pytestmark = pytest.mark.integration


async def test_a_day_of_printing_shows_in_the_job_and_printer_analytics(
    api: httpx.AsyncClient, farm_day: FarmDay
) -> None:
    day = farm_day

    jobs = await api.get("/api/v1/analytics/jobs", params={"period": "24h"})
    assert jobs.status_code == 200, jobs.text
    figures = jobs.json()
    assert figures["bucket"] == "hour" and len(figures["series"]) == 25
    assert figures["completed"] >= day.jobs and figures["failed"] >= 1
    assert sum(b["completed"] for b in figures["series"]) == figures["completed"]
    assert figures["grams"]["PLA"] >= day.jobs * day.grams_per_job
    assert any(r["count"] >= 1 and r["reason"] for r in figures["failure_reasons"])
    assert figures["queue_wait"]["jobs"] >= day.jobs and figures["queue_wait"]["average_seconds"] > 0
    [ours] = [o for o in figures["orders"] if o["order_id"] == day.completed_order_id]
    assert ours["order_number"] == day.completed_order_number and ours["seconds"] > 0
    assert figures["average_click_to_complete_seconds"] > 0

    week = (await api.get("/api/v1/analytics/jobs", params={"period": "7d"})).json()
    assert week["bucket"] == "day" and week["completed"] >= figures["completed"]

    printers = await api.get("/api/v1/analytics/printers", params={"period": "24h"})
    assert printers.status_code == 200, printers.text
    busy = [p for p in printers.json()["printers"] if p["seconds"]["printing"] > 0]
    assert len(busy) >= 2, printers.json()
    assert all(0 < p["utilisation_percent"] <= 100 for p in busy)
    assert any(p["seconds"]["idle"] > 0 for p in printers.json()["printers"])

    for path in ("/api/v1/analytics/jobs", "/api/v1/analytics/printers"):
        bad = await api.get(path, params={"period": "1y"})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json", bad.text
        assert bad.json()["errors"][0]["field"] == "period"
