"""Broadcast meter lookups: ask several PPU providers about a meter at once, answer with the
first that serves it, and keep every answer (late ones included) in the journal and the contract
table. Event loop; the journal writes are `Database.run` ops (see `xhuma.engine`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
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
    from xhuma.routing import Router

OWN_TERMINAL_ID = "ROUTING0"
OWN_MERCHANT = wire.Merchant(
    merchant_type="6012",
    merchant_id="XHUMAROUTING000",
    merchant_name=wire.MerchantName(name="xhuma routing", city="Cape Town", region="WC", country="ZA"),
)
"""Who asks, in lookups xhuma makes on its own behalf to learn which provider serves a meter."""


Answered = tuple[ProviderAdapter, UpstreamAnswer]
Answers = list[Answered]
Chooser = Callable[[Answers, list[ProviderAdapter]], Awaitable[Answered | None]]
"""Given the answers so far and the providers still awaited, the answer to go with (None: wait
on). Called with nobody awaited once time is up."""


def _serves(answer: UpstreamAnswer) -> bool:
    return answer.outcome is Outcome.SUCCESSFUL and bool(answer.payload)


async def first_supporting(answers: Answers, waiting: list[ProviderAdapter]) -> Answered | None:
    """A retailer's lookup: the first provider to say it serves the meter."""
    return next(((a, r) for a, r in answers if _serves(r)), None)


async def hear_everyone(answers: Answers, waiting: list[ProviderAdapter]) -> Answered | None:
    """A refresh: everyone heard out (within the timeout), then the first that serves it."""
    return None if waiting else await first_supporting(answers, [])


class RankedDiscovery:
    """Chooses as the router would have, had every answer been in: once the first answer names
    the meter's municipality the order is drawn (`Router.discovery_order`), and the choice is
    the first provider in it that serves the meter, as soon as every one ahead of it has said
    it does not (or time is up)."""

    def __init__(self, router: Router, kind: Kind, asked: list[ProviderAdapter]) -> None:
        self.router = router
        self.kind = kind
        self.asked = asked
        self.order: list[ProviderAdapter] | None = None
        self.ranked: list[ProviderAdapter] = []
        """The providers that serve the meter and can do the operation, best first."""

    async def __call__(self, answers: Answers, waiting: list[ProviderAdapter]) -> Answered | None:
        serving = {a.name: (a, r) for a, r in answers if _serves(r)}
        if not serving:
            return None
        if self.order is None:
            _, first = next(iter(serving.values()))
            self.order = await self.router.discovery_order(self.kind, self.asked, utility_name(first))
        self.ranked = [a for a in self.order if a.name in serving]
        awaited = {a.name for a in waiting}
        for adapter in self.order:
            if adapter.name in serving:
                return serving[adapter.name]
            if adapter.name in awaited:
                return None
        # Nobody who may do the operation serves the meter: record the lookup by what was said.
        return None if waiting else next(iter(serving.values()))


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
        choose: Chooser = first_supporting,
    ) -> tuple[Reply, ProviderAdapter | None]:
        """Ask several providers about a meter at once; answer as soon as `choose` picks an
        answer (by default the first that serves the meter), never longer than the broadcast
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
        answers: Answers = []
        chosen: Answered | None = None
        while pending and chosen is None:
            finished, pending = await asyncio.wait(
                pending, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
            if not finished:
                break
            for task in finished:
                answers.append((asking[task], task.result()))
            chosen = await choose(answers, [asking[t] for t in pending])
        if chosen is None:
            chosen = await choose(answers, [])  # time is up: the best of what was heard
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
        message = self.own_lookup(meter_id)
        targets = list(self.switch.router.adapters.values())
        await self.ask(self.switch.institution.id, message, None, message.id, targets, choose=hear_everyone)

    async def discover(self, kind: Kind, meter_id: str, asked: list[ProviderAdapter]) -> list[ProviderAdapter]:
        """Ask about a meter nobody is known to serve, on our own behalf, before an operation
        of `kind` on it: the providers that serve it and can do the operation, best first, by
        the same rules as for a meter already known. Waits only for providers that could still
        come first (within the broadcast timeout)."""
        chooser = RankedDiscovery(self.switch.router, kind, asked)
        message = self.own_lookup(meter_id)
        await self.ask(self.switch.institution.id, message, None, message.id, asked, choose=chooser)
        return chooser.ranked

    def own_lookup(self, meter_id: str) -> wire.MeterLookupRequest:
        """A lookup xhuma makes on its own behalf (journalled under its own institution)."""
        us = wire.Institution(id=self.switch.institution.id, name=self.switch.institution.name)
        return wire.MeterLookupRequest(
            id=str(uuid.uuid4()),
            time=rfc3339_now(),
            originator=wire.Originator(institution=us, terminal_id=OWN_TERMINAL_ID, merchant=OWN_MERCHANT),
            client=us,
            third_party_identifiers=[],
            meter=wire.Meter(meter_id=meter_id),
        )

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
            if _serves(answer):
                learned.append((adapter.name, contracts.SUPPORTED, utility_name(answer)))
            elif answer.error_type == "UNKNOWN_METER_ID":
                learned.append((adapter.name, contracts.NOT_SUPPORTED, None))
            else:
                learned.append((adapter.name, contracts.UNCONFIRMED, None))
        return learned + [(a.name, contracts.UNCONFIRMED, None) for a in unanswered]


def utility_name(answer: UpstreamAnswer) -> str | None:
    """The municipality a lookup answer names (the key of the operator's preferences)."""
    utility = answer.payload.get("utility") if answer.payload else None
    name = utility.get("name") if isinstance(utility, dict) else None
    return name if isinstance(name, str) else None


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
