"""The journal: every transaction and every message on both legs, written before it matters.

Functions here return operations for `Database.run`, so several coroutines' writes share one
commit. Each operation is safe to run again after a rollback (see `Database._run_batch`).

Card data, track data, PIN blocks, CVVs, passwords and secrets never reach a row in clear: each
message body, stored request and stored answer is masked here, as it is written
(`xhuma.security.masking`); callers keep sending their own, intact, bytes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import IN_FLIGHT, REPRINTABLE, Kind, State, after_advice, after_outcome
from xhuma.security.masking import mask_optional, mask_text
from xhuma.storage.db import Database, conflict_insert, now_us
from xhuma.storage.prepared import Prepared
from xhuma.storage.tables import OPEN, messages, reconciliation_exceptions, rejected_messages, transactions

log = logging.getLogger("xhuma.journal")
REQUEST_SPACE = "request"
ADVICE_SPACE = "advice"


@dataclass(frozen=True)
class Message:
    leg: str
    direction: str
    operation: str
    body: str | None
    at_us: int
    method: str | None = None
    url: str | None = None
    status: int | None = None
    elapsed_us: int | None = None
    peer: str | None = None


@dataclass(frozen=True)
class NewTransaction:
    id: str
    client_id: str
    retail_id: str
    kind: Kind
    state: State
    meter_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    provider: str | None = None
    upstream_request: str | None = None
    parent_id: str | None = None

    @property
    def id_space(self) -> str:
        return ADVICE_SPACE if self.kind.is_advice else REQUEST_SPACE


class AdviceResult(StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN_REQUEST = "unknown_request"
    DUPLICATE = "duplicate"


@dataclass
class TransactionView:
    row: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)


TRANSACTION_COLUMNS = [c.name for c in transactions.columns]
MESSAGE_COLUMNS = [c.name for c in messages.columns if c.name != "id"]


def _insert_transaction(dialect: str) -> Any:
    return conflict_insert(dialect, transactions).on_conflict_do_nothing().returning(transactions.c.id)


INSERT_TRANSACTION = Prepared(_insert_transaction, TRANSACTION_COLUMNS)
INSERT_MESSAGES = Prepared(lambda _: insert(messages), MESSAGE_COLUMNS)


def _current_state(dialect: str) -> Any:
    query = select(transactions.c.state, transactions.c.retail_status).where(transactions.c.id == bindparam("tx_id"))
    return query.with_for_update() if dialect == "postgresql" else query


CURRENT_STATE = Prepared(_current_state)
STORED_ANSWER = Prepared(
    lambda _: select(transactions.c.retail_response).where(transactions.c.id == bindparam("tx_id"))
)
SET_STATE = Prepared(
    lambda _: (
        update(transactions)
        .where(transactions.c.id == bindparam("tx_id"))
        .values(state=bindparam("state"), updated_us=bindparam("updated_us"))
    )
)
SET_STATE_AND_ANSWER = Prepared(
    lambda _: (
        update(transactions)
        .where(transactions.c.id == bindparam("tx_id"))
        .values(
            state=bindparam("state"),
            updated_us=bindparam("updated_us"),
            retail_status=bindparam("retail_status"),
            retail_response=bindparam("retail_response"),
            error_type=bindparam("error_type"),
        )
    )
)


ADVISED_COLUMNS = ("id", "provider", "meter_id", "state")


def _advised_transaction(dialect: str) -> Any:
    query = select(*(transactions.c[name] for name in ADVISED_COLUMNS)).where(
        transactions.c.client_id == bindparam("client_id"),
        transactions.c.id_space == bindparam("id_space"),
        transactions.c.retail_id == bindparam("retail_id"),
        transactions.c.kind == bindparam("kind"),
    )
    return query.with_for_update() if dialect == "postgresql" else query


ADVISED_TRANSACTION = Prepared(_advised_transaction)


SET_PROVIDER = Prepared(
    lambda _: update(transactions).where(transactions.c.id == bindparam("tx_id")).values(provider=bindparam("provider"))
)
REROUTE = Prepared(
    lambda _: (
        update(transactions)
        .where(transactions.c.id == bindparam("tx_id"))
        .values(provider=bindparam("provider"), updated_us=bindparam("updated_us"))
    )
)


class Claim(StrEnum):
    """What inserting a transaction row found."""

    NEW = "new"
    OURS = "ours"
    """The row with our own id is there already: this operation ran before (its commit's
    acknowledgement was lost, or it is run again after a rollback), so it is done, not a
    duplicate."""
    TAKEN = "taken"
    """Another transaction has the retailer's id in this id space: a real duplicate."""


