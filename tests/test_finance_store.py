"""Reconciliation state in the journal database, on both backends: files loaded once, nothing of
a refused file kept, our records taken from the journal, runs idempotent by their id, records
offered again on the following days and expired after `expiry_days`."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from tests.test_finance_config import sim_process
from xhuma.finance import store
from xhuma.finance.files import FileRefused, read_file
from xhuma.finance.processes import Process, day_start_us
from xhuma.storage.db import Database
from xhuma.storage.tables import finance_records, transactions

DAY = date(2026, 1, 1)
HOUR = 3600 * 1_000_000


@pytest.fixture
def process(tmp_path: Path) -> Process:
    return sim_process(tmp_path)


def journal(
    db: Database,
    process: Process,
    day: date,
    amount: int,
    *,
    state: str = "confirmed",
    provider: str = "sim",
    hour: int = 10,
) -> str:
    tx_id = str(uuid.uuid4())
    at = day_start_us(process, day) + hour * HOUR
    row = {
        "id": tx_id,
        "client_id": "c",
        "retail_id": tx_id,
        "id_space": "request",
        "kind": "purchase",
        "state": state,
        "provider": provider,
        "amount": amount,
        "currency": "710",
        "created_us": at,
        "updated_us": at,
    }
    db.run_sync(lambda conn: conn.execute(insert(transactions).values(**row)))
    return tx_id


def line(process: Process, day: date, reference: str, amount: int, *, shift_seconds: int = 0) -> bytes:
    moment = day_start_us(process, day) + 10 * HOUR + (30 + shift_seconds) * 1_000_000
    when = datetime.fromtimestamp(moment // 1_000_000, UTC).isoformat()
    return f"{reference},{amount},{when},purchase,\n".encode()


def load(db: Database, process: Process, name: str, content: bytes) -> store.Offer:
    file_id = str(uuid.uuid4())
    offer = db.run_sync(store.offer_file(file_id, process.name, name, store.content_hash(content)))
    if offer.duplicate_of is not None:
        return offer
    assert db.run_sync(store.start_loading(file_id))
    try:
        records = read_file(process, content)
    except FileRefused as exc:
        db.run_sync(store.refuse_file(file_id, exc.problems))
        return store.Offer(file_id, "ERROR")
    assert db.run_sync(store.finish_loading(file_id, process, records))
    assert not db.run_sync(store.finish_loading(file_id, process, records))  # once only
    return store.Offer(file_id, "LOADED")


HEADER = b"reference,amount_cents,time,type,meter\n"


def test_files_are_taken_once_and_a_refused_one_leaves_nothing(db: Database, process: Process) -> None:
    content = HEADER + line(process, DAY, "a", 100)
    assert load(db, process, "one.csv", content).status == "LOADED"
    again = load(db, process, "two.csv", content)
    assert again.duplicate_of is not None and again.duplicate_of["reason"] == "the same content"
    same_name = load(db, process, "one.csv", content + line(process, DAY, "b", 1))
    assert same_name.duplicate_of is not None and same_name.duplicate_of["reason"] == "the same name"
    bad = load(db, process, "bad.csv", content + b"b,notcents,2026-01-01T00:00:00Z,purchase,\n")
    assert bad.status == "ERROR"
    row = db.run_sync(store.file_row(bad.id))
    assert row is not None and row["status"] == "ERROR" and '"line": 3' in row["error"]
    count = db.run_sync(lambda conn: conn.execute(select(func.count()).select_from(finance_records)).scalar_one())
    assert count == 1
    # the same offer (our id) made again after a rollback is the same file, not a duplicate
    first = db.run_sync(store.files(process.name))[0]
    assert db.run_sync(store.offer_file(first["id"], process.name, "one.csv", first["content_hash"])).status == "LOADED"
    # a refused file may be offered again once fixed
    assert load(db, process, "bad.csv", content + line(process, DAY, "c", 5)).status == "LOADED"


def test_a_run_takes_our_records_from_the_journal_and_is_idempotent(db: Database, process: Process) -> None:
    ok = journal(db, process, DAY, 1000)
    differs = journal(db, process, DAY, 2000)
    journal(db, process, DAY, 3000, state="declined")  # excluded
    journal(db, process, DAY, 4000, provider="other")  # another counterparty
    ours_only = journal(db, process, DAY, 500)
    content = HEADER + line(process, DAY, ok, 1000) + line(process, DAY, differs, 2100) + line(process, DAY, "extra", 7)
    load(db, process, "day1.csv", content)
    run_id = str(uuid.uuid4())
    done = db.run_sync(store.run(process, DAY, run_id))
    assert (done.ours, done.theirs, done.again) == (3, 3, False)
    assert db.run_sync(store.run(process, DAY, run_id)).again
    summary = db.run_sync(store.summary(process.name, DAY))
    assert summary["matched"] == {"count": 1, "amount": 1000, "their_amount": 1000}
    assert summary["partially_matched"] == {"count": 1, "amount": 2000, "their_amount": 2100, "difference": 100}
    assert summary["unmatched_ours"] == {"count": 1, "amount": 500}
    assert summary["unmatched_theirs"] == {"count": 1, "amount": 7}
    assert summary["runs"] == 1
    # running the day again (a new run) gives the same results, not twice as many
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    assert db.run_sync(store.summary(process.name, DAY))["records"] == {"ours": 3, "theirs": 3}
    [partial] = db.run_sync(store.results(process.name, DAY, "partially_matched"))[:1]
    assert partial["differences"] == {"amount": 100} and partial["rule"] == "exact"
    [missing] = db.run_sync(store.results(process.name, DAY, "unmatched_ours"))
    assert missing["record_id"] == ours_only and missing["missing"] == "theirs"


def test_unmatched_records_are_offered_again_and_expire(db: Database, process: Process) -> None:
    late = journal(db, process, DAY, 100)  # their record of it comes a day later
    never = journal(db, process, DAY, 200)  # they never have it
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    assert db.run_sync(store.summary(process.name, DAY))["unmatched_ours"]["count"] == 2
    day2, day3 = date(2026, 1, 2), date(2026, 1, 3)
    load(db, process, "day2.csv", HEADER + line(process, day2, late, 100))
    db.run_sync(store.run(process, day2, str(uuid.uuid4())))
    second = db.run_sync(store.summary(process.name, day2))
    assert second["partially_matched"]["count"] == 1  # same reference, a day apart: the time differs
    assert second["unmatched_ours"] == {"count": 1, "amount": 200}
    db.run_sync(store.run(process, day3, str(uuid.uuid4())))  # expiry_days = 2
    [expired] = db.run_sync(store.results(process.name, day3, "expired"))
    assert expired["record_id"] == never
    assert db.run_sync(store.summary(process.name, day3))["expired"] == {
        "count": 1,
        "amount": 200,
        "ours": 1,
        "theirs": 0,
    }
    # the partial match of day 2 stays decided
    assert db.run_sync(store.results(process.name, day2, "partially_matched"))[0]["record_id"] == late
