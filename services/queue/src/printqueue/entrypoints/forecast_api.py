"""`GET /api/v1/forecast`: the whole farm's production forecast (API.md, "Orders" → forecast)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from printqueue.domain.forecast import Forecast
from printqueue.entrypoints.forecast_loop import ForecastLoop


class OrderForecastOut(BaseModel):
    order_id: str
    completes_at: datetime | None = Field(description="When the order's last open job is expected to end; "
                                                      "null while something blocks it.")
    late: bool = Field(description="Expected to complete after the end of its fulfilment date (UTC), or blocked "
                                   "while it has one.")
    blocked_by: str | None = Field(None, description="What stops the order if nothing can print a job of it.")


class ForecastSlotOut(BaseModel):
    job_id: str
    order_id: str
    starts_at: datetime
    ends_at: datetime


class PrinterTimelineOut(BaseModel):
    printer_id: str
    jobs: list[ForecastSlotOut]


class ForecastOut(BaseModel):
    generated_at: datetime
    orders: list[OrderForecastOut]
    printers: list[PrinterTimelineOut]

    @classmethod
    def of(cls, forecast: Forecast) -> ForecastOut:
        return cls(
            generated_at=forecast.generated_at,
            orders=[
                OrderForecastOut(order_id=o.order_id, completes_at=o.completes_at, late=o.late, blocked_by=o.blocked_by)
                for o in sorted(forecast.orders.values(), key=lambda o: o.order_id)
            ],
            printers=[
                PrinterTimelineOut(
                    printer_id=printer_id,
                    jobs=[
                        ForecastSlotOut(job_id=s.job_id, order_id=s.order_id, starts_at=s.starts_at, ends_at=s.ends_at)
                        for s in slots
                    ],
                )
                for printer_id, slots in sorted(forecast.by_printer().items())
            ],
        )


def router(loop: ForecastLoop) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["queue"])

    @api.get("/forecast", response_model=ForecastOut)
    async def get_forecast() -> ForecastOut:
        """The latest forecast (recomputed after every change that moves it, and every few seconds)."""
        return ForecastOut.of(await loop.current())

    return api