OUR_ROW = Prepared(lambda _: select(transactions.c.id).where(transactions.c.id == bindparam("tx_id")))


def claim_id(conn: Connection, values: dict[str, Any]) -> Claim:
    """Insert a transaction row, idempotently by our own id."""
    row = {name: values.get(name) for name in TRANSACTION_COLUMNS}
    for stored in ("upstream_request", "retail_response"):
        row[stored] = mask_optional(row[stored])
    if INSERT_TRANSACTION.execute(conn, row).fetchone() is not None:
        return Claim.NEW
    return Claim.OURS if OUR_ROW.execute(conn, {"tx_id": values["id"]}).fetchone() else Claim.TAKEN


def open_new(conn: Connection, tx: NewTransaction, items: Sequence[Message]) -> Claim:
    """Record a transaction and its first messages, unless this ran already (see `Claim`)."""
    at = now_us()
    claim = claim_id(conn, {**vars(tx), "id_space": tx.id_space, "created_us": at, "updated_us": at})
    if claim is Claim.NEW:
        write_messages(conn, tx.id, items)
    return claim


def write_messages(conn: Connection, tx_id: str, items: Sequence[Message]) -> None:
    """Journal messages of a transaction, each body masked."""
    if items:
        INSERT_MESSAGES.execute_many(conn, [{"tx_id": tx_id, **vars(m), "body": mask_optional(m.body)} for m in items])


def open_transaction(tx: NewTransaction, items: Sequence[Message]) -> Callable[[Connection], bool]:
    """Record a new transaction and its first messages; False when its retail id is taken by
    another transaction (True when this very transaction is recorded already)."""

    def op(conn: Connection) -> bool:
        return open_new(conn, tx, items) is not Claim.TAKEN

    return op


@dataclass(frozen=True)
class Recorded:
    """A transaction's state and stored retail answer once an outcome is applied: the retailer
    is answered from this, never from the answer one process happened to hear."""

    state: State
    retail_status: int | None
    retail_response: str | None


def record_outcome(
    tx_id: str,
    outcome: Outcome | None,
    items: Sequence[Message],
    *,
    retail_status: int | None = None,
    retail_response: str | None = None,
    error_type: str | None = None,
    state: State | None = None,
    then: Callable[[Connection, State], None] | None = None,
    provider: str | None = None,
) -> Callable[[Connection], Recorded]:
    """Apply an upstream outcome (or set `state` outright) and journal the messages with it.

    The stored retail answer is replaced only when it tells more: a final answer replaces an
    "outcome unknown" one, and a success for our id replaces a decline (which a person is
    then told of: the retailer may have been told "declined")."""

    def op(conn: Connection) -> Recorded:
        current_state, current_status = CURRENT_STATE.execute(conn, {"tx_id": tx_id}).fetchone()
        old = State(current_state)
        new = state if state is not None else after_outcome(old, outcome or Outcome.UNKNOWN)
        values: dict[str, Any] = {"tx_id": tx_id, "state": new, "updated_us": now_us()}
        overrides_decline = old is State.DECLINED and new is State.APPROVED
        keeps_final = current_status is not None and old not in IN_FLIGHT and not overrides_decline
        if retail_response is not None and not keeps_final:
            masked = mask_optional(retail_response)
            values.update(retail_status=retail_status, retail_response=masked, error_type=error_type)
            SET_STATE_AND_ANSWER.execute(conn, values)
            # The answer just given is this one, intact; a later replay gives the stored copy.
            stored = Recorded(new, retail_status, retail_response)
        else:
            SET_STATE.execute(conn, values)
            # The stored answer stands; it is read only then (the usual first answer needs no read).
            kept = STORED_ANSWER.execute(conn, {"tx_id": tx_id}).fetchone()[0] if current_status is not None else None
            stored = Recorded(new, current_status, kept)
        if overrides_decline:
            open_exception(conn, tx_id, "approved_after_decline", "the provider sold what an earlier answer declined")
        if provider is not None:
            SET_PROVIDER.execute(conn, {"tx_id": tx_id, "provider": provider})
        write_messages(conn, tx_id, items)
        if then is not None:
            then(conn, new)
        return stored

    return op


