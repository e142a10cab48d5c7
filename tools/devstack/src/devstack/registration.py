"""Registering the simulated printers through the public API, once: a restart adds nothing twice."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from devstack.errors import StackError
from devstack.simulator import SimulatorInfo


@dataclass(frozen=True)
class RegistrationReport:
    created: tuple[str, ...]
    already_registered: tuple[str, ...]


async def registered_serials(client: httpx.AsyncClient) -> set[str]:
    """Serials of every printer the gateway knows, following ``next_cursor`` across pages."""
    serials: set[str] = set()
    params: dict[str, str | int] = {"limit": 500}
    while True:
        response = await client.get("/api/v1/printers", params=params)
        if response.status_code != 200:
            raise StackError(f"GET /api/v1/printers answered {response.status_code}: {response.text[:500]}")
        page = response.json()
        serials.update(str(item["serial"]) for item in page["items"] if item.get("serial"))
        cursor = page.get("next_cursor")
        if not cursor:
            return serials
        params = {"limit": 500, "cursor": cursor}


async def register_printers(client: httpx.AsyncClient, sim: SimulatorInfo) -> RegistrationReport:
    known = await registered_serials(client)
    created, existing = [], []
    for printer in sim.printers:
        if printer.serial in known:
            existing.append(printer.name)
            continue
        response = await client.post("/api/v1/printers", json=printer.registration(sim.ca_cert))
        if response.status_code == 409:
            existing.append(printer.name)
        elif response.status_code in (200, 201):
            created.append(printer.name)
        else:
            # The request carried the access code: report the answer only.
            raise StackError(
                f"registering printer {printer.name} ({printer.serial}) answered "
                f"{response.status_code}: {response.text[:500]}"
            )
    return RegistrationReport(tuple(created), tuple(existing))
