"""Database operations for vouchers: the voucher rows beside the journal's transactions.

Each returns an operation for `Database.run`, so a state change, its journal messages and any
store-and-forward entry it makes due are one commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from xhuma.domain.transactions import Kind, State
from xhuma.domain.vouchers import Event, Refusal, VoucherState, left_by, transition
from xhuma.security.masking import mask_body
from xhuma.storage.db import conflict_insert, now_us
from xhuma.storage.journal import (
    ADVICE_SPACE,
    OUR_ROW,
    REQUEST_SPACE,
    Claim,
    Message,
    NewTransaction,
    claim_id,
    open_new,
    write_messages,
)
from xhuma.storage.tables import reconciliation_exceptions, transactions, voucher_early_reversals, vouchers

Op = Callable[[Connection], Any]


@dataclass(frozen=True)
class Issue:
    """What a provision is for, kept on its voucher row from the start."""

    product_code: str | None
    """The client's product; None for a provision routed by its receiver."""
    provider: str
    provider_product_code: str | None
    amount: int | None
    currency: str | None


def open_request(tx: NewTransaction, received: Message, sent: Message, issue: Issue | None = None) -> Op:
    """Journal a new provision, with its voucher row. None when the id is taken; the id of its
    reversal when that came first (then nothing goes upstream); else ""."""

    def op(conn: Connection) -> str | None:
        early = _refused_early(conn, tx, received)
        if early is not None:
            return early or None
        claim = open_new(conn, tx, [received, sent])
        if claim is Claim.TAKEN:
            return None
        if issue is not None and claim is Claim.NEW:
            at = now_us()
            conn.execute(
                insert(vouchers).values(
                    id=tx.id, client_id=tx.client_id, **vars(issue), state=None, created_us=at, updated_us=at
                )
            )
        return ""

    return op


def _refused_early(conn: Connection, tx: NewTransaction, received: Message) -> str | None:
    """When the request's reversal came first: journal the request declined and return the
    reversal's id ("" when the request's id is taken). None when no reversal came first."""
    serialise(conn, tx.client_id, tx.retail_id)
    early = conn.execute(
        select(voucher_early_reversals.c.reversal_id).where(
            voucher_early_reversals.c.client_id == tx.client_id,
            voucher_early_reversals.c.request_id == tx.retail_id,
        )
    ).scalar()
    if early is None:
        return None
    declined = open_new(conn, replace(tx, state=State.DECLINED), [received])
    return "" if declined is Claim.TAKEN else str(early)


UNKNOWN_VOUCHER = Refusal(404, "UNABLE_TO_LOCATE_RECORD", False)


def take_and_open(tx: NewTransaction, code: str, event: Event, received: Message, sent: Message) -> Op:
    """Move the voucher for a redemption or refund and journal the request, in one commit, so
    a taken voucher always has the transaction that took it (and recovery finds it).

    Returns "" when taken and journalled (also when this ran before: idempotent by our id), the
    refusal when the voucher's state refuses it, None when the retailer's id is taken, or the
    id of the request's reversal when that came first (then nothing goes upstream)."""

    def op(conn: Connection) -> str | Refusal | None:
        early = _refused_early(conn, tx, received)
        if early is not None:
            return early or None
        if OUR_ROW.execute(conn, {"tx_id": tx.id}).fetchone() is not None:
            return ""  # taken and journalled by an earlier run of this operation
        voucher = conn.execute(
            _locked(conn, select(vouchers).where(vouchers.c.client_id == tx.client_id, vouchers.c.code == code))
        ).first()
        if voucher is None or voucher.state is None or voucher.id != tx.parent_id:
            return UNKNOWN_VOUCHER
        moved = transition(VoucherState(voucher.state), event)
        if isinstance(moved, Refusal):
            return moved
        if open_new(conn, tx, [received, sent]) is Claim.TAKEN:
            return None
        set_voucher_state(conn, voucher.id, moved)
        return ""

    return op


def serialise(conn: Connection, client_id: str, request_id: str) -> None:
    """Make a request and an advice naming it wait for each other on PostgreSQL (until commit),
    so a reversal that finds no request and a request that finds no reversal cannot both pass:
    there is no row to lock yet. SQLite serialises writers anyway."""
    if conn.dialect.name == "postgresql":
        key = func.hashtextextended(f"suv:{client_id}:{request_id}", 0)
        conn.execute(select(func.pg_advisory_xact_lock(key)))


