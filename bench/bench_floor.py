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
WARM_UP = 5
"""Rounds run before measuring (connections, prepared statements, caches), for the floor and the queue alike."""
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


class Floor:
    """The floor's two sides on one connection each: `round()` is one measured round. Set up with `start()`,
    torn down (tables and stream dropped) with `close()`; rounds can be interleaved with another measurement,
    so both see the same machine load."""

    def __init__(self, nats_url: str, database_dsn: str, printers: int = 1000) -> None:
        self.nats_url, self.database_dsn, self.printers = nats_url, database_dsn, printers
        self.rounds = 0
        self._received: dict[str, asyncio.Future[float]] = {}
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        import asyncpg
        import nats
        from nats.js.api import StreamConfig

        self.connection = await asyncpg.connect(self.database_dsn)
        self.nc = await nats.connect(self.nats_url)
        self.js = self.nc.jetstream()
        await self.connection.execute(TABLES)
        await self.connection.executemany(
            "INSERT INTO bench_floor_printers VALUES ($1, 'idle', 0) ON CONFLICT DO NOTHING",
            [(f"floor-{i}",) for i in range(self.printers)],
        )
        await self.js.add_stream(StreamConfig(name=STREAM, subjects=["bench.floor.>"]))
        self.pull = await self.js.pull_subscribe(SUBJECT_IN, durable="bench_floor", stream=STREAM)
        await self.nc.subscribe(SUBJECT_OUT, cb=self._on_start)
        self._worker = asyncio.create_task(self._service())

    async def _on_start(self, msg: Any) -> None:
        waiter = self._received.get(json.loads(msg.data)["printer_id"])
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())

    async def _service(self) -> None:
        """The consumer side: pull, one transaction, publish the outcome (acked), ack the input."""
        connection, js = self.connection, self.js
        while not self._stopping.is_set():
            try:
                messages = await self.pull.fetch(1, timeout=1.0)
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

    async def round(self) -> float:
        """One round's milliseconds, from before the publish until the second subscriber has the outcome."""
        key = f"round-{self.rounds}-{uuid.uuid4().hex[:6]}"
        self._received[key] = asyncio.get_running_loop().create_future()
        payload = json.dumps({"id": key, "printer": f"floor-{self.rounds % self.printers}"}).encode()
        self.rounds += 1
        started = time.perf_counter()
        await self.js.publish(SUBJECT_IN, payload, headers={"Nats-Msg-Id": key})
        try:
            arrived = await asyncio.wait_for(self._received[key], 30)
        finally:
            del self._received[key]
        return (arrived - started) * 1000

    async def close(self) -> None:
        self._stopping.set()
        await self._worker
        await self.connection.execute("DROP TABLE IF EXISTS bench_floor_printers, bench_floor_outbox")
        await self.connection.close()
        try:
            await self.js.delete_stream(STREAM)
        finally:
            await self.nc.close()


async def measure_floor(nats_url: str, database_dsn: str, rounds: int, printers: int = 1000) -> Percentiles:
    """`database_dsn`: an asyncpg DSN; the bench's tables are made there and dropped afterwards. The first
    rounds warm connections and caches and are not counted."""
    floor = Floor(nats_url, database_dsn, printers)
    await floor.start()
    try:
        for _ in range(WARM_UP):
            await floor.round()
        return Percentiles.of([await floor.round() for _ in range(rounds)])
    finally:
        await floor.close()


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
