"""Issue 14: every service serves Prometheus metrics that move as an order is printed, and one print-jobs
click is one connected trace from the API gateway through orders, the queue's reconciliation and dispatch,
to the printer gateway's FTPS upload and `project_file` (spans exported by OTLP to the session's collector)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
SERVICES = ("skus", "orders", "queue", "printer_gateway", "api_gateway")


async def scrape(stack: Stack, service: str) -> dict[str, float]:
    """Parse the exposition into `name{labels}` → value (the text format, read as Prometheus reads it)."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        reply = await client.get(stack.service_url(service) + "/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for line in reply.text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{.*\}})?$")
    found = 0.0
    for key, value in samples.items():
        if pattern.match(key) and all(f'{k}="{v}"' in key for k, v in labels.items()):
            found += value
    return found


@pytest.fixture
async def placed(api: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """The orders a test placed, cancelled when it ends: a job of theirs still waiting would take the printer
    (the only one holding that material) from the tests that follow."""
    order_ids: list[str] = []
    try:
        yield order_ids
    finally:
        for order_id in order_ids:
            cancelled = await api.post(f"/api/v1/orders/{order_id}/cancel")
            assert cancelled.status_code in (200, 409), cancelled.text


async def place_order_and_click(api: httpx.AsyncClient, wait_until: Wait, placed: list[str]) -> str:
    """A two-job order of the material the fewest online printers hold, and one print-jobs click."""

    async def online() -> list[dict[str, Any]] | None:
        printers = (await api.get("/api/v1/printers?limit=500")).json()["items"]
        return printers if len([p for p in printers if p["online"] and p["materials"]]) >= 4 else None

    printers = await wait_until(online, 60, "the simulated fleet to be online")
    holders: dict[str, int] = {}
    for p in printers:
        for m in p["materials"]:
            holders[m["type"].upper()] = holders.get(m["type"].upper(), 0) + 1
    material = min(holders, key=lambda t: holders[t])
    part = await api.post(
        "/api/v1/parts",
        files={"file": ("traced.gcode.3mf", gcode_3mf(filament=material), "application/octet-stream")},
        data={"name": f"Traced {uuid.uuid4().hex[:6]}", "material_type": material},
    )
    assert part.status_code == 201, part.text
    sku = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"OBS-{uuid.uuid4().hex[:8]}",
            "name": "Traced",
            "parts": [{"part_id": part.json()["id"], "quantity": 1}],
        },
    )
    assert sku.status_code == 201, sku.text
    order = await api.post(
        "/api/v1/orders",
        json={
            "order_number": f"OBS-{uuid.uuid4().hex[:6]}",
            "line_items": [{"sku_id": sku.json()["id"], "quantity": 2}],
        },
    )
    assert order.status_code == 201, order.text
    order_id: str = order.json()["id"]
    placed.append(order_id)
    click = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": {"mode": "next_available"}})
    assert click.status_code == 202, click.text
    return order_id


async def clear_beds(api: httpx.AsyncClient) -> None:
    for p in (await api.get("/api/v1/printers?limit=500")).json()["items"]:
        if p["bed_clear"] is False and p["state"] in ("finished", "idle") and not p["current_job_id"]:
            await api.post(f"/api/v1/printers/{p['id']}/bed-cleared")


async def test_metrics_move_as_an_order_is_printed(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait, placed: list[str]
) -> None:
    before = {service: await scrape(stack, service) for service in SERVICES}
    for service, samples in before.items():
        assert total(samples, "printfarm_service_info") == 1, service
        assert "printfarm_outbox_backlog" in samples, service
        assert "printfarm_outbox_oldest_unpublished_age_seconds" in samples, service
    assert total(before["printer_gateway"], "printfarm_printer_gateway_leases") >= 1
    assert total(before["printer_gateway"], "printfarm_printers", online="true") >= 4

    order_id = await place_order_and_click(api, wait_until, placed)

    async def dispatched() -> dict[str, float] | None:
        await clear_beds(api)
        now = await scrape(stack, "queue")
        grown = total(now, "printfarm_queue_jobs_dispatched_total") - total(
            before["queue"], "printfarm_queue_jobs_dispatched_total"
        )
        return now if grown >= 2 else None

    queue = await wait_until(dispatched, 180, f"the queue to dispatch order {order_id}'s two jobs")
    assert total(queue, "printfarm_queue_jobs", status="queued") >= 0
    assert total(queue, "printfarm_queue_matching_pass_duration_seconds_count", kind="full") > total(
        before["queue"], "printfarm_queue_matching_pass_duration_seconds_count", kind="full"
    )
    durable = "queue__print_requested"
    applied = total(queue, "printfarm_consumer_deliveries_total", outcome="applied")
    assert applied > total(before["queue"], "printfarm_consumer_deliveries_total", outcome="applied")
    assert any(durable in key for key in queue if key.startswith("printfarm_consumer_handler_duration_seconds")), (
        "handler latency is recorded per durable consumer"
    )
    assert f'printfarm_consumer_pending_messages{{durable="{durable}"}}' in queue, (
        "JetStream lag per durable", {k: v for k, v in queue.items() if "refresh" in k or "pending" in k}
    )

    orders = await scrape(stack, "orders")
    route = 'route="/api/v1/orders/{order_id}/print-jobs"'
    clicks = [v for k, v in orders.items() if k.startswith("printfarm_http_requests_total") and route in k]
    assert clicks and sum(clicks) >= 1, "HTTP requests are counted by route template, not by raw path"
    published = "printfarm_outbox_published_total"
    assert total(orders, published) > total(before["orders"], published)

    gateway = await scrape(stack, "api_gateway")
    assert total(gateway, "printfarm_http_requests_total", status="202") > total(
        before["api_gateway"], "printfarm_http_requests_total", status="202"
    )
    assert total(gateway, "printfarm_http_request_duration_seconds_count") > 0


