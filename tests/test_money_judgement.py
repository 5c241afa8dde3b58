"""What an upstream answer may conclude about a purchase, driven through the real PPU switch on
a real database with a scripted provider (in process: no sockets, except for the deadline).

Each test is one of issue 12's defects: a verdict drawn from an answer that says nothing about
*our* upstream id, a success without what was bought, two requests in flight for one id, and a
retailer told something other than what the journal holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.support import base_message
from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.engine.flow import Institution
from xhuma.ppu import operations as ops
from xhuma.ppu.delivery import PpuDeliverer
from xhuma.ppu.switch import PpuSwitch
from xhuma.providers.base import ProviderConfig, UpstreamAnswer, UpstreamCall
from xhuma.providers.ppu_v3 import PpuV3Adapter
from xhuma.routing import Router, contracts
from xhuma.saf.queue import QueuedEntry
from xhuma.storage import journal
from xhuma.storage.db import Database, migrate
from xhuma.storage.journal import Journal

CLIENT = "c1"
METER = "01234567890"
PROVIDER = "scripted"

Step = tuple[int, dict[str, Any] | None] | str
"""An HTTP status and body, or "timeout" (no answer), or "refused" (never connected)."""


class ScriptedProvider(PpuV3Adapter):
    """The real PPU v3 adapter's `prepare`; `send` plays the next step of a script."""

    def __init__(self) -> None:
        super().__init__(ProviderConfig(PROVIDER, "http://scripted.invalid", read_timeout=5.0))
        self.script: list[Step] = []
        self.calls: list[UpstreamCall] = []
        self.hold: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        self.calls.append(call)
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        step = self.script.pop(0)
        if step == "timeout":
            return UpstreamAnswer(Outcome.UNKNOWN, None, b"", 0, transport_error="TimeoutError")
        if step == "refused":
            return UpstreamAnswer(Outcome.FAILED, None, b"", 0, transport_error="refused", delivered=False)
        assert not isinstance(step, str)
        status, body = step
        raw = json.dumps(body).encode() if body is not None else b""
        outcome = Outcome.SUCCESSFUL if status < 300 else Outcome.UNKNOWN if status in (500, 504) else Outcome.FAILED
        return UpstreamAnswer(outcome, status, raw, 1000, payload=body)


def sold(call: UpstreamCall, tokens: int = 1) -> Step:
    body = json.loads(call.body)
    tokens_sold = [{"tokenType": "STD", "units": 1.0, "token": f"{1000 + n:020d}"} for n in range(tokens)]
    return 201, {**body, "utility": {"name": "U"}, "customer": {"name": "C"}, "tokens": tokens_sold}


def refusal(status: int, error_type: str) -> Step:
    return status, {"errorType": error_type, "errorMessage": error_type[:20]}


@pytest.fixture
def db(fresh_database_url: str) -> Iterator[Database]:
    database = Database(fresh_database_url)
    migrate(database.engine)
    database.start()
    database.run_sync(lambda c: contracts.record(c, METER, [(PROVIDER, contracts.SUPPORTED, "U")]))
    yield database
    database.close()


def node(db: Database, provider: ScriptedProvider) -> PpuSwitch:
    """One switch process on the shared database (two of them are two nodes)."""
    return PpuSwitch(Journal(db), Router([provider], db), Institution("xhuma", "Xhuma"))


def purchase() -> dict[str, Any]:
    return base_message(CLIENT, meter={"meterId": METER}, purchaseAmount={"amount": 1000, "currency": "710"})


