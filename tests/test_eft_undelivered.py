"""EFT messages the bank did not take, in process on both databases: the window closing on
what it never acknowledged or reported on, and an original whose correction was refused,
expired in the queue or went unconfirmed, which becomes an exception instead of staying
`correcting`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from xhuma.domain.eft_transmissions import GAP
from xhuma.domain.outcomes import Outcome
from xhuma.eft.delivery import CORRECTION_FAILED, EftDeliverer, close_window, release_due
from xhuma.eft.intake import exceptions, ingest, transactions
from xhuma.providers.base import UpstreamAnswer, UpstreamCall
from xhuma.saf import queue
from xhuma.saf.worker import SafSettings, SafWorker
from xhuma.storage.db import Database
from xhuma.storage.tables import eft_transactions, reconciliation_exceptions

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "eft"


class Bank:
    """A homing bank that answers every message with one status, counting what it got."""

    name = "bank"

    def __init__(self, status: int | None) -> None:
        self.status = status
        self.paths: list[str] = []

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        self.paths.append(call.url)
        if self.status is None:
            return UpstreamAnswer(Outcome.UNKNOWN, None, b"", 0, transport_error="read timeout")
        outcome = Outcome.SUCCESSFUL if self.status == 202 else Outcome.FAILED
        return UpstreamAnswer(outcome, self.status, b'{"message":"no"}', 0)


def _deliver_all(db: Database, bank: Bank, **settings: Any) -> None:
    """Run a store-and-forward worker until no entry is pending."""

    async def run() -> None:
        stop = asyncio.Event()
        worker = SafWorker(db, [EftDeliverer(bank)], SafSettings(base_delay_seconds=0.01, **settings))
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 20
        while await db.run(queue.list_entries(state=queue.PENDING)):
            assert time.monotonic() < deadline, "entries still pending"
            await asyncio.sleep(0.05)
        stop.set()
        await task

    db.start()
    asyncio.run(run())


def _states(db: Database, file_id: int) -> list[str]:
    return [r["state"] for r in transactions(db.engine, file_id)]


def test_the_window_closes_on_what_the_bank_never_acknowledged(db: Database) -> None:
    mixed = ingest(db.engine, SAMPLES / "payments-mixed-20.eft")
    assert db.run_sync(release_due("http://bank", "250655")) == 20
    rows = transactions(db.engine, mixed.file_id)
    acknowledged = {rows[0]["tx_id"], rows[1]["tx_id"]}
    with db.engine.begin() as conn:
        conn.execute(
            update(eft_transactions).where(eft_transactions.c.tx_id.in_(acknowledged)).values(state="acknowledged")
        )
    assert db.run_sync(close_window(3600 * 10**6)) == 0  # not yet: the window is an hour
    assert exceptions(db.engine) == []
    time.sleep(0.01)
    assert db.run_sync(close_window(0)) == 20
    raised = exceptions(db.engine)
    reasons = {r["message_id"]: r["reason"] for r in raised}
    assert len(raised) == 20 and {r["file_id"] for r in raised} == {mixed.file_id}
    for row in rows:
        expected = "eft_no_status_report" if row["tx_id"] in acknowledged else "eft_not_acknowledged"
        assert reasons[row["message_id"]] == expected
    assert set(_states(db, mixed.file_id)) == {"exception"}
    assert db.run_sync(close_window(0)) == 0  # closing again finds nothing new
    assert len(exceptions(db.engine)) == 20


def _correcting(db: Database, tmp_path: Path) -> tuple[int, int]:
    """The mixed sample accepted by the bank, then its corrections released: (original file,
    correction file)."""
    mixed = ingest(db.engine, SAMPLES / "payments-mixed-20.eft")
    db.run_sync(release_due("http://bank", "250655"))
    with db.engine.begin() as conn:
        conn.execute(
            update(eft_transactions).where(eft_transactions.c.file_id == mixed.file_id).values(state="accepted")
        )
    sec = ingest(db.engine, SAMPLES / "sec-for-payments-mixed-20.eft")
    with db.engine.begin() as conn:  # the 20 originals were delivered already
        conn.execute(update(queue.saf_entries).values(state=queue.DELIVERED))
    assert db.run_sync(release_due("http://bank", "250655")) == 4
    assert _states(db, mixed.file_id).count("correcting") == 4
    return mixed.file_id, sec.file_id


def test_an_original_whose_correction_was_refused_becomes_an_exception(db: Database, tmp_path: Path) -> None:
    original_file, sec_file = _correcting(db, tmp_path)
    bank = Bank(400)  # the bank refuses the PaymentReturns outright: the queue stops them
    _deliver_all(db, bank)
    assert len(bank.paths) == 4 and all(p.endswith("/inbound/payment-return") for p in bank.paths)
    originals = [r for r in transactions(db.engine, original_file) if r["state"] not in ("accepted",)]
    assert [r["state"] for r in originals] == ["exception"] * 4
    assert _states(db, sec_file) == ["exception"] * 4
    raised = exceptions(db.engine)
    failed = [r for r in raised if r["reason"] == CORRECTION_FAILED]
    assert sorted(r["message_id"] for r in failed) == sorted(r["message_id"] for r in originals)
    assert {r["file_id"] for r in failed} == {original_file}
    assert all("delivery_stopped" in r["detail"] and "HTTP 400" in r["detail"] for r in failed)
    assert all(f"(file {sec_file}, line " in r["detail"] for r in failed)
    on_sec_file = sorted(r["reason"] for r in raised if r["file_id"] == sec_file)
    assert on_sec_file == ["delivery_stopped"] * 4 + [GAP]  # the samples skip transmission 1002
    # Nothing is left for the window to find, and nothing opened twice.
    assert db.run_sync(close_window(0)) == 0
    with db.engine.connect() as conn:
        assert len(conn.execute(select(reconciliation_exceptions)).all()) == 9


def test_an_original_whose_correction_expired_or_went_unconfirmed_becomes_an_exception(
    db: Database, tmp_path: Path
) -> None:
    original_file, sec_file = _correcting(db, tmp_path)
    silent = Bank(None)  # no answer at all, until the entries are too old to repeat
    _deliver_all(db, silent, max_age_seconds=0.0)
    assert _states(db, original_file).count("exception") == 4
    failed = [r for r in exceptions(db.engine) if r["reason"] == CORRECTION_FAILED]
    assert len(failed) == 4 and all("delivery_expired" in r["detail"] for r in failed)


def test_a_correction_the_window_closes_on_takes_its_original_along(db: Database, tmp_path: Path) -> None:
    original_file, sec_file = _correcting(db, tmp_path)
    time.sleep(0.01)
    assert db.run_sync(close_window(0)) == 4  # never delivered at all
    assert _states(db, original_file).count("correcting") == 0
    assert _states(db, original_file).count("exception") == 4
    failed = [r for r in exceptions(db.engine) if r["reason"] == CORRECTION_FAILED]
    assert len(failed) == 4 and all("eft_not_acknowledged: window closed" in r["detail"] for r in failed)


def test_a_correction_delivered_keeps_its_original_correcting_until_the_report(db: Database, tmp_path: Path) -> None:
    original_file, sec_file = _correcting(db, tmp_path)
    _deliver_all(db, Bank(202))
    assert _states(db, sec_file) == ["acknowledged"] * 4
    assert _states(db, original_file).count("correcting") == 4
    assert [r["reason"] for r in exceptions(db.engine)] == [GAP]
