"""Cross-service and browser tests share one whole stack per session: real PostgreSQL, NATS JetStream,
the printer simulator and every service, started by ``devstack`` on free ports in a temp folder.

``NATS_URL`` / ``DATABASE_URL`` (and ``<SERVICE>_DATABASE_URL``) point the stack at servers that
already run instead of the embedded ones; ``DEVSTACK_KEEP=1`` keeps the folder (logs) afterwards.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from devstack import Stack, StackConfig
from devstack import wait_until as _wait_until

from .integration.farm_day import FarmDay, print_a_day

SESSION_STACK = "stack"
"""The fixture that starts the session's whole stack: the tests that use it run in one pytest process."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--session-stack",
        choices=("only", "without"),
        help="run only the tests that use the session's stack, or only the others: `make test` runs the two "
        "sets in two pytest processes at once (one session stack in all, the other tests beside it)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect by `--session-stack`: a test belongs to the stack's set when it asks for it (through any fixture)."""
    wanted = config.getoption("--session-stack")
    if wanted is None:
        return
    keep, dropped = [], []
    for item in items:
        uses_stack = SESSION_STACK in getattr(item, "fixturenames", ())
        (keep if uses_stack == (wanted == "only") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class SpanCollector:
    """A tiny OTLP/HTTP trace receiver on loopback: the services export their spans here exactly as they would
    to an OpenTelemetry Collector in production (protobuf `ExportTraceServiceRequest` on `/v1/traces`)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        collector = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.receive(body)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-collector", daemon=True)
        self._thread.start()

    def receive(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "service": resource.get("service.name"),
                            "instance": resource.get("service.instance.id"),
                            "attributes": {a.key: _otlp_value(a.value) for a in span.attributes},
                        }
                    )
        with self._lock:
            self.spans.extend(received)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _otlp_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="session")
def span_collector() -> Iterator[SpanCollector]:
    collector = SpanCollector()
    try:
        yield collector
    finally:
        collector.close()


@pytest.fixture(scope="session")
async def stack(span_collector: SpanCollector) -> AsyncIterator[Stack]:
    """The whole stack, started once per session; fails loudly (with the log tail) if any part cannot start.
    Tracing is on in every service, exporting to the session's in-test OTLP collector."""
    folder = Path(tempfile.mkdtemp(prefix="printfarm-it-"))
    time_scale = float(os.environ.get("SIMULATOR_TIME_SCALE") or 600)
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": span_collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    config = StackConfig.for_tests(folder, os.environ, time_scale=time_scale, extra_env=tracing)
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the API gateway, with the stack's bearer token, the way outside clients talk to printfarm."""
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers=stack.api_headers, timeout=30, trust_env=False
    ) as client:
        yield client


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    """``await wait_until(predicate, timeout, what)``: poll a sync or async predicate until it is truthy
    (and return its value), or fail naming ``what`` when the deadline passes."""
    return _wait_until


@pytest.fixture(scope="session")
async def farm_day(stack: Stack) -> FarmDay:
    """A simulated day of printing, printed once per session: the analytics API and screen tests read the same
    day (printing it takes minutes of real time on the time-scaled fleet)."""
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers=stack.api_headers, timeout=30, trust_env=False
    ) as client:
        return await print_a_day(stack, client, _wait_until)
