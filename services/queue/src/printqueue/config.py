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
