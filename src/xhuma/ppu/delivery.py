"""Store-and-forward for PPU: delivering advices upstream, and retrieving the outcome of
purchases that ended unknown (by retrying them at the same provider, never buying anew)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from xhuma.domain.delivery import Verdict, advice_verdict
from xhuma.domain.transactions import Kind
from xhuma.ppu import operations as ops
from xhuma.ppu import wire
from xhuma.ppu.switch import PpuSwitch
from xhuma.saf.queue import QueuedEntry
from xhuma.saf.worker import Attempt, judge_retrieval, send_entry
from xhuma.storage import journal
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
        sent = await send_entry(adapter, operation, entry)
        answer = sent.answer
        if operation is ops.RETRY:
            answer, verdict = judge_retrieval(sent, has_goods=self.switch.has_goods(answer.payload))

            def apply(conn: Connection) -> None:
                self.switch.engine.apply_retrieved(conn, ops.PURCHASE, entry.tx_id, answer, adapter, _purchase)

            return Attempt(
                verdict, answer.status, sent.error, sent.messages, apply if verdict is Verdict.DELIVERED else None
            )
        verdict = advice_verdict(sent.judged, reversal=operation is ops.REVERSAL)
        return Attempt(verdict, answer.status, sent.error, sent.messages)


def _purchase(body: bytes) -> wire.PurchaseRequest:
    return decode(body, wire.PurchaseRequest)


def recover_stale_purchases(switch: PpuSwitch, older_than_us: int) -> Any:
    """Purchases a dead process left in flight: their outcome is retrieved."""

    def follow_up(conn: Connection, row: Any) -> None:
        switch.queue_follow_up(conn, row.id, row.provider, row.upstream_request)

    return journal.recover_stale(Kind.PURCHASE, older_than_us, follow_up)
