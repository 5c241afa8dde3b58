"""Settlement and maker-checker in the journal database, on both backends: fees against
hand-computed figures, a settlement frozen once approved (by another user, an approver), its
records settled and their file FINALIZED, a rollback un-matching what a file matched and refused
once it is settled, resolutions of single records, and the GL posting balancing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.test_finance_config import PROCESS, PROVIDER
from tests.test_finance_store import HEADER, journal, load
from xhuma.config import load_settings
from xhuma.finance import approvals, posting, settlement, store
from xhuma.finance.approvals import ApprovalRefused, Proposal
from xhuma.finance.processes import Finance, Process, day_start_us
from xhuma.security import audit, credentials
from xhuma.security.audit import Actor
from xhuma.storage.db import Database
from xhuma.storage.tables import finance_results

DAY = date(2026, 1, 5)
HOUR = 3600 * 1_000_000
FEES = """
[[finance.fees]]
name = "commission"
counterparty = "sim"
service = "ppu"
payer = "counterparty"
tiers = [{ from_cents = 0, percent = "2" }, { from_cents = 30000, percent = "1" }]
min_cents = 100
max_cents = 400

[[finance.fees]]
name = "switching"
counterparty = "sim"
payer = "us"
fixed_cents = 25

[finance.accounts.sim]
principal = "2100-SIM"
fees = "4100-SIM"
settlement = "1100-BANK"
"""
ALICE, BOB, CAROL = Actor("alice", "test"), Actor("bob", "test"), Actor("carol", "test")


@pytest.fixture
def finance(tmp_path: Path) -> Finance:
    path = tmp_path / "xhuma.toml"
    path.write_text(PROVIDER + PROCESS + FEES)
    return load_settings(path).finance


@pytest.fixture
def process(finance: Finance) -> Process:
    return finance.processes[0]


@pytest.fixture
def people(db: Database) -> Database:
    """bob is an approver; carol only a finance maker."""
    db.run_sync(credentials.add_client("bob", "pw", "ops", "Bob", "approver"))
    db.run_sync(credentials.add_client("carol", "pw", "ops", "Carol", "finance"))
    return db


def purchase(db: Database, process: Process, day: date, hour: int, amount: int) -> str:
    return journal(db, process, day, amount, hour=hour)


def their_line(process: Process, day: date, hour: int, reference: str, amount: int) -> bytes:
    moment = (day_start_us(process, day) + hour * HOUR) // 1_000_000 + 30
    return f"{reference},{amount},{datetime.fromtimestamp(moment, UTC).isoformat()},purchase,\n".encode()


def day_of_three(db: Database, process: Process, name: str = "day.csv") -> tuple[list[str], str]:
    """Three purchases (100.00, 250.00, 50.00 at 09:00, 10:00, 11:00), their file, the day run."""
    amounts = ((9, 10000), (10, 25000), (11, 5000))
    ids = [purchase(db, process, DAY, hour, amount) for hour, amount in amounts]
    content = HEADER + b"".join(their_line(process, DAY, h, i, a) for i, (h, a) in zip(ids, amounts, strict=True))
    offer = load(db, process, name, content)
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    return ids, offer.id


def settle(db: Database, finance: Finance, start: date = DAY, end: date = DAY) -> tuple[str, str]:
    approval_id, settlement_id = str(uuid.uuid4()), str(uuid.uuid4())
    proposal = Proposal("settlement", "day's settlement", counterparty="sim", start=str(start), end=str(end))
    db.run_sync(approvals.propose(approval_id, ALICE, proposal, finance, settlement_id))
    return approval_id, settlement_id


def results(db: Database, process: Process) -> dict[str, dict[str, object]]:
    rows = db.run_sync(lambda conn: conn.execute(select(finance_results)).all())
    return {row.record_id: dict(row._mapping) for row in rows}


def test_a_settlement_is_priced_approved_by_another_approver_frozen_and_posted(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    ids, file_id = day_of_three(db, process)
    approval_id, settlement_id = settle(db, finance)
    drafted = db.run_sync(settlement.settlement(settlement_id))
    assert drafted is not None and drafted["status"] == "DRAFT"
    # commission, tiered 2 % to 300.00 then 1 %, held within 1.00..4.00, in time order:
    # 100.00 -> 2.00; 250.00 from 100.00 -> 200.00 at 2 % + 50.00 at 1 % = 4.50 -> 4.00; 50.00 at 1 % -> 0.50 -> 1.00
    fees = {f["rule"]: f for f in drafted["fees"]}
    assert fees["commission"]["amount"] == 200 + 400 + 100 and fees["commission"]["volume"] == 40000
    assert fees["switching"]["amount"] == 3 * 25
    assert (drafted["principal"], drafted["fees_to_us"], drafted["fees_to_them"]) == (40000, 700, 75)
    assert drafted["net_to_counterparty"] == 40000 - 700 + 75 and drafted["direction"] == "xhuma pays sim"
    assert sorted(u["fee"] for u in drafted["unit_rows"]) == [125, 225, 425]

    with pytest.raises(ApprovalRefused, match="alice proposed approval .* cannot decide it too"):
        db.run_sync(approvals.approve(approval_id, ALICE, "mine"))
    with pytest.raises(ApprovalRefused, match="carol may not decide approvals: only .* approver role"):
        db.run_sync(approvals.approve(approval_id, CAROL, "looks fine"))
    with pytest.raises(ApprovalRefused, match="awaits approval"):
        settle(db, finance)  # one draft at a time
    with pytest.raises(ApprovalRefused, match=r"to: 2026-01-04 is before from \(2026-01-05\)") as backwards:
        settle(db, finance, DAY, date(2026, 1, 4))
    assert (backwards.value.status, backwards.value.field) == (400, "to")
    with pytest.raises(ApprovalRefused, match="in draft settlement"):
        db.run_sync(approvals.propose(str(uuid.uuid4()), ALICE, Proposal("rollback", "wrong", file=file_id), finance))
    assert all(r["settlement_id"] is None for r in results(db, process).values())

    done = db.run_sync(approvals.approve(approval_id, BOB, "checked against the statement"))
    assert done["status"] == "approved" and done["outcome"]["finalized"] == [file_id]
    frozen = db.run_sync(settlement.settlement(settlement_id))
    assert frozen is not None and frozen["status"] == "APPROVED"
    settled = results(db, process)
    assert len(settled) == 6 and {r["settlement_id"] for r in settled.values()} == {settlement_id}
    assert db.run_sync(store.file_row(file_id))["status"] == "FINALIZED"  # type: ignore[index]
    with pytest.raises(ApprovalRefused, match="already"):
        db.run_sync(approvals.approve(approval_id, BOB, "again"))

    # a run of the day again leaves settled results as they are; settling again finds nothing
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    assert {r["settlement_id"] for r in results(db, process).values()} == {settlement_id}
    with pytest.raises(ApprovalRefused, match=f"nothing to settle .*\\(settled in {settlement_id}\\)"):
        settle(db, finance)

    accounts = finance.accounts["sim"]
    lines = posting.journal(frozen, accounts)
    assert sum(line.debit for line in lines) == sum(line.credit for line in lines) == 40075
    assert [(line.account, line.amount) for line in lines] == [
        ("2100-SIM", 40000),
        ("4100-SIM", -700),
        ("4100-SIM", 75),
        ("1100-BANK", -39375),
    ]
    assert db.run_sync(audit.verify())[1] is None
    actions = [e["action"] for e in db.run_sync(audit.entries(action=None))]
    assert actions[:2] == ["finance.approve", "finance.propose"]


def test_monthly_tiers_count_the_approved_settlements_before(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    day_of_three(db, process)
    approval_id, _ = settle(db, finance)
    db.run_sync(approvals.approve(approval_id, BOB, "ok"))
    later = date(2026, 1, 6)
    tx = purchase(db, process, later, 9, 20000)
    load(db, process, "day2.csv", HEADER + their_line(process, later, 9, tx, 20000))
    db.run_sync(store.run(process, later, str(uuid.uuid4())))
    _, second = settle(db, finance, later, later)
    drafted = db.run_sync(settlement.settlement(second))
    assert drafted is not None
    # the month so far is 400.00, past the 300.00 tier: 200.00 at 1 % = 2.00
    assert {f["rule"]: f["amount"] for f in drafted["fees"]} == {"commission": 200, "switching": 25}


def test_a_rollback_unmatches_what_the_file_matched_and_is_refused_once_settled(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    ids, file_id = day_of_three(db, process)
    approval_id = str(uuid.uuid4())
    db.run_sync(
        approvals.propose(approval_id, CAROL, Proposal("rollback", "their file was wrong", file=file_id), finance)
    )
    with pytest.raises(ApprovalRefused, match="proposed already"):
        db.run_sync(approvals.propose(str(uuid.uuid4()), ALICE, Proposal("rollback", "again", file=file_id), finance))
    done = db.run_sync(approvals.approve(approval_id, BOB, "agreed with sim"))
    assert done["outcome"] == {"file": file_id, "status": "ROLLBACK", "removed": 3, "unmatched_again": 3}
    left = results(db, process)
    assert set(left) == set(ids) and {r["status"] for r in left.values()} == {"unmatched"}
    assert db.run_sync(store.file_row(file_id))["status"] == "ROLLBACK"  # type: ignore[index]
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    assert db.run_sync(store.summary(process.name, DAY))["unmatched_ours"] == {"count": 3, "amount": 40000}

    # the file (or a corrected one) may be loaded again and matches; once settled it cannot be rolled back
    content = b"".join(
        their_line(process, DAY, h, i, a) for i, h, a in zip(ids, (9, 10, 11), (10000, 25000, 5000), strict=True)
    )
    fixed = load(db, process, "day.csv", HEADER + content)
    assert fixed.status == "LOADED"
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    settled_approval, _ = settle(db, finance)
    db.run_sync(approvals.approve(settled_approval, BOB, "ok"))
    with pytest.raises(ApprovalRefused, match="FINALIZED: only a LOADED file can be rolled back"):
        db.run_sync(approvals.propose(str(uuid.uuid4()), ALICE, Proposal("rollback", "no", file=fixed.id), finance))


def test_a_rollback_of_a_partly_settled_file_is_refused_at_approval(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    ids, file_id = day_of_three(db, process)
    extra = purchase(db, process, date(2026, 1, 6), 9, 700)
    load(db, process, "late.csv", HEADER + their_line(process, date(2026, 1, 6), 9, extra, 700))
    rollback = str(uuid.uuid4())
    db.run_sync(approvals.propose(rollback, CAROL, Proposal("rollback", "wrong", file=file_id), finance))
    approval_id, _ = settle(db, finance)  # proposed after the rollback, approved before it
    db.run_sync(approvals.approve(approval_id, BOB, "ok"))
    with pytest.raises(ApprovalRefused, match="FINALIZED"):
        db.run_sync(approvals.approve(rollback, BOB, "too late"))
    assert db.run_sync(approvals.approval(rollback))["status"] == "pending"  # type: ignore[index]


def test_records_are_accepted_written_off_or_resolved_once_approved(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    lonely = purchase(db, process, DAY, 9, 1234)
    differs = purchase(db, process, DAY, 10, 2000)
    lost = purchase(db, process, DAY, 11, 300)
    content = HEADER + their_line(process, DAY, 10, differs, 2100)
    load(db, process, "day.csv", content)
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))

    def propose(kind: str, record: str, **fields: str) -> str:
        approval_id = str(uuid.uuid4())
        proposal = Proposal(kind, "reviewed", process="sim-ppu", side="ours", record=record, **fields)  # type: ignore[arg-type]
        db.run_sync(approvals.propose(approval_id, ALICE, proposal, finance))
        return approval_id

    with pytest.raises(ApprovalRefused, match="is partially_matched: accept takes a record unmatched or expired"):
        propose("accept", differs)
    with pytest.raises(ApprovalRefused, match="in_favour_of: required"):
        propose("resolve", differs)
    accepted = propose("accept", lonely)
    written = propose("write_off", lost, party="shop")
    resolved = propose("resolve", differs, in_favour_of="theirs")
    before = results(db, process)
    assert before[lonely]["status"] == "unmatched"  # nothing until approved
    for approval_id in (accepted, written, resolved):
        db.run_sync(approvals.approve(approval_id, BOB, "fine"))
    after = results(db, process)
    assert after[lonely]["status"] == "matched" and after[lost]["status"] == "written_off"
    assert {r["status"] for r in after.values() if r["record_id"] not in (lonely, lost)} == {"matched"}
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))  # a run again keeps what approvals decided
    assert results(db, process)[lost]["status"] == "written_off"
    assert db.run_sync(store.summary(process.name, DAY))["written_off"] == {"count": 1, "amount": 300}
    _, settlement_id = settle(db, finance)
    drafted = db.run_sync(settlement.settlement(settlement_id))
    assert drafted is not None and drafted["units"] == 2
    assert drafted["principal"] == 1234 + 2100  # the partial match settled at their amount, as resolved

    with pytest.raises(ApprovalRefused, match="no approval"):
        db.run_sync(approvals.reject(str(uuid.uuid4()), BOB, "no"))


def test_a_rejected_proposal_changes_nothing_and_a_rejected_settlement_may_be_drafted_again(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    lonely = purchase(db, process, DAY, 9, 1234)
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    approval_id = str(uuid.uuid4())
    proposal = Proposal("accept", "looks fine", process="sim-ppu", side="ours", record=lonely)
    db.run_sync(approvals.propose(approval_id, ALICE, proposal, finance))
    with pytest.raises(ApprovalRefused, match="cannot decide it too"):
        db.run_sync(approvals.reject(approval_id, ALICE, "withdrawn"))
    with pytest.raises(ApprovalRefused, match="note: required"):
        db.run_sync(approvals.reject(approval_id, BOB, " "))
    assert db.run_sync(approvals.reject(approval_id, BOB, "they never had it"))["status"] == "rejected"
    assert results(db, process)[lonely]["status"] == "unmatched"
    assert db.run_sync(approvals.approvals())[:1] == []
    db.run_sync(approvals.approve(_accept(db, finance, lonely), BOB, "now yes"))
    first, settlement_id = settle(db, finance)
    db.run_sync(approvals.reject(first, BOB, "wait for the bank"))
    assert db.run_sync(settlement.settlement(settlement_id))["status"] == "REJECTED"  # type: ignore[index]
    again, _ = settle(db, finance)
    assert db.run_sync(approvals.approve(again, BOB, "ok"))["status"] == "approved"
    assert db.run_sync(audit.verify())[1] is None


def _accept(db: Database, finance: Finance, record: str) -> str:
    approval_id = str(uuid.uuid4())
    proposal = Proposal("accept", "again", process="sim-ppu", side="ours", record=record)
    db.run_sync(approvals.propose(approval_id, ALICE, proposal, finance))
    return approval_id


def test_a_record_settled_elsewhere_makes_a_draft_stale_and_nothing_is_settled(
    people: Database, finance: Finance, process: Process
) -> None:
    db = people
    ids, _ = day_of_three(db, process)
    approval_id, settlement_id = settle(db, finance)
    r = finance_results.c
    db.run_sync(
        lambda conn: conn.execute(
            update(finance_results).where(r.side == "ours", r.record_id == ids[1]).values(settlement_id="elsewhere")
        )
    )
    with pytest.raises(ApprovalRefused, match=f"settlement {settlement_id} is stale: 1 of its 6 records"):
        db.run_sync(approvals.approve(approval_id, BOB, "ok"))
    assert [x["settlement_id"] for x in results(db, process).values()].count(None) == 5
    assert db.run_sync(settlement.settlement(settlement_id))["status"] == "DRAFT"  # type: ignore[index]
    assert db.run_sync(approvals.approval(approval_id))["status"] == "pending"  # type: ignore[index]
