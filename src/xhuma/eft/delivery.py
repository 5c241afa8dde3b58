"""Inbound EFT to the homing bank: releasing due transactions into the store-and-forward queue,
delivering them until the bank acknowledges, taking its status reports, and raising
reconciliation exceptions for what the window closed on.

Every step is one database commit: a released transaction, its journal entry and its queue
entry together; a report, its journal message and the new state together."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, insert, select, update

from xhuma.domain.delivery import Answer, Verdict
from xhuma.domain.outcomes import UNSEEN_STATUSES, Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.eft.messages import CORRECTS, PaymentStatusReport, build, build_return
from xhuma.eft.outbox import eft_code
from xhuma.saf.queue import QueuedEntry, enqueue
from xhuma.saf.worker import Attempt, Sender, send_entry
from xhuma.storage.db import now_us
from xhuma.storage.journal import Message, open_exception, write_messages
from xhuma.storage.tables import eft_transactions, transactions

QUEUE = "eft:bank"
Op = Callable[[Connection], Any]


@dataclass(frozen=True)
class EftOperation:
    name: str
    success_status: int = 202


OPERATIONS = {
    "credit": EftOperation("inboundCreditTransfer"),
    "debit": EftOperation("inboundDirectDebit"),
    "sec_20": EftOperation("inboundPaymentReturn"),
    "sec_60": EftOperation("inboundPaymentReturn"),
}

BY_NAME = {op.name: op for op in OPERATIONS.values()}


def delivery_verdict(answer: Answer) -> Verdict:
    """Repeat until the bank says 202; 5xx, silence and retryable 4xx repeat; any other 4xx
    stops for a person (the message itself is wrong)."""
    if answer.outcome is Outcome.SUCCESSFUL:
        return Verdict.DELIVERED
    if answer.outcome is Outcome.UNKNOWN or not answer.reached or answer.status in UNSEEN_STATUSES:
        return Verdict.REPEAT
    if answer.status is not None and answer.status >= 500:
        return Verdict.REPEAT
    return Verdict.STOP


def release_due(bank_url: str, bank_member_id: str, limit: int = 500) -> Op:
    """Queue the credits and debits whose time has come (oldest first)."""

    def op(conn: Connection) -> int:
        at = now_us()
        query = (
            select(eft_transactions)
            .where(
                eft_transactions.c.state == "received",
                eft_transactions.c.due_us <= at,
            )
            .order_by(eft_transactions.c.due_us, eft_transactions.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            if row["kind"] in CORRECTS:
                original, failure = _match(conn, row)
                if original is None:
                    conn.execute(
                        update(eft_transactions)
                        .where(eft_transactions.c.id == row["id"])
                        .values(state="sec_failed", failure_code=failure, released_us=at)
                    )
                    continue
                conn.execute(
                    update(eft_transactions).where(eft_transactions.c.id == original["id"]).values(state="correcting")
                )
                conn.execute(
                    update(eft_transactions)
                    .where(eft_transactions.c.id == row["id"])
                    .values(original_id=original["id"])
                )
                message = build_return(row, original, bank_member_id=bank_member_id)
            else:
                message = build(row, bank_member_id=bank_member_id)
            body = msgspec.json.encode(message.body).decode()
            tx_id = str(uuid.uuid4())
            conn.execute(
                insert(transactions).values(
                    id=tx_id,
                    client_id=f"eft:{row['user_code']}",
                    retail_id=message.message_id,
                    id_space="request",
                    kind=KINDS[row["kind"]],
                    state=State.SENT_UPSTREAM,
                    amount=row["amount_cents"],
                    currency="ZAR",
                    provider="bank",
                    upstream_request=body,
                    created_us=at,
                    updated_us=at,
                )
            )
            operation = OPERATIONS[row["kind"]]
            enqueue(QUEUE, tx_id, operation.name, "POST", bank_url.rstrip("/") + message.path, body)(conn)
            conn.execute(
                update(eft_transactions)
                .where(eft_transactions.c.id == row["id"])
                .values(state="released", tx_id=tx_id, message_id=message.message_id, released_us=at)
            )
        return len(rows)

    return op


KINDS = {"credit": Kind.EFT_CREDIT, "debit": Kind.EFT_DEBIT, "sec_20": Kind.EFT_RETURN, "sec_60": Kind.EFT_RETURN}


def _match(conn: Connection, correction: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The applied original a correction names (§5.3), or the failure code (§10.5)."""
    found = [
        dict(r._mapping)
        for r in conn.execute(
            select(eft_transactions).where(
                eft_transactions.c.user_code == correction["user_code"],
                eft_transactions.c.action_date == correction["action_date"],
                eft_transactions.c.sequence_number == correction["original_sequence_number"],
                eft_transactions.c.kind == CORRECTS[correction["kind"]],
            )
        )
    ]
    if not found:
        return None, "101"
    if len(found) > 1:
        return None, "105"
    original = found[0]
    if original["amount_cents"] != correction["amount_cents"]:
        return None, "102"
    if (original["homing_branch"], original["homing_account"]) != (
        correction["homing_branch"],
        correction["homing_account"],
    ):
        return None, "103"
    if original["state"] != "accepted":
        return None, "104"
    return original, None


