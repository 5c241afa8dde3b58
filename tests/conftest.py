"""Session fixtures: the whole switch as real processes, once per database backend.

Every test that uses `switch` runs twice: on SQLite (the embedded default) and on the
PostgreSQL at XHUMA_TEST_POSTGRES_URL (default postgresql://127.0.0.1:5432/test), each in a
fresh database. Set XHUMA_TEST_BACKENDS=sqlite to run one backend only."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.fleet import Fleet, running_fleet
from tests.support import Retailer, Server, free_port, process_env, xhuma
from xhuma.storage.db import Database, migrate

POSTGRES_URL = os.environ.get("XHUMA_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
BACKENDS = os.environ.get("XHUMA_TEST_BACKENDS", "sqlite,postgresql").split(",")


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database of the backend, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'xhuma-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"xhuma_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend for the session, shared by the session's switch."""
    with fresh_database(backend, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own, for tests that run their own switch processes."""
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def db(fresh_database_url: str) -> Iterator[Database]:
    """A migrated database of its own, for tests that call operations in process."""
    database = Database(fresh_database_url)
    migrate(database.engine)
    yield database
    database.close()


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    server = Server(
        ["simulate", "ppu", "--port", str(port), "--tst011-delay", "1", "--seed", "7"], port, process_env(), log
    )
    yield server
    server.stop()


@dataclass
class Switch:
    server: Server
    url: str
    env: dict[str, str]
    config: Path
    retailer: Retailer
    other_retailer: Retailer

    def cli(self, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return xhuma(*args, env=self.env, check=check)


def write_config(path: Path, simulator_url: str, read_timeout: float = 5.0) -> Path:
    path.write_text(
        '[switch]\ninstitution_id = "xhuma-test"\ninstitution_name = "xhuma under test"\n\n'
        f'[[providers]]\nname = "sim"\nbase_url = "{simulator_url}"\nusername = "xhuma"\n'
        f'password_env = "SIM_PASSWORD"\nread_timeout = {read_timeout}\n'
    )
    return path


@pytest.fixture(scope="session")
def switch(database_url: str, simulator: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    folder = tmp_path_factory.mktemp("switch")
    config = write_config(folder / "xhuma.toml", simulator.url)
    env = process_env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config), SIM_PASSWORD="sim-secret")
    xhuma("clients", "add", "--username", "till", "--password", "s3cret-till", "--client-id", "retailer-1", env=env)
    xhuma("clients", "add", "--username", "other", "--password", "other-pass", "--client-id", "retailer-2", env=env)
    port = free_port()
    server = Server(["serve", "--port", str(port)], port, env, folder / "switch.log")
    yield Switch(
        server,
        server.url,
        env,
        config,
        Retailer(server.url, "till", "s3cret-till", "retailer-1"),
        Retailer(server.url, "other", "other-pass", "retailer-2"),
    )
    server.stop()


@pytest.fixture
def fleet(fresh_database_url: str, tmp_path: Path) -> Iterator[Fleet]:
    """The ten simulated providers and a switch in front of them, on a fresh database."""
    with running_fleet(fresh_database_url, tmp_path) as running:
        yield running
