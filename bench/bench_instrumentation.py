"""What instrumentation costs (issue 14): the 20,000-job reconcile through PostgreSQL and the latency from
"printer became ready" to "StartPrint on the bus" with the queue service running, each with tracing off and
on, side by side in one run. Metrics are always on (they are in both columns).

    .venv/bin/python bench/bench_instrumentation.py [--jobs 20000] [--repeats 3] [--rounds 60] [--blocks 4]

"on" is what production runs with OTEL_EXPORTER_OTLP_ENDPOINT set: the SDK with its batch processor,
FastAPI, SQLAlchemy and asyncpg instrumentation, exporting by OTLP/HTTP to a receiver in this process (it
decodes every request, as a collector would). "off" is the default: no provider, no instrumentation. The
variants alternate (off, on, off, on, ...) so a machine getting busier does not favour either; each
reconcile runs in a fresh process, as a service would be; the reconciled jobs and their unpublished
messages are removed before the latency part, which runs the queue service with ~rounds jobs waiting.
Embedded PostgreSQL and NATS come from devstack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_queue import big_order, ready_to_start_rounds

QUEUE_ALEMBIC = Path(__file__).parents[1] / "services" / "queue" / "alembic.ini"


class SpanReceiver:
    """OTLP/HTTP traces on loopback; decodes and counts spans like a collector's receiver would."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        self.spans = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                receiver.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def tracing_env(variant: str, receiver: SpanReceiver) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url} if variant == "on" else {}


def median_line(label: str, off: list[float], on: list[float]) -> None:
    a, b = statistics.median(off), statistics.median(on)
    print(f"  {label:<34} off {a:9.1f} ms   on {b:9.1f} ms   on/off {b / a:5.2f}  ({(b / a - 1) * 100:+.1f} %)")


# ---- the reconcile, one fresh process per measurement


def reconcile_child(database_url: str, jobs: int) -> None:
    """Runs in a child process: one first-time reconcile of a `jobs`-job order inside a consumer span."""
    from opentelemetry.trace import SpanKind

    from printqueue.adapters import orm
    from printqueue.service_layer import handlers, messages
    from printqueue.service_layer.handlers import Deps
    from printqueue.service_layer.unit_of_work import UnitOfWork
    from servicekit.database import create_engine, session_factory
    from servicekit.inbox import Inbox
    from servicekit.outbox import Outbox
    from servicekit.tracing import configure_tracing, instrument_engine, shutdown_tracing, span, tracing_enabled

    async def run() -> dict[str, float]:
        configure_tracing("queue", "bench")
        engine = create_engine(database_url)
        if tracing_enabled():
            instrument_engine(engine)
        sessions = session_factory(engine)
        outbox, inbox = Outbox(orm.outbox, source="/services/queue"), Inbox(orm.inbox)
        message = big_order(f"bench-{uuid.uuid4()}", jobs)
        async with UnitOfWork(sessions=sessions, outbox=outbox, inbox=inbox) as warm:
            await warm.session.execute(orm.jobs.select().limit(1))
        start, cpu = time.perf_counter(), time.process_time()
        with span("process orders.v1.order.print_requested", kind=SpanKind.CONSUMER):
            uow = UnitOfWork(sessions=sessions, outbox=outbox, inbox=inbox)
            await handlers.reconcile_order(messages.reconcile_order(message), uow, Deps())
        elapsed = (time.perf_counter() - start) * 1000
        cpu_ms = (time.process_time() - cpu) * 1000
        await engine.dispose()
        shutdown_tracing()
        return {"ms": elapsed, "cpu_ms": cpu_ms}

    print(json.dumps(asyncio.run(run())))


def reconcile_once(database_url: str, jobs: int, env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, the reconciling process's CPU ms): tracing's own cost is CPU in that process, which other
    load on a shared machine disturbs far less than wall time."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, __file__, "_reconcile", database_url, str(jobs)],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    return float(figures["ms"]), float(figures["cpu_ms"])


async def clear_reconciled(database_url: str) -> None:
    """The reconciles' jobs and their unpublished messages are not what the latency part measures:
    without a relay running they would all be published before the first StartPrint."""
    import asyncpg

    from devstack.postgres import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute("DELETE FROM jobs WHERE order_id LIKE 'bench-%'")
        await connection.execute("DELETE FROM outbox WHERE published_at IS NULL")
    finally:
        await connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def main_async(jobs: int, repeats: int, rounds: int, blocks: int) -> None:
    from devstack import Stack, StackConfig, wait_until
    from servicekit.database import run_migrations

    receiver = SpanReceiver()
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-otel-"))
    config = StackConfig.for_tests(folder, {}, services=(), start_simulator=False)
    try:
        async with Stack(config) as stack:
            url = stack.database_urls["queue"]
            await asyncio.to_thread(run_migrations, QUEUE_ALEMBIC, url)

            reconciles: dict[str, list[float]] = {"off": [], "on": []}
            reconcile_cpu: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(repeats):
                for variant in ("off", "on"):
                    ms, cpu_ms = await asyncio.to_thread(reconcile_once, url, jobs, tracing_env(variant, receiver))
                    reconciles[variant].append(ms)
                    reconcile_cpu[variant].append(cpu_ms)
            spans_after_reconciles = receiver.spans
            await clear_reconciled(url)

            latencies: dict[str, list[float]] = {"off": [], "on": []}
            for variant in ("off", "on") * (blocks // 2):
                config.extra_env = {"OTEL_BSP_SCHEDULE_DELAY": "1000", **tracing_env(variant, receiver)}
                await stack.start_service("queue")
                measured = (await ready_to_start_rounds(stack, max(1, rounds // blocks), wait_until)).latencies
                latencies[variant] += measured
                await stack.stop_service("queue")

            print(f"instrumentation cost, tracing off vs on (alternating; medians; {repeats} reconciles each)")
            median_line(f"reconcile {jobs}-job order", reconciles["off"], reconciles["on"])
            median_line("  of which the process's CPU", reconcile_cpu["off"], reconcile_cpu["on"])
            print("    each run: " + "  ".join(
                f"{v} {ms:.0f}" for pair in zip(reconciles["off"], reconciles["on"], strict=True)
                for v, ms in zip(("off", "on"), pair, strict=True)
            ))
            median_line(f"printer ready -> StartPrint, p50 ({len(latencies['on'])} rounds)",
                        latencies["off"], latencies["on"])
            for q, label in ((0.9, "p90"), (0.99, "p99")):
                a, b = percentile(latencies["off"], q), percentile(latencies["on"], q)
                print(f"  {'printer ready -> StartPrint, ' + label:<34} off {a:9.1f} ms   on {b:9.1f} ms"
                      f"   on/off {b / a:5.2f}")
            print(f"  spans received: {spans_after_reconciles} from the reconciles, {receiver.spans} in all")
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_reconcile":
        reconcile_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument(
        "--blocks", type=int, default=4, help="latency rounds in this many alternating off/on service runs (even)"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args.jobs, args.repeats, args.rounds, max(2, args.blocks - args.blocks % 2)))


if __name__ == "__main__":
    main()
