"""`python -m chaos [--seed N ...] [--short]`: one summary line per seed; exit 1 if any failed."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys

from chaos.plan import FULL, SHORT, plan_chaos
from chaos.run import run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument(
        "--seed", type=int, action="append", help="repeat for several runs in a row (default: one random seed)"
    )
    parser.add_argument("--short", action="store_true", help="the short run that `make test` does")
    parser.add_argument("--budget", type=float, help="seconds after the order is sent (default 600, short 150)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs) even when it passes")
    parser.add_argument("--plan", action="store_true", help="print the plan and exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    profile = SHORT if args.short else FULL
    budget = args.budget or (150.0 if args.short else 600.0)
    seeds = args.seed or [random.SystemRandom().randrange(1, 1_000_000)]
    if args.plan:
        for seed in seeds:
            serials = [f"CHAOS{n:05d}" for n in range(1, profile.printers + 1)]
            for action in plan_chaos(seed, profile, serials):
                print(f"seed={seed} {action.describe()}")
        return 0
    failed = 0
    for seed in seeds:
        outcome = asyncio.run(run_chaos(seed, profile, budget=budget, keep=args.keep))
        print(outcome.line(), flush=True)
        if not outcome.passed:
            failed += 1
            for reason in outcome.skipped:
                print(f"  not done: {reason}", file=sys.stderr)
            for job in outcome.tally.lost:
                print(f"  lost: {job}", file=sys.stderr)
            for start in outcome.tally.doubled:
                print(f"  printed twice: {start.job_id} on {start.serial} at {start.at}", file=sys.stderr)
            if outcome.kept:
                print(f"  logs: {outcome.kept}/stack/logs", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
