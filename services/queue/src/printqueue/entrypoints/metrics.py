"""The queue's domain metrics: matching passes, dispatches and the jobs table by status."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from printqueue.adapters import orm
from servicekit.metrics import ServiceMetrics, set_labelled


class QueueMetrics:
    def __init__(self, metrics: ServiceMetrics, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.pass_duration = metrics.histogram(
            "printfarm_queue_matching_pass_duration_seconds",
            "One matching pass: `full` assigns printers, `deadlines` only expires overdue dispatches, `printer`"
            " assigns the one printer a PrinterChanged made ready (inside that message's transaction).",
            ["kind"],
        )
        self.last_pass = metrics.gauge(
            "printfarm_queue_matching_last_full_pass_timestamp_seconds",
            "Unix time this replica last finished a full matching pass.",
        )
        self.dispatched = metrics.counter(
            "printfarm_queue_jobs_dispatched_total", "Jobs given to a printer (start_print sent)."
        )
        self.failed_passes = metrics.counter("printfarm_queue_matching_pass_failures_total", "Passes that raised.")
        self.jobs = metrics.gauge("printfarm_queue_jobs", "Jobs by status (the service's whole table).", ["status"])
        self._statuses: set[tuple[str, ...]] = set()
        metrics.on_scrape("queue_jobs", self.refresh)

    def observe_pass(self, seconds: float, dispatched: int, *, full: bool) -> None:
        self.pass_duration.labels("full" if full else "deadlines").observe(seconds)
        self.dispatched.inc(dispatched)
        if full:
            self.last_pass.set(time.time())

    def observe_printer_pass(self, seconds: float, dispatched: int) -> None:
        self.pass_duration.labels("printer").observe(seconds)
        self.dispatched.inc(dispatched)

    async def refresh(self) -> None:
        t = orm.jobs
        async with self.sessions() as session:
            rows = await session.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status))
            counts: dict[tuple[str, ...], float] = {(str(status),): float(n) for status, n in rows}
        set_labelled(self.jobs, counts, self._statuses)
