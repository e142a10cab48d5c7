"""Memory of every process of the stack, idle and after a small workload (issue 18: "memory per service
stated").

    .venv/bin/python bench/bench_memory.py [--printers 50] [--jobs 50]

Starts the stack the way `make run` does (devstack: embedded PostgreSQL and NATS, the simulator with a
fleet of `--printers` P1S printers, every service, the printers registered) in a temp folder, reads the
memory of each process once the printers are online, then runs an order of `--jobs` jobs until every job
has started printing, and reads it again. Per process (its children summed, for PostgreSQL's backends and
the simulator's helpers): RSS, and from /proc/<pid>/smaps_rollup PSS (shared pages split between their
users) and USS (private pages: what killing it would give back).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack import Stack, StackConfig, wait_until
from printer_simulator.project import build_project


@dataclass
class Memory:
    processes: int = 0
    rss: int = 0
    pss: int = 0
    uss: int = 0
    """Bytes."""


def children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found.setdefault(ppid, []).append(int(entry.name))
    return found


def tree(pid: int, kids: dict[int, list[int]]) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += kids.get(current, [])
    return pids


def memory_of(pid: int, kids: dict[int, list[int]]) -> Memory:
    total = Memory()
    for one in tree(pid, kids):
        try:
            lines = Path(f"/proc/{one}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines[1:] if line.endswith("kB")}
        total.processes += 1
        total.rss += fields.get("Rss", 0)
        total.pss += fields.get("Pss", 0)
        total.uss += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return total


def snapshot(stack: Stack) -> dict[str, Memory]:
    kids = children()
    return {p.name: memory_of(p.pid, kids) for p in stack.processes() if p.pid is not None and p.running}


def fleet_file(folder: Path, printers: int) -> Path:
    """P1S printers on their own loopback addresses, each loaded with PLA, reporting once a second."""
    entries = [
        {
            "name": f"mem-{n:03d}",
            "serial": f"MEM{n:06d}",
            "model": "P1S",
            "access_code": f"{n:08d}",
            "host": f"127.78.{n // 250}.{n % 250 + 1}",
            "mqtt_port": 8883,
            "ftp_port": 8990,
            "report_interval": 1.0,
            "materials": [{"slot": 0, "type": "PLA", "color": "#000000"}],
        }
        for n in range(printers)
    ]
    path = folder / "bench-fleet.json"
    path.write_text(json.dumps(entries))
    return path


async def listed(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = (await client.get(path, params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})}))
        page.raise_for_status()
        body = page.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


async def workload(client: httpx.AsyncClient, jobs: int) -> float:
    """A part (an hour's print: 6 s at the simulator's time scale), a SKU, an order of `jobs` units,
    print-jobs: seconds until every job has started."""
    part = await client.post(
        "/api/v1/parts",
        data={"name": "memory bench part", "material_type": "PLA", "material_color": "#000000"},
        files={"file": ("mem.gcode.3mf", build_project(print_seconds=3600))},
    )
    part.raise_for_status()
    sku = await client.post(
        "/api/v1/skus",
        json={
            "sku": f"MEM-{int(time.time())}",
            "name": "Memory bench",
            "parts": [{"part_id": part.json()["id"], "quantity": 1}],
        },
    )
    sku.raise_for_status()
    started = time.monotonic()
    lines = [{"sku_id": sku.json()["id"], "quantity": jobs}]
    order = await client.post("/api/v1/orders", json={"order_number": f"MEM-{int(time.time())}", "line_items": lines})
    order.raise_for_status()
    order_id = order.json()["id"]
    (await client.post(f"/api/v1/orders/{order_id}/print-jobs", json={})).raise_for_status()

    async def all_started() -> bool:
        found = await listed(client, "/api/v1/jobs", {"order_id": order_id})
        failed = [j.get("error") for j in found if j["status"] == "failed"]
        if failed:
            raise SystemExit(f"a job failed: {failed[0]}")
        return len(found) == jobs and all(j["started_at"] for j in found)

    await wait_until(all_started, 600, f"all {jobs} jobs started", interval=1.0)
    return time.monotonic() - started


def show(label: str, memory: dict[str, Memory]) -> None:
    print(f"  {label} (load average {os.getloadavg()[0]:.1f})")
    print(f"    {'process':<24}{'procs':>6}{'RSS MiB':>10}{'PSS MiB':>10}{'USS MiB':>10}")
    for name, m in sorted(memory.items()):
        mib = 1024 * 1024
        print(f"    {name:<24}{m.processes:>6}{m.rss / mib:>10.0f}{m.pss / mib:>10.0f}{m.uss / mib:>10.0f}")


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-memory-"))
    fleet = str(fleet_file(folder, args.printers))
    config = StackConfig.for_tests(folder, os.environ, fleet=fleet, log_level="WARNING")
    try:
        async with (
            Stack(config) as stack,
            httpx.AsyncClient(base_url=stack.api_url, headers=stack.api_headers, timeout=60, trust_env=False) as client,
        ):

            async def online() -> bool:
                found = await listed(client, "/api/v1/printers", {})
                return len(found) == args.printers and all(p["online"] for p in found)

            await wait_until(online, 300, f"{args.printers} printers online", interval=1.0)
            await asyncio.sleep(args.settle)
            print(f"memory per process: {args.printers} simulated printers, every service, one replica each")
            show("idle, printers online", snapshot(stack))
            took = await workload(client, args.jobs)
            print(f"  an order of {args.jobs} jobs: all printing after {took:.1f} s")
            await asyncio.sleep(args.settle)
            show("after the order", snapshot(stack))
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--printers", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before each reading")
    asyncio.run(main(parser.parse_args()))