def _locked(conn: Connection, query: Any) -> Any:
    """`query` taking row locks on PostgreSQL (SQLite serialises writers anyway)."""
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


UNDO = {Kind.REDEMPTION: VoucherState.CONFIRMED_PROVISIONED, Kind.REFUND: VoucherState.CONFIRMED_REDEEMED}
"""Where a voucher goes back to when the provider declines a redemption or refund: the one
state each may start from."""


def undo_take(conn: Connection, tx_id: str) -> None:
    kind, voucher_id = conn.execute(
        select(transactions.c.kind, transactions.c.parent_id).where(transactions.c.id == tx_id)
    ).one()
    set_voucher_state(conn, voucher_id, UNDO[Kind(kind)])


def reroute(tx_id: str, provider: str, provider_code: str | None, request: str, items: list[Message]) -> Op:
    """Move a provision to the next provider (the last certainly did not act on it), journalled
    with the new request before that request leaves."""

    def op(conn: Connection) -> None:
        conn.execute(
            update(transactions)
            .where(transactions.c.id == tx_id)
            .values(provider=provider, upstream_request=mask_body(request), updated_us=now_us())
        )
        conn.execute(
            update(vouchers)
            .where(vouchers.c.id == tx_id)
            .values(provider=provider, provider_product_code=provider_code)
        )
        write_messages(conn, tx_id, items)

    return op


def set_voucher_state(conn: Connection, voucher_id: str, state: VoucherState | None, **values: Any) -> None:
    conn.execute(update(vouchers).where(vouchers.c.id == voucher_id).values(state=state, updated_us=now_us(), **values))


def find_voucher(client_id: str, *, code: str | None = None, provision_id: str | None = None) -> Op:
    def op(conn: Connection) -> dict[str, Any] | None:
        query = select(vouchers, transactions.c.retail_id, transactions.c.retail_response).join(
            transactions, transactions.c.id == vouchers.c.id
        )
        query = query.where(vouchers.c.client_id == client_id)
        if code is not None:
            query = query.where(vouchers.c.code == code)
        if provision_id is not None:
            query = query.where(transactions.c.id_space == REQUEST_SPACE, transactions.c.retail_id == provision_id)
        row = conn.execute(query.limit(1)).first()
        return dict(row._mapping) if row else None

    return op


@dataclass(frozen=True)
class AdviceDecision:
    status: int
    error_type: str | None = None
    original_id: str | None = None
    request: dict[str, Any] | None = None
    """The advised request's journal row, when found."""


def advise(
    advice: NewTransaction,
    event: Event,
    request_kind: Kind,
    request_id: str,
    items: list[Message],
    deliver: Callable[[Connection, dict[str, Any], dict[str, Any] | None], None],
) -> Op:
    """Judge an advice by the SUV rules, journal it, and move the voucher: in one commit with
    `deliver`, which queues it upstream (or records why it cannot go)."""

    def op(conn: Connection) -> AdviceDecision:
        serialise(conn, advice.client_id, request_id)
        query = select(transactions).where(
            transactions.c.client_id == advice.client_id,
            transactions.c.id_space == REQUEST_SPACE,
            transactions.c.retail_id == request_id,
            transactions.c.kind == request_kind,
        )
        # Locked, with its voucher below: two advices on one request are judged one after the
        # other, each by what the other left.
        found = conn.execute(_locked(conn, query)).first()
        at = now_us()
        values = {**vars(advice), "id_space": ADVICE_SPACE, "created_us": at, "updated_us": at}
        if found is None:
            if not event.is_reversal:
                return AdviceDecision(404, "UNABLE_TO_LOCATE_RECORD", request_id)
            # Remembered, so the request it reverses is refused if it arrives later (§6.1).
            claim = open_new(conn, advice, items)
            if claim is Claim.TAKEN:
                return AdviceDecision(400, "DUPLICATE_RECORD", request_id)
            if claim is Claim.NEW:
                # A second reversal of the same unknown request leaves the first remembered.
                conn.execute(
                    conflict_insert(conn.dialect.name, voucher_early_reversals)
                    .on_conflict_do_nothing()
                    .values(
                        client_id=advice.client_id,
                        request_id=request_id,
                        request_kind=request_kind,
                        reversal_tx_id=advice.id,
                        reversal_id=advice.retail_id,
                        at_us=at,
                    )
                )
            return AdviceDecision(404, "UNABLE_TO_LOCATE_RECORD", request_id)
        request = dict(found._mapping)
        voucher_id = request["id"] if request_kind is Kind.VOUCHER_PROVISION else request["parent_id"]
        voucher = conn.execute(_locked(conn, select(vouchers).where(vouchers.c.id == voucher_id))).first()
        decision = _judge(event, request_kind, request)
        values.update(parent_id=request["id"], provider=request["provider"])
        if decision.status != 202:
            values.update(state=State.DECLINED, retail_status=decision.status, error_type=decision.error_type)
        claim = claim_id(conn, values)
        if claim is Claim.TAKEN:
            return AdviceDecision(400, "DUPLICATE_RECORD", request_id, request)
        if claim is Claim.OURS:
            return AdviceDecision(202, request=request)  # judged, journalled and queued already
        write_messages(conn, advice.id, items)
        if decision.status != 202:
            return AdviceDecision(decision.status, decision.error_type, decision.original_id, request)
        own = left_by(request_kind, State(request["state"]))
        if decision.request is not None and voucher is not None and own is not None and voucher.state == own:
            # Moved only from the state this request left it in: never a later request's.
            moved = transition(own, event)
            assert isinstance(moved, VoucherState), "judged by the same transition"
            set_voucher_state(conn, voucher.id, moved)
        settled = State.REVERSED if event.is_reversal else State.CONFIRMED
        if request["state"] in (State.APPROVED, State.UNKNOWN, State.SENT_UPSTREAM):
            conn.execute(
                update(transactions).where(transactions.c.id == request["id"]).values(state=settled, updated_us=at)
            )
        deliver(conn, request, dict(voucher._mapping) if voucher is not None else None)
        return AdviceDecision(202, request=request)

    return op


