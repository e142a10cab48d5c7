"""OpenTelemetry tracing for every process: one print-jobs click is one trace across the services.

The W3C trace context of whatever span is current when a message is emitted is written into its envelope
(`traceparent`, CloudEvents' distributed-tracing extension), so it survives the outbox row, the relay and
redelivery; the consumer continues that trace. Spans are exported by OTLP/HTTP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard `OTEL_*` variables tune the exporter and batching);
otherwise no provider is installed and tracing costs next to nothing, while a trace context that arrives
is still passed on.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)

TRACER_NAME = "printfarm"
OTLP_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTLP_TRACES_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_propagator = TraceContextTextMapPropagator()
_enabled = False


def tracing_enabled() -> bool:
    return _enabled


def configure_tracing(service: str, instance: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the process's tracer provider with an OTLP exporter when an endpoint is configured.
    Returns whether spans are now recorded and exported. Once per process (the provider is global)."""
    global _enabled
    env = os.environ if environ is None else environ
    if _enabled or not (env.get(OTLP_ENDPOINT_VARIABLE) or env.get(OTLP_TRACES_ENDPOINT_VARIABLE)):
        return _enabled
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    resource = Resource.create({"service.name": service, "service.instance.id": instance})
    provider = TracerProvider(resource=resource, sampler=ParentBased(root=_NoOrphanClientSpans()))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True
    log.info("tracing on: spans go to %s", env.get(OTLP_ENDPOINT_VARIABLE) or env.get(OTLP_TRACES_ENDPOINT_VARIABLE))
    return True


class _NoOrphanClientSpans(Sampler):
    """Root sampler: a SQL statement or other client call outside any request or message (the relay's and the
    matching loop's polling) would be a one-span trace every half second; those are dropped, the rest kept."""

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "NoOrphanClientSpans"


def instrument_app(app: Any) -> None:
    """Server spans for every request (the incoming `traceparent` continued), but not for probes and scrapes."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="/health,/metrics")


def instrument_engine(engine: Any) -> None:
    """A span per SQL statement (SQLAlchemy) and per driver call (asyncpg: COPY and the raw calls too)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def shutdown_tracing() -> None:
    """Flush what is batched; called on a clean stop so the last spans are not lost."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, or None outside any trace."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def context_from(traceparent: str | None) -> otel_context.Context | None:
    """The remote parent a `traceparent` names; None for a missing or malformed one (a new trace starts)."""
    if not traceparent:
        return None
    ctx = _propagator.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context to outgoing HTTP headers."""
    _propagator.inject(headers)
    return headers


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span; with `parent` (a stored `traceparent`) it continues that trace instead of the ambient one.
    An exception marks the span failed and propagates."""
    ctx = context_from(parent) if parent is not None else None
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=dict(attributes or {}), record_exception=True,
        set_status_on_exception=True,
    ) as current:
        yield current


def mark_failed(current: Span, reason: str) -> None:
    current.set_status(Status(StatusCode.ERROR, reason))
