"""The floor under the queue's dispatch latency: the least work a "printer ready → start command on the bus"
round can do with the same servers. Per round: one JetStream publish (acked) of the "printer changed"
message, one JetStream pull that receives it, one PostgreSQL transaction (lock a row, update it, insert an
outbox row), one acked JetStream publish of the "start" message, and a second subscriber that receives it.

    .venv/bin/python bench/bench_floor.py [--rounds 200]

Alone it starts embedded PostgreSQL and NATS through devstack in a temp folder; `bench_queue.py` calls
`measure_floor` on its own stack, so the floor and the queue's figures come from the same servers in one run.
Nothing here is the queue's code: raw asyncpg and nats-py, the lower bound a service could approach.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STREAM = "BENCH_FLOOR"
SUBJECT_IN = "bench.floor.printer_changed"
SUBJECT_OUT = "bench.floor.start_print"
TABLES = """
CREATE TABLE IF NOT EXISTS bench_floor_printers (id text PRIMARY KEY, state text NOT NULL, revision bigint NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor_outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, message_id text NOT NULL UNIQUE, subject text NOT NULL,
    envelope jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz
);
"""


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p99: float
    max: float
    rounds: int

    @classmethod
    def of(cls, values: list[float]) -> Percentiles:
        ordered = sorted(values)
        return cls(
            p50=ordered[len(ordered) // 2],
            p99=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            max=ordered[-1],
            rounds=len(ordered),
        )

    def line(self) -> str:
        return f"p50 {self.p50:8.1f} ms   p99 {self.p99:8.1f} ms   max {self.max:8.1f} ms"


async def measure_floor(nats_url: str, database_dsn: str, rounds: int, printers: int = 1000) -> Percentiles:
    """`database_dsn`: an asyncpg DSN; the bench's tables are made there and dropped afterwards."""
    import asyncpg
    import nats
    from nats.js.api import StreamConfig

    connection = await asyncpg.connect(database_dsn)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await connection.execute(TABLES)
        await connection.executemany(
            "INSERT INTO bench_floor_printers VALUES ($1, 'idle', 0) ON CONFLICT DO NOTHING",
            [(f"floor-{i}",) for i in range(printers)],
        )
        await js.add_stream(StreamConfig(name=STREAM, subjects=["bench.floor.>"]))
        pull = await js.pull_subscribe(SUBJECT_IN, durable="bench_floor", stream=STREAM)
        received: dict[str, asyncio.Future[float]] = {}

        async def on_start(msg: Any) -> None:
            waiter = received.get(json.loads(msg.data)["printer_id"])
            if waiter is not None and not waiter.done():
                waiter.set_result(time.perf_counter())

        await nc.subscribe(SUBJECT_OUT, cb=on_start)
        stopping = asyncio.Event()

        async def service() -> None:
            """The consumer side: pull, one transaction, publish the outcome (acked), ack the input."""
            while not stopping.is_set():
                try:
                    messages = await pull.fetch(1, timeout=1.0)
                except TimeoutError:
                    continue
                for msg in messages:
                    data = json.loads(msg.data)
                    envelope = {"id": str(uuid.uuid4()), "type": SUBJECT_OUT, "data": {"printer_id": data["id"]}}
                    async with connection.transaction():
                        await connection.fetchrow(
                            "SELECT id FROM bench_floor_printers WHERE id = $1 FOR UPDATE", data["printer"]
                        )
                        await connection.execute(
                            "UPDATE bench_floor_printers SET state = 'busy', revision = revision + 1 WHERE id = $1",
                            data["printer"],
                        )
                        await connection.execute(
                            "INSERT INTO bench_floor_outbox (message_id, subject, envelope) VALUES ($1, $2, $3)",
                            envelope["id"], SUBJECT_OUT, json.dumps(envelope),
                        )
                    await js.publish(SUBJECT_OUT, json.dumps(envelope["data"]).encode(),
                                     headers={"Nats-Msg-Id": envelope["id"]})
                    await msg.ack()

        worker = asyncio.create_task(service())
        latencies: list[float] = []
        loop = asyncio.get_running_loop()
        for i in range(rounds + 5):
            key = f"round-{i}-{uuid.uuid4().hex[:6]}"
            received[key] = loop.create_future()
            payload = json.dumps({"id": key, "printer": f"floor-{i % printers}"}).encode()
            started = time.perf_counter()
            await js.publish(SUBJECT_IN, payload, headers={"Nats-Msg-Id": key})
            arrived = await asyncio.wait_for(received[key], 30)
            if i >= 5:  # the first rounds warm connections and caches
                latencies.append((arrived - started) * 1000)
        stopping.set()
        await worker
        return Percentiles.of(latencies)
    finally:
        await connection.execute("DROP TABLE IF EXISTS bench_floor_printers, bench_floor_outbox")
        await connection.close()
        try:
            await js.delete_stream(STREAM)
        finally:
            await nc.close()


async def main(rounds: int) -> None:
    from devstack import Stack, StackConfig
    from devstack.postgres import asyncpg_dsn

    folder = Path(tempfile.mkdtemp(prefix="printfarm-bench-floor-"))
    try:
        config = StackConfig.for_tests(folder, {}, services=(), start_simulator=False)
        async with Stack(config) as stack:
            found = await measure_floor(stack.nats_url, asyncpg_dsn(stack.database_urls["queue"]), rounds)
        print(f"floor: publish → pull → one transaction → acked publish → second subscriber, {rounds} rounds"
              f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"  {found.line()}")
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))