def reroute(tx_id: str, provider: str, items: Sequence[Message]) -> Callable[[Connection], None]:
    """Send a transaction to another provider (the last one certainly did not act on it); the
    change is journalled with the new request before that request leaves. The row is touched,
    so recovery (which takes only rows left alone for longer than a request can last) never
    takes a request still in flight at its second provider."""

    def op(conn: Connection) -> None:
        REROUTE.execute(conn, {"tx_id": tx_id, "provider": provider, "updated_us": now_us()})
        write_messages(conn, tx_id, items)

    return op


def upstream_request(conn: Connection, tx_id: str) -> str:
    """The exact upstream request journalled for a transaction (its retries re-send it)."""
    return str(conn.execute(select(transactions.c.upstream_request).where(transactions.c.id == tx_id)).scalar_one())


def record_messages(tx_id: str, items: Sequence[Message]) -> Callable[[Connection], None]:
    def op(conn: Connection) -> None:
        write_messages(conn, tx_id, items)

    return op


def find(client_id: str, kind: Kind, retail_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    space = ADVICE_SPACE if kind.is_advice else REQUEST_SPACE

    def op(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(
            select(transactions).where(
                and_(
                    transactions.c.client_id == client_id,
                    transactions.c.id_space == space,
                    transactions.c.retail_id == retail_id,
                )
            )
        ).first()
        if row is None or row.kind != kind:
            return None
        return dict(row._mapping)

    return op


def last_purchase(client_id: str, meter_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    """The client's newest purchase for the meter that sold (or may have sold) a token: what a
    reprint without a reference means. Only the client's own: never another retailer's."""

    def op(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(
            select(transactions)
            .where(
                transactions.c.client_id == client_id,
                transactions.c.id_space == REQUEST_SPACE,
                transactions.c.meter_id == meter_id,
                transactions.c.kind == Kind.PURCHASE,
                transactions.c.state.in_(sorted(REPRINTABLE)),
            )
            .order_by(transactions.c.created_us.desc())
            .limit(1)
        ).first()
        return dict(row._mapping) if row else None

    return op


def accept_advice(
    advice: NewTransaction,
    advised_kind: Kind,
    advised_retail_id: str,
    items: Sequence[Message],
    then: Callable[[Connection, dict[str, Any]], None],
) -> Callable[[Connection], tuple[AdviceResult, dict[str, Any] | None]]:
    """Journal an advice and move the advised transaction's state; `then` runs in the same
    commit (it queues the advice for delivery), so an acknowledged advice is never lost."""

    def op(conn: Connection) -> tuple[AdviceResult, dict[str, Any] | None]:
        found = ADVISED_TRANSACTION.execute(
            conn,
            {
                "client_id": advice.client_id,
                "id_space": REQUEST_SPACE,
                "retail_id": advised_retail_id,
                "kind": advised_kind,
            },
        ).fetchone()
        if found is None:
            return AdviceResult.UNKNOWN_REQUEST, None
        parent_row = dict(zip(ADVISED_COLUMNS, found, strict=True))
        at = now_us()
        values = {
            **vars(advice),
            "parent_id": parent_row["id"],
            "provider": parent_row["provider"],
            "meter_id": parent_row["meter_id"],
            "id_space": advice.id_space,
            "created_us": at,
            "updated_us": at,
        }
        claim = claim_id(conn, values)
        if claim is Claim.TAKEN:
            return AdviceResult.DUPLICATE, parent_row
        if claim is Claim.OURS:
            return AdviceResult.ACCEPTED, parent_row  # accepted, and queued, by an earlier run
        write_messages(conn, advice.id, items)
        new_state = after_advice(State(parent_row["state"]), advice.kind)
        if new_state != parent_row["state"]:
            SET_STATE.execute(conn, {"tx_id": parent_row["id"], "state": new_state, "updated_us": at})
        then(conn, parent_row)
        return AdviceResult.ACCEPTED, parent_row

    return op


def recover_stale(
    kinds: Kind | Collection[Kind], older_than_us: int, follow_up: Callable[[Connection, Any], None]
) -> Any:
    """Requests of `kinds` (each one that moves money) left `sent_upstream` by a process that
    died before it heard the answer: mark them unknown and let `follow_up` queue their retrieval
    (or record why it cannot be). Runs in every worker; SKIP LOCKED keeps two workers from
    taking the same row."""
    wanted = [kinds] if isinstance(kinds, Kind) else sorted(kinds)
    if not wanted or not all(kind.moves_money for kind in wanted):
        raise ValueError(f"recovery is for requests that move money, not {wanted}")

    def op(conn: Connection) -> int:
        query = (
            select(transactions.c.id, transactions.c.kind, transactions.c.provider, transactions.c.upstream_request)
            .where(
                transactions.c.kind.in_(wanted),
                transactions.c.state == State.SENT_UPSTREAM,
                transactions.c.updated_us < now_us() - older_than_us,
            )
            .limit(100)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        for row in rows:
            record_outcome(row.id, Outcome.UNKNOWN, [])(conn)
            follow_up(conn, row)
        return len(rows)

    return op


def show(tx_ref: str) -> Callable[[Connection], TransactionView | None]:
    """A transaction by our id or by the retailer's id, with its messages and its advices."""

    def op(conn: Connection) -> TransactionView | None:
        row = conn.execute(select(transactions).where(transactions.c.id == tx_ref)).first()
        if row is None:
            row = conn.execute(
                select(transactions)
                .where(transactions.c.retail_id == tx_ref)
                .order_by(transactions.c.created_us)
                .limit(1)
            ).first()
        if row is None:
            return None
        view = TransactionView(row=dict(row._mapping))
        # Masked again as they are read: rows journalled before masking was are shown masked too.
        view.messages = [
            {**m._mapping, "body": mask_optional(m.body)}
            for m in conn.execute(select(messages).where(messages.c.tx_id == row.id).order_by(messages.c.id))
        ]
        view.children = [
            dict(c._mapping)
            for c in conn.execute(
                select(transactions).where(transactions.c.parent_id == row.id).order_by(transactions.c.created_us)
            )
        ]
        return view

    return op


def search(
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    meter_id: str | None = None,
    client_id: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(transactions).order_by(transactions.c.created_us.desc()).limit(limit)
        conditions = {
            transactions.c.meter_id: meter_id,
            transactions.c.client_id: client_id,
            transactions.c.state: state,
            transactions.c.kind: kind,
        }
        for column, wanted in conditions.items():
            if wanted is not None:
                query = query.where(column == wanted)
        if since_us is not None:
            query = query.where(transactions.c.created_us >= since_us)
        if until_us is not None:
            query = query.where(transactions.c.created_us < until_us)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op


def count_by_state() -> Callable[[Connection], dict[str, int]]:
    def op(conn: Connection) -> dict[str, int]:
        rows = conn.execute(select(transactions.c.state, func.count()).group_by(transactions.c.state))
        return {state: n for state, n in rows}

    return op


REJECTED_BODY_CAP = 16 * 1024
"""The most of a refused request's body kept, in bytes of UTF-8 (a refusal is often a body too
large, or junk: its row must stay small)."""


@dataclass(frozen=True)
class Rejection:
    """A retail message refused before any transaction was opened for it."""

    interface: str
    operation: str
    status: int
    error_type: str | None
    reason: str
    body: str | None = None
    url: str | None = None
    client_id: str | None = None
    retail_id: str | None = None


def _capped(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit // 4:
        return text
    return text.encode()[:limit].decode("utf-8", "ignore")


def record_rejection(rejection: Rejection, *, rejection_id: str | None = None) -> Callable[[Connection], None]:
    """Journal a refused message: one new row per call, under an id chosen here, so running the
    operation again after a rolled-back group commit still writes one row. Values are cut to
    their columns (a refused message may carry anything), the body to `REJECTED_BODY_CAP`."""
    row = {
        "id": rejection_id or str(uuid.uuid4()),
        "at_us": now_us(),
        "interface": rejection.interface[:8],
        "operation": rejection.operation[:40],
        "client_id": rejection.client_id[:40] if rejection.client_id else None,
        "retail_id": rejection.retail_id[:36] if rejection.retail_id else None,
        "status": rejection.status,
        "error_type": rejection.error_type[:40] if rejection.error_type else None,
        "reason": mask_text(rejection.reason)[:500],
        # A refused body is never replayed nor sent on: every string in it is scanned too.
        "body": _capped(mask_optional(rejection.body, scan=True), REJECTED_BODY_CAP),
        "url": rejection.url[:500] if rejection.url else None,
    }

    def op(conn: Connection) -> None:
        conn.execute(conflict_insert(conn.dialect.name, rejected_messages).values(row).on_conflict_do_nothing())

    return op


def rejections(limit: int = 50) -> Callable[[Connection], list[dict[str, Any]]]:
    """The newest refused messages first."""

    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(rejected_messages).order_by(rejected_messages.c.at_us.desc()).limit(limit)
        return [{**r._mapping, "body": mask_optional(r.body, scan=True)} for r in conn.execute(query)]

    return op


class Journal:
    """The journal as the switch sees it: awaitable, batched into group commits."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self, tx: NewTransaction, items: Sequence[Message]) -> bool:
        return await self.db.run(open_transaction(tx, items))

    async def record_outcome(
        self, tx_id: str, outcome: Outcome | None, items: Sequence[Message], **kw: Any
    ) -> Recorded:
        return await self.db.run(record_outcome(tx_id, outcome, items, **kw))

    async def reroute(self, tx_id: str, provider: str, items: Sequence[Message]) -> None:
        await self.db.run(reroute(tx_id, provider, items))

    async def record_messages(self, tx_id: str, items: Sequence[Message]) -> None:
        await self.db.run(record_messages(tx_id, items))

    async def find(self, client_id: str, kind: Kind, retail_id: str) -> dict[str, Any] | None:
        return await self.db.run(find(client_id, kind, retail_id))

    async def last_purchase(self, client_id: str, meter_id: str) -> dict[str, Any] | None:
        return await self.db.run(last_purchase(client_id, meter_id))

    async def accept_advice(self, *args: Any) -> tuple[AdviceResult, dict[str, Any] | None]:
        return await self.db.run(accept_advice(*args))

    async def record_rejection(self, rejection: Rejection) -> None:
        """Journal a refused message; a failure to is logged, never raised: a refusal is
        answered whether or not its row could be written."""
        try:
            await self.db.run(record_rejection(rejection))
        except Exception:
            log.exception("could not journal a refused %s %s", rejection.interface, rejection.operation)


def open_exception(conn: Connection, tx_id: str, reason: str, detail: str) -> None:
    """Open an exception a person must settle; one that is open already for the same
    transaction and reason stays as it is (so this is safe to run twice)."""
    at = now_us()
    conn.execute(
        conflict_insert(conn.dialect.name, reconciliation_exceptions)
        .values(tx_id=tx_id, reason=reason, detail=mask_text(detail), state="open", created_us=at, updated_us=at)
        .on_conflict_do_nothing(index_elements=["tx_id", "reason"], index_where=OPEN)
    )


def open_file_exception(conn: Connection, file_id: int, reason: str, detail: str) -> None:
    """Open an exception about an EFT file itself (no transaction carries it); idempotent by
    the file's id and the reason, as `open_exception` is by the transaction's."""
    at = now_us()
    conn.execute(
        conflict_insert(conn.dialect.name, reconciliation_exceptions)
        .values(eft_file_id=file_id, reason=reason, detail=detail, state="open", created_us=at, updated_us=at)
        .on_conflict_do_nothing(index_elements=["eft_file_id", "reason"], index_where=OPEN)
    )
