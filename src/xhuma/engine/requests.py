"""The engine's request and retry paths (event loop; each database step is one `Database.run`
transaction whose ops are idempotent by our id: see the package's contract)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from xhuma import metrics
from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import IN_FLIGHT, State
from xhuma.engine.flow import Flow, Reply, answered, got, sent
from xhuma.logs import CORRELATION_ID
from xhuma.providers.base import UpstreamAnswer, UpstreamCall, WireOperation
from xhuma.saf.queue import enqueue
from xhuma.storage import journal
from xhuma.storage.db import now_us
from xhuma.storage.journal import Journal, Message
from xhuma.storage.tables import messages

log = logging.getLogger("xhuma.engine")
IN_FLIGHT_MARGIN_SECONDS = 5.0
"""How much longer than a provider's deadline a request journalled as sent is taken to be in
flight, before a retry or recovery takes it as abandoned by a dead process."""


@dataclass(frozen=True)
class Candidate:
    """A provider a request may go to, and how to move the journalled request to it."""

    adapter: Any
    prepare: Callable[[], UpstreamCall]
    reroute: Callable[[UpstreamCall, list[Message]], Callable[[Connection], None]]
    """The op that journals the move (and the new request) before the new request leaves."""


class Engine:
    def __init__(self, journal: Journal, flow: Flow, service: str) -> None:
        self.journal = journal
        self.flow = flow
        self.service = service
        """The interface's name in metrics ("ppu", "suv")."""
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self.on_enqueued: Callable[[], None] = lambda: None
        """Told (on the loop) when this process queued something, so a local worker sends it."""

    async def send_in_turn(
        self, operation: Any, tx_id: str, message: Any, first: UpstreamCall, candidates: Sequence[Candidate]
    ) -> Reply:
        """Send an opened request to the first candidate; move to the next only when the last
        certainly did not act on it (the connection was never made, or it answered 503), so
        falling back can never buy twice."""
        CORRELATION_ID.set(tx_id)
        done: asyncio.Future[None] | None = None
        if self.flow.moves_money(operation):
            done = asyncio.get_running_loop().create_future()
            self._in_flight[tx_id] = done
        try:
            call = first
            refused: Message | None = None
            for index, candidate in enumerate(candidates):
                if refused is not None:
                    call = candidate.prepare()
                    await self.journal.db.run(candidate.reroute(call, [refused, sent(call, candidate.adapter)]))
                answer = await candidate.adapter.send(call)
                self.flow.heard(candidate.adapter, answer)
                if index == len(candidates) - 1 or answer.delivered and answer.status != 503:
                    return await self.conclude(operation, tx_id, message, call, answer, candidate.adapter)
                refused = got(call, answer, candidate.adapter)
            raise AssertionError("unreachable: the last candidate always concludes")
        finally:
            if done is not None:
                del self._in_flight[tx_id]
                done.set_result(None)

    async def conclude(
        self,
        operation: Any,
        tx_id: str,
        message: Any,
        call: UpstreamCall,
        answer: UpstreamAnswer,
        adapter: Any,
        *,
        retrieving: bool = False,
        extra: Sequence[Message] = (),
        also: Callable[[Connection], None] | None = None,
    ) -> Reply:
        """Journal the outcome and the retail answer (with the flow's rows and `also`, in one
        transaction), then answer with what the journal holds: another node, or an earlier
        answer, may have settled the request already."""
        if self.flow.moves_money(operation):
            answer = answer.for_money(retrieving=retrieving, has_goods=self.flow.has_goods(answer.payload))
        reply, error_type = self.flow.retail_reply(operation, message, tx_id, answer)
        upstream_answer = got(call, answer, adapter)
        retail_answer = answered(operation, reply, upstream_answer.at_us)

        def then(conn: Connection, state: State) -> None:
            if also is not None:
                also(conn)
            self.flow.after_outcome(conn, operation, tx_id, state, answer, adapter)

        recorded = await self.journal.record_outcome(
            tx_id,
            answer.outcome,
            [*extra, upstream_answer, retail_answer],
            retail_status=reply.status,
            retail_response=reply.body.decode(),
            error_type=error_type,
            then=then,
            provider=adapter.name,
        )
        # The one place a request's outcome is known (every interface, first try or retry).
        label = metrics.outcome_label(answer.outcome, answer.status, answer.delivered)
        metrics.count_request(self.service, operation.name, adapter.name, label, answer.elapsed_us)
        log.info(
            "%s %s at %s: %s",
            self.service,
            operation.name,
            adapter.name,
            label,
            extra={"upstream_status": answer.status, "upstream_ms": answer.elapsed_us // 1000, "state": recorded.state},
        )
        if answer.outcome is Outcome.UNKNOWN:
            self.on_enqueued()  # a retrieval may have been queued; told here, on the event loop
        if recorded.retail_status is None or recorded.retail_response in (None, retail_answer.body):
            return reply
        assert recorded.retail_response is not None
        return Reply(
            status_for(operation, recorded.retail_status), self.flow.restamp(recorded.retail_response, message)
        )

    async def retry(
        self,
        operation: WireOperation,
        row: dict[str, Any],
        message: Any,
        received: Message,
        reread: Callable[[], Any],
    ) -> Reply:
        """A retailer's retry of a journalled request: replayed, in progress, or retrieved at the
        same provider under the same upstream id (never a second purchase)."""
        waiting = self._in_flight.get(row["id"])
        if waiting is not None:
            await asyncio.shield(waiting)
            row = await reread() or row
        tx_id = row["id"]
        CORRELATION_ID.set(tx_id)
        if State(row["state"]) not in IN_FLIGHT and row["retail_status"] != 504:
            return await self.answer_from_journal(operation, tx_id, row, message, received)
        adapter = self.flow.adapter(row["provider"])
        if row["state"] == State.SENT_UPSTREAM and not abandoned(row, adapter):
            # Still in flight, perhaps on another node: a second request for the same upstream
            # id could bring a second, contrary answer. The retailer asks again later.
            return await self.replied(operation, tx_id, received, self.flow.in_progress(message))
        if adapter is None or not adapter.config.supports("retry"):
            return await self.replied(operation, tx_id, received, self.flow.cannot_retry(message, row))
        call = self.flow.retry_call(adapter, row)
        await self.journal.record_messages(tx_id, [received, sent(call, adapter)])
        answer = await adapter.send(call)
        return await self.conclude(operation, tx_id, message, call, answer, adapter, retrieving=True)

    async def answer_from_journal(
        self, operation: WireOperation, tx_id: str, row: dict[str, Any], message: Any, received: Message
    ) -> Reply:
        """The journalled retail answer, re-addressed to this message; nothing goes upstream."""
        status = status_for(operation, row["retail_status"])
        return await self.replied(
            operation, tx_id, received, Reply(status, self.flow.restamp(row["retail_response"], message))
        )

    def apply_retrieved(
        self,
        conn: Connection,
        operation: Any,
        tx_id: str,
        answer: UpstreamAnswer,
        adapter: Any,
        decode_request: Callable[[bytes], Any],
    ) -> None:
        """A retrieved answer (already judged) becomes the request's outcome and stored retail
        answer, as if it had come in time, so the retailer's own retry is answered from the
        journal. Database thread, inside the store-and-forward settlement's transaction."""
        request = decode_request(first_retail_request(conn, tx_id).encode())
        reply, error_type = self.flow.retail_reply(operation, request, tx_id, answer)

        def then(conn: Connection, state: State) -> None:
            self.flow.after_outcome(conn, operation, tx_id, state, answer, adapter)

        journal.record_outcome(
            tx_id,
            answer.outcome,
            [],
            retail_status=reply.status,
            retail_response=reply.body.decode(),
            error_type=error_type,
            then=then,
        )(conn)

    async def replied(self, operation: WireOperation, tx_id: str, received: Message, reply: Reply) -> Reply:
        """Journal a message and the answer given to it without asking upstream, then answer."""
        await self.journal.record_messages(tx_id, [received, answered(operation, reply)])
        return reply


class Interface:
    """An interface's switch, whose requests its engine runs."""

    engine: Engine

    @property
    def on_enqueued(self) -> Callable[[], None]:
        """Told when this process queued something, so a local worker can send it at once."""
        return self.engine.on_enqueued

    @on_enqueued.setter
    def on_enqueued(self, wake: Callable[[], None]) -> None:
        self.engine.on_enqueued = wake


def queue_call(conn: Connection, queue: str, tx_id: str, call: UpstreamCall) -> None:
    """Queue an upstream message for store-and-forward (an advice, or the retry that retrieves
    an unknown outcome), in the caller's transaction; one entry per (transaction, operation),
    so queueing it twice is queueing it once."""
    enqueue(queue, tx_id, call.operation.name, call.method, call.url, call.body.decode())(conn)


def status_for(operation: WireOperation, stored_status: int) -> int:
    """A stored success answers a retry (or a reprint) with that operation's own success status."""
    return operation.success_status if stored_status < 300 else stored_status


def abandoned(row: dict[str, Any], adapter: Any) -> bool:
    """Whether a request journalled as sent has outlived any request's deadline (its process
    died), by the journal's time, as every node reads it."""
    deadline = adapter.config.deadline_seconds if adapter is not None else 60.0
    return bool(now_us() - row["updated_us"] > (deadline + IN_FLIGHT_MARGIN_SECONDS) * 1e6)


def first_retail_request(conn: Connection, tx_id: str) -> str:
    """The retailer's own request for a transaction, as journalled (database thread)."""
    query = (
        select(messages.c.body)
        .where(messages.c.tx_id == tx_id, messages.c.leg == "retail", messages.c.direction == "request")
        .order_by(messages.c.id)
        .limit(1)
    )
    return str(conn.execute(query).scalar_one())
