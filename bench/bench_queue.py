"""Queue figures: reconciling a 20,000-job order (first time and unchanged), one matching pass with 20,000
queued jobs and 1,000 printers (pure, and through PostgreSQL), and the latency from "printer became ready"
to "start command sent" with the service running.

    .venv/bin/python bench/bench_queue.py [--jobs 20000] [--printers 1000] [--rounds 100] [--pure-only]
        [--skip pure|slicing|latency ...]
    .venv/bin/python bench/bench_queue.py --table [--table-jobs 1000,10000] [--table-printers 100,1000]

Everything runs on embedded PostgreSQL and NATS started by devstack in a temp folder (the machine's own
servers are never used). CPU figures are process time; on a shared machine wall time is noisier.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench_floor import WARM_UP, Floor, Percentiles

from contracts.envelope import Envelope
from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial, PrinterChanged
from contracts.queue.v1 import StartPrint
from contracts.shared_values import Assignment, FileRef, Material
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceEstimate
from printqueue.adapters import mappers, orm
from printqueue.domain import model
from printqueue.domain.commands import RunMatchingPass
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.domain.matching import Candidates, Fleet, decide, match
from printqueue.domain.reconciliation import reconcile_order_jobs
from printqueue.service_layer import handlers, messages
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.matching_pass import FIRST_SPREAD, dispatch_to_printer, run_matching_pass
from servicekit.collector import SERVICE_THRESHOLDS, collector_paused

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ["PLA", "PETG", "ABS", "ASA", "TPU", "PA"]
COLORS = ["#000000", "#FFFFFF", "#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#888888", None]
FILE = FileRef(sha256="c" * 64, filename="part.gcode.3mf", kind="gcode.3mf", size_bytes=4096)
DEFAULT_GC = gc.get_threshold()
FIRST_TIME_ROUNDS = 3
SCAD = FileRef(sha256="d" * 64, filename="tag.scad", kind="scad", size_bytes=512)


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], list[float], Any]:
    """(wall ms per run, cpu ms per run, last result)."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return walls, cpus, result


def line(label: str, walls: list[float], cpus: list[float]) -> None:
    print(
        f"  {label:<44} wall min {min(walls):8.1f} ms  median {statistics.median(walls):8.1f} ms"
        f" | cpu min {min(cpus):8.1f} ms  median {statistics.median(cpus):8.1f} ms"
    )


def big_order(order_id: str, jobs: int, revision: int = 1, file: FileRef = FILE) -> OrderPrintRequested:
    lines = 20
    return OrderPrintRequested(
        order_id=order_id,
        order_number="BENCH-1",
        print_revision=revision,
        assignment=Assignment(),
        fulfillment_date=date(2026, 12, 1),
        order_created_at=T0,
        line_items=[
            DesiredLineItem(
                line_item_id=f"line-{i}",
                position=i,
                sku_id=f"sku-{i}",
                sku=f"SKU{i}",
                quantity=jobs // lines + (1 if i < jobs % lines else 0),
                parameters={"size": i},
                parts=[
                    DesiredPart(
                        part_id=f"part-{i}",
                        part_name=f"part {i}",
                        quantity=1,
                        file=file,
                        grams=10,
                        material=Material(type=TYPES[i % len(TYPES)], color=COLORS[i % len(COLORS)]),
                    )
                ],
            )
            for i in range(lines)
        ],
    )


