"""The queue's database operations. Entries are written by the transaction that creates them
(see `storage.journal.accept_advice`), claimed by workers under a lease, and settled with the
journal messages of the attempt in one commit. An entry's body is stored masked (see
`xhuma.security.masking`): a card number is sent on with its first 6 and last 4 digits, as the
interfaces' tenders carry it, and nothing secret waits in the queue in clear."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, not_, or_, select, update
from sqlalchemy.orm import aliased

from xhuma.domain.delivery import Verdict
from xhuma.security.masking import mask_body, mask_text
from xhuma.storage.db import conflict_insert, now_us
from xhuma.storage.journal import Message, open_exception, write_messages
from xhuma.storage.prepared import Prepared
from xhuma.storage.tables import reconciliation_exceptions, saf_entries

PENDING, DELIVERED, EXCEPTION, RESOLVED = "pending", "delivered", "exception", "resolved"


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class QueuedEntry:
    id: int
    queue: str
    tx_id: str
    operation: str
    method: str
    url: str
    body: str
    attempts: int
    created_us: int


@dataclass(frozen=True)
class Settlement:
    verdict: Verdict
    status: int | None
    error: str | None
    next_attempt_us: int
    messages: Sequence[Message]
    expired: bool = False


ENTRY_COLUMNS = [c.name for c in saf_entries.columns if c.name != "id"]


def _insert_entry(dialect: str) -> Any:
    return conflict_insert(dialect, saf_entries).on_conflict_do_nothing(index_elements=["tx_id", "operation"])


INSERT_ENTRY = Prepared(_insert_entry, ENTRY_COLUMNS)


def enqueue(queue: str, tx_id: str, operation: str, method: str, url: str, body: str) -> Callable[[Connection], bool]:
    """Queue a message; run it inside the transaction of the change that makes it due.

    Idempotent by our own id: a message (`operation` of transaction `tx_id`) is queued once, so
    an operation run again after a rollback, or two nodes deciding the same follow-up, queue
    one entry. False when it was queued already."""

    def op(conn: Connection) -> bool:
        at = now_us()
        row = dict.fromkeys(ENTRY_COLUMNS)
        row.update(
            queue=queue,
            tx_id=tx_id,
            operation=operation,
            method=method,
            url=url,
            body=mask_body(body),
            state=PENDING,
            attempts=0,
            next_attempt_us=at,
            created_us=at,
            updated_us=at,
        )
        return bool(INSERT_ENTRY.execute(conn, row).rowcount)

    return op


def claim(
    owner: str, limit: int, lease_us: int, *, ordered: Collection[str] = (), closed: Collection[str] = ()
) -> Callable[[Connection], list[QueuedEntry]]:
    """Take up to `limit` due entries for `owner`. On PostgreSQL, `SKIP LOCKED` lets workers on
    many machines claim side by side without waiting on or taking each other's entries."""

    def op(conn: Connection) -> list[QueuedEntry]:
        at = now_us()
        s = saf_entries.c
        query = (
            select(saf_entries)
            .where(
                s.state == PENDING,
                s.next_attempt_us <= at,
                or_(s.lease_until_us.is_(None), s.lease_until_us < at),
            )
            .order_by(s.next_attempt_us, s.id)
            .limit(limit)
        )
        if closed:
            query = query.where(s.queue.not_in(list(closed)))
        if ordered:
            older = aliased(saf_entries)
            query = query.where(
                or_(
                    s.queue.not_in(list(ordered)),
                    not_(exists().where(and_(older.c.queue == s.queue, older.c.state == PENDING, older.c.id < s.id))),
                )
            )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        conn.execute(
            update(saf_entries)
            .where(s.id.in_([r.id for r in rows]))
            .values(lease_owner=owner, lease_until_us=at + lease_us, updated_us=at)
        )
        return [
            QueuedEntry(r.id, r.queue, r.tx_id, r.operation, r.method, r.url, r.body, r.attempts, r.created_us)
            for r in rows
        ]

    return op


