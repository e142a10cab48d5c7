"""Reads that change nothing: each opens its own unit of work and hands back domain objects."""

from __future__ import annotations

from datetime import datetime

from printer_gateway.domain.model import Printer
from printer_gateway.domain.utilisation import StateChange
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork

NAMES_PAGE = 500


async def printer(printer_id: str, uow: PrinterGatewayUnitOfWork) -> Printer | None:
    async with uow:
        return await uow.printers.get(printer_id)


async def printers(
    tag: str | None, after: tuple[str, str] | None, limit: int, uow: PrinterGatewayUnitOfWork
) -> list[Printer]:
    """Live printers by name then id, after the position `after` (a page's last name and id)."""
    async with uow:
        return await uow.printers.list(tag=tag, after=after, limit=limit)


async def state_history(
    since: datetime, until: datetime, uow: PrinterGatewayUnitOfWork
) -> tuple[tuple[StateChange, ...], list[tuple[str, str]]]:
    """The utilisation states recorded for [since, until) and every live printer's id and name, read in one
    transaction so the two agree."""
    async with uow:
        history = await uow.printers.state_history(since, until)
        names: list[tuple[str, str]] = []
        after: tuple[str, str] | None = None
        while True:
            page = await uow.printers.list(tag=None, after=after, limit=NAMES_PAGE)
            names += [(p.id, p.name) for p in page]
            if len(page) < NAMES_PAGE:
                break
            after = (page[-1].name, page[-1].id)
    return history, names
