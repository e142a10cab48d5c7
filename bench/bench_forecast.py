"""Forecast figures: the pure production forecast of 20,000 open jobs on 1,000 printers (the matching
benchmark's synthetic queue, a tenth of the fleet busy with a job of its own), pure domain, no I/O.

    .venv/bin/python bench/bench_forecast.py [--jobs 20000] [--printers 1000] [--runs 7]

The budget is under 1 s. CPU figures are process time; on a shared machine wall time is noisier.
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import replace
from datetime import timedelta

from bench_queue import T0, line, synthetic_queue, timed

from printqueue.domain.forecast import Forecast, ForecastSettings, forecast
from printqueue.domain.model import Job, Material
from servicekit.collector import collector_paused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--printers", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(2)
    jobs, fleet = synthetic_queue(args.jobs, args.printers)
    for job in jobs:
        job.print_minutes = rng.choice([None, rng.uniform(5, 600)])
    for printer in fleet[:: 10]:
        running = jobs.pop()
        running.status, running.printer_id = "printing", printer.id
        running.started_at, running.progress_percent = T0 - timedelta(minutes=30), rng.uniform(0, 99)
        printer.state, printer.current_job_id = "printing", running.id
        jobs.insert(0, running)
    for printer in fleet[1::10]:
        printer.bed_clear, printer.fabmatic = False, rng.random() < 0.5
    print(f"forecast (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    settings = ForecastSettings()
    # The synthetic queue asks for colours no printer holds (many jobs blocked); the second run asks for
    # the material type only, so nearly every job is placed on a printer.
    any_colour = [replace(job, material=Material(job.material.type)) for job in jobs]
    for label, queue in (("as generated", jobs), ("any colour", any_colour)):
        walls, cpus, result = timed(lambda queue=queue: forecast(queue, fleet, T0, settings), args.runs)  # type: ignore[misc]
        blocked = sum(1 for o in result.orders.values() if o.blocked_by is not None)
        line(f"{label}: {len(queue)} jobs x {len(fleet)} printers", walls, cpus)

        def as_the_service_runs_it(queue: list[Job] = queue) -> Forecast:
            with collector_paused():
                return forecast(queue, fleet, T0, settings)

        walls, cpus, _ = timed(as_the_service_runs_it, args.runs)
        line(f"{label}: collector paused", walls, cpus)
        print(f"  {len(result.slots)} jobs placed, {len(result.orders)} orders, {blocked} blocked")


if __name__ == "__main__":
    main()
