"""Prometheus metrics: the plumbing's own (HTTP, consumers, outbox, inbox, dead letters) in one registry
per service, which each service extends with its domain metrics, served at `GET /metrics`.

Counters and histograms are updated where things happen; gauges that describe stored state (the outbox
backlog, jobs by status, printers by state) are read from the database when Prometheus scrapes, by the
refreshers registered with `on_scrape`, so they are right on every replica without bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

Refresher = Callable[[], Awaitable[None]]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REFRESH_TIMEOUT_SECONDS = 5.0
"""A scrape must answer even when the database does not: a refresher that hangs is skipped."""


class ServiceMetrics:
    """The metrics every service has. Services declare theirs with `counter`/`gauge`/`histogram`."""

    def __init__(self, service: str, instance: str) -> None:
        self.service, self.instance = service, instance
        self.registry = CollectorRegistry(auto_describe=True)
        Info("printfarm_service", "Which service and instance this process is.", registry=self.registry).info(
            {"service": service, "instance": instance}
        )
        self.http_requests = self.counter(
            "printfarm_http_requests_total", "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
        )
        self.http_duration = self.histogram(
            "printfarm_http_request_duration_seconds", "Time to answer an HTTP request (to the response head).",
            ["method", "route"],
        )
        self.deliveries = self.counter(
            "printfarm_consumer_deliveries_total",
            "Messages delivered to a durable consumer, by outcome: applied, duplicate (inbox), retry, dead_letter.",
            ["durable", "outcome"],
        )
        self.redeliveries = self.counter(
            "printfarm_consumer_redeliveries_total", "Deliveries that were not a message's first.", ["durable"]
        )
        self.handler_duration = self.histogram(
            "printfarm_consumer_handler_duration_seconds",
            "Time from delivery to commit of one message, per durable consumer.", ["durable"],
        )
        self.consumer_pending = self.gauge(
            "printfarm_consumer_pending_messages", "Messages in the stream a durable consumer has not been given yet.",
            ["durable"],
        )
        self.consumer_ack_pending = self.gauge(
            "printfarm_consumer_ack_pending_messages", "Messages a durable consumer was given and has not acked.",
            ["durable"],
        )
        self.inbox_duplicates = self.counter(
            "printfarm_inbox_duplicates_total", "Deliveries skipped because the inbox had applied them already.",
            ["durable"],
        )
        self.dead_letters = self.counter(
            "printfarm_dead_letters_total", "Messages given up on and published to the dead-letter stream.",
            ["durable"],
        )
        self.outbox_published = self.counter(
            "printfarm_outbox_published_total", "Outbox rows published to JetStream by this process's relay."
        )
        self.outbox_publish_failures = self.counter(
            "printfarm_outbox_publish_failures_total", "Outbox publishes that failed and stay for a later pass."
        )
        self.outbox_backlog = self.gauge(
            "printfarm_outbox_backlog", "Outbox rows not yet published (the service's whole table, all replicas)."
        )
        self.outbox_oldest_age = self.gauge(
            "printfarm_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row; 0 if none."
        )
        self.scrape_refresh_failures = self.counter(
            "printfarm_metrics_refresh_failures_total", "Scrapes where a state gauge could not be read.", ["gauge"]
        )
        self._refreshers: list[tuple[str, Refresher]] = []

    def counter(self, name: str, doc: str, labels: list[str] | None = None) -> Counter:
        return Counter(name, doc, labels or [], registry=self.registry)

    def gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return Gauge(name, doc, labels or [], registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: list[str] | None = None, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(name, doc, labels or [], registry=self.registry, buckets=buckets)

    def on_scrape(self, name: str, refresh: Refresher) -> None:
        """Run `refresh` (setting gauges from stored state) before each exposition."""
        self._refreshers.append((name, refresh))

    async def exposition(self) -> bytes:
        for name, refresh in self._refreshers:
            try:
                await asyncio.wait_for(refresh(), timeout=REFRESH_TIMEOUT_SECONDS)
            except Exception as exc:
                self.scrape_refresh_failures.labels(name).inc()
                log.warning("metrics refresh %s failed: %r", name, exc)
        return generate_latest(self.registry)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(await self.exposition(), media_type=CONTENT_TYPE_LATEST)

        return router


def set_labelled(gauge: Gauge, values: dict[tuple[str, ...], float], known: set[tuple[str, ...]]) -> None:
    """Set a labelled gauge from a fresh reading; label sets seen before and missing now go to 0."""
    for labels in known | set(values):
        gauge.labels(*labels).set(values.get(labels, 0.0))
    known.update(values)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template (never the raw path: ids would explode
    the label set); requests no route matched are `<unmatched>`."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        timed = False

        def observe() -> None:
            route = _route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.http_requests.labels(method, route, str(status)).inc()

        async def send_observed(message: Message) -> None:
            nonlocal status, timed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                timed = True
                observe()
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if not timed:
                observe()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "<unmatched>"