def _judge(event: Event, request_kind: Kind, request: dict[str, Any]) -> AdviceDecision:
    """The answer an advice gets, judged by the request it refers to (its journal row, locked),
    never by what later requests did to the voucher."""
    state = State(request["state"])
    if state is State.DECLINED:
        # Nothing was issued, redeemed or refunded: a reversal has nothing to undo, and a
        # confirmation has nothing to confirm.
        if event.is_reversal:
            return AdviceDecision(202)
        return AdviceDecision(400, "TRANSACTION_DECLINED", request["retail_id"])
    if state is State.REVERSED and event.is_reversal:
        return AdviceDecision(202)  # the same reversal again, under a new id: nothing more to do
    own = left_by(request_kind, state)
    if own is None:
        return AdviceDecision(202)
    moved = transition(own, event)
    if isinstance(moved, Refusal):
        return AdviceDecision(moved.status, moved.error_type, request["retail_id"] if moved.cites_original else None)
    return AdviceDecision(202, request=request)


def exposure(state: str | None = "open") -> Op:
    """Vouchers that may have been issued upstream without the retailer having them: the
    reconciliation exceptions opened on voucher provisions, with what each is worth."""

    def op(conn: Connection) -> list[dict[str, Any]]:
        query = (
            select(
                reconciliation_exceptions.c.id,
                reconciliation_exceptions.c.reason,
                reconciliation_exceptions.c.detail,
                reconciliation_exceptions.c.state,
                reconciliation_exceptions.c.created_us,
                vouchers.c.id.label("tx_id"),
                vouchers.c.client_id,
                vouchers.c.product_code,
                vouchers.c.provider,
                vouchers.c.amount,
                vouchers.c.currency,
                vouchers.c.code,
                transactions.c.retail_id,
                transactions.c.state.label("tx_state"),
            )
            .join(vouchers, vouchers.c.id == reconciliation_exceptions.c.tx_id)
            .join(transactions, transactions.c.id == vouchers.c.id)
            .order_by(reconciliation_exceptions.c.id)
        )
        if state is not None:
            query = query.where(reconciliation_exceptions.c.state == state)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op


def settle_exposure(exposure_id: int, note: str) -> Op:
    def op(conn: Connection) -> bool:
        exposed = select(vouchers.c.id)
        done = conn.execute(
            update(reconciliation_exceptions)
            .where(
                reconciliation_exceptions.c.id == exposure_id,
                reconciliation_exceptions.c.state == "open",
                reconciliation_exceptions.c.tx_id.in_(exposed),
            )
            .values(state="resolved", resolution=note, updated_us=now_us())
        )
        return bool(done.rowcount)

    return op