class EftDeliverer:
    def __init__(self, bank: Sender) -> None:
        self.bank = bank

    def handles(self, queue: str) -> bool:
        return queue == QUEUE

    async def deliver(self, entry: QueuedEntry) -> Attempt:
        sent = await send_entry(self.bank, BY_NAME[entry.operation], entry)
        verdict = delivery_verdict(sent.judged)

        def acknowledged(conn: Connection) -> None:
            conn.execute(
                update(eft_transactions)
                .where(eft_transactions.c.tx_id == entry.tx_id, eft_transactions.c.state == "released")
                .values(state="acknowledged")
            )

        def failed(conn: Connection, reason: str, detail: str) -> None:
            row = conn.execute(
                select(*UNDELIVERED).where(
                    eft_transactions.c.tx_id == entry.tx_id, eft_transactions.c.state == "released"
                )
            ).first()
            if row is not None:
                _undelivered(conn, row, f"{reason}: {detail}")

        return Attempt(verdict, sent.answer.status, sent.error, sent.messages, acknowledged, failed)


CORRECTION_FAILED = "eft_correction_failed"
UNDELIVERED = (
    eft_transactions.c.id,
    eft_transactions.c.tx_id,
    eft_transactions.c.state,
    eft_transactions.c.message_id,
    eft_transactions.c.original_id,
    eft_transactions.c.file_id,
    eft_transactions.c.line,
)
"""What `_undelivered` needs of a transaction."""


def _undelivered(conn: Connection, row: Any, why: str) -> None:
    """A message the bank will not take, or has not confirmed in time: the transaction becomes
    an exception (its own exception is the queue's or the window's), and for a correction so
    does the original it was returning, with the reason, rather than stay `correcting`. A late
    report from the bank still settles both (`apply_report`)."""
    conn.execute(update(eft_transactions).where(eft_transactions.c.id == row.id).values(state="exception"))
    if row.original_id is None:
        return
    original = conn.execute(
        select(eft_transactions.c.id, eft_transactions.c.tx_id).where(
            eft_transactions.c.id == row.original_id, eft_transactions.c.state == "correcting"
        )
    ).first()
    if original is None:
        return
    conn.execute(update(eft_transactions).where(eft_transactions.c.id == original.id).values(state="exception"))
    open_exception(
        conn,
        original.tx_id,
        CORRECTION_FAILED,
        f"its correction {row.message_id} (file {row.file_id}, line {row.line}) failed: {why}",
    )


@dataclass(frozen=True)
class ReportResult:
    status: int
    detail: str


def apply_report(report: PaymentStatusReport, body: str, operation: str) -> Op:
    """A bank's status report: accepted, or an unpaid with its reason. A repeat changes nothing."""

    def op(conn: Connection) -> ReportResult:
        message_id = report.original_message_identifiers.message_identification
        row = conn.execute(select(eft_transactions).where(eft_transactions.c.message_id == message_id)).first()
        if row is None:
            return ReportResult(404, f"no message {message_id} was sent")
        at = now_us()
        write_messages(conn, row.tx_id, [Message("upstream", "response", operation, body, at, "POST", peer="bank")])
        if row.state not in ("released", "acknowledged", "exception"):
            return ReportResult(202, "already reported")
        outcome = report.status.outcome
        if outcome == "PENDING":
            return ReportResult(202, "pending")
        reason = report.status.reason_info[0] if report.status.reason_info else None
        approved = outcome == "APPROVED"
        if row.kind in CORRECTS:
            return _apply_correction(conn, row, approved, reason, at)
        conn.execute(
            update(eft_transactions)
            .where(eft_transactions.c.id == row.id)
            .values(
                state="accepted" if approved else "unpaid",
                reason_code=None if approved or reason is None or reason.reason is None else reason.reason.value[:8],
                reason_text=None if approved or reason is None else (reason.description or "")[:140],
                reported_us=at,
            )
        )
        conn.execute(
            update(transactions)
            .where(transactions.c.id == row.tx_id)
            .values(state=State.APPROVED if approved else State.DECLINED, updated_us=at)
        )
        return ReportResult(202, outcome.lower())

    return op


def _apply_correction(conn: Connection, row: Any, approved: bool, reason: Any, at: int) -> ReportResult:
    """A correction the bank applied returns its original in the next UNPAIDS file; one it
    refused goes to the unsuccessful-SEC file with the unpaid code of its reason (§10.5)."""
    code = reason.reason.value if reason is not None and reason.reason is not None else None
    conn.execute(
        update(eft_transactions)
        .where(eft_transactions.c.id == row.id)
        .values(
            state="unpaid" if approved else "sec_failed",
            failure_code=None if approved else f"0{eft_code(code, 'debit' if row.kind == 'sec_20' else 'credit'):02d}",
            reason_code=None if approved else (code or "")[:8],
            reported_us=at,
        )
    )
    conn.execute(
        update(eft_transactions)
        .where(eft_transactions.c.id == row.original_id)
        .values(state="corrected" if approved else "accepted")
    )
    conn.execute(
        update(transactions)
        .where(transactions.c.id == row.tx_id)
        .values(state=State.APPROVED if approved else State.DECLINED, updated_us=at)
    )
    return ReportResult(202, "corrected" if approved else "correction refused")


def close_window(window_us: int) -> Op:
    """What the bank has not acknowledged, or not reported on, within the reconciliation window
    becomes a reconciliation exception (and a correction's original with it)."""

    def op(conn: Connection) -> int:
        overdue = conn.execute(
            select(*UNDELIVERED)
            .where(
                eft_transactions.c.state.in_(("released", "acknowledged")),
                eft_transactions.c.released_us < now_us() - window_us,
            )
            .limit(1000)
        ).all()
        for row in overdue:
            reason = "eft_not_acknowledged" if row.state == "released" else "eft_no_status_report"
            open_exception(conn, row.tx_id, reason, f"message {row.message_id}: window closed")
            _undelivered(conn, row, f"{reason}: window closed")
        return len(overdue)

    return op
