"""The queue's set-based SQL against real PostgreSQL, held to the pure domain's answers: the skip scan that
finds the requirement groups of a matching pass, the ready-printer query that leaves occupied printers out,
the one-query check that reconciling an order would change nothing, the sliced estimates of an order's
summary, and the queue order of the jobs a pass loads (`matching.job_order`, restated in SQL); and a
consumer's handler committing the transaction the bus opened, inbox mark included."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.orders.v1 import DesiredLineItem as LineMessage
from contracts.orders.v1 import DesiredPart as PartMessage
from contracts.orders.v1 import OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial as LoadedMaterialMessage
from contracts.printers.v1 import PrinterChanged
from contracts.queue.v1 import StartPrint
from contracts.shared_values import Assignment as AssignmentMessage
from contracts.shared_values import FileRef
from contracts.shared_values import Material as MaterialMessage
from printqueue.adapters import forecast_inputs, matching_queries, orm
from printqueue.domain import lifecycle
from printqueue.domain.commands import RecordPrinter, RunMatchingPass
from printqueue.domain.forecast import OPEN
from printqueue.domain.matching import Fleet, decide, job_order, match, readiness
from printqueue.domain.model import Assignment, FarmSettings, Job, LoadedMaterial, Material, Printer, rgb, summarize
from printqueue.domain.reconciliation import DesiredOrder, desired_runs, reconcile_order_jobs
from printqueue.domain.slicing import Slice
from printqueue.service_layer import handlers, matching_pass, messages
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.matching_pass import run_matching_pass
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.inbox import DuplicateDelivery, Inbox, InboxClaim
from servicekit.outbox import Outbox

from .scratch_database import migrated_database

pytestmark = pytest.mark.integration

ALEMBIC_INI = Path(__file__).parents[2] / "services" / "queue" / "alembic.ini"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ["PLA", "petg ", "ABS", "TPU"]
COLORS = ["#000000", "#FFFFFF", "#ff0000", None]
FILE = FileRef(sha256="a" * 64, filename="x.gcode.3mf", kind="gcode.3mf", size_bytes=1)


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_database("queue_sql", ALEMBIC_INI) as made:
        yield made


def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWork:
    return UnitOfWork(sessions=sessions, outbox=Outbox(orm.outbox, source="/test"), inbox=Inbox(orm.inbox))


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession], action: Callable[[UnitOfWork], Awaitable[Any]]
) -> Any:
    async with unit_of_work(sessions) as uow:
        result = await action(uow)
        await uow.commit()
        return result


def request(
    order_id: str, revision: int, rng: random.Random, lines: int = 6, pinned_to: list[str] | None = None
) -> OrderPrintRequested:
    """An order of random parts; with `pinned_to`, some orders are pinned to one of those printers."""
    assignments = [AssignmentMessage(), AssignmentMessage(mode="tags", tags=["big"])]
    if pinned_to:
        assignments.append(AssignmentMessage(mode="printer", printer_id=rng.choice(pinned_to)))
    return OrderPrintRequested(
        order_id=order_id,
        order_number=f"#{order_id}",
        print_revision=revision,
        assignment=rng.choice(assignments),
        order_created_at=T0 + timedelta(minutes=rng.randrange(1000)),
        fulfillment_date=rng.choice([None, date(2026, 2, rng.randint(1, 28))]),
        line_items=[
            LineMessage(
                line_item_id=f"{order_id}-l{i}", position=i, sku_id=f"sku-{i}", sku=f"SKU{i}",
                quantity=rng.randint(1, 4), parameters={"size": i},
                parts=[
                    PartMessage(
                        part_id=f"part-{i}-{k}", part_name=f"part {k}", quantity=rng.randint(1, 2),
                        material=MaterialMessage(type=rng.choice(TYPES), color=rng.choice(COLORS)),
                        file=FILE, grams=rng.choice([None, 7.5]),
                    )
                    for k in range(rng.randint(1, 2))
                ],
            )
            for i in range(lines)
        ],
    )


@pytest.mark.parametrize("walk_every_pinned_group", [False, True])
async def test_a_pass_through_postgresql_dispatches_what_the_pure_decision_does(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, walk_every_pinned_group: bool
) -> None:
    """Some orders are pinned to one printer: a pass over a few ready printers probes only their pinned jobs,
    one over many walks every pinned group (forced here with a threshold of 0); both decide as the domain."""
    if walk_every_pinned_group:
        monkeypatch.setattr(matching_queries, "PINNED_PROBES_UP_TO", 0)
    rng = random.Random(7)
    tag = "walk" if walk_every_pinned_group else "probe"
    for n in range(12):
        message = request(f"m{n}-{tag}", 1, rng, pinned_to=[f"{tag}-p{i}" for i in range(0, 40, 3)])
        await handlers.reconcile_order(messages.reconcile_order(message), unit_of_work(sessions), Deps())
    fleet = [
        Printer(
            id=f"{tag}-p{i}", name=f"P{i}", revision=1, online=True, state=rng.choice(["idle", "idle", "printing"]),
            bed_clear=True, tags=rng.choice([(), ("big",)]),
            materials=tuple(LoadedMaterial(s, rng.choice(TYPES), rng.choice(["000000FF", "FFFFFFFF"])) for s in (0, 1)),
            idle_since=T0 - timedelta(seconds=i), current_job_id=rng.choice([None, None, "unknown-job"]),
        )
        for i in range(25)
    ]

    async def save_fleet(uow: UnitOfWork) -> None:
        for printer in fleet:
            await uow.queue.save_printer(printer)

    await in_transaction(sessions, save_fleet)

    async def expected(uow: UnitOfWork) -> list[Any]:
        ready = [p for p in fleet if readiness(p, p.current_job_id is not None, T0) == "ready"]
        queued = [j for j in (await uow.queue.claim_queued(await _queued_ids(uow)))[0] if j.status == "queued"]
        return sorted((d.job_id, d.printer_id) for d in match(queued, ready))

    async def actual(uow: UnitOfWork) -> list[Any]:
        done = await run_matching_pass(RunMatchingPass(), uow, Deps(clock=lambda: T0))
        return sorted((d.job_id, d.printer_id) for d in done)

    async with unit_of_work(sessions) as uow:
        wanted = await expected(uow)
    dispatched = await in_transaction(sessions, actual)
    assert wanted and dispatched == wanted
    async with unit_of_work(sessions) as uow:
        pinned = await uow.session.scalar(
            sa.text(
                "SELECT count(*) FROM jobs WHERE status = 'assigned' AND assignment ->> 'mode' = 'printer'"
                " AND assignment ->> 'printer_id' = printer_id AND order_id LIKE :orders"
            ),
            {"orders": f"m%-{tag}"},
        )
    assert pinned, "some dispatches are of pinned jobs"


async def test_the_dispatches_of_a_pass_saved_in_one_statement_read_back_as_dispatched(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """`save_dispatched` writes only the columns a dispatch changes: what it wrote reads back as the whole job
    `lifecycle.dispatch` made, sliced file included."""
    rng = random.Random(11)
    await handlers.reconcile_order(messages.reconcile_order(request("sd", 1, rng)), unit_of_work(sessions), Deps())
    policy = Deps().policy

    async def dispatch_all(uow: UnitOfWork) -> list[Job]:
        ids = [j.id for j in await uow.queue.jobs_of_order("sd") if j.status == "queued"]
        claimed, _ = await uow.queue.claim_queued(ids)
        for i, job in enumerate(claimed):
            if i % 2:
                job.sliced_file = {"slice_key": f"k{i}", "file": {"kind": "gcode", "sha256": "b" * 64}, "grams": 1.5}
            lifecycle.dispatch(job, f"sd-p{i}", f"cmd-{i}", T0 + timedelta(seconds=i), policy)
        await uow.queue.save_dispatched(claimed)
        return claimed

    dispatched = await in_transaction(sessions, dispatch_all)

    async def read_back(uow: UnitOfWork) -> list[Job | None]:
        return [await uow.queue.get_job(job.id) for job in dispatched]

    assert len(dispatched) > 2
    assert await in_transaction(sessions, read_back) == dispatched


async def test_a_claim_reads_the_trace_each_order_of_its_jobs_remembers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The dispatches of a pass continue the trace of the click that made their order's jobs: the claim reads it
    with the jobs, for the orders that remember one."""
    rng = random.Random(13)
    for order_id in ("tr-a", "tr-b"):
        made = messages.reconcile_order(request(order_id, 1, rng))
        await handlers.reconcile_order(made, unit_of_work(sessions), Deps())
    traceparent = f"00-{'ab' * 16}-{'cd' * 8}-01"

    async def remember(uow: UnitOfWork) -> None:
        await uow.queue.remember_trace("tr-a", traceparent)

    await in_transaction(sessions, remember)
    async with unit_of_work(sessions) as uow:
        ids = [job.id for order_id in ("tr-a", "tr-b") for job in await uow.queue.jobs_of_order(order_id)]
        jobs, traces = await uow.queue.claim_queued(ids)
        await uow.rollback()
    assert sorted(job.id for job in jobs) == sorted(ids) and {job.order_id for job in jobs} == {"tr-a", "tr-b"}
    assert traces == {"tr-a": traceparent}


