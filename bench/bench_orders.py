"""Orders figures: p95 latency of the order list and search over 100,000 orders, and (with a running stack)
the time from print-jobs on a 20,000-job order until the queue reports all its jobs.

    .venv/bin/python bench/bench_orders.py                 # embedded PostgreSQL (devstack), temp folder
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_orders.py
    BENCH_API_URL=http://127.0.0.1:8080 [API_TOKEN=...] .venv/bin/python bench/bench_orders.py  # + 20k-job figure
    BENCH_STACK=1 .venv/bin/python bench/bench_orders.py   # starts a whole devstack for the 20k-job figure
    BENCH_STACK=1 PRINT_JOBS=20000,100000 SKIP_LISTS=1 .venv/bin/python bench/bench_orders.py  # 20k then 100k jobs

The list is measured through the orders service's own HTTP routes in process (ASGI, no network), on a
throwaway database that is dropped afterwards. Options: ORDERS=100000, ROUNDS=40 (requests per query kind).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from devstack import Stack, StackConfig
from devstack.postgres import EmbeddedPostgres, database_url, drop_databases, ensure_databases
from orders.adapters import orm
from orders.bootstrap import ALEMBIC_INI
from orders.domain.model import Sku
from orders.entrypoints import api
from orders.service_layer.handlers import Deps
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.database import create_engine, run_migrations, session_factory
from servicekit.ids import new_id, utc_now
from servicekit.inbox import Inbox
from servicekit.outbox import Outbox
from servicekit.problems import install_problem_handlers

ORDERS = int(os.environ.get("ORDERS", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "40"))
TARGET_MS = 50.0

SEED = """
INSERT INTO skus (id, sku, name, jobs_per_unit, parameters, materials, parts, revision, deleted, updated_at)
SELECT 'sku-' || s, 'SKU' || s, 'Bench SKU ' || s, 1 + s % 3, '[]'::jsonb,
       jsonb_build_array(jsonb_build_object('type', 'PLA', 'color', '#000000', 'grams', 10 + s)),
       '[]'::jsonb, 1, false, now()
FROM generate_series(0, 19) AS s;

INSERT INTO orders (id, order_number, order_number_key, customer_name, customer_email, customer_key,
                    fulfillment_date, notes, status, is_complete, cancelled, closed, print_revision, revision,
                    summary_sequence, jobs_queued, jobs_printing, jobs_completed, jobs_failed, jobs_cancelled,
                    assignment, completed_at, created_at, updated_at)
SELECT o.id, o.number, lower(o.number), o.name, o.email, lower(o.name) || E'\\n' || lower(o.email),
       CASE WHEN i % 11 = 0 THEN NULL ELSE DATE '2026-01-01' + (i % 400) END, NULL,
       o.status, o.status IN ('completed', 'closed'), false, o.status = 'closed',
       CASE WHEN o.status = 'open' THEN 0 ELSE 1 END, 1, 0, 0, 0, 0, 0, 0, NULL, NULL,
       now() - make_interval(secs => i), now() - make_interval(secs => i)
FROM generate_series(1, :orders) AS i,
LATERAL (SELECT
    lpad(to_hex(i), 12, '0') || '-' || md5(i::text) AS id,
    CASE WHEN i % 97 = 0 THEN 'SHOP%_' || i ELSE 'ORD-' || lpad(i::text, 7, '0') END AS number,
    'Customer ' || (i % 7000) AS name,
    'customer' || (i % 7000) || '@example.com' AS email,
    (ARRAY['closed', 'closed', 'closed', 'completed', 'queued', 'printing', 'open', 'open', 'open', 'open'])[1 + i % 10]
        AS status
) AS o;

INSERT INTO line_items (id, order_id, position, sku_id, quantity, parameters)
SELECT o.id || '-' || p, o.id, p, 'sku-' || ((abs(hashtext(o.id)) + p) % 20), 1 + p, '{}'::jsonb
FROM orders AS o, generate_series(0, 1) AS p;

