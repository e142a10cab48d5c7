"""Latency of `GET /api/v1/skus?q=` with 10,000 SKUs (target: p95 < 50 ms).

Starts the skus service with its own PostgreSQL and NATS through devstack (or uses DATABASE_URL /
NATS_URL when set), creates a few parts over HTTP, seeds the SKUs straight into its database (each
with one to three part lines), then times searches over HTTP: common and rare substrings of codes
and names, in either case, and the unfiltered first page.

    .venv/bin/python bench/bench_skus_search.py [--skus 10000] [--requests 600]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devstack import Stack, StackConfig
from devstack.postgres import asyncpg_dsn

FAMILIES = ["PLANTER", "VASE", "HOOK", "BRACKET", "COASTER", "LAMP", "TRAY", "CLIP", "KNOB", "MUG"]
COLOURS = ["RED", "BLUE", "GREEN", "BLACK", "WHITE", "ORANGE", "GREY", "PINK"]
SIZES = ["S", "M", "L", "XL"]
TARGET_P95_MS = 50.0


def sliced_project(n: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Metadata/plate_1.gcode", f"; part {n}\nG28\nG1 X1 Y1\n")
        z.writestr(
            "Metadata/slice_info.config",
            '<config><plate><metadata key="index" value="1"/><metadata key="prediction" value="3600"/>'
            f'<metadata key="weight" value="{10 + n}"/><filament id="1" type="PLA" color="#FF0000" '
            f'used_g="{10 + n}"/></plate></config>',
        )
    return out.getvalue()


async def create_parts(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for n in range(count):
        r = await client.post(
            "/api/v1/parts",
            data={"name": f"Bench part {n}", "material_type": "PLA"},
            files={"file": (f"bench{n}.gcode.3mf", sliced_project(n))},
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


async def seed_skus(database_url: str, part_ids: list[str], count: int, rng: random.Random) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        now = datetime.now(UTC)
        rows: list[tuple[Any, ...]] = []
        uses: list[tuple[str, str]] = []
        for n in range(count):
            family, colour, size = rng.choice(FAMILIES), rng.choice(COLOURS), rng.choice(SIZES)
            sku_id = f"00000000-0000-7000-9000-{n:012d}"
            lines: list[dict[str, Any]] = [
                {
                    "part_id": p,
                    "quantity": rng.randint(1, 4),
                    "material": None,
                    "parameter_values": {},
                    "sku_params": [],
                }
                for p in rng.sample(part_ids, rng.randint(1, 3))
            ]
            code = f"{family}-{colour}-{size}-{n:05d}"
            name = f"{family.title()} {colour.lower()} {size} #{n}"
            rows.append((sku_id, code, name, None, json.dumps(lines), 1, now, now))
            uses.extend((sku_id, line["part_id"]) for line in lines)
        await conn.copy_records_to_table(
            "skus",
            records=rows,
            columns=["id", "sku", "name", "description", "lines", "revision", "created_at", "updated_at"],
        )
        await conn.copy_records_to_table("sku_part_uses", records=uses, columns=["sku_id", "part_id"])
        await conn.execute("ANALYZE skus; ANALYZE sku_part_uses")
    finally:
        await conn.close()


def queries(rng: random.Random, n: int) -> list[str | None]:
    pool: list[str | None] = [
        None,
        "planter",
        "PLANTER-RED",
        "vase-blue-xl",
        "hook",
        "red",
        "Green",
        "-l-",
        "0042",
        "04217",
        "bracket-black-s-0",
        "mug white",
        "lamp",
        "zzz-no-match",
        "co",
        "xl-09",
        "Tray grey",
    ]
    return [rng.choice(pool) for _ in range(n)]


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def run(sku_count: int, requests: int) -> int:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-skus-"))
    rng = random.Random(7)
    config = StackConfig.for_tests(
        folder, os.environ, services=("skus",), start_simulator=False, register_printers=False, log_level="WARNING"
    )
    try:
        async with (
            Stack(config) as stack,
            httpx.AsyncClient(base_url=stack.service_url("skus"), timeout=30, trust_env=False) as client,
        ):
            part_ids = await create_parts(client, 20)
            started = time.perf_counter()
            await seed_skus(stack.database_urls["skus"], part_ids, sku_count, rng)
            print(f"seeded {sku_count} SKUs in {time.perf_counter() - started:.1f} s")
            plan = queries(rng, requests)
            for q in plan[:30]:  # warm the connection pool and caches
                (await client.get("/api/v1/skus", params={"q": q} if q else {})).raise_for_status()
            pid = stack.instance("skus").process.pid
            cpu_before = process_cpu_seconds(pid)
            latencies: list[float] = []
            per_query: dict[str, list[float]] = {}
            matches: dict[str, int] = {}
            for q in plan:
                t0 = time.perf_counter()
                r = await client.get("/api/v1/skus", params={"q": q} if q else {})
                elapsed = (time.perf_counter() - t0) * 1000
                r.raise_for_status()
                latencies.append(elapsed)
                per_query.setdefault(q or "(none)", []).append(elapsed)
                matches[q or "(none)"] = len(r.json()["items"])
            cpu_ms = (process_cpu_seconds(pid) - cpu_before) * 1000 / len(plan)
            p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
            print(f"GET /api/v1/skus?q= over {sku_count} SKUs, {len(latencies)} requests, page size 50:")
            print(
                f"  p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  max {max(latencies):.1f} ms"
                f"  mean {statistics.mean(latencies):.1f} ms"
            )
            for q, values in sorted(per_query.items()):
                print(f"  q={q!r:22} n={len(values):3}  items={matches[q]:2}  p95 {percentile(values, 95):6.1f} ms")
            print(f"  skus service CPU per request: {cpu_ms:.1f} ms (independent of other load on the machine)")
            cores = os.cpu_count() or 1
            print(f"  machine: {cores} cores, load average {os.getloadavg()[0]:.1f} (client and server share them)")
            verdict = "PASS" if p95 < TARGET_P95_MS else "FAIL"
            print(f"{verdict}: p95 {p95:.1f} ms (target < {TARGET_P95_MS:.0f} ms)")
            return 0 if p95 < TARGET_P95_MS else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=600)
    args: Any = parser.parse_args()
    raise SystemExit(asyncio.run(run(args.skus, args.requests)))


if __name__ == "__main__":
    main()
