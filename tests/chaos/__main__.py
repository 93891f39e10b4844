"""`python -m tests.chaos`: run the chaos harness over many seeds, print a summary table, and
exit 1 when any seed found a violation (2 on bad usage)."""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from tests.chaos.harness import ChaosOptions, SeedResult, run_quietly
from tests.chaos.report import HEADER, details, row, totals


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description="syncd under faults, kills and a random workload: no point lost or doubled",
    )
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--customers", type=int, default=200, help="per seed (default 200)")
    parser.add_argument("--ops", type=int, default=300, help="operations per seed (default 300)")
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs per seed (default 12)")
    parser.add_argument(
        "--uptime",
        type=float,
        nargs=2,
        default=(0.8, 3.5),
        metavar=("MIN", "MAX"),
        help="seconds between a (re)start or kill and the next kill (default 0.8 3.5)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="syncd run processes (default 1)")
    parser.add_argument(
        "--postgres", metavar="URL", help="PostgreSQL server (a schema per seed); needed for 2+"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="seeds run at once, each in its own process"
    )
    parser.add_argument(
        "--keep", metavar="DIR", type=Path, help="keep the logs and database of failing seeds"
    )
    args = parser.parse_args(argv)
    if args.replicas > 1 and not args.postgres:
        parser.error("--replicas above 1 needs --postgres URL (replicas share one database)")
    if min(args.kills, args.seeds, args.customers, args.jobs) < 1:
        parser.error("--seeds, --customers, --kills and --jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    options = ChaosOptions(
        customers=args.customers,
        ops=args.ops,
        kills=args.kills,
        uptime=tuple(args.uptime),
        replicas=args.replicas,
        postgres=args.postgres,
        keep=args.keep,
    )
    store = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"chaos: seeds {args.first_seed}..{args.first_seed + args.seeds - 1}, "
        f"{args.customers} customers, {args.ops} operations, {args.kills}+ kills, "
        f"{args.replicas} replica(s) on {store}",
        flush=True,
    )
    print(HEADER, flush=True)
    started = time.monotonic()
    results: list[SeedResult] = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for result in pool.map(run_quietly, seeds, [options] * len(seeds)):
            for line in [row(result), *details(result)]:
                print(line, flush=True)
            results.append(result)
    for line in totals(results, time.monotonic() - started):
        print(line)
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
