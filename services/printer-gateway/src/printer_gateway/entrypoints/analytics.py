"""`GET /api/v1/analytics/printers`: each printer's utilisation over 24 hours, 7 or 30 days, from the
state history the gateway records (API.md "Farm analytics")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from printer_gateway.domain.utilisation import STATES, state_seconds, utilisation_percent
from printer_gateway.service_layer import views
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.ids import Clock

Period = Literal["24h", "7d", "30d"]
PERIODS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class StateSecondsOut(BaseModel):
    printing: float = Field(ge=0)
    paused: float = Field(ge=0)
    idle: float = Field(ge=0, description="Online and not printing (a finished print awaiting bed clearing too).")
    error: float = Field(ge=0)
    offline: float = Field(ge=0)


class PrinterUtilisationOut(BaseModel):
    printer_id: str
    name: str
    seconds: StateSecondsOut = Field(description="Time in each state within the window; unknown time is left out.")
    utilisation_percent: float | None = Field(
        ge=0, le=100, description="Printing time over known time; null when nothing is known of the window."
    )


class PrinterAnalyticsOut(BaseModel):
    period: Period
    since: datetime
    until: datetime
    printers: list[PrinterUtilisationOut]


def router(uow_factory: Callable[[], PrinterGatewayUnitOfWork], clock: Clock) -> APIRouter:
    api = APIRouter(prefix="/api/v1/analytics", tags=["printers"])

    @api.get("/printers", response_model=PrinterAnalyticsOut)
    async def printer_analytics(
        period: Annotated[Period, Query(description="The window ending now: 24 hours, 7 or 30 days.")] = "24h",
    ) -> PrinterAnalyticsOut:
        until = clock()
        since = until - PERIODS[period]
        history, names = await views.state_history(since, until, uow_factory())
        seconds = state_seconds(history, since, until)
        printers = []
        for printer_id, name in names:
            spent = seconds.get(printer_id) or dict.fromkeys(STATES, 0.0)
            printers.append(
                PrinterUtilisationOut(
                    printer_id=printer_id,
                    name=name,
                    seconds=StateSecondsOut(**{state: round(value, 3) for state, value in spent.items()}),
                    utilisation_percent=utilisation_percent(spent),
                )
            )
        return PrinterAnalyticsOut(period=period, since=since, until=until, printers=printers)

    return api