ANALYZE;
"""

QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("list (default, open orders)", "/api/v1/orders", {}),
    ("list incl. closed", "/api/v1/orders", {"include_closed": "true"}),
    ("search q prefix", "/api/v1/orders", {"q": "ord-00{n}"}),
    ("search q exact number", "/api/v1/orders", {"q": "ORD-00{n}123", "include_closed": "true"}),
    ("search q specials %_", "/api/v1/orders", {"q": "shop%_", "include_closed": "true"}),
    ("customer by email", "/api/v1/orders", {"customer": "customer{n}42@example.com", "include_closed": "true"}),
    ("customer by name part", "/api/v1/orders", {"customer": "tomer {n}3"}),
    ("status filter", "/api/v1/orders", {"status": "printing"}),
    (
        "fulfillment range by date",
        "/api/v1/orders",
        {"fulfillment_from": "2026-03-0{n}", "fulfillment_to": "2026-04-30", "sort": "fulfillment_date"},
    ),
    ("sort order_number", "/api/v1/orders", {"sort": "-order_number"}),
    ("customers ?q=", "/api/v1/customers", {"q": "customer{n}42"}),
]


@asynccontextmanager
async def postgres_server() -> AsyncIterator[str]:
    """libpq URL of a PostgreSQL server: DATABASE_URL's, or an embedded one in a temp folder."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    server = EmbeddedPostgres(folder / "pg", folder / "postgres.log", fsync=False)
    await server.start(120)
    try:
        yield server.server_url
    finally:
        await server.stop(30)


def app_for(url: str) -> tuple[FastAPI, Any]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    outbox, inbox = Outbox(orm.outbox, source="/bench/orders"), Inbox(orm.inbox)

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions=sessions, outbox=outbox, inbox=inbox)

    async def no_catalogue(ids: list[str]) -> list[Sku]:
        return []

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(api.router(uow, Deps(clock=utc_now, ids=new_id, fetch_skus=no_catalogue)))
    return app, engine


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_lists(url: str) -> bool:
    app, engine = app_for(url)
    async with engine.begin() as conn:
        started = time.perf_counter()
        for statement in SEED.split(";\n"):
            if statement.strip():
                await conn.execute(sa.text(statement), {"orders": ORDERS} if ":orders" in statement else {})
        print(f"seeded {ORDERS:,} orders, {2 * ORDERS:,} line items in {time.perf_counter() - started:.1f}s")
    everything: list[float] = []
    ok = True
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        for _, path, params in QUERIES:
            await client.get(path, params={k: v.format(n=1) for k, v in params.items()})
        print(f"{'query (limit 50)':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'rows':>5}")
        for name, path, params in QUERIES:
            timings: list[float] = []
            rows = 0
            for round_ in range(ROUNDS):
                args = {k: v.format(n=round_ % 9 + 1) for k, v in params.items()}
                started = time.perf_counter()
                reply = await client.get(path, params=args)
                timings.append((time.perf_counter() - started) * 1000)
                assert reply.status_code == 200, reply.text
                rows = max(rows, len(reply.json()["items"]))
            everything += timings
            p95 = percentile(timings, 0.95)
            ok &= p95 < TARGET_MS
            print(f"{name:32} {statistics.median(timings):8.1f} {p95:8.1f} {max(timings):8.1f} {rows:5}")
        pages = await paging(client)
        everything += pages
        label = "next pages via cursor (x60)"
        print(f"{label:32} {statistics.median(pages):8.1f} {percentile(pages, 0.95):8.1f} {max(pages):8.1f}")
    overall = percentile(everything, 0.95)
    print(
        f"overall p95 {overall:.1f} ms over {len(everything)} requests (target < {TARGET_MS:.0f} ms): "
        f"{'OK' if ok and overall < TARGET_MS else 'MISSED'}"
    )
    await engine.dispose()
    return ok


