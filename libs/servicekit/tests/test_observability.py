"""The plumbing of issue 14 without I/O: metrics by route template, scrape-time gauges, trace context in
envelopes and log lines, and the sampler that keeps polling out of the traces."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest

from contracts.envelope import Envelope
from contracts.queue.v1 import StopPrint
from servicekit.database import inbox_table, outbox_table
from servicekit.logging import JsonLines, RedactSecrets, correlation_id
from servicekit.metrics import HttpMetricsMiddleware, ServiceMetrics, set_labelled
from servicekit.outbox import Outbox
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.testing import wait_until
from servicekit.tracing import _NoOrphanClientSpans, context_from, current_traceparent

tracer = TracerProvider().get_tracer("test")


def exposition(metrics: ServiceMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_http_requests_are_counted_by_route_template_and_status() -> None:
    metrics = ServiceMetrics("orders", "orders-1")
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.include_router(metrics.router())
    client = TestClient(app)
    for order_id in ("a", "b", "c"):
        assert client.get(f"/orders/{order_id}").status_code == 200
    assert client.get("/nowhere/42").status_code == 404
    text = client.get("/metrics").text
    assert 'printfarm_http_requests_total{method="GET",route="/orders/{order_id}",status="200"} 3.0' in text
    assert 'printfarm_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert 'printfarm_http_request_duration_seconds_count{method="GET",route="/orders/{order_id}"} 3.0' in text
    assert "/orders/a" not in text, "raw paths would make one series per id"
    assert 'printfarm_service_info{instance="orders-1",service="orders"} 1.0' in text


def test_a_failing_refresher_does_not_fail_the_scrape() -> None:
    metrics = ServiceMetrics("queue", "queue-1")
    gauge = metrics.gauge("printfarm_test_value", "a value read at scrape time")

    async def broken() -> None:
        raise ConnectionError("database down")

    async def fine() -> None:
        gauge.set(7)

    metrics.on_scrape("broken", broken)
    metrics.on_scrape("fine", fine)
    text = asyncio.run(metrics.exposition()).decode()
    assert "printfarm_test_value 7.0" in text
    assert 'printfarm_metrics_refresh_failures_total{gauge="broken"} 1.0' in text


def test_labelled_gauges_drop_to_zero_when_a_label_set_disappears() -> None:
    metrics = ServiceMetrics("queue", "queue-1")
    jobs = metrics.gauge("printfarm_test_jobs", "jobs by status", ["status"])
    seen: set[tuple[str, ...]] = set()
    set_labelled(jobs, {("queued",): 3.0, ("printing",): 1.0}, seen)
    set_labelled(jobs, {("printing",): 2.0}, seen)
    text = exposition(metrics)
    assert 'printfarm_test_jobs{status="queued"} 0.0' in text
    assert 'printfarm_test_jobs{status="printing"} 2.0' in text


def test_an_envelope_carries_the_current_trace_context() -> None:
    outbox = Outbox(sa.Table("outbox", sa.MetaData()), source="/services/queue")
    stop = StopPrint(command_id="c1", job_id="j1", printer_id="p1", issued_at=datetime.now(UTC))
    with tracer.start_as_current_span("request") as span:
        envelope = outbox.envelope(stop)
        ctx = span.get_span_context()
    assert envelope.traceparent == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert Envelope.model_validate_json(envelope.model_dump_json()).traceparent == envelope.traceparent
    assert outbox.envelope(stop).traceparent is None, "outside a trace there is nothing to carry"


@given(trace_id=st.integers(1, 2**128 - 1), span_id=st.integers(1, 2**64 - 1))
def test_a_traceparent_round_trips(trace_id: int, span_id: int) -> None:
    traceparent = f"00-{trace_id:032x}-{span_id:016x}-01"
    ctx = context_from(traceparent)
    assert ctx is not None
    with tracer.start_as_current_span("child", context=ctx) as child:
        assert child.get_span_context().trace_id == trace_id
        assert child.parent is not None and child.parent.span_id == span_id
        assert current_traceparent() == f"00-{trace_id:032x}-{child.get_span_context().span_id:016x}-01"


@given(st.text(max_size=80))
def test_a_malformed_traceparent_starts_a_new_trace_instead_of_failing(raw: str) -> None:
    ctx = context_from(raw)
    if ctx is not None:
        assert trace.get_current_span(ctx).get_span_context().is_valid


def test_polling_outside_any_trace_is_not_sampled_but_requests_are() -> None:
    sampler = ParentBased(root=_NoOrphanClientSpans())
    assert sampler.should_sample(None, 1, "SELECT", kind=SpanKind.CLIENT).decision == Decision.DROP
    assert sampler.should_sample(None, 1, "POST /x", kind=SpanKind.SERVER).decision == Decision.RECORD_AND_SAMPLE
    with tracer.start_as_current_span("request"):
        inside = sampler.should_sample(context.get_current(), 1, "SELECT", kind=SpanKind.CLIENT)
    assert inside.decision == Decision.RECORD_AND_SAMPLE, "a statement inside a request belongs to its trace"


def test_json_log_lines_carry_trace_correlation_service_and_instance() -> None:
    formatter = JsonLines("queue", "queue-2")
    record = logging.LogRecord("printqueue", logging.INFO, __file__, 1, "dispatched %s", ("job-1",), None)
    token = correlation_id.set("corr-1")
    try:
        with tracer.start_as_current_span("handler") as span:
            line = json.loads(formatter.format(record))
            trace_id = f"{span.get_span_context().trace_id:032x}"
    finally:
        correlation_id.reset(token)
    assert line["message"] == "dispatched job-1" and line["level"] == "INFO"
    assert line["service"] == "queue" and line["instance"] == "queue-2"
    assert line["trace_id"] == trace_id and line["correlationid"] == "corr-1"
    plain = json.loads(formatter.format(record))
    assert "trace_id" not in plain and "correlationid" not in plain


def test_json_log_lines_keep_secrets_out() -> None:
    formatter = JsonLines("printer-gateway", "printer-gateway-1")
    record = logging.LogRecord("gw", logging.WARNING, __file__, 1, "login with access_code=%s", ("12345678",), None)
    assert RedactSecrets().filter(record)
    assert "12345678" not in formatter.format(record)



async def test_a_separate_metrics_port_takes_metrics_off_the_public_port() -> None:
    port = _free_port()
    settings = ServiceSettings(metrics_port=port, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    metadata = sa.MetaData()
    runtime = ServiceRuntime("api-gateway", settings, outbox_table(metadata), inbox_table(metadata))
    app = runtime.create_app(title="t", routers=[])
    assert "/metrics" not in {getattr(r, "path", "") for r in app.routes}
    started = runtime._start_metrics_listener()
    assert started is not None
    server, task = started
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            await wait_until(lambda: server.started, 5, "the metrics listener to start")
            reply = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert reply.status_code == 200
        assert 'printfarm_service_info{instance="api-gateway",service="api-gateway"} 1.0' in reply.text
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await runtime.engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
