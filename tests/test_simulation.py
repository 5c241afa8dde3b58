"""The seeded fault simulator in CI: many seeds on SQLite, a few on the real PostgreSQL, every
fault class on (database faults at statements and at COMMIT, provider faults, crashes, lost
answers). The long form is `python -m tests.sim --seeds N`; a failing seed prints how to
reproduce it alone."""

from __future__ import annotations

import os

import pytest

from tests.conftest import BACKENDS, POSTGRES_URL
from tests.sim.run import postgres_database, run_seed, run_seeds_sqlite

SQLITE_SEEDS = int(os.environ.get("XHUMA_SIM_SEEDS", "60"))
POSTGRES_SEEDS = int(os.environ.get("XHUMA_SIM_POSTGRES_SEEDS", "3"))


def report(label: str, results: list[tuple[int, list[str]]]) -> None:
    failed = [(seed, problems) for seed, problems in results if problems]
    print(f"\nsimulator ({label}): {len(results)} seeds, {len(failed)} with problems")
    assert not failed, "\n".join(
        f"seed {seed}: {problems[:5]}; reproduce with python -m tests.sim --seed {seed}" for seed, problems in failed
    )


def test_seeds_on_sqlite() -> None:
    results = [(r.seed, r.problems) for r in run_seeds_sqlite(list(range(1, SQLITE_SEEDS + 1)))]
    report("SQLite", results)


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not among the test backends")
def test_seeds_on_postgresql() -> None:
    results = []
    for seed in range(1, POSTGRES_SEEDS + 1):
        with postgres_database(POSTGRES_URL) as url:
            results.append((seed, run_seed(seed, url).problems))
    report("PostgreSQL", results)


def test_a_seed_gives_the_same_run_twice() -> None:
    first, second = (next(iter(run_seeds_sqlite([7]))) for _ in range(2))
    assert first.digest == second.digest and first.events == second.events
