"""Broadcast meter lookups: ask several PPU providers about a meter at once, answer with the
first that serves it, and keep every answer (late ones included) in the journal and the contract
table. Event loop; the journal writes are `Database.run` ops (see `xhuma.engine`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.engine.flow import Reply, got, rfc3339_now, sent
from xhuma.ppu import operations as ops
from xhuma.ppu import wire
from xhuma.ppu.replies import error_reply
from xhuma.providers.base import ProviderAdapter, UpstreamAnswer, UpstreamCall
from xhuma.routing import contracts
from xhuma.storage.journal import Message, NewTransaction, write_messages

if TYPE_CHECKING:
    from xhuma.ppu.switch import PpuSwitch

OWN_TERMINAL_ID = "ROUTING0"
OWN_MERCHANT = wire.Merchant(
    merchant_type="6012",
    merchant_id="XHUMAROUTING000",
    merchant_name=wire.MerchantName(name="xhuma routing", city="Cape Town", region="WC", country="ZA"),
)
"""Who asks, in lookups xhuma makes on its own behalf to learn which provider serves a meter."""


class BroadcastLookups:
    def __init__(self, switch: PpuSwitch, timeout: float) -> None:
        self.switch = switch
        self.timeout = timeout
        self._background: set[asyncio.Future[None]] = set()

    async def ask(
        self,
        client_id: str,
        message: Any,
        received: Message | None,
        retail_id: str,
        targets: list[ProviderAdapter],
        *,
        hear_all: bool = False,
    ) -> tuple[Reply, ProviderAdapter | None]:
        """Ask several providers about a meter at once; answer with the first that serves it,
        without waiting for slower ones (unless `hear_all`), and never longer than the broadcast
        timeout. Every answer, including late ones, goes into the journal and the contract table."""
        operation = ops.METER_LOOKUP
        tx_id = str(uuid.uuid4())
        upstream = self.switch.upstream_message(message, tx_id)
        calls = {a.name: a.prepare(operation, upstream) for a in targets}
        tx = NewTransaction(
            id=tx_id,
            client_id=client_id,
            retail_id=retail_id,
            kind=Kind.METER_LOOKUP,
            state=State.SENT_UPSTREAM,
            meter_id=message.meter.meter_id,
            upstream_request=next(iter(calls.values())).body.decode(),
        )
        requests = [sent(calls[a.name], a) for a in targets]
        if not await self.switch.journal.open(tx, ([received] if received else []) + requests):
            reply = error_reply(400, "DUPLICATE_RECORD", "Duplicate id", operation, message.id)
            if received is not None:
                await self.switch.refuse(received, client_id, retail_id, reply, "retail id taken")
            return reply, None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        asking = {asyncio.create_task(a.send(calls[a.name])): a for a in targets}
        pending = set(asking)
        answers: list[tuple[ProviderAdapter, UpstreamAnswer]] = []
        chosen: tuple[ProviderAdapter, UpstreamAnswer] | None = None
        while pending and (chosen is None or hear_all):
            finished, pending = await asyncio.wait(
                pending, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
            if not finished:
                break
            for task in finished:
                answers.append((asking[task], task.result()))
            chosen = next(((a, r) for a, r in answers if r.outcome is Outcome.SUCCESSFUL and r.payload), None)
        if pending:
            straggler = asyncio.ensure_future(
                self._hear_out(tx_id, message.meter.meter_id, asking, pending, deadline, calls)
            )
            self._background.add(straggler)
            straggler.add_done_callback(self._background.discard)
        learned = self._learned(answers, [asking[t] for t in pending])
        if chosen is None:
            chosen = _best_failure(answers)
        if chosen is None:
            no_answer = UpstreamAnswer(
                Outcome.UNKNOWN, None, b"", 0, transport_error="no answer within the broadcast timeout"
            )
            chosen = (targets[0], no_answer)
        adapter, answer = chosen
        others = [got(calls[a.name], r, a) for a, r in answers if a is not adapter]
        meter_id = message.meter.meter_id
        reply = await self.switch.engine.conclude(
            operation,
            tx_id,
            message,
            calls[adapter.name],
            answer,
            adapter,
            extra=others,
            also=lambda conn: contracts.record(conn, meter_id, learned),
        )
        return reply, adapter

    async def rebroadcast(self, meter_id: str) -> None:
        """Ask every provider about a meter again, on our own behalf (the scheduled refresh, an
        operator's forced re-broadcast), hearing everyone out within the broadcast timeout."""
        message = wire.MeterLookupRequest(
            id=str(uuid.uuid4()),
            time=rfc3339_now(),
            originator=wire.Originator(
                institution=wire.Institution(id=self.switch.institution.id, name=self.switch.institution.name),
                terminal_id=OWN_TERMINAL_ID,
                merchant=OWN_MERCHANT,
            ),
            client=wire.Institution(id=self.switch.institution.id, name=self.switch.institution.name),
            third_party_identifiers=[],
            meter=wire.Meter(meter_id=meter_id),
        )
        targets = list(self.switch.router.adapters.values())
        await self.ask(self.switch.institution.id, message, None, message.id, targets, hear_all=True)

    async def _hear_out(
        self,
        tx_id: str,
        meter_id: str,
        asking: dict[asyncio.Task[UpstreamAnswer], ProviderAdapter],
        pending: set[asyncio.Task[UpstreamAnswer]],
        deadline: float,
        calls: dict[str, UpstreamCall],
    ) -> None:
        """Collect the answers of a broadcast that came after the retailer was answered."""
        loop = asyncio.get_running_loop()
        finished, unanswered = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        for task in unanswered:
            task.cancel()
        late = [(asking[t], t.result()) for t in finished if not t.cancelled() and t.exception() is None]
        learned = self._learned(late, [])
        heard = [got(calls[a.name], r, a) for a, r in late]

        def record(conn: Connection) -> None:
            contracts.record(conn, meter_id, learned)
            write_messages(conn, tx_id, heard)

        if late:
            await self.switch.journal.db.run(record)

    def _learned(
        self, answers: list[tuple[ProviderAdapter, UpstreamAnswer]], unanswered: list[ProviderAdapter]
    ) -> list[tuple[str, str, str | None]]:
        """What a broadcast's answers say about the meter, for the contract table (and what
        they say about each provider's health, for the circuit breaker)."""
        learned: list[tuple[str, str, str | None]] = []
        for adapter, answer in answers:
            self.switch.router.availability.observe(adapter.name, healthy(answer))
            if answer.outcome is Outcome.SUCCESSFUL and answer.payload:
                utility = answer.payload.get("utility")
                name = utility.get("name") if isinstance(utility, dict) else None
                learned.append((adapter.name, contracts.SUPPORTED, name if isinstance(name, str) else None))
            elif answer.error_type == "UNKNOWN_METER_ID":
                learned.append((adapter.name, contracts.NOT_SUPPORTED, None))
            else:
                learned.append((adapter.name, contracts.UNCONFIRMED, None))
        return learned + [(a.name, contracts.UNCONFIRMED, None) for a in unanswered]


def healthy(answer: UpstreamAnswer) -> bool:
    """Whether an answer says the provider is up (a business refusal does; silence or 5xx not)."""
    return answer.delivered and answer.outcome is not Outcome.UNKNOWN and answer.status != 503


def _best_failure(
    answers: list[tuple[ProviderAdapter, UpstreamAnswer]],
) -> tuple[ProviderAdapter, UpstreamAnswer] | None:
    """The most telling refusal of a broadcast: a business answer over silence, and "unknown
    meter" only when nobody said anything better."""
    ranked = sorted(
        answers,
        key=lambda pair: (
            pair[1].status is None,
            pair[1].error_type == "UNKNOWN_METER_ID",
            pair[1].outcome is Outcome.UNKNOWN,
        ),
    )
    return ranked[0] if ranked else None
