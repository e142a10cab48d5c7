"""Printer-gateway figures: CPU and memory of one replica holding N simulated printers that each report
once a second, and how long the survivors take to own every printer again after a replica is killed.

    .venv/bin/python bench/bench_printer_gateway.py [--printers 500] [--window 30] [--x1-share 0.5] [--printing]

Runs embedded PostgreSQL, NATS and the printer simulator (a separate process) through devstack in a temp
folder; the gateway replicas are real `python -m printer_gateway` processes with production settings
(LEASE_TTL_SECONDS 10, SUPERVISE_INTERVAL_SECONDS 2, STALE_AFTER_SECONDS 60). CPU is the gateway
process's own user+system time over the window, read from /proc (target: under half a core).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from cryptography.fernet import Fernet

from contracts.envelope import Envelope
from contracts.queue.v1 import StartPrint
from contracts.shared_values import FileRef, Material
from contracts.skus.v1 import PART_FILES_BUCKET
from devstack import Stack, StackConfig, wait_until
from printer_simulator.project import build_project

GATEWAY = "printer_gateway"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system time of one process (its threads included), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fleet_file(folder: Path, printers: int, x1_share: float) -> Path:
    """Full-report X1C printers for `x1_share` of the fleet (the heavier reports), delta P1S for the rest.
    Each on its own loopback address, as on a farm's LAN, so their 2N ports never collide with ours."""
    x1 = round(printers * x1_share)
    entries = [
        {
            "name": f"bench-{n:04d}",
            "serial": f"BENCH{n:06d}",
            "model": "X1C" if n < x1 else "P1S",
            "access_code": f"{n:08d}",
            "host": f"127.77.{n // 250}.{n % 250 + 1}",
            "mqtt_port": 8883,
            "ftp_port": 8990,
            "report_interval": 1.0,
            "materials": [
                {"slot": 0, "type": "PLA", "color": "#FFFFFF"},
                {"slot": 1, "type": "PETG", "color": "#000000"},
                {"slot": 254, "type": "TPU", "color": "#FF0000"},
            ],
        }
        for n in range(printers)
    ]
    path = folder / "bench-fleet.json"
    path.write_text(json.dumps(entries))
    return path


async def register_all(client: httpx.AsyncClient, url: str, sim: Any) -> list[str]:
    semaphore = asyncio.Semaphore(16)

    async def one(printer: Any) -> str:
        async with semaphore:
            response = await client.post(f"{url}/api/v1/printers", json=printer.registration(sim.ca_cert))
            response.raise_for_status()
            return str(response.json()["id"])

    return list(await asyncio.gather(*(one(p) for p in sim.printers)))


