"""The tamper-evident audit log: every operator action (CLI or admin API), who made it, from
where, when, and what it changed (before -> after).

Entries form a hash chain: an entry's hash covers its own content and the hash of the entry
before it, so editing, inserting or deleting a row breaks the chain there, and `verify` names the
first entry that does not hold. `audited` wraps an operator's change so that the change and its
entry run on one database thread in one transaction: they commit together or not at all, and a
rerun after a rollback appends the entry again with the change. Appends take a lock (PostgreSQL:
an advisory lock; SQLite: the write lock every transaction takes) so the chain stays one line
however many processes write."""

from __future__ import annotations

import getpass
import hashlib
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Connection, func, insert, select

from xhuma.storage.db import now_us
from xhuma.storage.tables import audit_log

T = TypeVar("T")
GENESIS = "0" * 64
"""The previous hash of the first entry."""
_LOCK = 7177002


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where (an address for the admin API, `cli@host` for the command line)."""

    name: str
    source: str


def cli_actor(name: str | None = None) -> Actor:
    return Actor(name or getpass.getuser(), f"cli@{socket.gethostname()}"[:100])


def canonical(value: Any) -> str | None:
    """A state as stable JSON text (sorted keys), or None for no state."""
    if value is None:
        return None
    return msgspec.json.encode(msgspec.to_builtins(value), order="sorted").decode()


def entry_hash(row: Mapping[str, Any]) -> str:
    """The hash of an entry: of its stored fields and the hash before it."""
    fields = [row[k] for k in ("seq", "prev_hash", "at_us", "actor", "source", "action", "target", "before", "after")]
    return hashlib.sha256(msgspec.json.encode(fields)).hexdigest()


def first_break(rows: Iterable[Mapping[str, Any]]) -> tuple[int, str] | None:
    """The first entry (by seq) where the chain does not hold, and why; None when it holds."""
    expected_seq, expected_prev = 1, GENESIS
    for row in rows:
        if row["seq"] != expected_seq:
            return row["seq"], f"expected entry {expected_seq} here: an entry is missing or was inserted"
        if row["prev_hash"] != expected_prev:
            return row["seq"], "its previous hash is not the hash of the entry before it"
        if entry_hash(row) != row["hash"]:
            return row["seq"], "its hash does not match its content: it was changed after it was written"
        expected_seq, expected_prev = expected_seq + 1, row["hash"]
    return None


def record(
    conn: Connection, actor: Actor, action: str, target: str, before: Any = None, after: Any = None
) -> dict[str, Any]:
    """Append one entry in the caller's transaction."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    row: dict[str, Any] = {
        "seq": 1 if last is None else last.seq + 1,
        "prev_hash": GENESIS if last is None else last.hash,
        "at_us": now_us(),
        "actor": actor.name[:100],
        "source": actor.source[:100],
        "action": action,
        "target": target,
        "before": canonical(before),
        "after": canonical(after),
    }
    row["hash"] = entry_hash(row)
    conn.execute(insert(audit_log).values(row))
    return row


def audited(
    change: Callable[[Connection], T],
    actor: Actor,
    action: str,
    target: str,
    state: Callable[[Connection], Any] | None = None,
) -> Callable[[Connection], T]:
    """The change, recorded with the state it touches read before and after it (`state`). A
    change that answers False changed nothing (a refused retry, say) and is not recorded."""

    def op(conn: Connection) -> T:
        before = state(conn) if state else None
        result = change(conn)
        if result is not False:
            record(conn, actor, action, target, before, state(conn) if state else None)
        return result

    return op


def entries(limit: int = 100, action: str | None = None) -> Callable[[Connection], list[dict[str, Any]]]:
    """The newest entries first."""

    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        if action:
            query = query.where(audit_log.c.action == action)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op


def verify() -> Callable[[Connection], tuple[int, tuple[int, str] | None]]:
    """How many entries there are, and the first break in the chain (None when it holds)."""

    def op(conn: Connection) -> tuple[int, tuple[int, str] | None]:
        total = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        rows = (dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings())
        return total, first_break(rows)

    return op