async def paging(client: httpx.AsyncClient) -> list[float]:
    timings: list[float] = []
    for sort in ("-created_at", "fulfillment_date", "order_number"):
        cursor = None
        for _ in range(20):
            params = {"sort": sort, "include_closed": "true", **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            reply = await client.get("/api/v1/orders", params=params)
            timings.append((time.perf_counter() - started) * 1000)
            cursor = reply.json()["next_cursor"]
    return timings


def load() -> str:
    """The load average beside a figure: on a shared machine wall times follow it."""
    return "load " + " ".join(f"{value:.1f}" for value in os.getloadavg())


async def measure_print(base_url: str, headers: dict[str, str], job_count: int = 20_000) -> None:
    """2,000 line items × `job_count`/4,000 units × 2 parts: print-jobs → the queue reports them all."""
    units = max(job_count // 4_000, 1)
    job_count = 2_000 * units * 2
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=300, trust_env=False) as client:
        part = await client.post(
            "/api/v1/parts",
            data={"name": "bench part", "material_type": "PLA"},
            files={"file": ("bench.gcode", b"; filament_type = PLA\n; estimated printing time = 1m\nG28\nG1 X1\n")},
        )
        part.raise_for_status()
        sku = await client.post(
            "/api/v1/skus",
            json={
                "sku": f"BENCH-{secrets.token_hex(4)}",
                "name": "Bench",
                "parts": [{"part_id": part.json()["id"], "quantity": 2}],
            },
        )
        sku.raise_for_status()
        lines = [{"sku_id": sku.json()["id"], "quantity": units} for _ in range(2000)]
        started = time.perf_counter()
        order = await client.post("/api/v1/orders", json={"order_number": f"BENCH-{job_count}", "line_items": lines})
        order.raise_for_status()
        jobs = order.json()["job_count"]
        print(f"create order of 2,000 line items ({jobs:,} jobs): {time.perf_counter() - started:.2f}s ({load()})")
        order_id = order.json()["id"]
        started = time.perf_counter()
        sent = await client.post(
            f"/api/v1/orders/{order_id}/print-jobs",
            json={"assignment": {"mode": "tags", "tags": ["bench-no-such-printer"]}},
        )
        sent.raise_for_status()
        accepted = time.perf_counter() - started
        while True:
            current = (await client.get(f"/api/v1/orders/{order_id}")).json()
            if current["jobs"]["total"] >= job_count:
                break
            if time.perf_counter() - started > 600:
                print(f"print-jobs → all jobs queued: not reached in 600s (jobs {current['jobs']}; {load()})")
                return
            await asyncio.sleep(0.2)
        print(
            f"print-jobs on {job_count:,} jobs accepted in {accepted:.2f}s; all queued after"
            f" {time.perf_counter() - started:.2f}s ({load()})"
        )
        await client.post(f"/api/v1/orders/{order_id}/cancel")


async def main() -> int:
    ok = True
    if os.environ.get("SKIP_LISTS"):
        print("order list and search: skipped (SKIP_LISTS)")
    else:
        ok = await lists()
    return await prints(ok)


async def lists() -> bool:
    async with postgres_server() as server:
        name = f"bench_orders_{secrets.token_hex(4)}"
        await ensure_databases(server, [name])
        url = database_url(server, name)
        try:
            await asyncio.to_thread(run_migrations, ALEMBIC_INI, url)
            ok = await measure_lists(url)
        finally:
            await drop_databases(server, [name])
    return ok


async def prints(ok: bool) -> int:
    base_url = os.environ.get("BENCH_API_URL")
    sizes = [int(n) for n in os.environ.get("PRINT_JOBS", "20000").split(",")]
    if base_url:
        token = os.environ.get("API_TOKEN")
        for size in sizes:
            await measure_print(base_url, {"Authorization": f"Bearer {token}"} if token else {}, size)
    elif os.environ.get("BENCH_STACK"):
        folder = Path(tempfile.mkdtemp(prefix="bench-orders-stack-"))
        async with Stack(StackConfig.for_tests(folder, os.environ)) as stack:
            for size in sizes:
                await measure_print(stack.api_url, stack.api_headers, size)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print("print-jobs on a 20,000-job order: skipped (set BENCH_STACK=1, or BENCH_API_URL to a running stack)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