async def test_the_ready_printers_a_pass_reads_are_the_printers_as_saved(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A pass reads its ready printers by position with their JSON as text (`mappers.printers_from_records`):
    each reads as `get_printer` reads it, spools and tags shared between printers or not."""
    spools = (LoadedMaterial(0, "PLA", "000000FF", "Generic PLA"), LoadedMaterial(254, "PETG", None, None))
    fleet = [
        Printer(
            id=f"rd-{i}", name=f"Ready {i}", revision=i + 1, model=["X1C", "MK4"][i % 2],
            protocol=["bambu_lan", "prusalink"][i % 2], tags=[(), ("big", "ams")][i % 2], fabmatic=i == 2,
            online=True, state=["idle", "finished"][i % 2], bed_clear=True, materials=spools[: 1 + i % 2],
            idle_since=[None, T0 - timedelta(minutes=i)][i % 2], avoid_until=[None, T0 - timedelta(seconds=1)][i % 2],
            dispatch_misses=i % 2, updated_at=T0 + timedelta(seconds=i),
        )
        for i in range(4)
    ]

    async def save_fleet(uow: UnitOfWork) -> None:
        for printer in fleet:
            await uow.queue.save_printer(printer)

    await in_transaction(sessions, save_fleet)
    async with unit_of_work(sessions) as uow:
        ready = [p for p in await uow.queue.ready_printer_candidates(T0) if p.id.startswith("rd-")]
        saved = [await uow.queue.get_printer(p.id) for p in fleet]
    assert ready == saved and len(ready) == len(fleet)


@pytest.mark.parametrize("printers", [20, 45, 70])
async def test_a_pass_that_first_loads_a_share_of_each_group_decides_as_with_every_head(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, printers: int
) -> None:
    """With a spread so small that each group first loads only 16 heads, the pass (which loads again in full
    when a group so cut dispatched all it loaded) makes the pure decision over every queued job."""
    monkeypatch.setattr(matching_pass, "FIRST_SPREAD", 0.01)
    rng = random.Random(printers)
    kinds = [Material("SpreadCheck", color) for color in ("#000000", "#FFFFFF")]
    jobs = [
        Job(
            id=f"spread-{printers}-{i:03d}", order_id=f"spread-o{i // 7}", order_number="#s", line_item_id=f"l{i}",
            line_position=0, sku_id="s", sku="S", part_id="p", part_index=0, part_name="p", copy_number=1,
            material=rng.choice(kinds), parameters={}, file=FILE.model_dump(mode="json"),
            assignment=rng.choice([Assignment(), Assignment(), Assignment("tags", tags=("big",))]),
            order_created_at=T0 + timedelta(minutes=rng.randrange(50)), created_at=T0, updated_at=T0,
            priority=rng.choice(["normal", "low"]),
        )
        for i in range(150)
    ]
    fleet = [
        Printer(
            id=f"spread-{printers}-p{i}", name=f"S{i}", revision=1, online=True, state="idle", bed_clear=True,
            tags=rng.choice([(), ("big",)]),
            materials=(LoadedMaterial(0, "SpreadCheck", rng.choice(["000000FF", "FFFFFFFF"])),),
            idle_since=T0 - timedelta(seconds=rng.randrange(1000)),
        )
        for i in range(printers)
    ]
    group_probes: list[str] = []

    def count_group_probes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "shared(t, c, p, a, b, f) AS (" in statement:
            group_probes.append(statement)

    async with unit_of_work(sessions) as uow:
        await uow.queue.add_jobs(jobs)
        for made in fleet:
            await uow.queue.save_printer(made)
        ready = [p for p in await uow.queue.ready_printer_candidates(T0) if p.id.startswith(f"spread-{printers}-")]
        others, _ = await uow.queue.claim_queued(await _queued_ids(uow))
        expected = sorted((d.job_id, d.printer_id) for d in match(others, ready))
        engine = uow.session.bind.sync_engine  # type: ignore[union-attr]
        sa.event.listen(engine, "before_cursor_execute", count_group_probes)
        try:
            reloads: list[object] = []
            monkeypatch.setattr(uow.queue, "queued_groups", _recording(uow.queue.queued_groups, reloads))
            done = await matching_pass._pass(uow, Deps(clock=lambda: T0), assign=True)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count_group_probes)
        await uow.rollback()
    assert len(ready) == printers and expected
    # Loading again in full (a group's 16 heads all dispatched), the pass reuses the groups its first load found.
    assert len(reloads) == (1 if printers == 20 else 2) and len(group_probes) == 1
    # Printers of other tests hold other materials: their dispatches are no part of this comparison.
    assert sorted((d.job_id, d.printer_id) for d in done if d.printer_id.startswith(f"spread-{printers}-")) == expected


def _recording(method: Callable[..., Awaitable[Any]], calls: list[object]) -> Callable[..., Awaitable[Any]]:
    async def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await method(*args, **kwargs)

    return recorded


async def test_a_pass_s_claim_and_update_read_only_its_jobs_with_or_without_statistics() -> None:
    """A pass claims the jobs it chose by id, then writes them back. Right after a big order's jobs went in,
    before autoanalyze, PostgreSQL took `id = ANY(ids) AND status = 'queued'` as a scan of every queued job's
    partial index entries; with statistics, the UPDATE joined to its ids hashed the whole table (a sequential
    scan): either way a pass's cost grew with the queue. The claim must probe each id by primary key, the UPDATE
    join only the rows it updates."""
    jobs = [
        Job(
            id=f"stale-{i:05d}", order_id=f"stale-o{i // 50}", order_number="#st", line_item_id=f"l{i}",
            line_position=0, sku_id="s", sku="S", part_id="p", part_index=0, part_name="p", copy_number=1,
            material=Material("PLA"), parameters={}, file=FILE.model_dump(mode="json"), assignment=Assignment(),
            order_created_at=T0, created_at=T0, updated_at=T0,
        )
        for i in range(20_000)
    ]
    wanted = [job.id for job in jobs[::20]]
    async with migrated_database("queue_claim_plan", ALEMBIC_INI) as fresh:
        async with unit_of_work(fresh) as uow:
            await uow.queue.add_jobs(jobs)
            await uow.commit()
        for statistics in (False, True):
            if statistics:
                async with fresh() as session:
                    await session.execute(sa.text("ANALYZE jobs"))
                    await session.commit()
            async with unit_of_work(fresh) as uow:
                (claimed, _), claim_plan = await _with_plan(uow.session, uow.queue.claim_queued(wanted))
                for job in claimed:
                    lifecycle.dispatch(job, f"p-{job.id}", f"cmd-{job.id}", T0, Deps().policy)
                _, save_plan = await _with_plan(uow.session, uow.queue.save_dispatched(claimed))
                saved = [await uow.queue.get_job(job_id) for job_id in wanted]
                await uow.rollback()
            assert [job.id for job in claimed] == wanted and saved == claimed
            probes = [("Index Scan", "jobs_pkey", 1)] * len(wanted)
            assert _scans_of_jobs(claim_plan) == probes, (statistics, claim_plan)
            assert claim_plan["Shared Hit Blocks"] + claim_plan["Shared Read Blocks"] <= 10 * len(wanted), claim_plan
            # The UPDATE may scan the table (PostgreSQL's choice for 5 % of it), but joins only the rows it updates.
            assert sum(rows for _, _, rows in _scans_of_jobs(save_plan)) == len(wanted), (statistics, save_plan)


async def test_the_ready_printers_of_a_fleet_just_given_jobs_are_found_without_comparing_every_pair() -> None:
    """Right after a pass gave every idle printer a job (their reports still say idle), the statistics know
    no active job yet. Written as `NOT EXISTS` joins, PostgreSQL nested a loop over every active job inside
    the loop over the printers (10,000 x 10,000: a pass with nothing to do took 2-5 s). The whole fleet's
    query must stay linear: no plan node may handle more rows than a few times printers + active jobs."""
    size = 400
    printers = [
        Printer(id=f"wave-{i:04d}", name=f"W{i}", revision=1, online=True, state="idle", bed_clear=True,
                materials=(LoadedMaterial(0, "PLA", "#000000"),), idle_since=T0)
        for i in range(size)
    ]
    jobs = [
        Job(
            id=f"wave-job-{i:04d}", order_id="wave", order_number="#w", line_item_id=f"l{i}", line_position=0,
            sku_id="s", sku="S", part_id="p", part_index=0, part_name="p", copy_number=1, material=Material("PLA"),
            parameters={}, file=FILE.model_dump(mode="json"), assignment=Assignment(), order_created_at=T0,
            created_at=T0, updated_at=T0,
        )
        for i in range(size)
    ]
    async with migrated_database("queue_ready_plan", ALEMBIC_INI) as fresh:
        async with unit_of_work(fresh) as uow:
            await uow.queue.add_jobs(jobs)
            for printer in printers:
                await uow.queue.save_printer(printer)
            await uow.commit()
        async with fresh() as session:
            await session.execute(sa.text("ANALYZE jobs"))
            await session.execute(sa.text("ANALYZE printers"))
            await session.commit()
        async with unit_of_work(fresh) as uow:
            free = await uow.queue.ready_printer_candidates(T0)
            await uow.session.execute(
                sa.text(
                    "UPDATE jobs SET status = 'assigned', printer_id = 'wave-' || right(id, 4) WHERE order_id = 'wave'"
                )
            )
            busy, plan = await _with_plan(uow.session, uow.queue.ready_printer_candidates(T0))
            await uow.rollback()
    assert sorted(p.id for p in free) == [p.id for p in printers] and busy == []
    assert _rows_handled(plan) <= 4 * (size + size), plan


async def test_queued_jobs_pinned_or_not_are_found_after_the_queue_order_index_is_split() -> None:
    """Migration 0011 replaces the one queue-order index by one for jobs any printer may take and one for jobs
    pinned to a printer, led by its id. Jobs queued before it are found after it, a few ready printers see only
    the pinned jobs that are theirs, a whole fleet's walk finds the same, and it goes down and up again."""
    def job(number: int, assignment: Assignment) -> Job:
        return Job(
            id=f"split-{number}", order_id="split", order_number="#sp", line_item_id=f"l{number}", line_position=0,
            sku_id="s", sku="S", part_id="p", part_index=0, part_name="p", copy_number=1, material=Material("PLA"),
            parameters={}, file=FILE.model_dump(mode="json"), assignment=assignment, order_created_at=T0,
            created_at=T0, updated_at=T0,
        )

    jobs = [
        job(0, Assignment()), job(1, Assignment("tags", tags=("big",))), job(2, Assignment("printer", "pin-a")),
        job(3, Assignment("printer", "pin-b")), job(4, Assignment("printer", "pin-a")),
    ]
    ready = Fleet([
        Printer(id="pin-a", name="A", revision=1, online=True, state="idle", bed_clear=True, tags=("big",),
                materials=(LoadedMaterial(0, "PLA", "#000000"),), idle_since=T0)
    ])
    async with migrated_database("queue_split_index", ALEMBIC_INI) as fresh:
        url = fresh.kw["bind"].url.render_as_string(hide_password=False)
        config = _alembic_config(url)
        await asyncio.to_thread(command.downgrade, config, "0010")
        assert "ix_jobs_queue_order" in await _job_indexes(fresh)
        async with unit_of_work(fresh) as uow:
            await uow.queue.add_jobs(jobs)
            await uow.commit()
        await asyncio.to_thread(command.upgrade, config, "head")
        assert {"ix_jobs_queue_shared", "ix_jobs_queue_pinned"} <= await _job_indexes(fresh)
        for walk_every_pinned_group in (False, True):
            with pytest.MonkeyPatch.context() as patch:
                if walk_every_pinned_group:
                    patch.setattr(matching_queries, "PINNED_PROBES_UP_TO", 0)
                async with unit_of_work(fresh) as uow:
                    (groups, heads), _ = await uow.queue.queued_groups(ready)
                    await uow.rollback()
            # One ready printer: each group hands over its first job only.
            assert sorted(job_id for _, job_id in heads) == ["split-0", "split-1", "split-2"]
            modes = sorted((g.mode, g.printer_id) for g in groups)
            assert modes == [("next_available", None), ("printer", "pin-a"), ("tags", None)]
        await asyncio.to_thread(command.downgrade, config, "0010")
        assert "ix_jobs_queue_order" in await _job_indexes(fresh)
        await asyncio.to_thread(command.upgrade, config, "head")


def _alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _job_indexes(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        rows = await session.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'jobs'"))
        return {row[0] for row in rows}


def _rows_handled(plan: dict[str, Any]) -> int:
    """The most rows any one node of `plan` produced or discarded over all its loops."""
    own = int(plan.get("Actual Rows", 0)) * int(plan.get("Actual Loops", 1)) + int(
        plan.get("Rows Removed by Join Filter", 0)
    )
    return max([own, *(_rows_handled(child) for child in plan.get("Plans", []))])


def _scans_of_jobs(plan: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Each scan of table `jobs` in `plan` as it ran, once per loop: its kind, its index and the rows it gave."""
    found = []
    if plan.get("Relation Name") == "jobs" and "Scan" in plan["Node Type"]:
        found += [(plan["Node Type"], plan.get("Index Name", ""), int(plan["Actual Rows"]))] * int(plan["Actual Loops"])
    for child in plan.get("Plans", []):
        found += _scans_of_jobs(child)
    return found


async def _with_plan(session: AsyncSession, statement: Awaitable[Any]) -> tuple[Any, dict[str, Any]]:
    """What `statement` (one SQL statement on `session`) returns, and its plan as it ran (with the shared
    buffers it touched), from auto_explain enabled for it alone."""
    await session.execute(sa.text("SELECT 1"))  # the transaction begun on the driver, for SET LOCAL
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    notices: list[str] = []

    def listener(_: object, message: Any) -> None:
        notices.append(message.message)

    await driver.execute(
        "LOAD 'auto_explain'; SET LOCAL auto_explain.log_min_duration = 0; SET LOCAL auto_explain.log_analyze = on;"
        " SET LOCAL auto_explain.log_buffers = on; SET LOCAL auto_explain.log_format = 'json';"
        " SET LOCAL auto_explain.log_level = 'notice'"
    )
    driver.add_log_listener(listener)
    try:
        result = await statement
        await driver.execute("SET LOCAL auto_explain.log_min_duration = -1")
    finally:
        driver.remove_log_listener(listener)
    plans = [json.loads(n[n.index("{"):])["Plan"] for n in notices if '"Plan"' in n and "jobs" in n]
    assert len(plans) == 1, notices
    plan: dict[str, Any] = plans[0]
    return result, plan


async def _queued_ids(uow: UnitOfWork) -> list[str]:
    import sqlalchemy as sa

    rows = await uow.session.execute(sa.select(orm.jobs.c.id).where(orm.jobs.c.status == "queued"))
    return [r.id for r in rows]


async def test_the_unchanged_check_agrees_with_the_full_reconciliation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(11)
    message = request("u1", 1, rng)
    await handlers.reconcile_order(messages.reconcile_order(message), unit_of_work(sessions), Deps())
    same = replace(messages.desired_order(message), print_revision=2)
    edits = [
        same,
        replace(same, order_number="#renamed"),
        replace(same, fulfillment_date=date(2027, 1, 1)),
        replace(same, assignment=Assignment("printer", "p1")),
        replace(same, line_items=[replace(same.line_items[0], quantity=same.line_items[0].quantity + 1),
                                  *same.line_items[1:]]),
        replace(same, line_items=same.line_items[1:]),
        replace(same, line_items=[replace(same.line_items[0], parameters={"size": 99}), *same.line_items[1:]]),
        replace(same, line_items=[
            replace(same.line_items[0], parts=[replace(same.line_items[0].parts[0], material=Material("ASA"))]),
            *same.line_items[1:],
        ]),
    ]
    for edit in edits:
        runs = desired_runs(edit)
        assert runs is not None

        async def check(uow: UnitOfWork, edit: DesiredOrder = edit, runs: Any = runs) -> tuple[bool, bool]:
            sql = await uow.queue.jobs_already_match(edit, runs)
            jobs = await uow.queue.jobs_of_order(edit.order_id)
            full = reconcile_order_jobs(None, jobs, edit, T0, lambda: "new")
            assert full is not None
            return sql, not (full.added or full.changed or full.dirty or full.cancelled)

        async with unit_of_work(sessions) as uow:
            sql, unchanged = await check(uow)
        assert sql == unchanged, edit
    async with unit_of_work(sessions) as uow:
        assert await uow.queue.jobs_already_match(same, desired_runs(same) or [])


async def test_the_order_summary_s_sliced_estimates_are_the_pure_summary_s(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(13)
    message = request("e1", 1, rng, lines=8)
    await handlers.reconcile_order(messages.reconcile_order(message), unit_of_work(sessions), Deps())

    async def slice_some(uow: UnitOfWork) -> None:
        jobs = await uow.queue.jobs_of_order("e1")
        for job in jobs:
            if rng.random() < 0.8:
                job.slice_basis = f"basis-{job.part_id}"
                sliced = rng.choice([None, {"grams": round(rng.uniform(1, 90), 2), "print_minutes": 30.0}])
                job.sliced_file = sliced
            if rng.random() < 0.15:
                job.status = "cancelled"
        await uow.queue.save_jobs(jobs)

    await in_transaction(sessions, slice_some)
    async with unit_of_work(sessions) as uow:
        sql = (await uow.queue.order_counts("e1")).estimates
        pure = summarize(await uow.queue.jobs_of_order("e1")).estimates
    assert sql and any(e.sliced_jobs for parts in sql.values() for e in parts)
    assert {k: [replace(e, grams=pytest.approx(e.grams)) for e in v] for k, v in sql.items()} == pure


async def test_a_big_order_by_copy_reads_back_as_the_jobs_written(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Jobs of a big order go in by COPY (records built per column), small batches by INSERT: both read back
    field for field as the domain's jobs, JSON columns and nulls included."""
    rng = random.Random(5)
    desired = messages.desired_order(request("copy-order", 1, rng, lines=40))
    desired = replace(desired, line_items=[replace(line, quantity=line.quantity * 12) for line in desired.line_items])
    counter = iter(range(1_000_000))
    result = reconcile_order_jobs(None, [], desired, T0, lambda: f"copy-{next(counter):07d}")
    assert result is not None
    jobs = result.added
    for index, job in enumerate(jobs):
        if index % 3 == 0:
            job.slice_basis, job.sliced_file = f"basis-{index % 7}", {"file": None, "targets": [index % 5, True, 1.5]}
        if index % 4 == 0:
            job.parameters = {"size": index, "flag": index % 8 == 0, "ratio": index / 7, "label": None}
        if index % 5 == 0:
            job.priority, job.error, job.progress_percent = "high", f"note {index}", 12.5
    small = [replace(job, id=f"small-{job.id}", order_id="copy-order-small") for job in jobs[:50]]
    assert len(jobs) >= 600 > 50

    async def write(uow: UnitOfWork) -> None:
        await uow.queue.add_jobs(jobs)
        await uow.queue.add_jobs(small)

    await in_transaction(sessions, write)
    async with unit_of_work(sessions) as uow:
        stored = await uow.queue.jobs_of_order("copy-order")
        stored_small = await uow.queue.jobs_of_order("copy-order-small")
    assert sorted(stored, key=lambda j: j.id) == sorted(jobs, key=lambda j: j.id)
    assert sorted(stored_small, key=lambda j: j.id) == sorted(small, key=lambda j: j.id)


async def test_many_saved_jobs_by_copy_read_back_as_saved_and_leave_the_others_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Saving 500 or more jobs goes by COPY into a temporary table and one UPDATE from it (twice in one
    transaction too): every column of every saved job reads back as saved, and jobs not saved keep theirs."""
    rng = random.Random(8)
    desired = messages.desired_order(request("save-order", 1, rng, lines=40))
    desired = replace(desired, line_items=[replace(line, quantity=line.quantity * 12) for line in desired.line_items])
    counter = iter(range(1_000_000))
    result = reconcile_order_jobs(None, [], desired, T0, lambda: f"save-{next(counter):07d}")
    assert result is not None
    await in_transaction(sessions, lambda uow: uow.queue.add_jobs(result.added))
    async with unit_of_work(sessions) as uow:
        stored = await uow.queue.jobs_of_order("save-order")
    kept, saved = stored[:40], stored[40:]
    assert len(saved) >= 2 * 500
    for index, job in enumerate(saved):
        job.status, job.wanted, job.revision = ("cancelled", False, job.revision + 1) if index % 2 else (
            "failed", True, job.revision + 2)
        job.error, job.finished_at = f"reason {index}", T0 + timedelta(seconds=index)
        job.parameters = {"size": index, "flag": index % 3 == 0, "ratio": index / 7, "label": None}
        job.sliced_file = {"file": None, "targets": [index % 5, True, 1.5]} if index % 4 == 0 else None
        job.printer_id, job.priority = (f"printer-{index}", "high") if index % 5 == 0 else (None, "normal")
    half = len(saved) // 2

    async def save(uow: UnitOfWork) -> None:
        await uow.queue.jobs_of_order("save-order", for_update=True)
        await uow.queue.save_jobs(saved[:half])
        await uow.queue.save_jobs(saved[half:])

    await in_transaction(sessions, save)
    async with unit_of_work(sessions) as uow:
        after = await uow.queue.jobs_of_order("save-order")
    assert after == sorted(kept + saved, key=lambda j: j.id)


async def test_a_consumer_s_handler_joins_the_bus_s_transaction_and_the_matcher_wakes_after_its_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """As `Bus.consume` applies a delivery: its unit of work claims the envelope and is handed to the handler,
    whose own block and commit join it; the bus's commit then commits the jobs with the inbox mark, and only
    then is the matcher woken."""
    wakes: list[int] = []
    bus_frame = UnitOfWork(
        wake_matcher=lambda: wakes.append(1), sessions=sessions, outbox=Outbox(orm.outbox, source="/test"),
        inbox=Inbox(orm.inbox),
    )
    message = request("inbox-order", 1, random.Random(3), lines=1)
    async with bus_frame:
        assert await bus_frame.claim_inbox("queue__print_requested", "delivery-1")
        result = await handlers.reconcile_order(messages.reconcile_order(message), bus_frame, Deps())
        assert result is not None and result.added
        async with unit_of_work(sessions) as other:
            assert await other.queue.jobs_of_order("inbox-order") == [], "the bus's frame commits, not the handler"
        assert wakes == [], "no matching pass before the jobs are committed"
        await bus_frame.commit()
    assert wakes == [1]
    async with unit_of_work(sessions) as after:
        assert len(await after.queue.jobs_of_order("inbox-order")) == len(result.added)
        assert not await after.claim_inbox("queue__print_requested", "delivery-1"), "the mark with the jobs"


async def test_a_pass_for_one_printer_reads_what_the_pure_decision_for_it_needs_in_one_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A printer turning ready gets a pass of its own: `queued_groups` reads the groups, each one's head and their
    completed slices in one statement for it. For each printer alone, what that decides is what `match` decides
    over every queued job (groups it cannot fit, pinned ones, slices for another model and none included)."""
    rng = random.Random(11)
    for n in range(8):
        message = request(f"one-{n}", 1, rng)
        await handlers.reconcile_order(messages.reconcile_order(message), unit_of_work(sessions), Deps())
    bases = ["one-basis-a", "one-basis-b", "one-basis-c"]
    fleet = [
        Printer(
            id=f"one-p{i}", name=f"O{i}", revision=1, online=True, state="idle", bed_clear=True,
            model=rng.choice(["X1C", "P1S"]), tags=rng.choice([(), ("big",)]),
            materials=tuple(LoadedMaterial(s, rng.choice(TYPES), rng.choice(["000000FF", "FFFFFFFF"])) for s in (0, 1)),
            idle_since=T0 - timedelta(seconds=i),
        )
        for i in range(12)
    ]

    async with unit_of_work(sessions) as uow:  # rolled back: the other tests' slicing sees none of this
        claimed, _ = await uow.queue.claim_queued(await _queued_ids(uow))
        jobs = [j for j in claimed if j.order_id.startswith("one-")]
        for job in jobs:
            job.slice_basis = rng.choice([None, *bases])
            if rng.random() < 0.2:
                job.assignment = Assignment("printer", printer_id=rng.choice(fleet).id)
        await uow.queue.save_jobs(jobs)
        for basis, model in [("one-basis-a", "X1C"), ("one-basis-a", "P1S"), ("one-basis-b", "X1C")]:
            await uow.queue.add_slice(Slice(
                key=f"{basis}-{model}", basis=basis, printer_model=model, fabmatic=False, source={}, parameters={},
                material=Material("PLA"), requested_at=T0, state="completed", file={"kind": "gcode.3mf"},
            ))
        queued = [j for j in (await uow.queue.claim_queued(await _queued_ids(uow)))[0] if j.status == "queued"]
        sliced = await uow.queue.sliced_targets(bases)
        decided = 0
        for printer in fleet:
            one = Fleet([printer])
            candidates, cut = await uow.queue.queued_groups(one, 0.0, matching_pass.FIRST_SPREAD)
            found = [(d.job_id, d.printer_id) for d in decide(candidates, one)]
            assert (found, cut) == ([(d.job_id, d.printer_id) for d in match(queued, [printer], sliced)], [])
            decided += len(found)
        await uow.rollback()
    assert sliced and decided


def _ready_message(printer_id: str, material: str, state: str = "idle", revision: int = 1) -> RecordPrinter:
    return messages.record_printer(PrinterChanged(
        id=printer_id, name=printer_id, model="P1S", online=True, state=state, bed_clear=True,
        materials=[LoadedMaterialMessage(slot=254, type=material)], idle_since=T0, revision=revision, updated_at=T0,
    ))


@pytest.mark.parametrize("known", [False, True], ids=["new printer", "known printer"])
@pytest.mark.parametrize("held", ["nothing", "matching lock", "job row"])
async def test_a_printer_turning_ready_is_dispatched_in_its_own_transaction_without_waiting_for_a_lock(
    sessions: async_sessionmaker[AsyncSession], held: str, known: bool,
) -> None:
    """The PrinterChanged consumer's pass for the printer it made ready holds the printer's row, so it never
    waits: with the matching lock or the job's row held elsewhere it leaves the printer to the loop's pass
    (woken after commit); otherwise the start command commits with the printer and only the forecast wakes. A
    known printer is saved by the pass's lock statement: saved whatever the lock did."""
    material = f"readycheck-{held.replace(' ', '-')}-{'known' if known else 'new'}"
    printer_id = f"ready-printer-{material}"
    if known:
        busy = _ready_message(printer_id, material, state="printing")
        await handlers.record_printer(busy, unit_of_work(sessions), Deps())
    job = Job(
        id=f"ready-job-{material}", order_id=f"ready-order-{material}", order_number="#r", line_item_id="l",
        line_position=0, sku_id="s", sku="S", part_id="p", part_index=0, part_name="p", copy_number=1,
        material=Material(material), parameters={}, file=FILE.model_dump(mode="json"), assignment=Assignment(),
        order_created_at=T0, created_at=T0, updated_at=T0,
    )
    await in_transaction(sessions, lambda uow: uow.queue.add_jobs([job]))
    wakes: list[str] = []
    consumer = UnitOfWork(
        wake_matcher=lambda: wakes.append("matcher"), wake_forecaster=lambda: wakes.append("forecast"),
        sessions=sessions, outbox=Outbox(orm.outbox, source="/test"), inbox=Inbox(orm.inbox),
    )
    async with unit_of_work(sessions) as other:
        if held == "matching lock":
            await other.queue.lock_matching()
        elif held == "job row":
            assert await other.queue.get_job(job.id, for_update=True) is not None
        async with consumer:
            assert await consumer.claim_inbox("queue__printer_changed", f"ready-{material}")
            command = _ready_message(printer_id, material, revision=2 if known else 1)
            done = await asyncio.wait_for(handlers.record_printer_and_dispatch(command, consumer, Deps()), 30)
            await consumer.commit()
        await other.rollback()
    async with unit_of_work(sessions) as after:
        found = await after.queue.get_job(job.id)
        assert await after.queue.get_printer(printer_id) == command.printer
        t = orm.outbox
        starts = await after.session.scalar(
            sa.select(sa.func.count()).where(
                t.c.subject == StartPrint.SUBJECT, t.c.envelope["subject"].astext == job.id
            )
        )
    assert found is not None
    if held == "nothing":
        assert done is not None and [d.job_id for d in done.dispatched] == [job.id]
        assert (starts, found.status, wakes) == (1, "assigned", ["forecast"])
    else:
        assert (done, starts, found.status, wakes) == (None, 0, "queued", ["matcher"])


@pytest.mark.parametrize(
    ("case", "free"),
    [("no job", True), ("our active job", False), ("reports a finished job", True),
     ("reports an unfinished job", False), ("reports an unknown job", False)],
)
async def test_a_printer_saved_with_the_pass_s_lock_is_free_as_the_ready_query_says(
    sessions: async_sessionmaker[AsyncSession], case: str, free: bool,
) -> None:
    """The statement that saves a known printer turning ready and tries the pass's lock also says whether a job
    holds it, as `ready_printer_candidates` would once the save is visible."""
    material = f"freecheck-{case.replace(' ', '-')}"
    printer = replace(_ready_message(f"free-printer-{material}", material).printer, revision=2)
    job = Job(
        id=f"free-job-{material}", order_id=f"free-order-{material}", order_number="#f", line_item_id="l",
        line_position=0, sku_id="s", sku="S", part_id="p", part_index=0, part_name="p", copy_number=1,
        material=Material(material), parameters={}, file=FILE.model_dump(mode="json"), assignment=Assignment(),
        order_created_at=T0, created_at=T0, updated_at=T0,
        status="printing" if case in ("our active job", "reports an unfinished job") else "completed",
        printer_id=printer.id if case == "our active job" else None,
    )
    if case.startswith("reports"):
        printer = replace(printer, current_job_id="nobody's job" if case.endswith("unknown job") else job.id)
    async with unit_of_work(sessions) as uow:
        await uow.queue.add_jobs([job])
        await uow.queue.save_printer(replace(printer, state="printing", revision=1))
        saved = await uow.queue.save_printer_and_try_lock_matching(printer)
        candidates = await uow.queue.ready_printer_candidates(T0, printer.id)
        assert await uow.queue.get_printer(printer.id) == printer
        await uow.rollback()
    assert saved == (FarmSettings(), free)
    assert candidates == ([printer] if free else [])


async def test_a_printer_s_read_carries_its_delivery_s_inbox_claim_and_refuses_a_duplicate(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The PrinterChanged consumer leaves the inbox claim to the printer's read (`claim_in_handler`): the first
    delivery records the printer with its mark; the same message again raises `DuplicateDelivery` at that read,
    before anything changed."""
    command = _ready_message("claimed-printer", "claimcheck")

    async def deliver(uow: UnitOfWork) -> None:
        uow.inbox_claim = InboxClaim("queue__printer_changed", "claimed-message")
        await handlers.record_printer_and_dispatch(command, uow, Deps())
        assert uow.inbox_claim.claimed

    await in_transaction(sessions, deliver)
    with pytest.raises(DuplicateDelivery):
        await in_transaction(sessions, deliver)
    async with unit_of_work(sessions) as uow:
        assert await uow.queue.get_printer("claimed-printer") == command.printer
        assert not await uow.claim_inbox("queue__printer_changed", "claimed-message")


ORDER_CHECK_TYPE = "ordercheck"
"""A material no other test here queues: the groups `queued_groups` finds for it are the property's alone."""
_SAME_INSTANT_ELSEWHERE = T0.astimezone(timezone(timedelta(hours=5)))
_INSTANTS = [T0, _SAME_INSTANT_ELSEWHERE, T0 + timedelta(microseconds=1), T0 - timedelta(microseconds=1),
             T0 + timedelta(days=1)]
_TEXT = "aAbB_-9éßΩ😀"
"""Case, punctuation and characters beyond ASCII (one beyond the BMP): ids compare by code point in Python,
which only a byte-wise collation reproduces."""


@st.composite
def _queued_jobs(draw: st.DrawFn) -> list[Job]:
    ids = draw(st.lists(st.text(_TEXT, min_size=1, max_size=3), min_size=1, max_size=30, unique=True))
    small = st.integers(0, 2)
    return [
        Job(
            id=job_id, order_id=draw(st.text(_TEXT, min_size=1, max_size=2)), order_number="#check",
            line_item_id=f"line-{index}", line_position=draw(small), sku_id="sku", sku="SKU", part_id="part",
            part_index=draw(small), part_name="part", copy_number=draw(small),
            material=Material(draw(st.sampled_from([ORDER_CHECK_TYPE, " OrderCheck"])),
                              draw(st.sampled_from([None, "#000000"]))),
            parameters={}, file={"kind": FILE.kind}, assignment=Assignment(),
            order_created_at=draw(st.sampled_from(_INSTANTS)), created_at=draw(st.sampled_from(_INSTANTS)),
            updated_at=T0, fulfillment_date=draw(st.sampled_from([None, date(2026, 3, 1), date(2026, 3, 2), date.max])),
            priority=draw(st.sampled_from(["normal", "low"])),
        )
        for index, job_id in enumerate(ids)
    ]


@settings(max_examples=200, deadline=None)
@given(jobs=_queued_jobs(), printers=st.integers(1, 31))
async def test_the_queue_heads_sql_takes_each_group_s_first_jobs_in_the_domain_s_queue_order(
    sessions: async_sessionmaker[AsyncSession], jobs: list[Job], printers: int,
) -> None:
    """Matching loads only the first jobs of each requirement group, in SQL; the domain orders them by
    `matching.job_order`. With `printers` ready ones fitting every group, each group's first `printers` jobs
    by `job_order` are what the SQL loads (ties on every field but the id included)."""
    ready = [
        Printer(id=f"check-{i}", name=f"C{i}", revision=1, online=True, state="idle", bed_clear=True,
                materials=(LoadedMaterial(0, ORDER_CHECK_TYPE, "#000000"),))
        for i in range(printers)
    ]
    async with unit_of_work(sessions) as uow:
        await uow.queue.add_jobs(jobs)
        (groups, queue), cut = await uow.queue.queued_groups(Fleet(ready))
        await uow.rollback()
    assert cut == []
    assert len({requirement.color for requirement in groups}) == len(groups), "one group per colour"
    by_id = {job.id: job for job in jobs}
    expected: list[tuple[int, str]] = []
    for index, requirement in enumerate(groups):
        group = [job for job in jobs if rgb(job.material.color) == requirement.color]
        expected.extend((index, job.id) for job in sorted(group, key=job_order)[:printers])
    assert sorted(queue, key=lambda loaded: job_order(by_id[loaded[1]])) == queue, "merged in queue order"
    assert sorted(queue) == sorted(expected)


async def test_the_pass_s_lock_returns_the_farm_settings_read_in_the_same_round_trip(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(sessions) as uow:
        assert await uow.queue.lock_matching() == await uow.queue.farm_settings()
        await uow.queue.save_farm_settings(FarmSettings(color_tolerance=7.5), T0)
        assert await uow.queue.lock_matching() == FarmSettings(color_tolerance=7.5)
        # not committed: the other tests keep the default settings


async def test_the_forecast_reads_its_open_jobs_handing_the_event_loop_back_between_fetches(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forecast shares its process with the consumers: turning every open job into a `Job` at once held the
    event loop while a printer turning ready waited. It reads them `JOBS_PER_FETCH` at a time, all of them."""
    desired = messages.desired_order(request("forecast-order", 1, random.Random(8), lines=40))
    desired = replace(desired, line_items=[replace(line, quantity=line.quantity * 12) for line in desired.line_items])
    counter = iter(range(1_000_000))
    result = reconcile_order_jobs(None, [], desired, T0, lambda: f"forecast-{next(counter):07d}")
    assert result is not None and len(result.added) > 1_000  # two fetches at least
    await in_transaction(sessions, lambda uow: uow.queue.add_jobs(result.added))

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []
    job_from_row = forecast_inputs.job_from_row

    def counted(row: Any) -> Job:
        seen.append(ticks)
        return job_from_row(row)

    monkeypatch.setattr(forecast_inputs, "job_from_row", counted)
    running = asyncio.create_task(ticker())
    try:
        async with unit_of_work(sessions) as uow:
            inputs = await forecast_inputs.load_forecast_inputs(uow.session)
            open_ids = (await uow.session.execute(sa.select(orm.jobs.c.id).where(orm.jobs.c.status.in_(OPEN)))).all()
    finally:
        running.cancel()
    assert sorted(job.id for job in inputs.jobs) == sorted(row.id for row in open_ids)
    assert {job.id: job for job in inputs.jobs if job.order_id == "forecast-order"} == {j.id: j for j in result.added}
    assert seen[-1] > seen[0], "the loop never ran between the first job and the last"


async def test_the_forecast_rereads_only_the_open_jobs_changed_since_its_last_read(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each row's version (`xmin`) tells which jobs changed, whoever changed them: those are read whole again,
    the others kept; what it returns is what a fresh read returns."""
    desired = messages.desired_order(request("versions-order", 1, random.Random(9), lines=8))
    counter = iter(range(1_000_000))
    result = reconcile_order_jobs(None, [], desired, T0, lambda: f"versions-{next(counter):07d}")
    assert result is not None and len(result.added) >= 3
    first, second, *_ = result.added
    await in_transaction(sessions, lambda uow: uow.queue.add_jobs(result.added))
    known = forecast_inputs.OpenJobs()

    async def read(jobs: forecast_inputs.OpenJobs) -> dict[str, Job]:
        async with unit_of_work(sessions) as uow:
            return {job.id: job for job in await jobs.read(uow.session)}

    before = await read(known)
    assert {job.id for job in result.added} <= before.keys()
    j = orm.jobs

    async def change(uow: UnitOfWork) -> None:
        await uow.session.execute(sa.update(j).where(j.c.id == first.id).values(priority="high"))
        await uow.session.execute(sa.update(j).where(j.c.id == second.id).values(status="cancelled"))
        await uow.queue.add_jobs([replace(first, id="versions-new", copy_number=99)])

    await in_transaction(sessions, change)
    read_whole: list[str] = []
    job_from_row = forecast_inputs.job_from_row

    def counted(row: Any) -> Job:
        read_whole.append(row.id)
        return job_from_row(row)

    monkeypatch.setattr(forecast_inputs, "job_from_row", counted)
    again = await read(known)
    assert sorted(read_whole) == sorted([first.id, "versions-new"])
    assert again[first.id].priority == "high" and second.id not in again and "versions-new" in again
    monkeypatch.undo()
    assert again == await read(forecast_inputs.OpenJobs())
