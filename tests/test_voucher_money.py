"""Voucher money safety, in process on both backends: a redemption or refund is taken and
journalled in one commit, recovery covers it, and an advice is judged by its own request under
a row lock."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, select

from tests.sim.providers import answer_of
from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.domain.vouchers import Event
from xhuma.engine.flow import Institution
from xhuma.ppu.examples import retail_message
from xhuma.providers.base import ProviderConfig, UpstreamAnswer, UpstreamCall
from xhuma.providers.suv_v1 import SuvV1Adapter
from xhuma.storage.db import Database, migrate
from xhuma.storage.journal import Journal, Message, NewTransaction
from xhuma.storage.tables import reconciliation_exceptions, saf_entries, transactions, vouchers
from xhuma.vouchers import catalogue_store, delivery, store
from xhuma.vouchers import operations as ops
from xhuma.vouchers.catalogue import CSV_HEADER, products_from_csv
from xhuma.vouchers.switch import VoucherSwitch

T = TypeVar("T")
CLIENT = "shop"
PROVIDER = "fakesuv"


class Crash(Exception):
    """The process died before it handed the next operation to the database."""


class CrashingDatabase(Database):
    """Dies (raises) instead of running its `crash_at`-th operation."""

    crash_at: int | None = None
    ran = 0

    async def run(self, op: Callable[[Connection], T]) -> T:
        self.ran += 1
        if self.ran == self.crash_at:
            raise Crash
        return await super().run(op)


class FakeProvider(SuvV1Adapter):
    """Issues a voucher for every provision and accepts every other request."""

    def __init__(self) -> None:
        super().__init__(ProviderConfig(PROVIDER, "http://fakesuv.invalid", kind="suv_v1"))
        self.issued = 0

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        body = json.loads(call.body)
        if call.operation is ops.PROVISION:
            self.issued += 1
            return answer_of(call, 201, {**body, "voucher": {"code": f"CODE-{self.issued:06d}"}})
        return answer_of(call, call.operation.success_status, body)

    async def close(self) -> None:
        return None


@pytest.fixture
def db(fresh_database_url: str) -> Iterator[CrashingDatabase]:
    database = CrashingDatabase(fresh_database_url)
    migrate(database.engine)
    catalogue = CSV_HEADER + f"\nGIFT,Gift card,gift,,fixed,10000,,,710,,,{PROVIDER},P-GIFT,1\n"
    database.run_sync(catalogue_store.import_products(CLIENT, products_from_csv(catalogue), "test"))
    database.start()
    yield database
    database.close()


class Till:
    def __init__(self, db: CrashingDatabase) -> None:
        self.db = db
        self.provider = FakeProvider()
        self.switch = VoucherSwitch(Journal(db), {PROVIDER: self.provider}, Institution("xhuma", "Xhuma"))

    def call(self, operation: ops.SuvOperation, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = ops.BASE_PATH + operation.path
        reply = asyncio.run(self.switch.handle(operation, CLIENT, json.dumps(body).encode(), url, None))
        return reply.status, json.loads(reply.body)

    def request(self, operation: ops.SuvOperation, **fields: Any) -> tuple[str, int, dict[str, Any]]:
        body = retail_message(CLIENT, **fields)
        status, answer = self.call(operation, body)
        return body["id"], status, answer

    def advise(self, operation: ops.SuvOperation, request_id: str) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"id": str(uuid.uuid4()), "requestId": request_id, "time": "2024-01-01T00:00:00Z"}
        body["thirdPartyIdentifiers"] = []
        if operation is ops.CONFIRM:
            body["tenders"] = [{"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}]
        if operation.event is not None and operation.event.is_reversal:
            body["reversalReason"] = "CANCELLED"
        return self.call(operation, body)

    def confirmed_voucher(self) -> tuple[str, str]:
        provision, status, answer = self.request(ops.PROVISION, product={"productId": "GIFT"})
        assert status == 201, answer
        assert self.advise(ops.CONFIRM, provision)[0] == 202
        return provision, answer["voucher"]["code"]

    def voucher_state(self, code: str) -> str:
        query = select(vouchers.c.state).where(vouchers.c.code == code)
        return str(self.db.run_sync(lambda c: c.execute(query).scalar()))

    def rows(self, kind: Kind) -> list[Any]:
        return self.db.run_sync(lambda c: c.execute(select(transactions).where(transactions.c.kind == kind)).all())


def test_a_crash_between_operations_never_strands_a_taken_voucher(db: CrashingDatabase) -> None:
    """Wherever the process dies during a redemption, a taken voucher has its journal row."""
    till = Till(db)
    for crash_at in range(1, 6):
        _, code = till.confirmed_voucher()
        db.ran, db.crash_at = 0, crash_at
        try:
            till.request(ops.REDEEM, voucher={"code": code})
        except Crash:
            pass
        finally:
            db.crash_at = None
        voucher = db.run_sync(store.find_voucher(CLIENT, code=code))
        assert voucher is not None
        mine = [r for r in till.rows(Kind.REDEMPTION) if r.parent_id == voucher["id"]]
        if till.voucher_state(code) == "redeemed":
            assert len(mine) == 1, f"crash at operation {crash_at}: voucher taken, no redemption journalled"
        else:
            assert till.voucher_state(code) == "confirmed_provisioned" and not mine


def test_taking_and_opening_is_idempotent_by_our_id(db: CrashingDatabase) -> None:
    till = Till(db)
    _, code = till.confirmed_voucher()
    voucher = db.run_sync(store.find_voucher(CLIENT, code=code))
    assert voucher is not None
    tx = NewTransaction(
        str(uuid.uuid4()), CLIENT, str(uuid.uuid4()), Kind.REDEMPTION, State.SENT_UPSTREAM, parent_id=voucher["id"]
    )
    item = Message("retail", "request", "redeemVoucher", "{}", 0)
    take = store.take_and_open(tx, code, Event.REDEEM, item, item)
    assert db.run_sync(take) == "" and db.run_sync(take) == ""
    assert till.voucher_state(code) == "redeemed" and len(till.rows(Kind.REDEMPTION)) == 1


def test_recovery_covers_redemptions_and_refunds_left_in_flight(db: CrashingDatabase) -> None:
    till = Till(db)
    _, code = till.confirmed_voucher()
    redemption, status, _ = till.request(ops.REDEEM, voucher={"code": code})
    assert status == 201
    assert till.advise(ops.CONFIRM_REDEEM, redemption)[0] == 202
    _, stranded = till.confirmed_voucher()
    for operation, voucher in ((ops.REFUND, code), (ops.REDEEM, stranded)):
        db.ran, db.crash_at = 0, 3  # look-up, take-and-open, then dies before the answer is journalled
        with pytest.raises(Crash):
            asyncio.run(_send_and_die(till, operation, voucher))
        db.crash_at = None
    recovered = db.run_sync(delivery.recover_stale_vouchers(till.switch, 0))
    assert recovered == 2
    for kind, reason in ((Kind.REFUND, "refund_outcome_unknown"), (Kind.REDEMPTION, "redemption_outcome_unknown")):
        row = next(r for r in till.rows(kind) if r.state != State.CONFIRMED)
        assert row.state == State.UNKNOWN
        reasons = db.run_sync(
            lambda c, tx_id=row.id: (
                c.execute(select(reconciliation_exceptions.c.reason).where(reconciliation_exceptions.c.tx_id == tx_id))
                .scalars()
                .all()
            )
        )
        assert reasons == [reason]
    assert db.run_sync(delivery.recover_stale_vouchers(till.switch, 0)) == 0


async def _send_and_die(till: Till, operation: ops.SuvOperation, code: str) -> None:
    body = retail_message(CLIENT, voucher={"code": code})
    await till.switch.handle(operation, CLIENT, json.dumps(body).encode(), ops.BASE_PATH + operation.path, None)


def test_an_advice_on_an_older_redemption_is_judged_by_that_redemption(db: CrashingDatabase) -> None:
    till = Till(db)
    _, code = till.confirmed_voucher()
    first, status, _ = till.request(ops.REDEEM, voucher={"code": code})
    assert status == 201 and till.advise(ops.CONFIRM_REDEEM, first)[0] == 202
    refund, status, _ = till.request(ops.REFUND, voucher={"code": code})
    assert status == 201 and till.advise(ops.CONFIRM_REFUND, refund)[0] == 202
    second, status, _ = till.request(ops.REDEEM, voucher={"code": code})
    assert status == 201 and till.voucher_state(code) == "redeemed"

    status, answer = till.advise(ops.REVERSE_REDEEM, first)
    assert (status, answer["errorType"], answer["originalId"]) == (400, "REDEMPTION_ALREADY_CONFIRMED", first)
    status, answer = till.advise(ops.CONFIRM_REDEEM, first)
    assert (status, answer["errorType"]) == (400, "VOUCHER_NOT_REDEEMED")
    status, answer = till.advise(ops.CONFIRM_REFUND, refund)
    assert (status, answer["errorType"]) == (400, "VOUCHER_NOT_REFUNDED")
    assert till.voucher_state(code) == "redeemed"  # the second redemption stands
    assert _queued(db, ops.REVERSE_REDEEM) == [] and _queued(db, ops.CONFIRM_REDEEM) == [first]

    assert till.advise(ops.REVERSE_REDEEM, second)[0] == 202
    assert till.voucher_state(code) == "confirmed_provisioned"


def _queued(db: Database, operation: ops.SuvOperation) -> list[str]:
    """The retail ids of the requests the queued advices of `operation` refer to."""

    def op(conn: Connection) -> list[str]:
        bodies = conn.execute(select(saf_entries.c.body).where(saf_entries.c.operation == operation.name)).scalars()
        ours = [json.loads(b)["requestId"] for b in bodies]
        return [conn.execute(select(transactions.c.retail_id).where(transactions.c.id == i)).scalar_one() for i in ours]

    return db.run_sync(op)


def test_a_second_reversal_of_the_same_request_is_accepted_and_changes_nothing(db: CrashingDatabase) -> None:
    till = Till(db)
    provision, status, _ = till.request(ops.PROVISION, product={"productId": "GIFT"})
    assert status == 201
    assert till.advise(ops.REVERSE, provision)[0] == 202
    assert till.advise(ops.REVERSE, provision)[0] == 202
    _, code = till.confirmed_voucher()
    redemption, _, _ = till.request(ops.REDEEM, voucher={"code": code})
    assert till.advise(ops.REVERSE_REDEEM, redemption)[0] == 202
    again, status, _ = till.request(ops.REDEEM, voucher={"code": code})
    assert status == 201
    assert till.advise(ops.REVERSE_REDEEM, redemption)[0] == 202
    assert till.voucher_state(code) == "redeemed"  # the later redemption is untouched
    assert till.advise(ops.CONFIRM_REDEEM, again)[0] == 202
    refund, _, _ = till.request(ops.REFUND, voucher={"code": code})
    assert till.advise(ops.REVERSE_REFUND, refund)[0] == 202
    assert till.advise(ops.REVERSE_REFUND, refund)[0] == 202
    assert till.voucher_state(code) == "confirmed_redeemed"


def test_concurrent_advices_on_one_redemption_are_judged_one_after_the_other(db: CrashingDatabase) -> None:
    """A confirmation and a reversal of one redemption on two connections at once: the second
    waits for the first (a row lock on PostgreSQL; SQLite serialises writers) and is refused."""
    till = Till(db)
    _, code = till.confirmed_voucher()
    redemption, status, _ = till.request(ops.REDEEM, voucher={"code": code})
    assert status == 201

    def advice(operation: ops.SuvOperation) -> Callable[[Connection], store.AdviceDecision]:
        assert operation.kind is not None and operation.event is not None
        tx = NewTransaction(str(uuid.uuid4()), CLIENT, str(uuid.uuid4()), operation.kind, State.ACCEPTED)
        item = Message("retail", "request", operation.name, "{}", 0)
        return store.advise(tx, operation.event, Kind.REDEMPTION, redemption, [item], lambda *_: None)

    decisions: list[store.AdviceDecision] = []
    with db.engine.connect() as first:
        transaction = first.begin()
        decisions.append(advice(ops.CONFIRM_REDEEM)(first))
        second = threading.Thread(target=lambda: decisions.append(db.run_sync(advice(ops.REVERSE_REDEEM))))
        second.start()
        time.sleep(0.5)
        transaction.commit()
    second.join(timeout=30)
    assert [d.status for d in decisions] == [202, 400]
    assert decisions[1].error_type == "REDEMPTION_ALREADY_CONFIRMED"
    assert till.voucher_state(code) == "confirmed_redeemed"


def test_a_reversal_and_its_request_at_once_cannot_both_pass(db: CrashingDatabase) -> None:
    """A reversal of a redemption not yet journalled, and that redemption, on two connections
    at once: the redemption waits for the reversal and is refused (§6.1), never sent."""
    till = Till(db)
    _, code = till.confirmed_voucher()
    voucher = db.run_sync(store.find_voucher(CLIENT, code=code))
    assert voucher is not None
    retail_id = str(uuid.uuid4())
    item = Message("retail", "request", "x", "{}", 0)
    reversal = NewTransaction(str(uuid.uuid4()), CLIENT, str(uuid.uuid4()), Kind.REDEMPTION_REVERSAL, State.ACCEPTED)
    redemption = NewTransaction(
        str(uuid.uuid4()), CLIENT, retail_id, Kind.REDEMPTION, State.SENT_UPSTREAM, parent_id=voucher["id"]
    )
    taken: list[Any] = []
    with db.engine.connect() as first:
        transaction = first.begin()
        refused = store.advise(reversal, Event.REVERSE_REDEEM, Kind.REDEMPTION, retail_id, [item], lambda *_: None)
        assert refused(first).status == 404
        take = store.take_and_open(redemption, code, Event.REDEEM, item, item)
        second = threading.Thread(target=lambda: taken.append(db.run_sync(take)))
        second.start()
        time.sleep(0.5)
        transaction.commit()
    second.join(timeout=30)
    assert taken == [reversal.retail_id]
    assert till.voucher_state(code) == "confirmed_provisioned"


class SilentProvider(FakeProvider):
    """Issues the voucher and never answers (the timeout comes back as unknown)."""

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        await super().send(call)
        return UpstreamAnswer(Outcome.UNKNOWN, None, b"", 0, transport_error="TimeoutError")


def test_a_queued_retrieval_wakes_the_worker_from_the_event_loop_only(db: CrashingDatabase) -> None:
    """Defect 5: queueing the retrieval of an unknown provision once set the worker's
    asyncio.Event from a database thread, before the commit. The wake-up must come on the
    event loop's own thread, after the entry is committed."""
    till = Till(db)
    till.switch.adapters[PROVIDER] = SilentProvider()
    woken: list[tuple[str, int]] = []

    def wake() -> None:
        queued = db.run_sync(lambda c: len(c.execute(select(saf_entries)).all()))
        woken.append((threading.current_thread().name, queued))

    till.switch.on_enqueued = wake
    _, status, _ = till.request(ops.PROVISION, product={"productId": "GIFT"})
    assert status == 504
    assert woken and all(name == threading.main_thread().name and queued == 1 for name, queued in woken)
