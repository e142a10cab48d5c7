"""Slicer pipeline figures with the real binaries: how long a small OpenSCAD name tag takes to render
(OpenSCAD), to slice (PrusaSlicer, pinned to one CPU) and to package as a Bambu `.gcode.3mf`, and the
end-to-end time of `make_printable`, as median and max over ROUNDS runs with a different name each.

    .venv/bin/python bench/bench_slicer.py            # ROUNDS=5
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from slicer.adapters.limited_process import ToolLimits
from slicer.domain.job import SliceJob
from slicer.service_layer.pipeline import build_pipeline

NAME_TAG = b"""label = "Ann";
size = 5;
linear_extrude(1.2) text(label, size = size, halign = "center", valign = "center");
translate([-(len(label) * size * 0.4 + 3), -(size / 2 + 2), -1]) cube([len(label) * size * 0.8 + 6, size + 4, 1]);
"""
ROUNDS = int(os.environ.get("ROUNDS", "5"))


async def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        pipeline = build_pipeline(None, Path(work), ToolLimits(time_limit_seconds=300))
        render_s: list[float] = []
        slice_s: list[float] = []
        total_s: list[float] = []
        sizes: list[int] = []
        for n in range(ROUNDS):
            job = SliceJob(
                source_sha256=hashlib.sha256(NAME_TAG).hexdigest(),
                source_kind="scad",
                source_filename="name-tag.scad",
                parameters={"label": f"Name {n}"},
                printer_model="X1C",
                fabmatic=False,
                material_type="PLA",
                material_color="#FFFFFF",
            )
            started = time.perf_counter()
            stl = await pipeline.openscad.render(
                NAME_TAG, job.parameters, source_filename=job.source_filename, work_dir=Path(work),
                limits=pipeline.limits,
            )  # fmt: skip
            rendered = time.perf_counter()
            await pipeline.slicer.slice(
                stl, "stl", pipeline.selected_profile(job), object_name=job.source_filename, work_dir=Path(work),
                limits=pipeline.limits,
            )  # fmt: skip
            sliced = time.perf_counter()
            made = await pipeline.make_printable(job, NAME_TAG)
            done = time.perf_counter()
            render_s.append(rendered - started)
            slice_s.append(sliced - rendered)
            total_s.append(done - sliced)
            sizes.append(len(made.content))

    def figure(name: str, values: list[float]) -> None:
        print(f"{name:<38} median {statistics.median(values):6.2f} s   max {max(values):6.2f} s")

    print(f"name tag, X1C/PLA, {ROUNDS} rounds ({os.cpu_count()} CPUs on this machine)")
    figure("OpenSCAD render (binary STL)", render_s)
    figure("PrusaSlicer slice (one CPU)", slice_s)
    figure("make_printable end to end", total_s)
    print(f"{'sliced .gcode.3mf size':<38} median {statistics.median(sizes) / 1024:6.1f} KiB")


if __name__ == "__main__":
    asyncio.run(main())
