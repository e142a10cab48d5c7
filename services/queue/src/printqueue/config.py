"""The queue's settings: environment variables only."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 18083
    dispatch_deadline_seconds: float = 90.0
    """The dispatch watchdog: how long a printer has to acknowledge (start) a dispatched job before the
    queue gives the job to another printer. Sent to the gateway as `StartPrint.deadline_seconds`."""
    dispatch_grace_seconds: float = 15.0
    max_dispatch_attempts: int = 3
    printer_cooldown_seconds: float = 60.0
    """A printer that did not start a dispatch is left alone this long (times its consecutive misses)."""
    match_interval_seconds: float = 1.5
    """Dispatch deadlines are checked on this timer (matching itself runs when a message can change it)."""
    full_match_interval_seconds: float = 10.0
    """A full matching pass runs at least this often even when nothing woke it."""
    forecast_time_scale: float = 1.0
    """Printer seconds per real second: 1 on a real farm; the simulator's scale on a simulated one."""
    forecast_bed_clear_minutes: float = 10.0
    """The forecast's assumption: an operator clears a bed (of a printer that does not clear its own) this
    many minutes after its print ends."""
    forecast_default_print_minutes: float = 60.0
    forecast_debounce_seconds: float = 1.0
    """Changes within this long after the first one make one forecast."""
    forecast_interval_seconds: float = 15.0
    """A forecast is made at least this often (print progress and the clock move it too)."""
    slice_answer_timeout_seconds: float = 1800.0
    """A slice request unanswered this long (lost, or dead-lettered by the slicer) is asked again ..."""
    max_slice_requests: int = 3
    """... this many requests in all, then the slice fails and so do the jobs no other model can serve."""