SETTLE = Prepared(
    lambda _: (
        update(saf_entries)
        .where(
            saf_entries.c.id == bindparam("entry_id"),
            saf_entries.c.lease_owner == bindparam("owner"),
            saf_entries.c.state == bindparam("pending"),
        )
        .values(
            state=bindparam("state"),
            attempts=saf_entries.c.attempts + 1,
            next_attempt_us=bindparam("next_attempt_us"),
            lease_owner=None,
            lease_until_us=None,
            last_status=bindparam("last_status"),
            last_error=bindparam("last_error"),
            updated_us=bindparam("updated_us"),
        )
        .returning(saf_entries.c.id)
    )
)


def settle(
    entry: QueuedEntry,
    owner: str,
    result: Settlement,
    on_final: Callable[[Connection], None] | None = None,
    on_failed: Callable[[Connection, str, str], None] | None = None,
) -> Callable[[Connection], bool]:
    """Record an attempt. Only the lease holder may settle: a worker that lost its lease (it was
    presumed dead) leaves the entry to whoever holds it now. `on_final` follows a delivery and
    `on_failed` an exception (with its reason and detail), in the same commit."""

    def op(conn: Connection) -> bool:
        at = now_us()
        if result.verdict is Verdict.DELIVERED:
            state, reason = DELIVERED, None
        elif result.verdict is Verdict.STOP:
            state, reason = EXCEPTION, "delivery_stopped"
        elif result.expired:
            state, reason = EXCEPTION, "delivery_expired"
        else:
            state, reason = PENDING, None
        owned = SETTLE.execute(
            conn,
            {
                "entry_id": entry.id,
                "owner": owner,
                "pending": PENDING,
                "state": state,
                "next_attempt_us": result.next_attempt_us,
                "last_status": result.status,
                "last_error": mask_text(result.error) if result.error else result.error,
                "updated_us": at,
            },
        ).fetchone()
        write_messages(conn, entry.tx_id, result.messages)
        if owned is None:
            return False
        if reason is not None:
            detail = f"{entry.operation} to {entry.queue}: {result.error or result.status}"
            open_exception(conn, entry.tx_id, reason, detail)
            if on_failed is not None:
                on_failed(conn, reason, detail)
        if result.verdict is Verdict.DELIVERED and on_final is not None:
            on_final(conn)
        return True

    return op


def list_entries(
    state: str | None = None, queue: str | None = None, limit: int = 100
) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(saf_entries).order_by(saf_entries.c.id.desc()).limit(limit)
        if state:
            query = query.where(saf_entries.c.state == state)
        if queue:
            query = query.where(saf_entries.c.queue == queue)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op


def get_entry(entry_id: int) -> Callable[[Connection], dict[str, Any] | None]:
    def op(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(saf_entries).where(saf_entries.c.id == entry_id)).first()
        return dict(row._mapping) if row else None

    return op


def retry_entry(entry_id: int) -> Callable[[Connection], bool]:
    """Put an exception back in the queue, due now, with a fresh age."""

    def op(conn: Connection) -> bool:
        at = now_us()
        return (
            conn.execute(
                update(saf_entries)
                .where(saf_entries.c.id == entry_id, saf_entries.c.state == EXCEPTION)
                .values(
                    state=PENDING,
                    next_attempt_us=at,
                    created_us=at,
                    updated_us=at,
                    lease_owner=None,
                    lease_until_us=None,
                )
                .returning(saf_entries.c.id)
            ).first()
            is not None
        )

    return op


def resolve_entry(entry_id: int, note: str) -> Callable[[Connection], bool]:
    """Close an exception by hand, e.g. after settling it with the provider by other means."""

    def op(conn: Connection) -> bool:
        return (
            conn.execute(
                update(saf_entries)
                .where(saf_entries.c.id == entry_id, saf_entries.c.state == EXCEPTION)
                .values(state=RESOLVED, resolution=note, updated_us=now_us())
                .returning(saf_entries.c.id)
            ).first()
            is not None
        )

    return op


def counts() -> Callable[[Connection], dict[str, int]]:
    def op(conn: Connection) -> dict[str, int]:
        rows = conn.execute(select(saf_entries.c.state, func.count()).group_by(saf_entries.c.state))
        return {state: n for state, n in rows}

    return op


def list_exceptions(state: str | None = "open", limit: int = 100) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(reconciliation_exceptions).order_by(reconciliation_exceptions.c.id.desc()).limit(limit)
        if state:
            query = query.where(reconciliation_exceptions.c.state == state)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op
