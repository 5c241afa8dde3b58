"""python -m tests.sim --seeds 1000 [--seed N] [--faults commit_lost,crash] [--database-url URL]"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from tests.sim.faults import ALL_CLASSES
from tests.sim.run import Result, postgres_database, run_seed, run_seeds_sqlite


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim")
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds, from --first")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--seed", type=int, help="run this one seed and print its problems")
    parser.add_argument("--faults", help=f"comma-separated classes to inject (default all: {sorted(ALL_CLASSES)})")
    parser.add_argument("--sessions", type=int, default=20, help="retail purchases per seed")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a database is made per seed)")
    parser.add_argument("--trace", action="store_true", help="print the event trace of each failing seed")
    parser.add_argument("--verbose", action="store_true", help="show the switch's own log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL)
    faults = frozenset(args.faults.split(",")) if args.faults else ALL_CLASSES
    unknown = faults - ALL_CLASSES
    if unknown:
        parser.error(f"unknown fault classes {sorted(unknown)}")
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.perf_counter()
    failed = 0
    for result in _results(seeds, args.database_url, faults, args.sessions):
        if result.problems:
            failed += 1
            print(f"seed {result.seed} digest {result.digest}: {len(result.problems)} problems {result.injected}")
            if args.trace:
                print("\n".join(f"    | {line}" for line in result.trace))
            for problem in result.problems[:10]:
                print(f"    {problem}")
            print(f"    reproduce with --seed {result.seed}" + (f" --faults {args.faults}" if args.faults else ""))
        elif args.seed is not None:
            print(f"seed {result.seed} digest {result.digest}: ok {result.injected} ({result.events} events)")
    elapsed = time.perf_counter() - started
    print(f"{len(seeds)} seeds, {failed} with problems, {len(seeds) / elapsed:.1f} seeds/s")
    return 1 if failed else 0


def _results(seeds: list[int], url: str | None, faults: frozenset[str], sessions: int) -> list[Result] | object:
    if url is None:
        return run_seeds_sqlite(seeds, faults=faults, sessions=sessions)

    def each() -> object:
        for seed in seeds:
            with postgres_database(url) as database:
                yield run_seed(seed, database, faults=faults, sessions=sessions)

    return each()


if __name__ == "__main__":
    sys.exit(main())
