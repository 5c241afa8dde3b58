"""One seed, start to end: a database from the migrated template, the world, the checker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.sim.checker import check, check_vouchers
from tests.sim.clock import VirtualLoop, virtual_clock
from tests.sim.faults import ALL_CLASSES, FaultPlan
from tests.sim.world import CLIENT, SUV_PROVIDER, World
from xhuma.storage.db import Database, make_engine, migrate
from xhuma.vouchers import catalogue_store
from xhuma.vouchers.catalogue import CSV_HEADER, products_from_csv

CATALOGUE = products_from_csv(
    CSV_HEADER
    + f"""
GIFT-100,Gift card R100,gift,A gift card,fixed,10000,,,710,,,{SUV_PROVIDER},SIM-GIFT-100,1
STREAM-VAR,Streaming credit,streaming,Any amount,variable,,5000,50000,710,,,{SUV_PROVIDER},SIM-STREAM,1
"""
)

os.environ.setdefault("XHUMA_SQLITE_SYNC", "OFF")  # durability is simulated; speed is not


@dataclass(frozen=True)
class Result:
    seed: int
    digest: str
    problems: list[str]
    injected: dict[str, int]
    events: int
    trace: list[str]


def _import_catalogue(url: str) -> None:
    database = Database(url)
    database.run_sync(catalogue_store.import_products(CLIENT, CATALOGUE, "sim"))
    database.engine.dispose()


class Template:
    """A migrated SQLite database, copied for each seed (migrating per seed is slow)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        migrate(engine)
        _import_catalogue(f"sqlite:///{self.path}")
        engine.dispose()  # the last connection to close checkpoints the WAL into the file

    @contextlib.contextmanager
    def copy(self, seed: int) -> Iterator[str]:
        path = self.folder / f"seed-{seed}.db"
        shutil.copyfile(self.path, path)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    name = f"xhuma_sim_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        _import_catalogue(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_seed(seed: int, url: str, *, faults: frozenset[str] = ALL_CLASSES, sessions: int = 20) -> Result:
    rng = random.Random(seed)
    plan = FaultPlan(random.Random(rng.getrandbits(64)), classes=faults)
    world = World(seed, url, plan, random.Random(rng.getrandbits(64)), sessions=sessions)
    loop = VirtualLoop()
    asyncio.set_event_loop(loop)
    try:
        with virtual_clock(seed):
            loop.run_until_complete(_run(world))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    engine = make_engine(url)
    try:
        problems = check(engine, world.ppu.ledger, world.till) + check_vouchers(engine, world.suv.ledger, world.till)
    finally:
        engine.dispose()
    digest = hashlib.sha256("\n".join(world.trace).encode()).hexdigest()[:16]
    return Result(seed, digest, problems, dict(plan.injected), len(world.trace), world.trace)


async def _run(world: World) -> None:
    """The world, then every task it left behind (workers, stragglers) cancelled and awaited."""
    await world.run()
    left = asyncio.all_tasks() - {asyncio.current_task()}
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


def run_seeds_sqlite(seeds: list[int], **options: object) -> Iterator[Result]:
    with tempfile.TemporaryDirectory(prefix="xhuma-sim-") as folder:
        template = Template(Path(folder))
        for seed in seeds:
            with template.copy(seed) as url:
                yield run_seed(seed, url, **options)  # type: ignore[arg-type]
