"""Printer utilisation: each printer's time printing, paused, idle, in error and offline over a window,
from the state changes the gateway records as it folds status reports in. Pure functions, so they are
tested without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from printer_gateway.domain.printer_status import PrinterStatus

UtilisationState = Literal["printing", "paused", "idle", "error", "offline"]
STATES: tuple[UtilisationState, ...] = ("printing", "paused", "idle", "error", "offline")


def utilisation_state(status: PrinterStatus) -> UtilisationState:
    """A finished print waiting for its bed to be cleared is idle time: the printer prints nothing."""
    if not status.online or status.state == "offline":
        return "offline"
    if status.state in ("printing", "paused", "error"):
        return status.state
    return "idle"


@dataclass(frozen=True)
class StateChange:
    printer_id: str
    state: UtilisationState
    at: datetime


def state_seconds(
    changes: Iterable[StateChange], since: datetime, until: datetime
) -> dict[str, dict[UtilisationState, float]]:
    """Seconds in each state within [since, until), per printer. Each change lasts until the printer's next
    one (or `until`); the last change before `since` says what the window starts in. Time before a
    printer's first recorded change is unknown and not counted."""
    by_printer: dict[str, list[StateChange]] = defaultdict(list)
    for change in changes:
        by_printer[change.printer_id].append(change)
    out: dict[str, dict[UtilisationState, float]] = {}
    for printer_id, history in by_printer.items():
        history.sort(key=lambda c: c.at)
        seconds: dict[UtilisationState, float] = dict.fromkeys(STATES, 0.0)
        for change, following in zip(history, [*history[1:], None], strict=True):
            start = max(change.at, since)
            end = min(following.at if following is not None else until, until)
            if end > start:
                seconds[change.state] += (end - start).total_seconds()
        out[printer_id] = seconds
    return out


def utilisation_percent(seconds: dict[UtilisationState, float]) -> float | None:
    """Printing time over all known time; None when nothing is known of the window."""
    known = sum(seconds.values())
    return round(100.0 * seconds.get("printing", 0.0) / known, 2) if known > 0 else None
