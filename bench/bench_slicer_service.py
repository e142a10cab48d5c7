"""Slices per minute for a small OpenSCAD name tag: cold (rendered and sliced), cached (answered from the
slice cache), and one against two slicer replicas sharing the work queue.

Starts the slicer with its own PostgreSQL and NATS through devstack (or uses DATABASE_URL / NATS_URL
when set), puts the part into `part-files` as the skus service would, and plays the queue: publishes
`queue.v1.cmd.slice_part` requests (a distinct label each for cold slices) and times until every answer
arrived. Each replica runs one slice at a time (`SLICER_CONCURRENCY=1`, one core each).

    .venv/bin/python bench/bench_slicer_service.py [--slices 12]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.envelope import Envelope
from contracts.queue.v1 import SlicePart
from contracts.shared_values import FileRef, Material
from contracts.skus.v1 import PART_FILES_BUCKET
from contracts.slicer.v1 import SliceCompleted
from devstack import Stack, StackConfig
from servicekit.ids import new_id
from slicer.domain.job import SliceJob
from slicer.service_layer.pipeline import build_pipeline

NAME_TAG = (
    b'label = "Ann"; // the name on the tag\n'
    b"difference() {\n"
    b"  hull() { cylinder(r = 6, h = 2, $fn = 48); translate([40, 0, 0]) cylinder(r = 6, h = 2, $fn = 48); }\n"
    b"  translate([0, 0, -1]) cylinder(r = 2.5, h = 4, $fn = 32);\n"
    b"}\n"
    b'translate([8, -4, 2]) linear_extrude(1.2) text(label, size = 8);\n'
)


class Requester:
    def __init__(self, js: JetStreamContext, source: FileRef) -> None:
        self.js, self.source = js, source
        self.answers: dict[str, Envelope] = {}
        self.arrived = asyncio.Event()
        self.expected = 0

    async def on_answer(self, msg: Msg) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        assert envelope.data is not None
        self.answers[envelope.data["slice_key"]] = envelope
        if len(self.answers) >= self.expected:
            self.arrived.set()

    async def run(self, round_name: str, labels: list[str], timeout: float = 900.0) -> tuple[float, list[Envelope]]:
        keys = [f"{round_name}/{n}" for n in range(len(labels))]
        self.answers, self.expected = {}, len(keys)
        self.arrived.clear()
        started = time.perf_counter()
        for key, label in zip(keys, labels, strict=True):
            message = SlicePart(
                slice_key=key,
                source=self.source,
                parameters={"label": label},
                printer_model="X1C",
                material=Material(type="PLA", color="#FFFFFF"),
                requested_at=datetime.now(UTC),
            )
            envelope = Envelope(
                id=new_id(), type=message.SUBJECT, source="/bench", data=message.model_dump(mode="json")
            )
            payload = envelope.model_dump_json().encode()
            await self.js.publish(envelope.type, payload, headers={"Nats-Msg-Id": envelope.id})
        await asyncio.wait_for(self.arrived.wait(), timeout)
        elapsed = time.perf_counter() - started
        answers = [self.answers[k] for k in keys]
        failed = [a for a in answers if a.type != SliceCompleted.SUBJECT]
        if failed:
            raise SystemExit(f"{round_name}: {len(failed)} slices failed, e.g. {failed[0].data}")
        return elapsed, answers


def cached(answers: list[Envelope]) -> int:
    return sum(a.open(SliceCompleted).cached for a in answers)


def row(name: str, workers: int, count: int, elapsed: float, cached: int) -> str:
    per_minute = count / elapsed * 60
    return (
        f"{name:<22} {workers:>7} {count:>6} {elapsed:>9.1f} {per_minute:>11.1f} {per_minute / workers:>13.1f}"
        f" {cached:>7}"
    )


async def pipeline_alone(folder: Path, runs: int) -> float:
    """Median seconds of the pipeline itself in this process (no bus, no database): the floor per slice."""
    pipeline = build_pipeline(None, folder / "pipeline-work")
    (folder / "pipeline-work").mkdir(parents=True, exist_ok=True)
    sha256 = hashlib.sha256(NAME_TAG).hexdigest()
    times = []
    for n in range(runs):
        job = SliceJob(sha256, "scad", "name-tag.scad", {"label": f"Alone {n}"}, "X1C", False, "PLA", "#FFFFFF")
        started = time.perf_counter()
        await pipeline.make_printable(job, NAME_TAG)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(slices: int) -> None:
    if shutil.which("openscad") is None or shutil.which("prusa-slicer") is None:
        raise SystemExit("bench_slicer needs openscad and prusa-slicer on PATH (make run installs them as root)")
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-slicer-"))
    alone = await pipeline_alone(folder, 3)
    config = StackConfig.for_tests(
        folder, os.environ, services=("slicer",), start_simulator=False, extra_env={"SLICER_CONCURRENCY": "1"}
    )
    try:
        async with Stack(config) as stack:
            nc = await nats.connect(stack.nats_url)
            js = nc.jetstream(timeout=30)
            try:
                store = await js.object_store(PART_FILES_BUCKET)
            except NotFoundError:
                store = await js.create_object_store(PART_FILES_BUCKET)
            sha256 = hashlib.sha256(NAME_TAG).hexdigest()
            await store.put(sha256, NAME_TAG)
            source = FileRef(sha256=sha256, filename="name-tag.scad", kind="scad", size_bytes=len(NAME_TAG))
            requester = Requester(js, source)
            await nc.subscribe("slicer.v1.>", cb=requester.on_answer)
            await requester.run("warm-up", ["Warm"])

            results = []
            one_worker = [f"One {n}" for n in range(slices)]
            elapsed, answers = await requester.run("cold-1", one_worker)
            results.append(row("cold, 1 replica", 1, slices, elapsed, cached(answers)))
            sizes = sorted(a.open(SliceCompleted).file.size_bytes for a in answers)
            elapsed, answers = await requester.run("cached-1", one_worker)
            results.append(row("cached, 1 replica", 1, slices, elapsed, cached(answers)))

            await stack.start_service("slicer", instance="slicer-2")
            elapsed, answers = await requester.run("cold-2", [f"Two {n}" for n in range(slices)])
            results.append(row("cold, 2 replicas", 2, slices, elapsed, cached(answers)))
            elapsed, answers = await requester.run("cached-2", [f"Two {n}" for n in range(slices)])
            results.append(row("cached, 2 replicas", 2, slices, elapsed, cached(answers)))
            await nc.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    median_kib = sizes[len(sizes) // 2] / 1024
    print(f"name tag (OpenSCAD → PrusaSlicer → .gcode.3mf, {median_kib:.0f} KiB), {os.cpu_count()} CPUs here")
    header = ("round", "workers", "slices", "seconds", "per minute", "per worker/min", "cached")
    widths = (-22, 7, 6, 9, 11, 13, 7)
    print(" ".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    print(row("pipeline alone (floor)", 1, 1, alone, 0))
    for line in results:
        print(line)
    print(f"load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=12, help="requests per round (distinct labels when cold)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.slices)))
