"""Which status changes may be written late: progress only, never a state, error or material change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus

RUNNING = PrinterStatus(
    online=True,
    state="printing",
    gcode_state="RUNNING",
    progress_percent=10,
    remaining_minutes=50,
    layer=3,
    total_layers=40,
    prepare_percent=100,
    subtask_name="job-1",
    materials=(LoadedMaterial(0, "PLA", "#FFFFFF", "GFA00", 80),),
)


@pytest.mark.parametrize(
    "changes",
    [
        {"progress_percent": 11},
        {"remaining_minutes": 49},
        {"layer": 4, "progress_percent": 12, "remaining_minutes": 48},
        {"prepare_percent": 50},
    ],
)
def test_progress_counters_alone_are_progress(changes: dict[str, object]) -> None:
    assert RUNNING.differs_only_in_progress(replace(RUNNING, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"gcode_state": "PAUSE", "state": "paused"},
        {"gcode_state": "FINISH", "state": "finished", "progress_percent": 100},
        {"online": False, "state": "offline"},
        {"hms_codes": ("0700_2000_0002_0001",), "progress_percent": 11},
        {"subtask_name": "job-2"},
        {"error_reason": "developer mode off"},
        {"total_layers": 41},
        {"materials": (LoadedMaterial(0, "PETG", "#FFFFFF", "GFG00", 80),)},
    ],
)
def test_anything_else_is_not_progress(changes: dict[str, object]) -> None:
    assert not RUNNING.differs_only_in_progress(replace(RUNNING, **changes))  # type: ignore[arg-type]
