"""Store-and-forward for PPU: delivering advices upstream, and retrieving the outcome of
purchases that ended unknown (by retrying them at the same provider, never buying anew)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from xhuma.domain.delivery import Answer, Verdict, ppu_advice_verdict, ppu_retry_verdict
from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.ppu import operations as ops
from xhuma.ppu import wire
from xhuma.ppu.switch import PpuSwitch
from xhuma.providers.base import UpstreamCall
from xhuma.saf.queue import QueuedEntry
from xhuma.saf.worker import Attempt
from xhuma.storage import journal
from xhuma.storage.db import now_us
from xhuma.storage.tables import messages, transactions
from xhuma.validation import decode

QUEUE_PREFIX = "ppu:"
BY_NAME = {op.name: op for op in ops.ALL}


def queue_for(provider: str) -> str:
    return QUEUE_PREFIX + provider


class PpuDeliverer:
    def __init__(self, switch: PpuSwitch) -> None:
        self.switch = switch

    def handles(self, queue: str) -> bool:
        return queue.startswith(QUEUE_PREFIX)

    async def deliver(self, entry: QueuedEntry) -> Attempt:
        adapter = self.switch.router.by_name(entry.queue.removeprefix(QUEUE_PREFIX))
        operation = BY_NAME.get(entry.operation)
        if adapter is None or operation is None:
            return Attempt(Verdict.REPEAT, None, f"no provider or operation for {entry.queue} {entry.operation}", [])
        call = UpstreamCall(operation, entry.method, entry.url, entry.body.encode())
        sent = journal.Message(
            "upstream", "request", operation.name, entry.body, now_us(), entry.method, entry.url, peer=adapter.name
        )
        answer = await adapter.send(call)
        got = journal.Message(
            "upstream",
            "response",
            operation.name,
            answer.body.decode("utf-8", "replace") or answer.transport_error,
            now_us(),
            entry.method,
            entry.url,
            answer.status,
            answer.elapsed_us,
            adapter.name,
        )
        judged = Answer(answer.outcome, answer.status, answer.error_type, answer.delivered)
        error = answer.transport_error or (
            None if answer.outcome is Outcome.SUCCESSFUL else f"HTTP {answer.status} {answer.error_type or ''}".strip()
        )
        if operation is ops.RETRY:
            verdict = ppu_retry_verdict(judged)

            def apply(conn: Connection) -> None:
                self.apply_retrieved_outcome(conn, entry.tx_id, answer)

            return Attempt(verdict, answer.status, error, [sent, got], apply if verdict is Verdict.DELIVERED else None)
        return Attempt(ppu_advice_verdict(operation.name, judged), answer.status, error, [sent, got])

    def apply_retrieved_outcome(self, conn: Connection, tx_id: str, answer: Any) -> None:
        """Turn a retrieved upstream answer into the purchase's outcome and stored retail answer,
        as if it had come back in time, so a later retail retry is answered from the journal."""
        body = conn.execute(
            select(messages.c.body)
            .where(messages.c.tx_id == tx_id, messages.c.leg == "retail", messages.c.direction == "request")
            .order_by(messages.c.id)
            .limit(1)
        ).scalar_one()
        request = decode(body.encode(), wire.PurchaseRequest)
        reply, error_type = self.switch.retail_reply(ops.PURCHASE, request, tx_id, answer)
        journal.record_outcome(
            tx_id,
            answer.outcome,
            [],
            retail_status=reply.status,
            retail_response=reply.body.decode(),
            error_type=error_type,
        )(conn)


def recover_stale_purchases(switch: PpuSwitch, older_than_us: int) -> Any:
    """Purchases left `sent_upstream` by a process that died before it heard the answer: mark
    them unknown and queue their retrieval. Runs in every worker; SKIP LOCKED keeps two workers
    from taking the same row."""

    def op(conn: Connection) -> int:
        query = (
            select(transactions.c.id, transactions.c.provider, transactions.c.upstream_request)
            .where(
                transactions.c.kind == Kind.PURCHASE,
                transactions.c.state == State.SENT_UPSTREAM,
                transactions.c.updated_us < now_us() - older_than_us,
            )
            .limit(100)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        for row in rows:
            journal.record_outcome(row.id, Outcome.UNKNOWN, [])(conn)
            switch.queue_follow_up(conn, row.id, row.provider, row.upstream_request)
        return len(rows)

    return op