def synthetic_queue(jobs: int, printers: int, seed: int = 1) -> tuple[list[model.Job], list[model.Printer]]:
    rng = random.Random(seed)
    assignments = [model.Assignment()] * 8 + [model.Assignment("tags", tags=("big",))]
    queued = [
        model.Job(
            id=f"j{i:06d}",
            order_id=f"o{i // 20:05d}",
            order_number=str(i // 20),
            line_item_id="l",
            line_position=i % 5,
            sku_id="s",
            sku="S",
            part_id="p",
            part_index=0,
            part_name="p",
            copy_number=i,
            material=model.Material(rng.choice(TYPES), rng.choice(COLORS)),
            parameters={},
            file={},
            assignment=rng.choice([*assignments, model.Assignment("printer", f"p{rng.randrange(printers)}")]),
            order_created_at=T0 + timedelta(minutes=i // 20),
            created_at=T0,
            updated_at=T0,
            fulfillment_date=rng.choice([None, date(2026, 2, rng.randint(1, 28))]),
            priority=rng.choice(["normal", "normal", "normal", "low"]),
        )
        for i in range(jobs)
    ]
    fleet = [
        model.Printer(
            id=f"p{i}",
            name=f"P{i}",
            revision=1,
            online=True,
            state="idle",
            bed_clear=True,
            tags=rng.choice([(), ("big",)]),
            materials=tuple(
                model.LoadedMaterial(slot, rng.choice(TYPES), rng.choice(["000000FF", "FFFFFFFF", "FF0000FF"]))
                for slot in (0, 1, 2, 3, 254)
            ),
            idle_since=T0 - timedelta(seconds=rng.randrange(100_000)),
        )
        for i in range(printers)
    ]
    return queued, fleet


def pure_figures(jobs: int, printers: int) -> None:
    print(f"pure domain (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    message = big_order("bench-order", jobs)
    desired = messages.desired_order(message)
    counter = iter(range(10**9))
    walls, cpus, result = timed(lambda: reconcile_order_jobs(None, [], desired, T0, lambda: f"{next(counter)}"), 3)
    assert result is not None and len(result.added) == jobs
    line(f"reconcile {jobs}-job order, first time", walls, cpus)
    existing = result.added
    again = messages.desired_order(big_order("bench-order", jobs, revision=2))
    walls, cpus, unchanged = timed(lambda: reconcile_order_jobs(result.order, existing, again, T0, str), 3)
    assert unchanged is not None and not unchanged.changed and unchanged.kept == jobs
    line(f"reconcile {jobs}-job order, unchanged", walls, cpus)

    queued, fleet = synthetic_queue(jobs, printers)
    walls, cpus, dispatches = timed(lambda: match(queued, fleet), 7)
    line(f"match {jobs} queued x {printers} printers ({len(dispatches)} dispatched), collector on", walls, cpus)

    def as_the_service_runs_it() -> list[Any]:
        with collector_paused():
            return match(queued, fleet)

    walls, cpus, dispatches = timed(as_the_service_runs_it, 7)
    line(f"match {jobs} queued x {printers} printers, as the service runs it (collector paused)", walls, cpus)

    # A farm colour tolerance: a job's colour that no spool holds exactly is compared (CIEDE2000) with
    # every spool of its type on each candidate printer instead of one set lookup.
    shaded = [replace(j, material=replace(j.material, color=_shade(j.material.color))) for j in queued]
    for tolerance in (0.0, 5.0):
        walls, cpus, dispatches = timed(lambda t=tolerance: match(shaded, fleet, color_tolerance=t), 7)
        line(f"match, job colours a shade off the spools, tolerance ΔE {tolerance:g} ({len(dispatches)} dispatched)",
             walls, cpus)


def _shade(color: str | None) -> str | None:
    """A colour under 3 ΔE00 from the one given (a different maker's spool of it)."""
    return {"#000000": "#050505", "#FFFFFF": "#F8F8F8", "#FF0000": "#F50A0A"}.get(color or "", color)


def pure_cost(queued: list[model.Job], fleet: list[model.Printer]) -> tuple[float, float]:
    """(median wall ms of `match` as the service runs it, peak MiB Python allocates during one)."""

    def run() -> list[Any]:
        with collector_paused():
            return match(queued, fleet)

    walls, _, _ = timed(run, 3)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(walls), peak / 2**20


def decide_cost(candidates: Candidates, ready: list[model.Printer]) -> tuple[float, float, float]:
    """(median wall ms, median CPU ms, peak MiB) of the pass's decision as it runs it: the fleet put on its
    shelves, then `decide` over the group heads the pass read from PostgreSQL, merged in queue order."""

    def run() -> list[Any]:
        with collector_paused():
            return decide(candidates, Fleet(ready))

    walls, cpus, _ = timed(run, 3)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(walls), statistics.median(cpus), peak / 2**20


async def cost_table(jobs_grid: list[int], printers_grid: list[int]) -> None:
    """Pass time and memory over a grid of queue and fleet sizes: the pure decision, and one whole matching
    pass through PostgreSQL (every printer ready, idle; the pass's transaction rolled back, so each cell
    measures the same first pass). Columns: `all ms`, `match` over every queued job (what the pure figure
    measured before the pass handed the decision group heads); `heads`, the queue keys the pass reads from
    PostgreSQL; `pure`, `decide` over those heads with the fleet put on its shelves, as the pass runs it;
    `PG`, the whole pass, wall and this process's CPU; `db CPU`, the CPU of the PostgreSQL backend that ran the
    pass's statements (from /proc, so only for a server on this machine, as the bench starts; '-' otherwise);
    `CPU floor`, both CPUs over the machine's cores: no schedule of that work, however well it overlapped the
    two, takes less wall time on this machine; `writes`, the floor
    under it: PostgreSQL alone writing what the pass wrote (`_write_floor`), so `PG / writes` is the pass's
    ratio to the writes no design of the pass can skip with this schema; `1 ready`, the pass one more printer
    turning ready gets (`dispatch_to_printer`), holding common materials, the fleet ready too."""
    from devstack import Stack, StackConfig
    from printqueue.service_layer.unit_of_work import UnitOfWork
    from servicekit.database import create_engine, run_migrations, session_factory
    from servicekit.inbox import Inbox
    from servicekit.outbox import Outbox

    print(f"cost of one matching pass (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; the pass"
          f" through PostgreSQL with the services' collector thresholds {SERVICE_THRESHOLDS})")
    print(f"  {'jobs':>8} {'printers':>8} | {'all ms':>7} | {'heads':>6} {'pure ms':>8} {'pure CPU':>8}"
          f" {'pure MiB':>8} | {'PG ms':>8} {'PG CPU':>8} {'db CPU':>7} {'CPU floor':>9} {'PG MiB':>7}"
          f" {'dispatched':>10} {'writes ms':>9}"
          f" | {'1 ready ms':>10}")
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-queue-table-"))
    config = StackConfig.for_tests(folder, {}, services=(), start_simulator=False)
    try:
        async with Stack(config) as stack:
            url = stack.database_urls["queue"]
            await asyncio.to_thread(
                run_migrations, Path(__file__).parents[1] / "services" / "queue" / "alembic.ini", url
            )
            engine = create_engine(url)
            sessions = session_factory(engine)
            deps = Deps(clock=lambda: T0)

            def uow() -> UnitOfWork:
                return UnitOfWork(sessions=sessions, outbox=Outbox(orm.outbox, source="/bench"), inbox=Inbox(orm.inbox))

            for jobs in jobs_grid:
                for printers in printers_grid:
                    queued, fleet = synthetic_queue(jobs, printers)
                    for job in queued:
                        job.file = FILE.model_dump(mode="json")
                    all_ms, _ = pure_cost(queued, fleet)
                    async with uow() as seed:
                        await seed.session.execute(sa.text("TRUNCATE jobs, printers, outbox"))
                        await seed.queue.add_jobs(queued)
                        await seed.session.execute(
                            sa.insert(orm.printers), [mappers.printer_values(p) for p in fleet]
                        )
                        await seed.commit()
                    async with engine.connect() as connection:
                        await connection.execute(sa.text("ANALYZE jobs"))
                        await connection.execute(sa.text("ANALYZE printers"))
                        # Statistics are transactional: rolled back, the pass was planned without them.
                        await connection.commit()
                    async with uow() as reading:
                        ready = await reading.queue.ready_printer_candidates(T0)
                        candidates, _ = await reading.queue.queued_groups(Fleet(ready), 0.0, FIRST_SPREAD)
                    heads = len(candidates[1])
                    pure_ms, pure_cpu, pure_mib = decide_cost(candidates, ready)
                    timings, cpus, db_cpus, peak, dispatched, floors = [], [], [], 0.0, 0, []
                    gc.set_threshold(*SERVICE_THRESHOLDS)  # as `python -m printqueue` runs its passes
                    for traced in (False, False, True):
                        if traced:
                            tracemalloc.start()
                        async with uow() as work:
                            backend = await _backend_cpu_reader(work.session)
                            db_cpu = backend()
                            started, cpu = time.perf_counter(), time.process_time()
                            done = await run_matching_pass(RunMatchingPass(), work, deps)
                            await work.outbox.add(work.session, work._pending)
                            elapsed = (time.perf_counter() - started) * 1000
                            cpu = (time.process_time() - cpu) * 1000
                            db_end = backend()
                            db_cpu = None if db_cpu is None or db_end is None else db_end - db_cpu
                            dispatched, written = len(done), list(work._pending)
                        if not traced:
                            floors.append(await _write_floor(uow(), done, written))
                        if traced:
                            peak = tracemalloc.get_traced_memory()[1] / 2**20
                            tracemalloc.stop()
                        else:
                            timings.append(elapsed)
                            cpus.append(cpu)
                            db_cpus.append(db_cpu)
                    one_ready = [await _one_printer_turns_ready(uow(), deps, n) for n in range(3)]
                    gc.set_threshold(*DEFAULT_GC)
                    db, floor = _cpu_floor(cpus, db_cpus)
                    print(
                        f"  {jobs:>8} {printers:>8} | {all_ms:>7.1f} | {heads:>6} {pure_ms:>8.1f} {pure_cpu:>8.1f}"
                        f" {pure_mib:>8.1f} | {min(timings):>8.1f} {min(cpus):>8.1f} {db:>7} {floor:>9}"
                        f" {peak:>7.1f} {dispatched:>10} {min(floors):>9.1f} | {statistics.median(one_ready):>10.1f}",
                        flush=True,
                    )
            await engine.dispose()
        print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")
        print(GROWTH)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _backend_cpu_reader(session: Any) -> Callable[[], float | None]:
    """A reader of the CPU ms the PostgreSQL backend serving `session` has used so far (its /proc stat's user and
    system time), or of None when that backend is not a process of this machine the bench may read."""
    pid = (await session.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
    stat, tick = Path(f"/proc/{pid}/stat"), os.sysconf("SC_CLK_TCK")

    def read() -> float | None:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) * 1000 / tick  # utime and stime, fields 14 and 15 of stat

    return read


def _cpu_floor(cpus: list[float], db_cpus: list[float | None]) -> tuple[str, str]:
    """The PostgreSQL backend's CPU and the CPU floor (the queue's and PostgreSQL's CPU over the cores) of the
    run with the least CPU in all, as column texts ('-' without the backend's figures)."""
    runs = [(cpu + db, db) for cpu, db in zip(cpus, db_cpus, strict=True) if db is not None]
    if not runs:
        return "-", "-"
    total, db = min(runs)
    return f"{db:.0f}", f"{total / (os.cpu_count() or 1):.0f}"


async def _write_floor(work: Any, done: list[Any], written: list[Any]) -> float:
    """Wall ms of PostgreSQL writing what a pass wrote, with nothing else (rolled back): the dispatched jobs'
    dispatch columns by one UPDATE from arrays (as the pass writes them: every row a new version in each of the
    jobs table's indexes its new status keeps it in) and the pass's messages by COPY, their texts made already.
    The floor of any pass that records its dispatches in these tables in one transaction."""
    async with work:
        started = time.perf_counter()
        if done:
            await work.session.execute(
                sa.text(
                    """
                    UPDATE jobs SET status = 'assigned', printer_id = d.printer_id, command_id = d.job_id,
                        dispatch_attempts = dispatch_attempts + 1, dispatch_deadline = :deadline,
                        revision = revision + 1, updated_at = :now
                    FROM unnest(CAST(:ids AS text[]), CAST(:printers AS text[])) AS d(job_id, printer_id)
                    WHERE jobs.id = d.job_id AND jobs.id = ANY(CAST(:ids AS text[]))
                    """
                ),
                {
                    "ids": [d.job_id for d in done], "printers": [d.printer_id for d in done],
                    "deadline": T0 + timedelta(minutes=10), "now": T0,
                },
            )
        await work.outbox.add(work.session, written)
        return (time.perf_counter() - started) * 1000


async def _one_printer_turns_ready(work: Any, deps: Deps, number: int) -> float:
    """Wall ms of the pass a printer turning ready gets in its consumer's transaction (rolled back), for a
    printer holding the fleet's common materials (so it fits many requirement groups, pinned jobs of other
    printers among them), with every other printer of the fleet ready too."""
    rng = random.Random(number)
    printer = model.Printer(
        id=f"one-ready-{number}", name=f"R{number}", revision=1, online=True, state="idle", bed_clear=True,
        materials=tuple(model.LoadedMaterial(slot, rng.choice(TYPES), "000000FF") for slot in (0, 1, 2, 3)),
        idle_since=T0,
    )
    async with work:
        await work.session.execute(sa.insert(orm.printers), [mappers.printer_values(printer)])
        started = time.perf_counter()
        await dispatch_to_printer(printer, work, deps)
        elapsed = (time.perf_counter() - started) * 1000
        await work.rollback()
    return elapsed


GROWTH = """  How it grows. Pure (`decide`, as the pass runs it): printers x slots (putting the printers on shelves by
  what they offer), plus groups x shelves of their material type (one fit test each, never one per
  printer), plus the heads handed over (already merged in queue order by PostgreSQL), plus dispatches x
  log(shelves of a group) (a heap of each group's shelves' first free printers); nothing grows with the
  queue beyond the heads. `all` (`match` over every queued job) is linear in the jobs. Through PostgreSQL:
  one index probe per requirement group (skip scan), the group heads it reads (per group at most as many
  as printers fit it, first only twice its share of the ready printers), every ready printer, then the
  dispatches: one claim, one UPDATE from arrays, two outbox rows by COPY and two messages built per
  dispatch. With few printers it is flat in the queue's size; with a whole fleet ready it grows with the
  dispatches, the groups (pinned jobs make one per printer they name) and the heads read."""


async def database_figures(jobs: int, printers: int, rounds: int, skip: set[str], new_printers: bool = False) -> None:
    from devstack import Stack, StackConfig, wait_until
    from printqueue.service_layer.unit_of_work import UnitOfWork
    from servicekit.database import create_engine, run_migrations, session_factory
    from servicekit.inbox import Inbox
    from servicekit.outbox import Outbox

    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-queue-"))
    keep = bool(os.environ.get("DEVSTACK_KEEP"))
    config = StackConfig.for_tests(
        folder, {}, services=(), start_simulator=False, extra_env={"MATCH_INTERVAL_SECONDS": "1.5"}
    )
    try:
        async with Stack(config) as stack:
            url = stack.database_urls["queue"]
            alembic_ini = Path(__file__).parents[1] / "services" / "queue" / "alembic.ini"
            await asyncio.to_thread(run_migrations, alembic_ini, url)
            engine = create_engine(url)
            sessions = session_factory(engine)
            outbox, inbox = Outbox(orm.outbox, source="/services/queue"), Inbox(orm.inbox)
            # The pass below dispatches to ~1,000 printers that never start; with the service's 90 s deadline they
            # expired during the latency rounds when a loaded machine made the stages before them slow, and the
            # rounds then timed the service re-dispatching the whole fleet (p99 25 s at load 11).
            deps = Deps(policy=DispatchPolicy(deadline_seconds=3600.0))

            cpu: list[float] = [0.0]

            async def with_uow(action: Callable[[UnitOfWork], Any]) -> float:
                """`action` given a new unit of work (a handler, which owns its transaction). Wall ms; this
                process's CPU ms of it goes to `cpu[0]` (on a busy machine wall is mostly waiting)."""
                start, start_cpu = time.perf_counter(), time.process_time()
                await action(UnitOfWork(sessions=sessions, outbox=outbox, inbox=inbox))
                cpu[0] = (time.process_time() - start_cpu) * 1000
                return (time.perf_counter() - start) * 1000

            async def in_uow(action: Callable[[UnitOfWork], Any]) -> float:
                """`with_uow`, for an action that runs in its caller's transaction (the matching pass, reads)."""

                async def committed(uow: UnitOfWork) -> None:
                    async with uow:
                        await action(uow)
                        await uow.commit()

                return await with_uow(committed)

            def reconcile(order: Callable[[], OrderPrintRequested]) -> Callable[[UnitOfWork], Any]:
                """The message is made inside the timed call, as it always was."""
                return lambda uow: handlers.reconcile_order(messages.reconcile_order(order()), uow, deps)

            print("through PostgreSQL (handlers + repository + outbox, one transaction each)")
            print(f"  (first time: orders alternate CPython's default collector thresholds {DEFAULT_GC}"
                  f" and the services' {SERVICE_THRESHOLDS}, `python -m <service>` sets them)")
            for attempt, thresholds in enumerate([DEFAULT_GC, SERVICE_THRESHOLDS] * FIRST_TIME_ROUNDS):
                gc.set_threshold(*thresholds)
                order_id = "db-order" if attempt == 2 * FIRST_TIME_ROUNDS - 1 else f"db-order-{attempt}"
                first = await with_uow(reconcile(lambda o=order_id: big_order(o, jobs)))
                label = f"reconcile {jobs}-job order, first time, " + (
                    "service gc" if thresholds == SERVICE_THRESHOLDS else "default gc"
                )
                print(f"  {label:<52} {first:8.1f} ms (cpu {cpu[0]:.0f} ms)")
            await _leave_one_order(engine)
            again = await with_uow(reconcile(lambda: big_order("db-order", jobs, 2)))
            print(f"  {f'reconcile {jobs}-job order, unchanged':<44} {again:8.1f} ms (cpu {cpu[0]:.0f} ms)")

            rng = random.Random(2)
            fleet = [
                PrinterChanged(
                    id=f"bench-printer-{i}",
                    name=f"B{i}",
                    model="X1C",
                    online=True,
                    state="idle",
                    bed_clear=True,
                    materials=[
                        LoadedMaterial(slot=s, type=rng.choice(TYPES), color=rng.choice(["000000FF", "FFFFFFFF"]))
                        for s in (0, 1, 2, 3)
                    ],
                    idle_since=T0 - timedelta(seconds=i),
                    revision=1,
                    updated_at=T0,
                )
                for i in range(printers)
            ]

            for printer in fleet:
                await with_uow(lambda uow, p=printer: handlers.record_printer(messages.record_printer(p), uow, deps))
            dispatched: list[Any] = []

            async def one_pass(uow: UnitOfWork) -> None:
                dispatched.extend(await run_matching_pass(RunMatchingPass(), uow, deps))

            elapsed = await in_uow(one_pass)
            label = f"matching pass {jobs} queued x {printers} printers"
            print(f"  {label:<44} {elapsed:8.1f} ms (cpu {cpu[0]:.0f} ms, {len(dispatched)} dispatched)")
            dispatched.clear()
            steady = [await in_uow(one_pass) for _ in range(5)]
            label = "next passes, nothing left to dispatch"
            print(f"  {label:<44} {statistics.median(steady):8.1f} ms median of 5 ({len(dispatched)} dispatched)")
            if "slicing" not in skip:
                await slicing_figures(in_uow, with_uow, jobs, deps)
            await engine.dispose()

            if "latency" not in skip:
                await latency_figures(stack, rounds, wait_until, new_printers)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


async def _leave_one_order(engine: Any) -> None:
    """The first-time rounds made one order each: all but the last go (jobs, order rows, and every message
    nobody will read), so the later stages run with `--jobs` queued, as they say, not six times as many, and
    the service does not first publish their backlog."""
    async with engine.begin() as connection:
        await connection.execute(sa.text("DELETE FROM jobs WHERE order_id LIKE 'db-order-%'"))
        await connection.execute(sa.text("DELETE FROM orders WHERE order_id LIKE 'db-order-%'"))
        await connection.execute(sa.text("DELETE FROM outbox"))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(sa.text("VACUUM ANALYZE jobs, orders, outbox"))


async def slicing_figures(
    in_uow: Callable[[Any], Any], with_uow: Callable[[Any], Any], jobs: int, deps: Any
) -> None:
    """An order of an OpenSCAD part on 20 lines with 20 values: its jobs made `slicing` with one request per
    (values, model), then the answers that queue them all."""
    from printqueue.adapters.mappers import slice_from_row

    def scad_order() -> Any:
        return messages.reconcile_order(big_order("db-scad-order", jobs, file=SCAD))

    elapsed = await with_uow(lambda uow: handlers.reconcile_order(scad_order(), uow, deps))
    requested: list[Any] = []

    async def read_requests(uow: Any) -> None:
        rows = await uow.session.execute(sa.select(orm.slices).where(orm.slices.c.state == "requested"))
        requested.extend(slice_from_row(row) for row in rows)

    await in_uow(read_requests)
    label = f"reconcile {jobs}-job .scad order (slicing)"
    print(f"  {label:<44} {elapsed:8.1f} ms ({len(requested)} slices requested)")
    answers = [
        SliceCompleted(
            slice_key=r.key, source_sha256=r.source["sha256"], parameters=r.parameters, printer_model=r.printer_model,
            fabmatic=r.fabmatic, material={"type": r.material.type, "profile": r.material.profile}, profile="bench",
            file=FileRef(sha256=r.key, filename="tag.gcode.3mf", kind="gcode.3mf", size_bytes=1,
                         bucket=SLICED_FILES_BUCKET),
            estimate=SliceEstimate(print_minutes=30, grams=10), completed_at=T0,
        )
        for r in requested
    ]
    timings = [
        await with_uow(lambda uow, a=answer: handlers.complete_slice(messages.complete_slice(a), uow, deps))
        for answer in answers
    ]
    if timings:
        label = f"slice completed -> its {jobs // len(timings)} jobs queued"
        print(f"  {label:<44} {statistics.median(timings):8.1f} ms median of {len(timings)}")
    # The latency figures that follow expect the queue they had before: these jobs leave it.
    cancelled = OrderCancelled(order_id="db-scad-order", print_revision=2)
    await with_uow(lambda uow: handlers.cancel_order(messages.cancel_order(cancelled), uow, deps))


async def latency_figures(stack: Any, rounds: int, wait_until: Any, new_printers: bool = False) -> None:
    """A printer becomes ready while jobs wait; measure until its StartPrint is on the bus."""
    await stack.start_service("queue")
    measured = await ready_to_start_rounds(stack, rounds, wait_until, new_printers)
    latencies, floors, messages = measured.latencies, measured.floors, measured.messages
    slowest = sorted(enumerate(latencies), key=lambda r: -r[1])[:3]
    product, floor_figures = Percentiles.of(latencies), Percentiles.of(floors)
    scenario = "a printer the queue never saw" if new_printers else "a known printer turns idle"
    print(f"printer ready -> StartPrint on the bus, {rounds} rounds ({scenario}), service running as make run"
          f" runs it (load average {os.getloadavg()[0]:.1f})")
    print(f"  queue  {product.line()}")
    print(f"  floor  {floor_figures.line()}   (publish, pull, one transaction, acked publish, subscriber)")
    print(
        f"  ratio  p50 {product.p50 / floor_figures.p50:6.1f}x (target < 5x)"
        f"   p99 {product.p99 / floor_figures.p99:6.1f}x (target < 10x)"
    )
    print("  slowest rounds: " + ", ".join(f"#{i + 1} {ms:.1f} ms" for i, ms in slowest))
    if measured.queue_cpu_ms is not None:
        print(f"  queue process CPU per round (its background loops included): {measured.queue_cpu_ms:.2f} ms")
    for instance in stack.instances.values():
        if instance.spec.name == "queue" and instance.process.pid:
            print(f"  queue process RSS after the rounds: {_rss_mib(instance.process.pid):.0f} MiB")
    inside = sorted(await _inside_the_queue(stack, messages))
    if inside:
        p50 = inside[len(inside) // 2]
        p99 = inside[min(len(inside) - 1, int(len(inside) * 0.99))]
        print("  of which inside the queue (consumer transaction start -> relay picks up StartPrint):")
        print(f"  p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   max {inside[-1]:8.1f} ms")


@dataclass(frozen=True)
class ReadyToStart:
    latencies: list[float]
    """ms from each round's PrinterChanged published to its StartPrint seen, in round order."""
    floors: list[float]
    """the floor's round beside each (publish, pull, one transaction, acked publish, subscriber)."""
    messages: dict[str, str]
    """each measured printer's PrinterChanged envelope id."""
    queue_cpu_ms: float | None = None
    """the queue process's CPU time over the measured rounds, per round (steadier than wall time under load)."""


async def ready_to_start_rounds(
    stack: Any, rounds: int, wait_until: Any, new_printers: bool = False
) -> ReadyToStart:
    """With the queue service running, `rounds` times (after WARM_UP) a printer becomes ready while jobs of a
    material only it holds wait. The printers are known to the queue (busy) before their round, as on a farm;
    with `new_printers` each round's printer is one the queue has never seen (which also makes it look for
    slices the new model may need). Shared with bench_instrumentation.py."""
    import nats

    from devstack.postgres import asyncpg_dsn

    nc = await nats.connect(stack.nats_url)
    js = nc.jetstream()
    started: dict[str, asyncio.Future[float]] = {}

    async def on_start(msg: Any) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.data is not None:
            waiter = started.get(envelope.open(StartPrint).printer_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(time.perf_counter())

    await nc.subscribe(StartPrint.SUBJECT, cb=on_start)
    kind = f"LAT-{uuid.uuid4().hex[:4]}"
    order = big_order(f"lat-{uuid.uuid4()}", rounds + 10)
    order = order.model_copy(
        update={
            "line_items": [
                li.model_copy(
                    update={"parts": [p.model_copy(update={"material": Material(type=kind)}) for p in li.parts]}
                )
                for li in order.line_items
            ]
        }
    )

    async def publish(message: Any, source: str) -> str:
        envelope = Envelope(
            id=str(uuid.uuid4()), type=message.SUBJECT, source=source, data=message.model_dump(mode="json")
        )
        await js.publish(message.SUBJECT, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id})
        return envelope.id

    def printer(printer_id: str, revision: int, state: str) -> PrinterChanged:
        return PrinterChanged(
            id=printer_id,
            name=printer_id,
            model="P1S",
            online=True,
            state=state,
            bed_clear=True,
            materials=[LoadedMaterial(slot=254, type=kind)],
            idle_since=datetime.now(UTC),
            revision=revision,
            updated_at=datetime.now(UTC),
        )

    await publish(order, "/services/orders")
    printer_ids = [f"lat-printer-{i}-{uuid.uuid4().hex[:6]}" for i in range(WARM_UP + rounds)]
    if not new_printers:
        for printer_id in printer_ids:
            await publish(printer(printer_id, 1, "printing"), "/services/printer-gateway")
        await wait_until(lambda: _printers_known(stack, printer_ids), 600, "the queue to know the printers")
    await wait_until(lambda: _outbox_drained(stack), 600, "the outbox backlog of the earlier stages published")
    await _first_forecast(stack)
    latencies: list[float] = []
    floors: list[float] = []
    messages: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    floor = Floor(stack.nats_url, asyncpg_dsn(stack.database_urls["queue"]))
    await floor.start()
    queue_pids = [i.process.pid for i in stack.instances.values() if i.spec.name == "queue" and i.process.pid]
    cpu_before = 0.0
    for number, printer_id in enumerate(printer_ids):
        if number == WARM_UP:
            cpu_before = _cpu_seconds(queue_pids)
        # Rounds alternate with the floor's, so both see the same load on a shared machine.
        floor_ms = await floor.round()
        started[printer_id] = loop.create_future()
        became_ready = time.perf_counter()
        revision = 1 if new_printers else 2
        message_id = await publish(printer(printer_id, revision, "idle"), "/services/printer-gateway")
        arrived = await asyncio.wait_for(started[printer_id], 30)
        if number >= WARM_UP:
            messages[printer_id] = message_id
            latencies.append((arrived - became_ready) * 1000)
            floors.append(floor_ms)
    queue_cpu_ms = (_cpu_seconds(queue_pids) - cpu_before) * 1000 / rounds if queue_pids else None
    await floor.close()
    await nc.drain()
    return ReadyToStart(latencies, floors, messages, queue_cpu_ms)


async def _first_forecast(stack: Any) -> None:
    """Asks the queue for its forecast, which makes its first one if none was made yet: that first forecast reads
    every open job whole (later ones only those changed since), a start-up cost of the process that, left to
    land among the measured rounds, made three rounds in a row take 150-260 ms. The rounds then measure the
    service as it runs, its forecasts included."""
    import httpx

    async with httpx.AsyncClient(timeout=600) as client:
        (await client.get(f"{stack.service_url('queue')}/api/v1/forecast")).raise_for_status()


def _rss_mib(pid: int) -> float:
    """Resident set size of a process (Linux /proc): the memory the service holds at this scale."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pids: list[int | None]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


async def _inside_the_queue(stack: Any, messages: dict[str, str]) -> list[float]:
    """From the queue's own tables: when the consumer took each PrinterChanged (inbox) and when the relay
    published the StartPrint it caused (outbox); the rest of the end-to-end time is the bus."""
    import asyncpg

    from devstack.postgres import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(stack.database_urls["queue"]))
    try:
        consumed = dict(
            await connection.fetch(
                "SELECT message_id, processed_at FROM inbox WHERE consumer = 'queue__printer_changed'"
                " AND message_id = ANY($1::text[])",
                list(messages.values()),
            )
        )
        published = dict(
            await connection.fetch(
                "SELECT envelope->'data'->>'printer_id', published_at FROM outbox"
                " WHERE subject = 'queue.v1.cmd.start_print' AND envelope->'data'->>'printer_id' = ANY($1::text[])",
                list(messages),
            )
        )
    finally:
        await connection.close()
    return [
        (published[p] - consumed[m]).total_seconds() * 1000
        for p, m in messages.items()
        if p in published and m in consumed and published[p] is not None
    ]


async def _printers_known(stack: Any, printer_ids: list[str]) -> bool:
    import asyncpg

    from devstack.postgres import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(stack.database_urls["queue"]))
    try:
        known = await connection.fetchval("SELECT count(*) FROM printers WHERE id = ANY($1::text[])", printer_ids)
    finally:
        await connection.close()
    return bool(known == len(printer_ids))


async def _outbox_drained(stack: Any) -> bool:
    """Earlier stages wrote ~40,000 messages the relay must publish first; measuring behind them says nothing."""
    import asyncpg

    from devstack.postgres import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(stack.database_urls["queue"]))
    try:
        waiting = await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    finally:
        await connection.close()
    return bool(waiting == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--printers", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--pure-only", action="store_true")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["pure", "slicing", "latency"],
        help="leave out a stage (repeatable), e.g. --skip pure --skip slicing for the latency alone",
    )
    parser.add_argument(
        "--new-printers", action="store_true",
        help="latency rounds with printers the queue has never seen (the slice look-ahead included)",
    )
    parser.add_argument(
        "--table", action="store_true",
        help="only the cost table: pass time and memory over --table-jobs x --table-printers",
    )
    parser.add_argument("--table-jobs", default="1000,10000,100000,200000", help="comma-separated queue sizes")
    parser.add_argument("--table-printers", default="100,1000,10000", help="comma-separated fleet sizes")
    args = parser.parse_args()
    if args.table:
        grid = [int(n) for n in args.table_jobs.split(",")], [int(n) for n in args.table_printers.split(",")]
        asyncio.run(cost_table(*grid))
        return
    skip = set(args.skip)
    if "pure" not in skip:
        pure_figures(args.jobs, args.printers)
    if not args.pure_only:
        asyncio.run(database_figures(args.jobs, args.printers, args.rounds, skip, args.new_printers))


if __name__ == "__main__":
    main()
