"""HTTP routes of the queue: requests become commands for the operator actions, or calls of the reads in
`service_layer.views` (both open their own unit of work); results become responses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from printqueue.adapters.views import JobFilter, JobSort
from printqueue.domain import analytics, commands
from printqueue.domain.model import FarmSettings
from printqueue.entrypoints.schemas import (
    AnalyticsBucketOut,
    FailureReasonOut,
    FarmSettingsIn,
    FarmSettingsOut,
    JobAnalyticsOut,
    JobOut,
    JobPatch,
    LoadedSlotOut,
    MatchingItem,
    MatchingOut,
    MaterialDemandOut,
    MaterialsOut,
    OrderLeadTimeOut,
    QueueWaitOut,
)
from printqueue.service_layer import operator_actions, views
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.documented import documented
from servicekit.pagination import Cursor, Limit, Page, bad_cursor, decode_cursor, encode_cursor
from servicekit.problems import Conflict, Invalid, NotFound

MAX_ORDERS = 200
"""The average covers every order; the listing only the newest this many."""
STATUSES = ("queued", "slicing", "assigned", "printing", "paused", "completed", "failed", "cancelled")


@contextlib.contextmanager
def problems() -> Iterator[None]:
    """A unique index refusing a second live job for one copy of a part is a conflict, not a crash (domain
    errors answer through servicekit's installer: they declare their status)."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict("another live job already prints this copy of the part") from exc


_ONE_STATUS = "(" + "|".join(STATUSES) + ")?"
StatusFilter = Annotated[
    str, Field(json_schema_extra=documented(pattern=rf"^\s*{_ONE_STATUS}\s*(,\s*{_ONE_STATUS}\s*)*$"))
]
"""A `status` value: statuses separated by commas (what `_statuses` accepts), stated in the OpenAPI document."""


def _statuses(raw: list[str] | None) -> list[str]:
    wanted = [s.strip() for value in raw or [] for s in value.split(",") if s.strip()]
    for status in wanted:
        if status not in STATUSES:
            raise Invalid.field("status", f"must be one of {', '.join(STATUSES)}")
    return wanted


def router(uow_factory: Callable[[], UnitOfWork], deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["queue"])

    @api.get("/jobs", response_model=Page[JobOut])
    async def list_jobs(
        limit: Limit = 50,
        cursor: Cursor = None,
        order_id: str | None = None,
        order_number: str | None = None,
        status: Annotated[list[StatusFilter] | None, Query()] = None,
        printer_id: str | None = None,
        sort: JobSort = "priority",
    ) -> Page[JobOut]:
        position = decode_cursor(cursor)
        after = None
        if position is not None:
            if position.get("sort") != sort or not isinstance(position.get("after"), list):
                raise bad_cursor("not a cursor of this listing and sort")
            after = position["after"]
        where = JobFilter(order_id, order_number, _statuses(status), printer_id)
        try:
            jobs, last = await views.jobs(where, sort, limit, after, uow_factory())
        except (ValueError, TypeError) as exc:
            raise bad_cursor("not a cursor of this listing and sort") from exc
        next_cursor = encode_cursor({"sort": sort, "after": last}) if last is not None else None
        return Page[JobOut](items=[JobOut.of(j) for j in jobs], next_cursor=next_cursor)

    @api.get("/jobs/{job_id}", response_model=JobOut)
    async def get_job(job_id: str) -> JobOut:
        job = await views.job(job_id, uow_factory())
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return JobOut.of(job)

    @api.get("/jobs/{job_id}/matching", response_model=MatchingOut)
    async def job_matching(job_id: str) -> MatchingOut:
        found = await views.job_matching(job_id, deps.clock, uow_factory())
        if found is None:
            raise NotFound(f"job {job_id} does not exist")
        return MatchingOut(
            job_id=found.job.id,
            status=found.job.status,
            color_tolerance=found.color_tolerance,
            items=[
                MatchingItem(
                    printer_id=v.printer_id, printer_name=v.printer_name, result=v.result, detail=v.detail,
                    color_distance=v.color_distance,
                )
                for v in found.verdicts
            ],
        )

    @api.post("/jobs/{job_id}/cancel", response_model=JobOut)
    async def cancel_job(job_id: str) -> JobOut:
        with problems():
            job = await operator_actions.cancel_job(commands.CancelJob(job_id), uow_factory(), deps)
        return JobOut.of(job)

    @api.post("/jobs/{job_id}/retry", response_model=JobOut)
    async def retry_job(job_id: str) -> JobOut:
        with problems():
            job = await operator_actions.retry_job(commands.RetryJob(job_id), uow_factory(), deps)
        return JobOut.of(job)

    @api.post("/jobs/{job_id}/fail", response_model=JobOut)
    async def reject_job(job_id: str) -> JobOut:
        with problems():
            job = await operator_actions.reject_job(commands.RejectJob(job_id), uow_factory(), deps)
        return JobOut.of(job)

    @api.patch("/jobs/{job_id}", response_model=JobOut)
    async def patch_job(job_id: str, body: JobPatch) -> JobOut:
        cmd = commands.SetJobPriority(job_id, body.priority)
        with problems():
            job = await operator_actions.set_job_priority(cmd, uow_factory(), deps)
        return JobOut.of(job)

    @api.get("/queue/settings", response_model=FarmSettingsOut)
    async def farm_settings() -> FarmSettingsOut:
        """The farm's matching settings (defaults until an operator sets them)."""
        settings = await views.farm_settings(uow_factory())
        return FarmSettingsOut(color_tolerance=settings.color_tolerance)

    @api.put("/queue/settings", response_model=FarmSettingsOut)
    async def set_farm_settings(body: FarmSettingsIn) -> FarmSettingsOut:
        """Operators: a wider colour tolerance lets waiting jobs take close colours at once."""
        tolerance = body.color_tolerance + 0.0  # -0.0 is 0
        cmd = commands.SetFarmSettings(FarmSettings(color_tolerance=tolerance))
        settings = await operator_actions.set_farm_settings(cmd, uow_factory(), deps)
        return FarmSettingsOut(color_tolerance=settings.color_tolerance)

    @api.get("/queue/materials", response_model=MaterialsOut)
    async def queue_materials() -> MaterialsOut:
        demand = await views.material_demand(uow_factory())
        return MaterialsOut(
            items=[
                MaterialDemandOut(
                    type=d.type,
                    color=d.color,
                    jobs_waiting=d.jobs_waiting,
                    grams_waiting=round(d.grams_waiting, 3),
                    printers_loaded=d.printers_loaded,
                    slots_loaded=[LoadedSlotOut(printer_id=p, slot=s) for p, s in d.slots_loaded],
                )
                for d in demand
            ]
        )

    @api.get("/analytics/jobs", response_model=JobAnalyticsOut)
    async def job_analytics(
        period: Annotated[
            analytics.Period, Query(description="The window ending now: 24 hours (hourly buckets), 7 or 30 days.")
        ] = "24h",
    ) -> JobAnalyticsOut:
        window = analytics.Window.ending(period, deps.clock())
        facts = await views.job_facts(window.since, window.until, uow_factory())
        figures = analytics.job_analytics(facts, window)
        return JobAnalyticsOut(
            period=period,
            since=window.since,
            until=window.until,
            bucket=window.bucket,
            series=[AnalyticsBucketOut(start=b.start, completed=b.completed, failed=b.failed, grams=b.grams)
                    for b in figures.series],
            completed=figures.completed,
            failed=figures.failed,
            grams=figures.grams,
            failure_reasons=[FailureReasonOut(reason=r.reason, count=r.count) for r in figures.failure_reasons],
            queue_wait=QueueWaitOut(
                jobs=figures.queue_wait.jobs,
                average_seconds=figures.queue_wait.average_seconds,
                max_seconds=figures.queue_wait.max_seconds,
            ),
            orders=[
                OrderLeadTimeOut(
                    order_id=o.order_id,
                    order_number=o.order_number,
                    clicked_at=o.clicked_at,
                    completed_at=o.completed_at,
                    seconds=o.seconds,
                )
                for o in figures.orders[:MAX_ORDERS]
            ],
            average_click_to_complete_seconds=figures.average_click_to_complete_seconds,
        )

    return api