async def test_one_click_is_one_trace_across_the_services(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait, span_collector: Any, placed: list[str]
) -> None:
    order_id = await place_order_and_click(api, wait_until, placed)

    def uploads_of_this_order() -> list[dict[str, Any]]:
        return [
            s for s in span_collector.snapshot()
            if s["name"] == "printer dispatch" and str(s["attributes"].get("printfarm.job_id", "")) in job_ids
        ]

    job_ids: set[str] = set()

    async def dispatched_and_exported() -> list[dict[str, Any]] | None:
        await clear_beds(api)
        jobs = (await api.get(f"/api/v1/jobs?order_id={order_id}&limit=50")).json()["items"]
        job_ids.update(j["id"] for j in jobs)
        found = uploads_of_this_order()
        return found or None

    first = (await wait_until(dispatched_and_exported, 180, "a job of the order to reach a printer, traced"))[0]
    trace_id = first["trace_id"]

    def whole_trace() -> list[dict[str, Any]] | None:
        spans = [s for s in span_collector.snapshot() if s["trace_id"] == trace_id]
        names = {s["name"] for s in spans}
        wanted = {"ftps upload", "mqtt project_file", "queue dispatch", "process orders.v1.order.print_requested"}
        # A parent ends after its children, so it may reach the collector in a later batch: wait for it too.
        ids = {s["span_id"] for s in spans}
        parents_in = all(s["parent_span_id"] in ids for s in spans if s["parent_span_id"])
        whole = wanted <= names and any(s["service"] == "api-gateway" for s in spans) and parents_in
        return spans if whole else None

    spans = await wait_until(whole_trace, 60, "every service's spans of the click to be exported")
    services = {s["service"] for s in spans}
    assert {"api-gateway", "orders", "queue", "printer-gateway"} <= services, services

    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if not s["parent_span_id"]]
    assert len(roots) == 1, f"one root, not {[r['name'] for r in roots]}"
    root = roots[0]
    assert root["service"] == "api-gateway" and root["name"].startswith("POST"), root
    # This failed about 1 run in 10 while a request sent right after another on the same connection could
    # inherit its span (the order's creation became the root): fixed in servicekit.runtime, held by
    # libs/servicekit/tests/test_request_context.py. The message names every span should it fail again.
    assert any(f"/orders/{order_id}/print-jobs" in str(v) for v in root["attributes"].values()), (
        # A string, not a tuple: pytest shortens a tuple's repr.
        f"root {root['name']!r} {json.dumps(root['attributes'], default=str)}; spans: "
        + "; ".join(f"{s['service']}: {s['name']} {json.dumps(s['attributes'], default=str)[:300]}" for s in spans)
    )
    orphans = [s["name"] for s in spans if s["parent_span_id"] and s["parent_span_id"] not in ids]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"

    by_id = {s["span_id"]: s for s in spans}

    def ancestry(span: dict[str, Any]) -> list[str]:
        chain = []
        while span["parent_span_id"]:
            span = by_id[span["parent_span_id"]]
            chain.append(span["service"])
        return chain

    upload = next(s for s in spans if s["name"] == "ftps upload")
    assert {"printer-gateway", "queue", "orders", "api-gateway"} <= set(ancestry(upload)), (
        "the upload descends from the click through every service"
    )
