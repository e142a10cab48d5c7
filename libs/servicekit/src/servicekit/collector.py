"""The cyclic garbage collector: paused for CPU-bound passes over many live objects, tuned for a service process."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Run a bounded computation that creates no reference cycles without the cyclic collector, which
    would otherwise rescan every live object several times mid-pass (it doubles a 20,000-job matching
    pass). Reference counting still frees everything the pass allocates."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


SERVICE_THRESHOLDS = (10_000, 20, 20)
"""Young-generation allocations before a collection, then young and middle collections before the next."""


def tune_gc() -> None:
    """A service process's collector thresholds. A 20,000-job order allocates a few hundred thousand objects in
    one transaction (jobs, messages, envelopes); with CPython's defaults (700, 10, 10) the collector took about
    a third of that transaction's CPU, traversing the same long-lived objects again and again. Fewer, larger
    young collections cost a little more memory held by cyclic garbage."""
    gc.set_threshold(*SERVICE_THRESHOLDS)
