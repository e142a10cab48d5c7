"""The normalized view of one printer, independent of the protocol it speaks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

PrinterState = Literal["offline", "idle", "printing", "paused", "finished", "error"]

EXTERNAL_SPOOL_SLOT = 254
"""The external spool is always reported as slot 254, whatever id the model uses for it."""

def format_print_error(code: int) -> str:
    """Bambu shows `print_error` as two 16-bit halves: `MMMM_EEEE`."""
    code &= 0xFFFFFFFF
    return f"{code >> 16:04X}_{code & 0xFFFF:04X}"


def format_hms(attr: int, code: int) -> str:
    """HMS entries read `AAAA_AAAA_CCCC_CCCC` in Bambu's wiki and apps."""
    attr &= 0xFFFFFFFF
    code &= 0xFFFFFFFF
    return f"{attr >> 16:04X}_{attr & 0xFFFF:04X}_{code >> 16:04X}_{code & 0xFFFF:04X}"


@dataclass(frozen=True)
class LoadedMaterial:
    """A spool the printer can feed, addressed by its global tray id (the `ams_mapping` value)."""

    slot: int
    type: str
    color: str | None
    profile: str | None
    remain_percent: int | None

    @property
    def is_external(self) -> bool:
        return self.slot == EXTERNAL_SPOOL_SLOT


@dataclass(frozen=True)
class PrinterStatus:
    """What the gateway knows about a printer after merging everything it reported."""

    online: bool
    state: PrinterState
    gcode_state: str | None = None
    progress_percent: int | None = None
    remaining_minutes: int | None = None
    layer: int | None = None
    total_layers: int | None = None
    prepare_percent: int | None = None
    subtask_name: str | None = None
    gcode_file: str | None = None
    print_error: int | None = None
    print_error_code: str | None = None
    hms_codes: tuple[str, ...] = ()
    materials: tuple[LoadedMaterial, ...] = field(default=())
    tray_now: int | None = None
    error_reason: str | None = None

    @classmethod
    def offline(cls, reason: str | None = None) -> PrinterStatus:
        return cls(online=False, state="offline", error_reason=reason)

    def differs_only_in_progress(self, other: PrinterStatus) -> bool:
        """Same printer state but for the progress counters, which move on every report of a print."""
        return self != other and self == replace(
            other,
            progress_percent=self.progress_percent,
            remaining_minutes=self.remaining_minutes,
            layer=self.layer,
            prepare_percent=self.prepare_percent,
        )

    def material_in(self, slot: int) -> LoadedMaterial | None:
        return next((m for m in self.materials if m.slot == slot), None)
