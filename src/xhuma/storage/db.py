"""The database handle: engine set-up for SQLite and PostgreSQL, migrations, and group commit.

Every journal write on the hot path goes through `Database.run`, which hands the work to a
small pool of database threads. A thread takes whatever work is queued and runs it in one
transaction: under load many purchases share one fsync (group commit), and the event loop never
blocks on the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from xhuma.metrics import COMMIT_SECONDS
from xhuma.storage.prepared import Prepared
from xhuma.storage.tables import commit_markers

T = TypeVar("T")
Operation = Callable[[Connection], T]

DEFAULT_URL = "sqlite:///var/xhuma.db"
MIGRATIONS = Path(__file__).with_name("migrations")


_clock_offset_us = 0
"""The shared database's clock minus this machine's (PostgreSQL), so every node stamps rows and
judges their age by one clock: staleness and leases never compare two machines' clocks."""


def conflict_insert(dialect_name: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say what a conflicting row does (`on_conflict_do_nothing` or
    `_do_update`): both our backends have ON CONFLICT, each in its own dialect's construct."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def now_us() -> int:
    """Microseconds since the epoch, by the shared database's clock."""
    return time.time_ns() // 1000 + _clock_offset_us


def follow_database_clock(engine: Engine) -> None:
    """Measure how far the database's clock is from ours (half a round trip is the error)."""
    global _clock_offset_us
    if engine.dialect.name != "postgresql":
        return  # SQLite lives on this machine: its clock is ours
    with engine.connect() as conn:
        before = time.time_ns() // 1000
        theirs = conn.exec_driver_sql("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint").scalar_one()
        after = time.time_ns() // 1000
    _clock_offset_us = int(theirs) - (before + after) // 2


def database_url() -> str:
    return os.environ.get("XHUMA_DATABASE_URL") or DEFAULT_URL


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        _make_sqlite_durable(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_size=8, max_overflow=8, pool_pre_ping=True)


def _make_sqlite_durable(engine: Engine) -> None:
    """WAL with synchronous=FULL: a commit is on disk when it returns. We issue BEGIN IMMEDIATE
    ourselves so a write transaction takes the write lock up front instead of failing later."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=" + os.environ.get("XHUMA_SQLITE_SYNC", "FULL"))
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe for several processes on
    PostgreSQL, where an advisory lock serialises them)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7177001)")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """The schema's revision in this database (None when it has none) and the newest one we know,
    read without changing anything: reading commands must not migrate as a side effect."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    newest = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert newest is not None
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), newest


