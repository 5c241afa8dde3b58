"""Statements compiled once per database dialect and run straight through the driver.

On the hot path SQLAlchemy's per-execution work (building the statement, its cache key, the
execution context, result wrapping) cost several times more than the database itself. A
prepared statement keeps SQLAlchemy's dialect-correct SQL, compiled once, and runs it on the
DB-API cursor of the connection, inside the transaction SQLAlchemy opened."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.expression import Executable


class Prepared:
    def __init__(self, build: Callable[[str], Executable], column_keys: Iterable[str] | None = None) -> None:
        self._build = build
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _sql(self, conn: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = self._build(name).compile(dialect=conn.dialect, column_keys=self._column_keys)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if conn.dialect.positional else None
            # Literals in the statement (`attempts + 1`, `lease_owner = NULL`) are binds too.
            fixed = {k: v for k, v in compiled.params.items() if not compiled.binds[k].required}
            found = self._compiled[name] = (str(compiled), order, fixed)
        return found

    def execute(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Run it; the DB-API cursor is returned for `fetchone`/`fetchall`."""
        sql, order, fixed = self._sql(conn)
        cursor = conn.connection.cursor()
        cursor.execute(sql, _bind(fixed, params, order))
        return cursor

    def execute_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        sql, order, fixed = self._sql(conn)
        conn.connection.cursor().executemany(sql, [_bind(fixed, row, order) for row in rows])


def _bind(fixed: dict[str, Any], params: dict[str, Any], order: tuple[str, ...] | None) -> Any:
    plain = {**fixed, **{k: v.value if isinstance(v, Enum) else v for k, v in params.items()}}
    return tuple(plain[k] for k in order) if order is not None else plain
