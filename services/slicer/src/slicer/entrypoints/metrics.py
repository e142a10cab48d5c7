"""The slicer's domain metrics: how many slice requests wait in the shared work queue (as JetStream counts
them, so every replica reports the same depth) and how long each slice took, by how it was answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from servicekit.metrics import ServiceMetrics

SLICE_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""A slice runs OpenSCAD and PrusaSlicer: seconds to minutes, never milliseconds."""

QueueReading = Callable[[], Awaitable[tuple[int, int]]]
"""(requests no replica has fetched yet, requests fetched and not yet acked) of the shared consumer."""


class SlicerMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.read_queue: QueueReading | None = None
        self.in_flight: Callable[[], int] = lambda: 0
        self.queue_depth = metrics.gauge(
            "printfarm_slicer_queue_depth",
            "Slice requests waiting in the shared work queue that no replica has taken yet (all replicas).",
        )
        self.in_progress = metrics.gauge(
            "printfarm_slicer_requests_in_progress",
            "Slice requests a replica has taken and not yet answered (all replicas, as JetStream counts them).",
        )
        self.handling = metrics.gauge(
            "printfarm_slicer_requests_handling", "Slice requests this replica is handling now."
        )
        self.duration = metrics.histogram(
            "printfarm_slicer_slice_duration_seconds",
            "Time to make one slice (fetch, render, slice, store and answer), by outcome: the answer's kind.",
            ["outcome"],
            buckets=SLICE_BUCKETS,
        )
        metrics.on_scrape("slicer_queue", self.refresh)

    def watch(self, read_queue: QueueReading, in_flight: Callable[[], int]) -> None:
        """Read the queue's depth from the consumer (built after these metrics, which it reports to)."""
        self.read_queue, self.in_flight = read_queue, in_flight

    def observe_slice(self, seconds: float, outcome: str) -> None:
        self.duration.labels(outcome).observe(seconds)

    async def refresh(self) -> None:
        self.handling.set(self.in_flight())
        if self.read_queue is None:
            return
        waiting, taken = await self.read_queue()
        self.queue_depth.set(waiting)
        self.in_progress.set(taken)
