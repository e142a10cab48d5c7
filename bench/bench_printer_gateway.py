"""Printer-gateway figures: CPU and memory of R replicas sharing N simulated printers that each report
once a second, and how long the survivors take to own every printer again after a replica is killed.

    .venv/bin/python bench/bench_printer_gateway.py [--printers 500] [--replicas 1] [--simulators 1]
        [--window 30] [--x1-share 0.5] [--printing] [--saturate [--busy-per-core 1]] [--register-first]
        [--register-concurrency 16] [--kills 1]

Runs embedded PostgreSQL, NATS and the printer simulator (S separate processes, the printers split between
them) through devstack in a temp folder; the gateway replicas are real `python -m printer_gateway` processes
with production settings (config.py's defaults). Every replica starts before the printers are registered
(their registrations spread over the replicas, `--register-concurrency` at once, a 503 retried after its
Retry-After), so no replica ever holds the whole fleet; `--register-first` registers through one replica
before the others start, as this bench did before. CPU is each gateway and simulator process's own
user+system time over the window, read from /proc (target: under half a core per gateway replica). With
one replica a second one joins before the kill, so there is a survivor. `--saturate` runs one busy process
per core (nice 0, like everything else; `--busy-per-core` more) from just before the kill until the handover is
over: the handover under a saturated CPU. `--profile DIR` samples replica 1 and simulator 1 with py-spy (if installed).
`--kills N` measures N handovers after one registration: after each, the killed replica starts again under its
name and the fleet settles over every replica before the next kill (10,000 printers take minutes to register;
one run's handovers vary by seconds on a saturated machine, so one figure says little).
The handover is timed from the kill -9 until every printer is owned by a survivor (its status written by
that replica, read from the gateways' database rather than through a survivor's API) and connected by exactly
one client.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from cryptography.fernet import Fernet

from contracts.envelope import Envelope
from contracts.queue.v1 import StartPrint
from contracts.shared_values import FileRef, Material
from contracts.skus.v1 import PART_FILES_BUCKET
from devstack import Stack, StackConfig, wait_until
from devstack.ports import free_ports
from devstack.postgres import asyncpg_dsn
from devstack.simulator import Simulator, SimulatorInfo
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


def fleet_files(folder: Path, printers: int, x1_share: float, simulators: int) -> list[Path]:
    """Full-report X1C printers for `x1_share` of the fleet (the heavier reports), delta P1S for the rest,
    split into one file per simulator process. Each printer on its own loopback address, as on a farm's
    LAN, so their 2N ports never collide with ours or between simulators."""
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
    paths = []
    for k in range(simulators):
        path = folder / f"bench-fleet-{k + 1}.json"
        path.write_text(json.dumps(entries[k::simulators]))
        paths.append(path)
    return paths


def busy() -> None:
    while True:
        pass


def saturate(per_core: int = 1) -> list[multiprocessing.Process]:
    """`per_core` busy processes per core at the default priority: the gateways compete for CPU as on a full host
    (more than one per core: each process's share as small as at 10,000 printers, with fewer printers)."""
    hogs = [multiprocessing.Process(target=busy, daemon=True) for _ in range(per_core * (os.cpu_count() or 1))]
    for hog in hogs:
        hog.start()
    return hogs


async def more_simulators(stack: Stack, folder: Path, files: list[Path], log_level: str) -> list[Simulator]:
    """Simulator processes beyond devstack's one, each with its own share of the fleet, CA and control port."""
    if not files:
        return []
    ports = free_ports(len(files), avoid={*stack.config.ports_to_bind().values()})
    simulators = [
        Simulator(
            python=stack.config.python,
            fleet=str(path),
            control_port=port,
            state_dir=folder / f"simulator-{k + 2}" / "state",
            out_file=folder / f"simulator-{k + 2}" / "fleet.json",
            log_path=stack.log_dir / f"simulator-{k + 2}.log",
            time_scale=stack.config.simulator_time_scale,
            log_level=log_level,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": log_level},
        )
        for k, (path, port) in enumerate(zip(files, ports, strict=True))
    ]
    await asyncio.gather(*(sim.start(180) for sim in simulators))
    return simulators


async def register_all(
    client: httpx.AsyncClient, urls: list[str], sims: list[SimulatorInfo], concurrency: int
) -> list[str]:
    """Every printer, `concurrency` requests at once, spread round-robin over the replicas' APIs."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(n: int, printer: Any, ca_cert: str) -> str:
        url = urls[n % len(urls)]
        async with semaphore:
            for _ in range(30):
                response = await client.post(f"{url}/api/v1/printers", json=printer.registration(ca_cert))
                if response.status_code != 503:
                    break
                # The replica's database pool is busy with the printers it already holds: as a client should.
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            response.raise_for_status()
            return str(response.json()["id"])

    every = [(p, sim.ca_cert) for sim in sims for p in sim.printers]
    return list(await asyncio.gather(*(one(n, p, ca) for n, (p, ca) in enumerate(every))))


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


async def settled(
    client: httpx.AsyncClient, url: str, control_urls: list[str], owners: set[str], count: int
) -> bool:
    """Every printer online, owned by one of `owners`, and connected by exactly one client. The simulators
    are asked first: listing every printer through a gateway replica costs that replica CPU, and during a
    handover the survivor's CPU is what is being measured."""
    for control_url in control_urls:
        clients = (await client.get(f"{control_url}/printers")).json()["printers"]
        if not all(c["connected_clients"] == 1 for c in clients):
            return False
    found = await printers(client, url)
    return len(found) == count and all(p["online"] and p["owner"] in owners for p in found)


async def settled_in_database(
    client: httpx.AsyncClient,
    database: Any,
    control_urls: list[str],
    owners: set[str],
    count: int,
    progress: dict[int, float] | None = None,
) -> bool:
    """`settled`, with the gateways' database asked instead of a replica's API (the same columns the API shows):
    listing every printer through a survivor (10 pages of 500 full rows at 5,000 printers), every quarter of a
    second once each printer had one client, spent that survivor's CPU in the very window being measured.
    `progress` gets the first time each count of printers online under a survivor was seen."""
    row = await database.fetchrow(
        "SELECT count(*) AS live, count(*) FILTER (WHERE (status->>'online')::boolean AND owner = ANY($1)) AS back"
        " FROM printers WHERE NOT deleted",
        sorted(owners),
    )
    if progress is not None:
        progress.setdefault(int(row["back"]), time.monotonic())
    if not (row["live"] == count and row["back"] == count):
        return False
    # every simulator at once: one after the other, ten busy simulators answering took seconds
    answers = await asyncio.gather(*(client.get(f"{control_url}/printers") for control_url in control_urls))
    return all(c["connected_clients"] == 1 for answer in answers for c in answer.json()["printers"])


def timeline(progress: dict[int, float], start: float, before: int, orphans: int) -> str:
    """When the first, half, nine tenths and all of the dead replica's printers were back under a survivor."""
    marks = []
    for label, share in (("first", 1 / max(orphans, 1)), ("half", 0.5), ("90%", 0.9), ("all", 1.0)):
        seen = [at for back, at in progress.items() if back - before >= share * orphans]
        if seen:
            marks.append(f"{label} {min(seen) - start:.1f} s")
    return ", ".join(marks)


async def py_spy(pid: int, out: Path) -> asyncio.subprocess.Process | None:
    """Samples of one process's stacks (py-spy, if installed) until it is told to stop: collapsed stacks."""
    binary = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if binary is None:
        print("  (py-spy not installed: no profile)")
        return None
    return await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--nonblocking",
        "--format",
        "raw",
        "--rate",
        "200",
        "-p",
        str(pid),
        "-o",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop_py_spy(process: asyncio.subprocess.Process | None, out: Path) -> None:
    if process is None:
        return
    process.send_signal(signal.SIGINT)
    await process.wait()
    print(f"    profile: {out}")


async def measure(pids: dict[str, int], window: float) -> dict[str, float]:
    """Cores used by each process over `window` seconds."""
    cpu0, wall0 = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
    await asyncio.sleep(window)
    wall = time.monotonic() - wall0
    return {name: (cpu_seconds(pid) - cpu0[name]) / wall for name, pid in pids.items()}


def report(
    label: str, pids: dict[str, int], cpu: dict[str, float], owned: dict[str, int], sims: dict[str, int]
) -> None:
    """Each gateway replica's cores and RSS against the target, each simulator's and NATS's, with the load
    average."""
    print(f"  {label} (load average {os.getloadavg()[0]:.1f})")
    for name, pid in pids.items():
        if name in sims:
            each = cpu[name] / sims[name] * 1000 if sims[name] else 0.0
            print(
                f"    {name:<20} {sims[name]:6d} printers  {cpu[name]:6.3f} cores ({each:.3f} per 1,000 printers)"
                f"  RSS {rss_mib(pid):5.0f} MiB"
            )
            continue
        if name not in owned:
            print(f"    {name:<20} {'':6}           {cpu[name]:6.3f} cores  RSS {rss_mib(pid):5.0f} MiB")
            continue
        verdict = "ok" if cpu[name] < 0.5 else "OVER TARGET"
        per = f"  {cpu[name] / owned[name] * 1000:.3f} per 1,000" if owned.get(name) else ""
        print(
            f"    {name:<20} {owned.get(name, 0):6d} printers  {cpu[name]:6.3f} cores ({verdict}: < 0.5){per}"
            f"  RSS {rss_mib(pid):5.0f} MiB"
        )


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
    files = fleet_files(folder, args.printers, args.x1_share, args.simulators)
    config = StackConfig.for_tests(
        folder,
        os.environ,
        time_scale=600,
        services=(GATEWAY,),
        fleet=str(files[0]),
        extra_env=env,
        log_level=args.log_level,
    )
    extra: list[Simulator] = []
    hogs: list[multiprocessing.Process] = []
    try:
        async with Stack(config) as stack, httpx.AsyncClient(timeout=60, trust_env=False) as client:
            assert stack.sim is not None
            extra = await more_simulators(stack, folder, files[1:], args.log_level)
            sims = [stack.sim, *(sim.info for sim in extra if sim.info is not None)]
            controls = [sim.control_url for sim in sims]
            first = stack.instance(f"{GATEWAY}-1")
            url = first.url
            replicas = [first]
            print(
                f"printer gateway, {args.printers} printers ({args.x1_share:.0%} X1C full reports, rest P1S deltas),"
                f" {args.replicas} replica(s), {args.simulators} simulator process(es)"
            )
            if not args.register_first:
                for n in range(2, args.replicas + 1):
                    replicas.append(await stack.start_service(GATEWAY, instance=f"{GATEWAY}-{n}"))
            names = {r.name for r in replicas}
            started = time.monotonic()
            await register_all(client, [r.url for r in replicas], sims, args.register_concurrency)
            registered = time.monotonic() - started
            print(
                f"  register {args.printers} printers over HTTP ({len(replicas)} replica(s), "
                f"{args.register_concurrency} at once)  {registered:6.1f} s (load average {os.getloadavg()[0]:.1f})"
            )

            async def shared_by_all() -> bool:
                owners = {p["owner"] for p in await printers(client, url)}
                return owners == names and await settled(client, url, controls, names, args.printers)

            await wait_until(
                shared_by_all, 1800, f"{args.printers} printers online over {len(names)} replica(s)", interval=1.0
            )
            print(
                f"  all online over {len(replicas)} replica(s)              {time.monotonic() - started:6.1f} s"
                f" from the first registration (load average {os.getloadavg()[0]:.1f})"
            )
            if args.register_first:
                for n in range(2, args.replicas + 1):
                    replicas.append(await stack.start_service(GATEWAY, instance=f"{GATEWAY}-{n}"))
                names = {r.name for r in replicas}
                if len(replicas) > 1:
                    started = time.monotonic()
                    await wait_until(shared_by_all, 1800, f"{len(replicas)} replicas sharing the fleet", interval=1.0)
                    print(f"  {len(replicas)} replicas share the fleet after {time.monotonic() - started:6.1f} s")

            async def owned() -> dict[str, int]:
                owners = [p["owner"] for p in await printers(client, url)]
                return {name: owners.count(name) for name in sorted(names)}

            pids = {r.name: r.process.pid for r in replicas if r.process.pid is not None}
            simulators = [stack.simulator, *extra]
            fleet_sizes = {f"simulator-{k + 1}": len(info.printers) for k, info in enumerate(sims)}
            for k, sim in enumerate(simulators):
                if sim is not None and sim.process.pid is not None:
                    pids[f"simulator-{k + 1}"] = sim.process.pid
            if stack.nats is not None and stack.nats.process is not None and stack.nats.process.pid is not None:
                pids["nats"] = stack.nats.process.pid
            await asyncio.sleep(5)  # let the connect burst settle before measuring the steady state
            spies = (
                [
                    (await py_spy(first.process.pid or 0, args.profile / "steady.txt"), args.profile / "steady.txt"),
                    (await py_spy(pids["simulator-1"], args.profile / "simulator.txt"), args.profile / "simulator.txt"),
                ]
                if args.profile
                else []
            )
            cpu = await measure(pids, args.window)
            for spy, out in spies:
                await stop_py_spy(spy, out)
            report(f"steady state over {args.window:.0f} s", pids, cpu, await owned(), fleet_sizes)

            if args.printing:
                started = time.monotonic()
                await print_everywhere(stack.nats_url, await printers(client, url))
                await wait_until(
                    lambda: all_printing(client, url, args.printers), 600, "every printer printing", interval=1.0
                )
                print(f"  dispatch a job to each printer until all print      {time.monotonic() - started:6.1f} s")
                await asyncio.sleep(5)
                cpu = await measure(pids, args.window)
                report(f"all printing, over {args.window:.0f} s", pids, cpu, await owned(), fleet_sizes)

            if len(replicas) == 1:
                second = await stack.start_service(GATEWAY, instance=f"{GATEWAY}-2")
                replicas.append(second)
                names = {r.name for r in replicas}
                started = time.monotonic()

                async def shared_by_both() -> bool:
                    owners = {p["owner"] for p in await printers(client, url)}
                    return owners == names and await settled(client, url, controls, names, args.printers)

                await wait_until(shared_by_both, 120, "two replicas sharing the fleet", interval=0.5)
                counts = await owned()
                print(
                    f"  second replica joined: rebalanced in {time.monotonic() - started:5.1f} s,"
                    f" {counts[first.name]} / {counts[second.name]} printers"
                )
            victim = replicas[-1]
            survivors = names - {victim.name}
            handovers: list[float] = []
            for round_number in range(1, args.kills + 1):
                if round_number > 1:
                    # The victim back under its own name: the others hand its share back (rendezvous), and the
                    # next kill is of a fleet settled over every replica again, as the first was.
                    started = time.monotonic()
                    victim = await stack.start_service(GATEWAY, instance=victim.name)
                    await wait_until(shared_by_all, 600, "the victim back in the fleet", interval=1.0)
                    print(f"  {victim.name} started again: the fleet settled over all in"
                          f" {time.monotonic() - started:5.1f} s")
                    await asyncio.sleep(5)
                orphans = (await owned())[victim.name]
                if args.saturate:
                    hogs = saturate(args.busy_per_core)
                    print(f"  {len(hogs)} busy processes started (CPU saturated)")
                print(f"  kill -9 of {victim.name} at {time.strftime('%H:%M:%S')} (round {round_number})", flush=True)
                others = {name: pid for name, pid in pids.items() if name != victim.name}
                cpu_before = {name: cpu_seconds(pid) for name, pid in others.items()}
                spy = (
                    await py_spy(replicas[0].process.pid or 0, args.profile / f"takeover-{round_number}.txt")
                    if args.profile
                    else None
                )
                database = await asyncpg.connect(asyncpg_dsn(stack.database_urls[GATEWAY]))
                progress: dict[int, float] = {}
                killed = time.monotonic()
                await stack.kill_service(victim.name, signal.SIGKILL)
                try:
                    await wait_until(
                        functools.partial(
                            settled_in_database, client, database, controls, survivors, args.printers, progress
                        ),
                        300,
                        "the survivors to own every printer",
                        interval=0.25,
                    )
                finally:
                    await database.close()
                handover = time.monotonic() - killed
                handovers.append(handover)
                if args.profile:
                    await stop_py_spy(spy, args.profile / f"takeover-{round_number}.txt")
                load = os.getloadavg()[0]
                saturated = ", CPU saturated" if args.saturate else ""
                print(
                    f"  kill -9 of a replica: its {orphans} printers back online"
                    f" in {handover:5.1f} s{saturated} (load average {load:.1f})"
                )
                marks = timeline(progress, killed, args.printers - orphans, orphans)
                print(f"    its printers back under a survivor (from the kill): {marks}")
                spent = ", ".join(f"{name} {cpu_seconds(pid) - cpu_before[name]:.1f}" for name, pid in others.items())
                print(f"    CPU seconds meanwhile: {spent}")
                for hog in hogs:
                    hog.kill()
                hogs = []
            if len(handovers) > 1:
                print(
                    f"  {len(handovers)} handovers: " + ", ".join(f"{h:.1f}" for h in handovers)
                    + f" s; median {statistics.median(handovers):.1f} s, worst {max(handovers):.1f} s"
                )
    finally:
        for hog in hogs:
            hog.kill()
        for sim in extra:
            await sim.stop(10)
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--printers", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=1, help="gateway replicas sharing the fleet")
    parser.add_argument(
        "--simulators", type=int, default=1, help="simulator processes, the printers split between them"
    )
    parser.add_argument(
        "--saturate", action="store_true", help="one busy process per core during the handover after the kill"
    )
    parser.add_argument(
        "--busy-per-core",
        type=int,
        default=1,
        help="with --saturate, busy processes per core (more: a smaller fleet's replicas as starved as a larger one's)",
    )
    parser.add_argument("--window", type=float, default=30.0, help="seconds of steady state to measure")
    parser.add_argument(
        "--printing",
        action="store_true",
        help="also measure with every printer printing (progress in every report: the worst case)",
    )
    parser.add_argument(
        "--register-first",
        action="store_true",
        help="register every printer through one replica before the others start (this bench's old order)",
    )
    parser.add_argument(
        "--kills",
        type=int,
        default=1,
        help="handovers to measure after one registration (the killed replica starts again and the fleet settles)",
    )
    parser.add_argument("--register-concurrency", type=int, default=16, help="registrations in flight at once")
    parser.add_argument(
        "--profile",
        type=Path,
        help="folder for py-spy samples of replica 1 (steady state, and its takeover) and of simulator 1 (steady)",
    )
    parser.add_argument("--x1-share", type=float, default=0.5, help="share of full-report X1C printers")
    parser.add_argument(
        "--log-level", default="WARNING", help="of the gateways and the simulator (logs kept with DEVSTACK_KEEP=1)"
    )
    asyncio.run(main(parser.parse_args()))
