"""Each HTTP request a service serves starts from a clean context, whatever came before it on the connection.

Found as a flaky trace: the API gateway's span for a print-jobs click sometimes hung under the span of the
create-order request sent just before it on the same keep-alive connection. uvicorn starts a request that
arrives while the previous one is still finishing from inside that previous request's task, so the new task
copied its context: the OpenTelemetry span (the parent of the next server span when the client sends no
`traceparent`) and the log correlation id. Two pipelined requests make that arrival certain.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from servicekit.logging import correlation_id
from servicekit.runtime import http_server_options
from servicekit.testing import wait_until

FIRST_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers what the request found in its context, then leaves a span and a correlation id in it, as the
    tracing middleware and the message handlers do while a request or message is being handled."""
    if scope["type"] != "http":
        return
    span = trace.get_current_span().get_span_context()
    found = f"{span.trace_id:032x}" if span.is_valid else "no-span"
    found += f" {correlation_id.get()}"
    span_of_this_request = NonRecordingSpan(SpanContext(FIRST_TRACE_ID, 0x00F067AA0BA902B7, False, TraceFlags(1)))
    otel_context.attach(trace.set_span_in_context(span_of_this_request))
    correlation_id.set(scope["path"])
    while (await receive()).get("more_body"):
        pass
    body = found.encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def answers(port: int, paths: list[str]) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode() for path in paths))
    await writer.drain()
    bodies = []
    for _ in paths:
        head = await reader.readuntil(b"\r\n\r\n")
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        length = int(lengths[0])
        bodies.append((await reader.readexactly(length)).decode())
    writer.close()
    return bodies


async def test_a_request_does_not_inherit_the_span_or_correlation_id_of_the_one_before_it() -> None:
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", **http_server_options("127.0.0.1", 0)))
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or serving.done(), 30, "uvicorn to start", interval=0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        bodies = await asyncio.wait_for(answers(port, ["/first", "/second", "/third"]), 30)
    finally:
        server.should_exit = True
        await serving
    assert bodies == ["no-span None"] * 3, bodies