async def buy(switch: PpuSwitch, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = {"id": message["id"]}
    reply = await switch.handle(ops.PURCHASE, CLIENT, path, json.dumps(message).encode(), "/tokenPurchases")
    return reply.status, json.loads(reply.body)


async def retry(switch: PpuSwitch, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps({**message, "id": base_message(CLIENT)["id"]}).encode()
    reply = await switch.handle(ops.RETRY, CLIENT, {"id": message["id"]}, body, "/tokenPurchases/retry")
    return reply.status, json.loads(reply.body)


async def held_purchase(
    db: Database, provider: ScriptedProvider, switch: PpuSwitch, message: dict[str, Any]
) -> tuple[asyncio.Future[tuple[int, dict[str, Any]]], str]:
    """A purchase sent and held at the provider (until `provider.hold` is set), and our id."""
    provider.hold = asyncio.Event()
    buying = asyncio.ensure_future(buy(switch, message))
    await provider.arrived.wait()
    return buying, row(db, message)["id"]


def row(db: Database, message: dict[str, Any]) -> dict[str, Any]:
    found = db.run_sync(journal.find(CLIENT, Kind.PURCHASE, message["id"]))
    assert found is not None
    return found


def queued_retries(db: Database, tx_id: str) -> int:
    query = text("SELECT count(*) FROM saf_entries WHERE tx_id = :t AND operation = 'retryPurchaseRequest'")
    return int(db.run_sync(lambda c: c.execute(query, {"t": tx_id}).scalar_one()))


def test_a_retry_that_cannot_reach_the_provider_leaves_the_purchase_unknown(db: Database) -> None:
    """Defect 6: the purchase timed out; the retailer's retry meets a 503, then a refused
    connection. Neither says anything about the purchase, which the provider did sell."""
    provider = ScriptedProvider()
    switch = node(db, provider)
    message = purchase()

    async def scenario() -> None:
        provider.script = ["timeout", refusal(503, "UPSTREAM_UNAVAILABLE"), "refused"]
        assert (await buy(switch, message))[0] == 504
        status, _ = await retry(switch, message)
        assert status == 504, "a 503 to a retry is not 'nothing bought'"
        assert row(db, message)["state"] == State.UNKNOWN
        assert (await retry(switch, message))[0] == 504
        assert row(db, message)["state"] == State.UNKNOWN
        assert queued_retries(db, row(db, message)["id"]) == 1, "the follow-up still retrieves it"
        provider.script = [sold(provider.calls[0])]
        status, body = await retry(switch, message)
        assert status == ops.RETRY.success_status and body["tokens"]
        assert row(db, message)["state"] == State.APPROVED

    asyncio.run(scenario())


def test_a_follow_up_that_cannot_reach_the_provider_asks_again(db: Database) -> None:
    """Defect 6, store-and-forward's side: the queued retrieval meets a 503 and is repeated;
    when it hears the sale, the purchase is approved and the stored answer has the tokens."""
    provider = ScriptedProvider()
    switch = node(db, provider)
    deliverer = PpuDeliverer(switch)
    message = purchase()

    async def scenario() -> None:
        provider.script = ["timeout"]
        await buy(switch, message)
        tx_id = row(db, message)["id"]
        entry_row = db.run_sync(
            lambda c: c.execute(text("SELECT * FROM saf_entries WHERE tx_id = :t"), {"t": tx_id}).mappings().one()
        )
        entry = QueuedEntry(**{k: entry_row[k] for k in QueuedEntry.__dataclass_fields__})
        provider.script = [refusal(503, "UPSTREAM_UNAVAILABLE")]
        attempt = await deliverer.deliver(entry)
        assert attempt.verdict == "repeat" and attempt.on_final is None
        provider.script = [sold(provider.calls[0])]
        attempt = await deliverer.deliver(entry)
        assert attempt.verdict == "delivered" and attempt.on_final is not None
        db.run_sync(attempt.on_final)
        stored = row(db, message)
        assert stored["state"] == State.APPROVED and stored["retail_status"] == 201
        assert json.loads(stored["retail_response"])["tokens"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((201, None), id="success-without-tokens"),
        pytest.param(refusal(400, "DUPLICATE_RECORD"), id="duplicate-of-our-id"),
        pytest.param(refusal(404, "UNABLE_TO_LOCATE_RECORD"), id="not-found"),
    ],
)
def test_an_answer_that_is_no_verdict_on_our_id_is_unknown(db: Database, answer: Step) -> None:
    """Defects 7 and 2: a 201 without tokens may have sold; DUPLICATE_RECORD or a 404 for our
    own upstream id say "I have it" or "I lost it", never "no". Each is retrieved."""
    provider = ScriptedProvider()
    switch = node(db, provider)
    message = purchase()

    async def scenario() -> None:
        script: Step = answer
        if answer == (201, None):
            script = (201, {**json.loads(json.dumps(message)), "utility": {"name": "U"}, "tokens": []})
        provider.script = [script]
        status, _ = await buy(switch, message)
        assert status == 504
        stored = row(db, message)
        assert stored["state"] == State.UNKNOWN and queued_retries(db, stored["id"]) == 1

    asyncio.run(scenario())


def test_a_retry_on_another_node_while_the_purchase_is_in_flight_sends_nothing(db: Database) -> None:
    """Defect 2: "in flight" is a database fact. Node B has no local record of node A's request,
    yet must not send a second request for the same upstream id while A still waits."""
    provider = ScriptedProvider()
    node_a, node_b = node(db, provider), node(db, provider)
    message = purchase()

    async def scenario() -> None:
        buying, _ = await held_purchase(db, provider, node_a, message)
        status, body = await asyncio.wait_for(retry(node_b, message), 10)  # it must not wait on A
        assert status == 504 and body["errorMessage"] == "In progress"
        assert len(provider.calls) == 1, "nothing was sent for the retry"
        provider.script = [sold(provider.calls[0])]
        provider.hold.set()
        assert (await buying)[0] == 201

    asyncio.run(scenario())


def test_the_retailer_is_told_what_the_journal_holds(db: Database) -> None:
    """Defect 2: while node A waits, the sale is settled in the journal (node B retrieved it);
    A's own late answer is a decline, but A must answer with the journalled sale."""
    provider = ScriptedProvider()
    switch = node(db, provider)
    message = purchase()

    async def scenario() -> None:
        buying, tx_id = await held_purchase(db, provider, switch, message)
        settled = json.dumps({**message, "tokens": [{"tokenType": "STD", "units": 1.0, "token": "1" * 20}]})
        db.run_sync(journal.record_outcome(tx_id, Outcome.SUCCESSFUL, [], retail_status=201, retail_response=settled))
        provider.script = [refusal(400, "TRANSACTION_DECLINED")]
        provider.hold.set()
        status, body = await buying
        assert status == 201 and body["tokens"][0]["token"] == "1" * 20
        assert row(db, message)["state"] == State.APPROVED

    asyncio.run(scenario())


def test_a_reroute_touches_the_row_so_recovery_leaves_it_alone(db: Database) -> None:
    """Defect 2: recovery takes rows untouched for longer than a request can last; moving a
    request to its second provider is a touch, or recovery chases a request still in flight."""
    provider = ScriptedProvider()
    switch = node(db, provider)
    message = purchase()

    async def scenario() -> None:
        buying, tx_id = await held_purchase(db, provider, switch, message)
        db.run_sync(lambda c: c.execute(text("UPDATE transactions SET updated_us = 0 WHERE id = :t"), {"t": tx_id}))
        await switch.journal.reroute(tx_id, PROVIDER, [])
        taken = db.run_sync(journal.recover_stale(Kind.PURCHASE, 60_000_000, lambda conn, r: None))
        assert taken == 0
        provider.script = [sold(provider.calls[0])]
        provider.hold.set()
        await buying

    asyncio.run(scenario())
