"""Custom products on the simulated fleet, through the API gateway of a whole devstack (every service, the
real slicer with OpenSCAD and PrusaSlicer, the printer simulator at 600× time): an OpenSCAD name tag SKU
whose order lines each set the name.

1. cold: print-jobs on an order of `--lines` new names → the first job dispatched and the first printing,
   and for each job how long a ready printer waited for its slice (job created → dispatched);
2. cached: the same names on a new order, every slice made already → the same figures;
3. a click on an order of `--jobs` jobs whose slices all exist, a re-click with nothing changed, and the
   same clicks for a pre-sliced part (the slicer's own file uploaded as a `.gcode.3mf`), each timed until
   the queue has applied it, the median of `--repeats` orders each: the cached slicing's added cost per
   job (target < 50 ms/job).

Dispatches are timed by the queue's `JobChanged` events (first `assigned` seen on NATS), starts by the
job's `started_at`; the fleet has one printer of each Bambu model, two of them hold PLA (an X1C and a
FabMatic P1S), so `--lines 2` keeps a ready printer for every job.

    .venv/bin/python bench/bench_parametric_printing.py [--lines 2] [--jobs 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.msg import Msg

from contracts.envelope import Envelope
from contracts.queue.v1 import JobChanged, SlicePart
from contracts.slicer.v1 import SLICED_FILES_BUCKET
from devstack import Stack, StackConfig, wait_until

NAME_TAG = (
    b'label = "Ann"; // the name on the tag\n'
    b"difference() {\n"
    b"  hull() { cylinder(r = 6, h = 2, $fn = 48); translate([40, 0, 0]) cylinder(r = 6, h = 2, $fn = 48); }\n"
    b"  translate([0, 0, -1]) cylinder(r = 2.5, h = 4, $fn = 32);\n"
    b"}\n"
    b"translate([8, -4, 2]) linear_extrude(1.2) text(label, size = 8);\n"
)
TARGET_MS_PER_JOB = 50.0
SLICE_TIMEOUT = 1800.0


class Wire:
    """What the queue and the slicer say on NATS, with the wall time each was first seen."""

    def __init__(self) -> None:
        self.dispatched: dict[str, datetime] = {}
        self.created: dict[str, datetime] = {}
        self.requested: set[str] = set()
        self.answered: set[str] = set()

    async def on_job(self, msg: Msg) -> None:
        seen = datetime.now(UTC)
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.data is None:
            return
        job = envelope.open(JobChanged)
        self.created.setdefault(job.id, job.created_at)
        if job.status in ("assigned", "printing", "completed"):
            self.dispatched.setdefault(job.id, seen)

    async def on_slice_request(self, msg: Msg) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.data is not None:
            self.requested.add(envelope.open(SlicePart).slice_key)

    async def on_answer(self, msg: Msg) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.data is not None:
            self.answered.add(str(envelope.data["slice_key"]))


class Farm:
    def __init__(self, api: httpx.AsyncClient, wire: Wire) -> None:
        self.api, self.wire = api, wire

    async def call(self, method: str, url: str, expect: int, **kwargs: Any) -> Any:
        reply = await self.api.request(method, url, **kwargs)
        if reply.status_code != expect:
            raise SystemExit(f"{method} {url}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else None

    async def sku(self, filename: str, content: bytes, params: list[str]) -> str:
        part = await self.call("POST", "/api/v1/parts", 201, files={"file": (filename, content)},
                               data={"name": f"{filename} {uuid.uuid4().hex[:6]}", "material_type": "PLA"})
        sku = await self.call("POST", "/api/v1/skus", 201, json={
            "sku": f"BENCH-{uuid.uuid4().hex[:8]}", "name": filename,
            "parts": [{"part_id": part["id"], "quantity": 1, "sku_params": params}],
        })
        return str(sku["id"])

    async def order(self, lines: list[dict[str, Any]]) -> str:
        order = await self.call("POST", "/api/v1/orders", 201,
                                json={"order_number": f"BENCH-{uuid.uuid4().hex[:6]}", "line_items": lines})
        return str(order["id"])

    async def click(self, order_id: str) -> tuple[datetime, float]:
        """print-jobs, then wait until the queue has applied it: (when clicked, seconds until applied)."""
        clicked, started = datetime.now(UTC), time.perf_counter()
        revision = (await self.call("POST", f"/api/v1/orders/{order_id}/print-jobs", 202, json={}))["print_revision"]

        async def applied() -> bool:
            order = await self.call("GET", f"/api/v1/orders/{order_id}", 200)
            return bool(order["queue_print_revision"] == revision)

        await wait_until(applied, 600, f"the queue to apply print revision {revision}", interval=0.01)
        return clicked, time.perf_counter() - started

    async def jobs(self, order_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"order_id": order_id, "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = await self.call("GET", "/api/v1/jobs", 200, params=query)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def settle(self) -> None:
        """Every requested slice answered, every job done, every bed cleared: the next round starts ready."""
        await wait_until(lambda: self.wire.requested <= self.wire.answered, SLICE_TIMEOUT, "every slice answered")

        async def idle() -> bool:
            printers = (await self.call("GET", "/api/v1/printers?limit=500", 200))["items"]
            for printer in printers:
                if printer["online"] and not printer["bed_clear"] and not printer["current_job_id"]:
                    await self.api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
            return all(not p["current_job_id"] and p["bed_clear"] for p in printers if p["online"])

        await wait_until(idle, 600, "every printer idle with a clear bed", interval=0.5)


def seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


async def print_round(farm: Farm, sku_id: str, labels: list[str]) -> dict[str, Any]:
    """An order of one job per name: until each job printed (or failed, which ends the bench)."""
    order_id = await farm.order([{"sku_id": sku_id, "quantity": 1, "parameters": {"label": n}} for n in labels])
    clicked, _ = await farm.click(order_id)

    async def started() -> list[dict[str, Any]] | None:
        jobs = await farm.jobs(order_id)
        failed = [j["error"] for j in jobs if j["status"] == "failed"]
        if failed:
            raise SystemExit(f"a job failed: {failed[0]}")
        done = len(jobs) == len(labels) and all(j["started_at"] and j["id"] in farm.wire.dispatched for j in jobs)
        return jobs if done else None

    jobs = await wait_until(started, SLICE_TIMEOUT, "every job of the round printing", interval=0.2)
    waits = [seconds(farm.wire.dispatched[j["id"]], farm.wire.created[j["id"]]) for j in jobs]
    return {
        "first dispatched": min(seconds(farm.wire.dispatched[j["id"]], clicked) for j in jobs),
        "first printing": min(seconds(datetime.fromisoformat(j["started_at"]), clicked) for j in jobs),
        "printer waited (median)": statistics.median(waits),
        "printer waited (max)": max(waits),
        "files": [j["file"]["sha256"] for j in jobs],
    }


async def click_cost(farm: Farm, sku_id: str, labels: list[str], jobs: int, parametric: bool) -> tuple[float, float]:
    """(Seconds per job of the first click, of a re-click with nothing changed) on an order of `jobs` jobs."""
    per_line = max(1, jobs // len(labels))
    lines = [{"sku_id": sku_id, "quantity": per_line, **({"parameters": {"label": n}} if parametric else {})}
             for n in labels]
    count = per_line * len(labels)
    order_id = await farm.order(lines)
    _, first = await farm.click(order_id)
    listed = await farm.jobs(order_id)
    waiting_for_slices = [j for j in listed if j["status"] == "slicing"]
    if len(listed) != count or waiting_for_slices:
        raise SystemExit(f"{len(listed)} jobs of {count}, {len(waiting_for_slices)} still waiting for a slice")
    _, again = await farm.click(order_id)
    await farm.call("POST", f"/api/v1/orders/{order_id}/cancel", 200)
    return first / count, again / count


async def main(lines: int, jobs: int, repeats: int) -> None:
    if shutil.which("openscad") is None or shutil.which("prusa-slicer") is None:
        raise SystemExit("this bench needs openscad and prusa-slicer on PATH (make run installs them as root)")
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-parametric-"))
    try:
        async with Stack(StackConfig.for_tests(folder, os.environ)) as stack:
            if "slicer" not in stack.config.services:
                raise SystemExit("this stack runs no slicer service")
            wire = Wire()
            nc = await nats.connect(stack.nats_url)
            await nc.subscribe(JobChanged.SUBJECT, cb=wire.on_job)
            await nc.subscribe(SlicePart.SUBJECT, cb=wire.on_slice_request)
            await nc.subscribe("slicer.v1.>", cb=wire.on_answer)
            async with httpx.AsyncClient(base_url=stack.api_url, headers=stack.api_headers, timeout=60,
                                         trust_env=False) as api:
                farm = Farm(api, wire)
                tag = await farm.sku("name-tag.scad", NAME_TAG, ["label"])
                await farm.settle()
                labels = [f"Name{'x' * n}" for n in range(lines)]
                cold = await print_round(farm, tag, labels)
                await farm.settle()
                asked = len(wire.requested)
                cached = await print_round(farm, tag, labels)
                await farm.settle()
                if len(wire.requested) != asked:
                    raise SystemExit("the cached round asked the slicer for new slices")
                store = await nc.jetstream(timeout=30).object_store(SLICED_FILES_BUCKET)
                sliced = (await store.get(cold["files"][0])).data or b""
                presliced = await farm.sku("name-tag.gcode.3mf", sliced, [])
                scad, plain = [], []
                for _ in range(repeats):
                    scad.append(await click_cost(farm, tag, labels, jobs, parametric=True))
                    plain.append(await click_cost(farm, presliced, labels, jobs, parametric=False))
                scad_first, scad_again = (statistics.median(c[i] for c in scad) for i in (0, 1))
                plain_first, plain_again = (statistics.median(c[i] for c in plain) for i in (0, 1))
            await nc.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"OpenSCAD name tag on the simulated fleet, {lines} names, {os.cpu_count()} CPUs here")
    print(f"{'round':<8} {'first dispatched s':>19} {'first printing s':>17} {'printer waited s (median / max)':>32}")
    for name, figures in (("cold", cold), ("cached", cached)):
        print(f"{name:<8} {figures['first dispatched']:>19.2f} {figures['first printing']:>17.2f}"
              f" {figures['printer waited (median)']:>17.2f} / {figures['printer waited (max)']:<12.2f}")
    print(f"print-jobs on {jobs} jobs, ms per job until the queue applied it (median of {repeats} orders each):")
    print(f"  name tag, every slice cached: first click {scad_first * 1000:.1f}, re-click {scad_again * 1000:.1f}")
    print(f"  pre-sliced .gcode.3mf:        first click {plain_first * 1000:.1f}, re-click {plain_again * 1000:.1f}")
    added = max(scad_first - plain_first, scad_again - plain_again) * 1000
    verdict = "within" if scad_again * 1000 < TARGET_MS_PER_JOB and added < TARGET_MS_PER_JOB else "OVER"
    print(f"  cached slicing adds {added:.1f} ms per job; a cached re-click costs {scad_again * 1000:.1f} ms per job"
          f" ({verdict} the {TARGET_MS_PER_JOB:.0f} ms target)")
    print(f"load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2, help="names (order lines, one job each) per print round")
    parser.add_argument("--jobs", type=int, default=100, help="jobs on the order of the click-cost round")
    parser.add_argument("--repeats", type=int, default=3, help="orders per kind in the click-cost round")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.lines, args.jobs, args.repeats)))
