"""The group-commit database and the journal operations, on both backends."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import Connection, text

from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
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
    state = db.run_sync(journal.record_outcome(tx.id, Outcome.UNKNOWN, [], retail_status=504, retail_response="{}"))
    assert state is State.APPROVED
    row = db.run_sync(journal.find("c1", Kind.PURCHASE, tx.retail_id))
    assert row is not None and row["retail_status"] == 201 and row["retail_response"] == '{"ok":1}'


def test_migrations_are_idempotent(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    migrate(database.engine)
    migrate(database.engine)
    database.close()
