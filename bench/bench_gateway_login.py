"""What a burst of logins costs the API gateway: Argon2id verifies through the bounded hasher.

Each login verifies one Argon2id hash (64 MiB, on purpose). The gateway runs at most
PASSWORD_HASH_CONCURRENCY of them at once and lets PASSWORD_HASH_QUEUE more wait; the rest get a 503
at once. This prints, for a burst of concurrent logins: latency percentiles of the verified ones, how
many were refused, and the process's peak memory; then the same burst unbounded, for comparison
(peak memory is per process and only grows, so the bounded run goes first). Unbounded, asyncio's
default thread pool (min(32, cores + 4) threads) is the only limit: 6 hashes at once on two cores,
384 MiB, over the gateway container's 256 MiB.

    .venv/bin/python bench/bench_gateway_login.py [--burst 32] [--concurrency 2] [--queue 32]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

from api_gateway.adapters.passwords import Argon2Passwords
from api_gateway.domain.errors import HashingBusy


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def burst(passwords: Argon2Passwords, hashed: str, size: int) -> tuple[list[float], int, float]:
    async def one() -> float | None:
        started = time.perf_counter()
        try:
            await passwords.verify(hashed, "not the password")
        except HashingBusy:
            return None
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(size)))
    wall = time.perf_counter() - started
    done = [r for r in results if r is not None]
    return done, size - len(done), wall


def describe(label: str, done: list[float], refused: int, wall: float) -> str:
    q = statistics.quantiles(done, n=20) if len(done) >= 2 else done * 19
    return (
        f"{label:<28} verified {len(done):>4}  refused {refused:>4}  wall {wall:6.2f} s  "
        f"p50 {statistics.median(done):7.0f} ms  p95 {q[18]:7.0f} ms  peak RSS {peak_mib():7.0f} MiB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--queue", type=int, default=32)
    args = parser.parse_args()

    bounded = Argon2Passwords(concurrency=args.concurrency, queue=args.queue)
    hashed = await bounded.hash("the right password")
    started = time.perf_counter()
    await bounded.verify(hashed, "not the password")
    took = (time.perf_counter() - started) * 1000
    print(f"one Argon2id verify: {took:.0f} ms; baseline peak RSS {peak_mib():.0f} MiB")
    print(describe(f"bounded ({args.concurrency} + {args.queue} waiting)", *await burst(bounded, hashed, args.burst)))
    unbounded = Argon2Passwords(concurrency=args.burst, queue=0)
    print(describe(f"unbounded ({args.burst} at once)", *await burst(unbounded, hashed, args.burst)))


if __name__ == "__main__":
    asyncio.run(main())
