"""The queue's replica of the fleet, and the lock that makes a new printer model and new sliceable jobs see
each other."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.mappers import printer_from_row, printer_values
from printqueue.domain.model import Printer
from servicekit.inbox import InboxClaim, claiming

FLEET_MODELS_LOCK_KEY = 0x534C_4943_4552  # "SLICER": the printer models slices are made for

# Built once: every PrinterChanged reads and writes its printer, and building these statements (and their
# cache keys) at each call cost more CPU than PostgreSQL spent running them.
_GET = sa.select(orm.printers).where(orm.printers.c.id == sa.bindparam("printer_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_FOR_UPDATE_CLAIMING = claiming(orm.inbox, _GET_FOR_UPDATE)
UPSERT_INTO = insert(orm.printers).values({c.name: sa.bindparam(c.name, type_=c.type) for c in orm.printers.c})
UPSERT = UPSERT_INTO.on_conflict_do_update(
    index_elements=[orm.printers.c.id],
    set_={c.name: UPSERT_INTO.excluded[c.name] for c in orm.printers.c if c.name != "id"},
)


class SqlPrinterRepository:
    """Printers as the queue knows them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_printer(
        self, printer_id: str, *, for_update: bool = False, inbox: InboxClaim | None = None
    ) -> Printer | None:
        """With `inbox` (a delivery's claim the bus left to its handler) and `for_update`, the same statement claims
        it first (raising `DuplicateDelivery` for a message applied already)."""
        if inbox is not None and for_update and not inbox.claimed:
            rows = await inbox.fetch(self.session, _GET_FOR_UPDATE_CLAIMING, {"printer_id": printer_id})
            return printer_from_row(rows[0]) if rows else None
        query = _GET_FOR_UPDATE if for_update else _GET
        row = (await self.session.execute(query, {"printer_id": printer_id})).first()
        return printer_from_row(row) if row is not None else None

    async def save_printer(self, printer: Printer) -> None:
        await self.session.execute(UPSERT, printer_values(printer))

    async def printers(self) -> list[Printer]:
        t = orm.printers
        rows = await self.session.execute(sa.select(t).where(t.c.deleted.is_(False)).order_by(t.c.name, t.c.id))
        return [printer_from_row(r) for r in rows]

    async def lock_fleet_models(self, *, exclusive: bool) -> None:
        """Jobs are sliced for the models of the printers known when they are made; a printer model that
        appears meanwhile must see those jobs. Makers of sliceable jobs hold this shared, a printer
        changing the models exclusively, so one of the two always sees the other."""
        lock = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        await self.session.execute(sa.select(lock(FLEET_MODELS_LOCK_KEY)))
