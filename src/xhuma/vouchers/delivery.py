"""Store-and-forward for vouchers: advices to providers that take them, and the retrieval of
provisions whose outcome was unknown (a retry at the same provider, never a new voucher)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from xhuma.domain.delivery import Verdict, advice_verdict
from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import MONEY_KINDS, Kind, State
from xhuma.providers.base import UpstreamAnswer
from xhuma.saf.queue import QueuedEntry
from xhuma.saf.worker import Attempt, judge_retrieval, send_entry
from xhuma.storage import journal
from xhuma.vouchers import operations as ops
from xhuma.vouchers import wire
from xhuma.vouchers.replies import decode_strict
from xhuma.vouchers.switch import QUEUE_PREFIX, VoucherSwitch, open_outcome_unknown


class VoucherDeliverer:
    def __init__(self, switch: VoucherSwitch) -> None:
        self.switch = switch

    def handles(self, queue: str) -> bool:
        return queue.startswith(QUEUE_PREFIX)

    async def deliver(self, entry: QueuedEntry) -> Attempt:
        adapter = self.switch.adapters.get(entry.queue.removeprefix(QUEUE_PREFIX))
        operation = ops.BY_NAME.get(entry.operation)
        if adapter is None or operation is None:
            return Attempt(Verdict.REPEAT, None, f"no provider or operation for {entry.queue} {entry.operation}", [])
        sent = await send_entry(adapter, operation, entry)
        answer = sent.answer
        if operation is ops.RETRY:
            answer, verdict = judge_retrieval(sent, has_goods=self.switch.has_goods(answer.payload))

            def apply(conn: Connection) -> None:
                self.switch.engine.apply_retrieved(conn, ops.PROVISION, entry.tx_id, answer, adapter, _provision)

            return Attempt(
                verdict, answer.status, sent.error, sent.messages, apply if verdict is Verdict.DELIVERED else None
            )
        reversal = operation.event is not None and operation.event.is_reversal
        return Attempt(advice_verdict(sent.judged, reversal=reversal), answer.status, sent.error, sent.messages)


RECOVERED_KINDS = frozenset(kind for kind in MONEY_KINDS if kind in ops.REQUEST_NAME)
"""The voucher requests that move money: provisions, redemptions and refunds."""


def _provision(body: bytes) -> wire.ProvisionRequest:
    return decode_strict(body, wire.ProvisionRequest)


def recover_stale_vouchers(switch: VoucherSwitch, older_than_us: int) -> Any:
    """Voucher requests a dead process left in flight. A provision is retrieved where the
    provider can retry, else recorded as exposure; a redemption or refund (its voucher taken)
    becomes an open exception, as when its answer is unknown."""

    def follow_up(conn: Connection, row: Any) -> None:
        unknown = UpstreamAnswer(Outcome.UNKNOWN, None, b"", 0, transport_error=STOPPED)
        if row.kind != Kind.VOUCHER_PROVISION:
            open_outcome_unknown(conn, row.id, Kind(row.kind), STOPPED)
            return
        adapter = switch.adapters.get(row.provider)
        if adapter is not None:
            switch.apply_provision_outcome(conn, row.id, State.UNKNOWN, unknown, adapter)

    return journal.recover_stale(RECOVERED_KINDS, older_than_us, follow_up)


STOPPED = "the process sending it stopped"