async def printers(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{url}/api/v1/printers", params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def settled(client: httpx.AsyncClient, url: str, control_url: str, owners: set[str], count: int) -> bool:
    """Every printer online, owned by one of `owners`, and connected by exactly one client."""
    found = await printers(client, url)
    if len(found) != count or not all(p["online"] and p["owner"] in owners for p in found):
        return False
    clients = (await client.get(f"{control_url}/printers")).json()["printers"]
    return all(c["connected_clients"] == 1 for c in clients)


async def print_everywhere(nats_url: str, found: list[dict[str, Any]]) -> None:
    """A StartPrint per printer, as the queue sends it, for a print far longer than the bench."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        data = build_project(print_seconds=600 * 3600, layers=500)
        sha256 = hashlib.sha256(data).hexdigest()
        store = await js.create_object_store(PART_FILES_BUCKET)
        await store.put(sha256, data)
        for printer in found:
            job_id = f"bench-{uuid.uuid4().hex[:12]}"
            message = StartPrint(
                command_id=f"cmd-{job_id}",
                job_id=job_id,
                printer_id=printer["id"],
                order_number="BENCH",
                part_name="cube",
                file=FileRef(sha256=sha256, filename="cube.gcode.3mf", kind="gcode.3mf", size_bytes=len(data)),
                material=Material(type="PLA", color="#FFFFFF"),
                issued_at=datetime.now(UTC),
            )
            envelope = Envelope(
                id=uuid.uuid4().hex,
                type=message.SUBJECT,
                source="/bench",
                subject=job_id,
                data=message.model_dump(mode="json"),
            )
            await js.publish(message.SUBJECT, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()


async def all_printing(client: httpx.AsyncClient, url: str, count: int) -> bool:
    found = await printers(client, url)
    return len(found) == count and all(p["state"] == "printing" and p["current_job_id"] for p in found)


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-pgw-"))
    env = {"PRINTER_SECRET_KEY": Fernet.generate_key().decode(), "LOG_LEVEL": args.log_level}
    config = StackConfig.for_tests(
        folder,
        os.environ,
        time_scale=600,
        services=(GATEWAY,),
        fleet=str(fleet_file(folder, args.printers, args.x1_share)),
        extra_env=env,
        log_level=args.log_level,
    )
    try:
        async with Stack(config) as stack, httpx.AsyncClient(timeout=60, trust_env=False) as client:
            assert stack.sim is not None
            first = stack.instance(f"{GATEWAY}-1")
            url, control = first.url, stack.sim.control_url
            assert first.process.pid is not None
            started = time.monotonic()
            await register_all(client, url, stack.sim)
            registered = time.monotonic() - started
            await wait_until(
                lambda: settled(client, url, control, {first.name}, args.printers),
                300,
                f"{args.printers} printers online",
                interval=1.0,
            )
            connected = time.monotonic() - started
            print(f"printer gateway, {args.printers} printers ({args.x1_share:.0%} X1C full reports, rest P1S deltas)")
            print(f"  register {args.printers} printers over HTTP          {registered:6.1f} s")
            print(f"  all online (one replica)                        {connected:6.1f} s")

            pid = first.process.pid
            await asyncio.sleep(5)  # let the connect burst settle before measuring the steady state
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(args.window)
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
            verdict = "ok" if cpu < 0.5 else "OVER TARGET"
            label = f"steady state CPU over {args.window:.0f} s"
            print(f"  {label:<48}{cpu:6.3f} cores ({verdict}: < 0.5)")
            print(f"  resident memory                                 {rss_mib(pid):6.0f} MiB")

            if args.printing:
                started = time.monotonic()
                await print_everywhere(stack.nats_url, await printers(client, url))
                await wait_until(
                    lambda: all_printing(client, url, args.printers), 300, "every printer printing", interval=1.0
                )
                print(f"  dispatch a job to each printer until all print      {time.monotonic() - started:6.1f} s")
                await asyncio.sleep(5)
                cpu0, wall0 = cpu_seconds(pid), time.monotonic()
                await asyncio.sleep(args.window)
                cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
                verdict = "ok" if cpu < 0.5 else "OVER TARGET"
                label = f"all printing: CPU over {args.window:.0f} s"
                print(f"  {label:<48}{cpu:6.3f} cores ({verdict}: < 0.5)")
                print(f"  resident memory                                 {rss_mib(pid):6.0f} MiB")

            second = await stack.start_service(GATEWAY, instance=f"{GATEWAY}-2")
            started = time.monotonic()

            async def shared_by_both() -> bool:
                owners = {p["owner"] for p in await printers(client, url)}
                both = {first.name, second.name}
                return owners == both and await settled(client, url, control, both, args.printers)

            await wait_until(
                shared_by_both,
                120,
                "two replicas sharing the fleet",
                interval=0.5,
            )
            shared = [p["owner"] for p in await printers(client, url)]
            print(
                f"  second replica joined: rebalanced in {time.monotonic() - started:5.1f} s,"
                f" {shared.count(first.name)} / {shared.count(second.name)} printers"
            )
            print(f"  kill -9 of {second.name} at {time.strftime('%H:%M:%S')}", flush=True)
            killed = time.monotonic()
            await stack.kill_service(second.name, signal.SIGKILL)
            await wait_until(
                lambda: settled(client, url, control, {first.name}, args.printers),
                120,
                "the survivor to own every printer",
                interval=0.25,
            )
            print(
                f"  kill -9 of a replica: its {shared.count(second.name)} printers back online"
                f" in {time.monotonic() - killed:5.1f} s"
            )
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--printers", type=int, default=500)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of steady state to measure")
    parser.add_argument(
        "--printing",
        action="store_true",
        help="also measure with every printer printing (progress in every report: the worst case)",
    )
    parser.add_argument("--x1-share", type=float, default=0.5, help="share of full-report X1C printers")
    parser.add_argument(
        "--log-level", default="WARNING", help="of the gateways and the simulator (logs kept with DEVSTACK_KEEP=1)"
    )
    asyncio.run(main(parser.parse_args()))
