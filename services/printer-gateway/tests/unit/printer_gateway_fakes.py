"""The printer gateway's repository and unit of work in memory: the service layer's tests run on these, without I/O."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from printer_gateway.adapters.repository import StaleLease
from printer_gateway.domain.model import Printer
from printer_gateway.domain.utilisation import StateChange, UtilisationState
from servicekit.testing import FakeUnitOfWork


@dataclass
class GatewayState:
    """What the gateway's database holds: printers (deleted ones too), their encrypted secrets, state history."""

    printers: dict[str, Printer] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)
    states: list[StateChange] = field(default_factory=list)


class InMemoryPrinterRepository:
    """`adapters.repository.PrinterRepository`'s answers over a `GatewayState`."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def add(self, printer: Printer, access_code_encrypted: bytes) -> None:
        self.state.printers[printer.id] = copy.deepcopy(printer)
        self.state.secrets[printer.id] = access_code_encrypted

    async def get(self, printer_id: str, *, for_update: bool = False) -> Printer | None:
        found = self.state.printers.get(printer_id)
        return copy.deepcopy(found) if found is not None and not found.deleted else None

    async def get_many(self, printer_ids: Sequence[str], *, for_update: bool = False) -> dict[str, Printer]:
        return {i: p for i in sorted(set(printer_ids)) if (p := await self.get(i)) is not None}

    async def serial_taken(self, serial: str, except_id: str | None = None) -> str | None:
        return next(
            (p.id for p in self.state.printers.values() if p.serial == serial and not p.deleted and p.id != except_id),
            None,
        )

    async def list(self, *, tag: str | None, after: tuple[str, str] | None, limit: int) -> list[Printer]:
        live = sorted(
            (p for p in self.state.printers.values() if not p.deleted and (tag is None or tag in p.tags)),
            key=lambda p: (p.name, p.id),
        )
        return [copy.deepcopy(p) for p in live if after is None or (p.name, p.id) > after][:limit]

    async def connection_details(self, printer_ids: Sequence[str]) -> dict[str, tuple[Printer, bytes]]:
        return {
            i: (copy.deepcopy(self.state.printers[i]), self.state.secrets[i])
            for i in printer_ids
            if i in self.state.printers and not self.state.printers[i].deleted
        }

    async def encrypted_secret(self, printer_id: str) -> bytes | None:
        return self.state.secrets.get(printer_id)

    async def encrypted_access_codes(self) -> dict[str, bytes]:
        return dict(self.state.secrets)

    async def replace_access_code(self, printer_id: str, old: bytes, new: bytes) -> bool:
        if self.state.secrets.get(printer_id) != old:
            return False
        self.state.secrets[printer_id] = new
        return True

    async def save(self, printer: Printer, *, access_code_encrypted: bytes | None = None) -> None:
        self.state.printers[printer.id] = copy.deepcopy(printer)
        if access_code_encrypted is not None:
            self.state.secrets[printer.id] = access_code_encrypted

    async def save_fenced(self, printer: Printer, epoch: int) -> None:
        held = self.state.printers.get(printer.id)
        if held is None or held.lease_epoch > epoch:
            raise StaleLease(printer.id)
        self.state.printers[printer.id] = copy.deepcopy(printer)
        self.state.printers[printer.id].lease_epoch = epoch

    async def save_many_fenced(self, saves: Sequence[tuple[Printer, int]]) -> None:
        for printer, epoch in saves:
            held = self.state.printers.get(printer.id)
            if held is not None and held.lease_epoch <= epoch:
                self.state.printers[printer.id] = copy.deepcopy(printer)
                self.state.printers[printer.id].lease_epoch = epoch

    async def record_state(self, printer_id: str, state: UtilisationState, at: datetime) -> None:
        self.state.states.append(StateChange(printer_id, state, at))

    async def record_states(self, changes: Sequence[StateChange]) -> None:
        self.state.states.extend(changes)


class InMemoryUnitOfWork(FakeUnitOfWork[GatewayState]):
    """servicekit's fake unit of work over the gateway's state: only committed work is kept. Units of work made
    with `sharing` see the same database (state, inbox marks and committed messages), as SQL ones would."""

    def __init__(self, state: GatewayState | None = None, *, sharing: InMemoryUnitOfWork | None = None) -> None:
        if sharing is not None:
            super().__init__(
                sharing.state,
                source="/services/printer-gateway",
                published=sharing.published,
                messages=sharing.messages,
                claimed=sharing.claimed,
            )
        else:
            super().__init__(state or GatewayState(), source="/services/printer-gateway")

    def _open(self) -> None:
        self.printers = InMemoryPrinterRepository(self.work)

    @property
    def committed(self) -> InMemoryPrinterRepository:
        return InMemoryPrinterRepository(self.state)
