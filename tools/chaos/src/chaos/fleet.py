"""The chaos fleet: PLA on every printer (any job fits any printer), some models reporting in full and
some in deltas, half of them FabMatic (they clear their own bed) and half needing the operator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODELS = ("X1C", "P1S", "P1P", "A1")


def chaos_fleet(printers: int) -> list[dict[str, Any]]:
    fleet = []
    for n in range(1, printers + 1):
        model = MODELS[(n - 1) % len(MODELS)]
        slot = 0 if model in ("X1C", "P1S") else 254
        fleet.append({
            "name": f"chaos-{n:02d}",
            "serial": f"CHAOS{n:05d}",
            "model": model,
            "access_code": f"{n:08d}",
            "fabmatic": n % 2 == 0,
            "materials": [{"slot": slot, "type": "PLA", "color": "#000000"}],
        })
    return fleet


def write_fleet(path: Path, printers: int) -> list[str]:
    """Writes the fleet file; returns the serials."""
    fleet = chaos_fleet(printers)
    path.write_text(json.dumps(fleet, indent=2))
    return [p["serial"] for p in fleet]
