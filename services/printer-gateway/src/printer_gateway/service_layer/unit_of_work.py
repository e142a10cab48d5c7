"""The gateway's unit of work: printers plus the outbox and inbox in one transaction."""

from __future__ import annotations

from printer_gateway.adapters.repository import PrinterRepository
from servicekit.unit_of_work import SqlUnitOfWork


class PrinterGatewayUnitOfWork(SqlUnitOfWork):
    def _open(self) -> None:
        self.printers = PrinterRepository(self.session)