class Database:
    """Runs operations (functions of a Connection) in grouped transactions on worker threads."""

    def __init__(
        self,
        url: str | None = None,
        *,
        threads: int | None = None,
        batch_max: int = 128,
        faults: FaultHook | None = None,
    ):
        self.url = url or database_url()
        self.faults = faults
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._threads_wanted = threads or (1 if self.dialect == "sqlite" else 4)
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        follow_database_clock(self.engine)
        for i in range(self._threads_wanted):
            thread = threading.Thread(target=self._work, name=f"xhuma-db-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.engine.dispose()

    async def run(self, op: Operation[T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((op, future, loop))
        return await future

    def run_sync(self, op: Operation[T]) -> T:
        """For commands and tests outside an event loop: one operation, one transaction."""
        with self.engine.begin() as conn:
            return op(conn)

    def _work(self) -> None:
        # Each thread keeps its own connection: checking one out of the pool per group would
        # cost a pool round (and a reset ROLLBACK) per commit.
        holder = _HeldConnection(self.engine, self.faults)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                while len(batch) < self._batch_max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)
                        break
                    batch.append(more)
                self._run_batch(holder, batch)
        finally:
            holder.close()

    def _run_batch(self, holder: _HeldConnection, batch: list[Any]) -> None:
        try:
            results = holder.transaction(lambda conn: [op(conn) for op, _, _ in batch])
        except Exception:
            # The group did not commit (an in-doubt COMMIT was settled by its marker): run each
            # operation alone so only the failing one sees its error. Every operation is
            # idempotent by our own ids, so one that did partly run before is safe to run again.
            for op, future, loop in batch:
                try:
                    result = holder.transaction(op)
                except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                    loop.call_soon_threadsafe(_settle, future, None, exc)
                else:
                    loop.call_soon_threadsafe(_settle, future, result, None)
            return
        for (_, future, loop), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_settle, future, result, None)


class InDoubt(Exception):
    """A COMMIT failed and whether it took effect could not be found out (the database stayed
    away): the operation is neither reported done nor run again."""


FaultHook = Callable[[str], None]
"""Called with "before_commit" and "after_commit" around each COMMIT: the fault simulator's seam
for failing a commit, or committing and then losing the acknowledgement."""


class _HeldConnection:
    """A connection kept by one database thread, replaced when the database drops it.

    Each transaction writes a commit marker; when COMMIT raises, a fresh connection looks for
    the marker, so a commit whose acknowledgement was lost is reported as done (with the results
    the work computed) and never run a second time."""

    CHECK_ATTEMPTS = 5

    def __init__(self, engine: Engine, faults: FaultHook | None = None) -> None:
        self.engine = engine
        self.faults = faults
        self.conn: Connection | None = None
        self._commits = 0

    def _connection(self) -> Connection:
        if self.conn is None or self.conn.closed or self.conn.invalidated:
            self.conn = self.engine.connect()
        return self.conn

    def transaction(self, work: Callable[[Connection], T]) -> T:
        conn = self._connection()
        marker = uuid.uuid4().hex
        committing = False
        began = time.perf_counter()
        try:
            with conn.begin():
                result = work(conn)
                MARK.execute(conn, {"id": marker, "at_us": now_us()})
                committing = True
                if self.faults is not None:
                    self.faults("before_commit")
            if self.faults is not None:
                self.faults("after_commit")
        except Exception as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated or committing:
                self.close()
            if committing and self._committed(marker):
                return result
            raise
        COMMIT_SECONDS.observe(time.perf_counter() - began)
        self._commits += 1
        if self._commits % MARKER_SWEEP_EVERY == 0:
            self._sweep()
        return result

    def _committed(self, marker: str) -> bool:
        """Whether the transaction that wrote `marker` committed, asked on a new connection."""
        for attempt in range(self.CHECK_ATTEMPTS):
            try:
                conn = self._connection()
                with conn.begin():
                    found = conn.execute(select(commit_markers.c.id).where(commit_markers.c.id == marker)).first()
                return found is not None
            except Exception:  # noqa: BLE001 - the database may be briefly away; ask again
                self.close()
                time.sleep(0.05 * 2**attempt)
        raise InDoubt(f"commit {marker} may or may not have taken effect")

    def _sweep(self) -> None:
        """Markers are needed only while their COMMIT's outcome is being found out."""
        try:
            follow_database_clock(self.engine)
            conn = self._connection()
            with conn.begin():
                conn.execute(delete(commit_markers).where(commit_markers.c.at_us < now_us() - MARKER_KEEP_US))
        except Exception:  # noqa: BLE001 - a later sweep takes them
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


MARK = Prepared(lambda _: insert(commit_markers), ["id", "at_us"])
MARKER_SWEEP_EVERY = 1000
MARKER_KEEP_US = 600 * 1_000_000


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def bulk_insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of one shape (dicts with the same keys) inside the current transaction."""
    if rows:
        names = list(rows[0])
        bulk_insert_rows(conn, table, names, [tuple(row[name] for name in names) for row in rows])


def bulk_insert_rows(conn: Connection, table: Any, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows, each a tuple of the `names` columns' values, by the fastest path each
    database has: COPY on PostgreSQL (several times a multi-row INSERT), the driver's executemany
    on SQLite (SQLAlchemy's own executemany spends more building each row's parameters than
    SQLite spends inserting it). Values go in as given: no Python-side defaults or conversions."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        conn.exec_driver_sql(sql, list(rows))
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
