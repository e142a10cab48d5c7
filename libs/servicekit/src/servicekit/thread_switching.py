"""How soon the event loop gets the interpreter back from a CPU-bound worker thread (the queue's forecast
runs in one, so its requests are still answered).

When the event loop's socket becomes readable while a thread computes in Python, the loop must wait for the
thread to hand over the interpreter lock, which CPython asks for only after its switch interval (5 ms by
default). A round trip to PostgreSQL or NATS then costs up to 5 ms more, and a printer's ready -> start,
about a dozen of them, up to 60 ms more for as long as a forecast runs (a fifth of the time on a large farm).
A shorter interval bounds that wait; it costs the computing thread a few extra hand-overs only while the loop
is actually waiting for the lock."""

from __future__ import annotations

import sys

SWITCH_INTERVAL_SECONDS = 0.0005


def tune_thread_switching() -> None:
    """A service process's interpreter switch interval (`sys.setswitchinterval`)."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
