"""The group-commit database and the journal operations, on both backends."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import Connection, text

from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.saf.queue import enqueue
from xhuma.storage import journal
from xhuma.storage.db import Database, migrate


@pytest.fixture
def db(fresh_database_url: str):  # type: ignore[no-untyped-def]
    database = Database(fresh_database_url)
    migrate(database.engine)
    database.start()
    yield database
    database.close()


def new_purchase(retail_id: str | None = None) -> journal.NewTransaction:
    return journal.NewTransaction(
        id=str(uuid.uuid4()),
        client_id="c1",
        retail_id=retail_id or str(uuid.uuid4()),
        kind=Kind.PURCHASE,
        state=State.SENT_UPSTREAM,
        meter_id="TST001",
        amount=100,
        currency="710",
        provider="sim",
    )


def test_group_commit_isolates_a_failing_operation(db: Database) -> None:
    def boom(_conn: Connection) -> None:
        raise RuntimeError("boom")

    async def scenario() -> list[object]:
        txs = [new_purchase() for _ in range(50)]
        ops = [db.run(journal.open_transaction(t, [])) for t in txs]
        ops.insert(25, db.run(boom))
        return await asyncio.gather(*ops, return_exceptions=True)

    results = asyncio.run(scenario())
    assert [type(r) for r in results].count(RuntimeError) == 1
    assert results.count(True) == 50


def test_duplicates_are_refused_within_one_group(db: Database) -> None:
    retail_id = str(uuid.uuid4())

    async def scenario() -> list[bool]:
        return await asyncio.gather(*(db.run(journal.open_transaction(new_purchase(retail_id), [])) for _ in range(8)))

    assert sorted(asyncio.run(scenario())) == [False] * 7 + [True]
    count = db.run_sync(
        lambda c: c.execute(text("SELECT count(*) FROM transactions WHERE retail_id = :r"), {"r": retail_id}).scalar()
    )
    assert count == 1


def test_final_answer_is_kept_when_a_late_unknown_arrives(db: Database) -> None:
    tx = new_purchase()
    db.run_sync(journal.open_transaction(tx, []))
    db.run_sync(journal.record_outcome(tx.id, Outcome.SUCCESSFUL, [], retail_status=201, retail_response='{"ok":1}'))
    recorded = db.run_sync(journal.record_outcome(tx.id, Outcome.UNKNOWN, [], retail_status=504, retail_response="{}"))
    assert recorded == journal.Recorded(State.APPROVED, 201, '{"ok":1}')  # what the retailer is told
    row = db.run_sync(journal.find("c1", Kind.PURCHASE, tx.retail_id))
    assert row is not None and row["retail_status"] == 201 and row["retail_response"] == '{"ok":1}'
    late = db.run_sync(journal.record_outcome(tx.id, Outcome.FAILED, [], retail_status=400, retail_response="{}"))
    assert late == journal.Recorded(State.APPROVED, 201, '{"ok":1}')


def test_a_success_for_our_id_overrides_a_decline_and_a_person_is_told(db: Database) -> None:
    tx = new_purchase()
    db.run_sync(journal.open_transaction(tx, []))
    declined = db.run_sync(journal.record_outcome(tx.id, Outcome.FAILED, [], retail_status=400, retail_response="no"))
    assert declined.state is State.DECLINED
    sold = db.run_sync(journal.record_outcome(tx.id, Outcome.SUCCESSFUL, [], retail_status=201, retail_response="yes"))
    assert sold == journal.Recorded(State.APPROVED, 201, "yes")
    assert count(db, "SELECT count(*) FROM reconciliation_exceptions WHERE reason = 'approved_after_decline'") == 1


def test_migrations_are_idempotent(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    migrate(database.engine)
    migrate(database.engine)
    database.close()


def count(db: Database, sql: str, **params: object) -> int:
    return int(db.run_sync(lambda c: c.execute(text(sql), params).scalar()))


def test_opening_is_idempotent_by_our_own_id(db: Database) -> None:
    """Run again after an in-doubt commit, opening our own transaction is success, not a
    duplicate (it used to answer the retailer DUPLICATE_RECORD for a purchase never sent)."""
    tx = new_purchase()
    received = journal.Message("retail", "request", "purchase", "{}", 1)
    assert db.run_sync(journal.open_transaction(tx, [received])) is True
    assert db.run_sync(journal.open_transaction(tx, [received])) is True
    assert count(db, "SELECT count(*) FROM messages WHERE tx_id = :t", t=tx.id) == 1
    other = new_purchase(tx.retail_id)
    assert db.run_sync(journal.open_transaction(other, [])) is False


def test_queueing_and_exceptions_are_idempotent(db: Database) -> None:
    tx = new_purchase()
    db.run_sync(journal.open_transaction(tx, []))
    assert db.run_sync(enqueue("ppu:sim", tx.id, "retry", "POST", "http://x", "{}")) is True
    assert db.run_sync(enqueue("ppu:sim", tx.id, "retry", "POST", "http://x", "{}")) is False
    assert db.run_sync(enqueue("ppu:sim", tx.id, "reversal", "POST", "http://x", "{}")) is True
    assert count(db, "SELECT count(*) FROM saf_entries WHERE tx_id = :t", t=tx.id) == 2
    for _ in range(2):
        db.run_sync(lambda c: journal.open_exception(c, tx.id, "outcome_unknown", "first"))
    assert count(db, "SELECT count(*) FROM reconciliation_exceptions WHERE tx_id = :t", t=tx.id) == 1
    db.run_sync(lambda c: c.execute(text("UPDATE reconciliation_exceptions SET state = 'resolved'")))
    db.run_sync(lambda c: journal.open_exception(c, tx.id, "outcome_unknown", "again, after it was settled"))
    assert count(db, "SELECT count(*) FROM reconciliation_exceptions WHERE tx_id = :t", t=tx.id) == 2
    # PostgreSQL prepares a statement met often enough (psycopg's threshold is 5); the prepared
    # form must still find the partial index it conflicts on.
    for _ in range(8):
        other = new_purchase()
        db.run_sync(journal.open_transaction(other, []))
        db.run_sync(lambda c, tx_id=other.id: journal.open_exception(c, tx_id, "outcome_unknown", "often"))
    assert count(db, "SELECT count(*) FROM reconciliation_exceptions WHERE detail = 'often'") == 8


class CommitFaults:
    """Fails the next `remaining` commits at `phase`: before COMMIT (nothing committed) or after
    it (committed, but the acknowledgement lost, as when a connection drops at COMMIT)."""

    def __init__(self) -> None:
        self.phase = ""
        self.remaining = 0

    def __call__(self, phase: str) -> None:
        if phase == self.phase and self.remaining > 0:
            self.remaining -= 1
            raise ConnectionError(f"injected fault {phase}")


@pytest.mark.parametrize("phase", ["before_commit", "after_commit"])
def test_a_fault_at_commit_neither_loses_nor_repeats_a_group(fresh_database_url: str, phase: str) -> None:
    faults = CommitFaults()
    db = Database(fresh_database_url, faults=faults)
    migrate(db.engine)
    db.start()
    try:
        txs = [new_purchase() for _ in range(20)]
        received = journal.Message("retail", "request", "purchase", "{}", 1)

        async def scenario() -> list[bool]:
            faults.phase, faults.remaining = phase, 1
            return await asyncio.gather(*(db.run(journal.open_transaction(t, [received])) for t in txs))

        assert asyncio.run(scenario()) == [True] * 20
        assert faults.remaining == 0
        assert count(db, "SELECT count(*) FROM transactions") == 20
        assert count(db, "SELECT count(*) FROM messages") == 20
    finally:
        db.close()


def test_a_lost_acknowledgement_reports_what_the_commit_did(fresh_database_url: str) -> None:
    """An operation that is not idempotent by itself (it appends) still runs exactly once."""
    faults = CommitFaults()
    db = Database(fresh_database_url, faults=faults)
    migrate(db.engine)
    db.start()
    tx = new_purchase()
    db.run_sync(journal.open_transaction(tx, []))
    message = journal.Message("upstream", "request", "purchase", "{}", 1)
    try:
        faults.phase, faults.remaining = "after_commit", 1
        asyncio.run(db.run(journal.record_messages(tx.id, [message])))
        assert count(db, "SELECT count(*) FROM messages WHERE tx_id = :t", t=tx.id) == 1
    finally:
        db.close()


def test_every_node_stamps_by_the_databases_clock(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose own clock is an hour fast still stamps rows (and judges their age) by the
    shared database's clock, so a live request is not taken for a dead one on another node."""
    from xhuma.storage import db as db_module

    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("SQLite is on this machine: its clock is ours")
    real = time.time_ns
    monkeypatch.setattr(db_module.time, "time_ns", lambda: real() + 3600 * 10**9)
    monkeypatch.setattr(db_module, "_clock_offset_us", 0)
    database = Database(fresh_database_url)
    database.start()
    try:
        stamped = database.run_sync(lambda c: db_module.now_us())
        theirs = database.run_sync(
            lambda c: c.exec_driver_sql("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint").scalar_one()
        )
    finally:
        database.close()
    assert abs(stamped - theirs) < 60 * 10**6


def test_a_node_starts_though_the_database_drops_a_connection_meanwhile(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the crash harness: a connection terminated while a restarted switch migrated
    made it exit, leaving its port dark. Starting is idempotent, so it tries again."""
    from sqlalchemy.exc import OperationalError

    from xhuma import node

    drops = [OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))]
    real = node.migrate

    def flaky(engine):  # type: ignore[no-untyped-def]
        if drops:
            raise drops.pop()
        real(engine)

    monkeypatch.setattr(node, "migrate", flaky)
    monkeypatch.setattr(node.time, "sleep", lambda _: None)
    database = Database(fresh_database_url)
    node._while_the_database_settles(database)
    try:
        assert not drops
        assert database.run_sync(lambda c: c.execute(text("SELECT count(*) FROM transactions")).scalar_one()) == 0
    finally:
        database.close()
